package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/tlsconf"
)

// KafkaConfig is the kafka section of the configuration: where the raw
// topics are and how the consumer group reads them. Start from
// DefaultKafka; Validate reports every problem, each naming its key below
// the section.
type KafkaConfig struct {
	// Brokers lists bootstrap brokers. Empty in `musubi demo` means an
	// embedded broker; `serve` requires at least one.
	Brokers []string `yaml:"brokers"`
	GroupID string   `yaml:"group_id"`
	// Topics maps each source (cloudtrail, vpcflow, guardduty, agent, falco)
	// to the topic that carries it. A file's map replaces the default one
	// whole: list every source to consume.
	Topics Topics `yaml:"topics"`
	// DeadLetterTopic, when set, receives every record that cannot be
	// processed, in addition to the dead_letters table.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// SignalsTopic joins the split roles: `-role detect` publishes the
	// signals of every durable batch to it, keyed by tenant, and `-role
	// correlate` consumes it. Give it as many partitions as correlate
	// processes may run; a tenant's signals stay on one partition.
	SignalsTopic string `yaml:"signals_topic"`
	// SignalsGroupID is the consumer group of `-role correlate` on the
	// signals topic; it must differ from group_id (the raw topics' group).
	SignalsGroupID string `yaml:"signals_group_id"`
	// MaxWait is the longest a fetch waits at the broker when no data is
	// there (data that arrives is returned at once). The client's read
	// deadline keeps a safety margin of up to a second below it, so values
	// under a second leave little slack on a busy broker.
	MaxWait time.Duration `yaml:"max_wait"`
	// QueueCapacity bounds the messages the client prefetches.
	QueueCapacity int `yaml:"queue_capacity"`
	// SignalsQueueCapacity bounds the signal messages `-role correlate`
	// prefetches. A signal message holds up to 512 KiB (a raw record is
	// usually far smaller), so its prefetch is bounded apart: at the
	// default 100, at most 50 MiB wait in a slow correlate process; the
	// rest waits on the signals topic as consumer lag.
	SignalsQueueCapacity int `yaml:"signals_queue_capacity"`
	// SessionTimeout is how long the group coordinator waits for heartbeats
	// before it hands a silent (crashed) member's partitions to others.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout is how long a rebalance waits for members to rejoin.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// LagInterval is how often the consumer lag (high-water mark minus the
	// committed offset, per partition held) is read from the brokers.
	LagInterval time.Duration `yaml:"lag_interval"`
	// TLS and SASL secure the connections to the brokers (Amazon MSK,
	// Confluent Cloud, any broker with TLS or SASL listeners).
	TLS  tlsconf.Config `yaml:"tls"`
	SASL SASLConfig     `yaml:"sasl"`
}

// SASLConfig configures SASL authentication to the brokers.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM;
	// empty means no SASL. AWS_MSK_IAM (Amazon MSK's IAM access control,
	// port 9098) signs with the AWS default credential chain — the pod's
	// IAM role through IRSA or EKS Pod Identity, the environment, the
	// instance profile — and needs TLS; it takes no username or password.
	Mechanism string `yaml:"mechanism"`
	// Region is the MSK cluster's AWS region for AWS_MSK_IAM; empty takes
	// AWS_REGION from the environment.
	Region   string `yaml:"region"`
	Username string `yaml:"username"`
	// Password is the password itself, "env:NAME" to read it from the
	// environment, or "file:PATH" to read it from a file (a mounted
	// Secret).
	Password string `yaml:"password"`
}

// SASLAWSMSKIAM is the SASL mechanism of Amazon MSK's IAM access control.
const SASLAWSMSKIAM = "AWS_MSK_IAM"

// SASLMechanisms lists the valid values of SASLConfig.Mechanism.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", SASLAWSMSKIAM}

// Topics maps sources to topics. Unlike other maps of the configuration,
// which override defaults key by key, a configured Topics replaces the
// defaults, so a deployment consumes exactly the sources it lists.
type Topics map[string]string

// UnmarshalYAML replaces the map instead of merging into the defaults.
func (t *Topics) UnmarshalYAML(n *yaml.Node) error {
	m := map[string]string{}
	if err := n.Decode(&m); err != nil {
		return err
	}
	*t = m
	return nil
}

// DefaultKafka returns the kafka section used when nothing is set: a
// broker on localhost and one musubi.raw.<source> topic per source.
func DefaultKafka() KafkaConfig {
	topics := Topics{}
	for _, s := range ingest.Sources {
		topics[string(s)] = "musubi.raw." + string(s)
	}
	return KafkaConfig{
		Brokers:        []string{"127.0.0.1:9092"},
		GroupID:        "musubi",
		SignalsTopic:   "musubi.signals",
		SignalsGroupID: "musubi-correlate",
		Topics:         topics,
		MaxWait:        2 * time.Second,
		QueueCapacity:  1000,
		// 100 × 512 KiB: at most 50 MiB of prefetched signals.
		SignalsQueueCapacity: 100,
		SessionTimeout:       30 * time.Second,
		RebalanceTimeout:     30 * time.Second,
		LagInterval:          15 * time.Second,
	}
}

