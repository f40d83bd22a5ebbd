package main

import (
	"context"
	"errors"
	"fmt"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/segmentio/kafka-go/sasl"
	awsmskiam "github.com/segmentio/kafka-go/sasl/aws_msk_iam_v2"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/musubi-xdr/musubi/config"
)

// saslMechanism builds the SASL mechanism of the Kafka configuration; nil
// when SASL is off. The password may come from the environment or a file.
func saslMechanism(ctx context.Context, c config.SASL) (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, nil
	}
	if c.Mechanism == config.SASLAWSMSKIAM {
		return mskIAMMechanism(ctx, c.Region)
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

// mskIAMMechanism signs the AWS_MSK_IAM handshake (a SigV4-presigned
// kafka-cluster:Connect) with the AWS default credential chain, which
// refreshes expiring credentials (IRSA web identity, Pod Identity, instance
// profile) before each new connection signs.
func mskIAMMechanism(ctx context.Context, region string) (sasl.Mechanism, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl: AWS credentials: %w", err)
	}
	if ac.Region == "" {
		return nil, errors.New("kafka.sasl.region: " + config.SASLAWSMSKIAM + " needs the cluster's region (kafka.sasl.region or AWS_REGION)")
	}
	return &awsmskiam.Mechanism{Signer: v4.NewSigner(), Credentials: ac.Credentials, Region: ac.Region}, nil
}
