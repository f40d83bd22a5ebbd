package main

import (
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/musubi-xdr/musubi/config"
)

// saslMechanism builds the SASL mechanism of the Kafka configuration; nil
// when SASL is off. The password may come from the environment or a file.
func saslMechanism(c config.SASL) (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, nil
	}
	password, err := config.Secret(c.Password)
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl.password: %w", err)
	}
	switch c.Mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: c.Username, Password: password}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, c.Username, password)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, c.Username, password)
	}
	return nil, errors.New("kafka.sasl.mechanism: " + c.Mechanism + " is not supported")
}