// Validate reports every problem of c at once, each error starting with
// its key below the kafka section ("brokers[0]: …").
func (c KafkaConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if c.GroupID == "" {
		bad("group_id", "must not be empty")
	}
	if c.SignalsTopic == "" {
		bad("signals_topic", "must not be empty")
	} else if c.SignalsTopic == c.DeadLetterTopic {
		bad("signals_topic", "%q is also the dead-letter topic", c.SignalsTopic)
	}
	if c.SignalsGroupID == "" {
		bad("signals_group_id", "must not be empty")
	} else if c.SignalsGroupID == c.GroupID {
		bad("signals_group_id", "%q is also group_id; the correlate role needs a consumer group of its own", c.SignalsGroupID)
	}
	if len(c.Topics) == 0 {
		bad("topics", "at least one source topic is required")
	}
	seen := map[string]string{}
	for _, src := range slices.Sorted(maps.Keys(c.Topics)) {
		topic := c.Topics[src]
		if _, err := ingest.ParseSource(src); err != nil || src == string(ingest.SourceAuto) {
			names := make([]string, len(ingest.Sources))
			for i, s := range ingest.Sources {
				names[i] = string(s)
			}
			bad("topics."+src, "unknown source (want one of %s)", strings.Join(names, ", "))
		}
		if topic == "" {
			bad("topics."+src, "topic must not be empty")
		} else if topic == c.SignalsTopic {
			bad("topics."+src, "topic %q is also the signals topic", topic)
		} else if other, dup := seen[topic]; dup {
			bad("topics."+src, "topic %q is also used by %s", topic, other)
		}
		seen[topic] = src
	}
	if c.MaxWait <= 0 {
		bad("max_wait", "must be positive")
	}
	if c.QueueCapacity <= 0 {
		bad("queue_capacity", "must be positive")
	}
	if c.SignalsQueueCapacity <= 0 {
		bad("signals_queue_capacity", "must be positive")
	}
	if c.SessionTimeout < time.Second {
		bad("session_timeout", "%s is shorter than a second", c.SessionTimeout)
	}
	if c.RebalanceTimeout < time.Second {
		bad("rebalance_timeout", "%s is shorter than a second", c.RebalanceTimeout)
	}
	if c.LagInterval < time.Second {
		bad("lag_interval", "%s is shorter than a second", c.LagInterval)
	}
	for _, err := range c.TLS.Validate() {
		errs = append(errs, fmt.Errorf("tls.%w", err))
	}
	s := c.SASL
	if m := s.Mechanism; m != "" {
		if !slices.Contains(SASLMechanisms, m) {
			bad("sasl.mechanism", "%q is not one of %s", m, strings.Join(SASLMechanisms, ", "))
		}
		switch {
		case m == SASLAWSMSKIAM && (s.Username != "" || s.Password != ""):
			bad("sasl", "%s signs with the AWS credential chain; remove username and password", m)
		case m == SASLAWSMSKIAM && !c.TLS.Enabled:
			bad("tls.enabled", "%s needs TLS (MSK's IAM listener, port 9098, is TLS only)", m)
		case m != SASLAWSMSKIAM && (s.Username == "" || s.Password == ""):
			bad("sasl", "username and password are required with mechanism %s", m)
		}
		if m != SASLAWSMSKIAM && s.Region != "" {
			bad("sasl.region", "applies to %s only", SASLAWSMSKIAM)
		}
	} else if s.Username != "" || s.Password != "" || s.Region != "" {
		bad("sasl.mechanism", "is empty although a username, password or region is set")
	}
	return errors.Join(errs...)
}

// BatchConfig is the pipeline section of the configuration: how the
// consumer cuts batches between Kafka and ClickHouse.
type BatchConfig struct {
	// BatchSize is the most records processed and written together.
	BatchSize int `yaml:"batch_size"`
	// BatchBytes bounds the raw bytes of the messages of one batch (a
	// batch closes at BatchSize messages or BatchBytes, whichever first;
	// one message larger than it is a batch of its own).
	BatchBytes int `yaml:"batch_bytes"`
	// FlushInterval bounds how long a partial batch waits.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// DefaultBatch returns the pipeline section used when nothing is set.
//
// Two batches are in hand at a time (one processed, one written), so the
// batch size sets most of the memory that is not the correlator's state,
// and at a steady rate below capacity how long a record waits for its
// batch to close. In the benchmark's engine runs at 300 rules (BENCHMARKS.md,
// "Batch size"), 2,500 records against 5,000: peak RSS 368–386 against
// 446–466 MiB, detection latency p99 0.66–1.18 s against 1.26–1.98 s, and
// 18,339–18,535 against 18,647–20,020 events per engine CPU-second (each
// INSERT and commit is shared by fewer records).
func DefaultBatch() BatchConfig {
	return BatchConfig{BatchSize: 2500, BatchBytes: 16 << 20, FlushInterval: time.Second}
}

// Validate reports every problem of c at once, each error starting with
// its key below the pipeline section.
func (c BatchConfig) Validate() error {
	var errs []error
	if c.BatchSize <= 0 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("batch_size: %d is outside 1..1000000", c.BatchSize))
	}
	if c.BatchBytes <= 0 {
		errs = append(errs, errors.New("batch_bytes: must be positive"))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, errors.New("flush_interval: must be positive"))
	}
	return errors.Join(errs...)
}
