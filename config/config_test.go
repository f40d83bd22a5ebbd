package config

import (
	"github.com/musubi-xdr/musubi/ingest"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		file string
		// wantErrs are substrings that must all appear in the load or
		// validation error; empty means the file must be valid.
		wantErrs []string
	}{
		{file: "testdata/good.yaml"},
		{file: "testdata/unknown-key.yaml", wantErrs: []string{"field grup_id not found"}},
		{file: "testdata/invalid.yaml", wantErrs: []string{
			`kafka.brokers[0]: "not-a-host-port" is not host:port`,
			"kafka.topics.netflow: unknown source",
			`topic "raw" is also used by`,
			`kafka.signals_group_id: "musubi" is also group_id`,
			`kafka.topics.vpcflow: topic "musubi.signals" is also the signals topic`,
			`clickhouse: database "musubi; DROP": must be an identifier`,
			"clickhouse: max_open_conns: 0 is outside 1..1000",
			"clickhouse: incident_numbers: allocator 2 of 1",
			"api.cursor_key: is 5 bytes",
			"api.sla.urgent: is not a severity",
			"api.sla.high: must not be negative",
			`api.analysts[1]: "not a name" is not a name`,
			`api.teams: "none" is not a team name`,
			`api.tokens[1].name: "Alice" is already the name of api.tokens[0]`,
			"pipeline.batch_size: 0 is outside",
			"pipeline.batch_bytes: must be positive",
			"ingest.max_message_bytes: 1000 is below max_record_bytes (1048576)",
			"ingest.max_records: must be positive",
			`tenants[0].accounts: "1234" is not a 12-digit AWS account id`,
			`log.level: "loud" is not debug`,
		}},
		{file: "testdata/missing.yaml", wantErrs: []string{"no such file"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := Load(tc.file, nil)
			if err == nil {
				err = cfg.Validate()
			}
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tc.wantErrs)
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestEnvOverridesFile(t *testing.T) {
	env := map[string]string{
		"MUSUBI_KAFKA_BROKERS":   "a:1, b:2",
		"MUSUBI_CLICKHOUSE_ADDR": "ch:9000",
		"MUSUBI_API_LISTEN":      "127.0.0.1:9999",
	}
	cfg, err := Load("testdata/good.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Kafka.Brokers, ","); got != "a:1,b:2" {
		t.Errorf("got brokers %q, want a:1,b:2", got)
	}
	if got := cfg.ClickHouse.Addr[0]; got != "ch:9000" {
		t.Errorf("got clickhouse addr %q, want ch:9000", got)
	}
	if got := cfg.API.Listen; got != "127.0.0.1:9999" {
		t.Errorf("got listen %q, want 127.0.0.1:9999", got)
	}
	if got := cfg.Kafka.GroupID; got != "musubi-prod" {
		t.Errorf("got group %q, want the file's musubi-prod", got)
	}
}

func TestTopicsReplaceDefaults(t *testing.T) {
	var cfg = Default()
	if err := Decode(strings.NewReader("kafka:\n  topics: {cloudtrail: ct}\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Kafka.Topics) != 1 || cfg.Kafka.Topics["cloudtrail"] != "ct" {
		t.Errorf("got topics %v, want only cloudtrail: ct", cfg.Kafka.Topics)
	}
	cfg = Default()
	if err := Decode(strings.NewReader("kafka:\n  group_id: g\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Kafka.Topics) != len(ingest.Sources) {
		t.Errorf("got topics %v, want the defaults for every source", cfg.Kafka.Topics)
	}
}

// TestWebhookFormats checks each webhook format's requirements: a signing
// secret for generic and slack, a key for pagerduty and opsgenie, neither
// for teams and alertmanager.
func TestWebhookFormats(t *testing.T) {
	for _, tc := range []struct {
		hook    Webhook
		wantErr string // "" means valid
	}{
		{Webhook{Name: "a", URL: "https://x.example/", Format: "generic"}, "api.webhooks[0].secret"},
		{Webhook{Name: "a", URL: "https://x.example/", Format: "slack", Secret: "env:S"}, ""},
		{Webhook{Name: "a", URL: "https://events.pagerduty.com/v2/enqueue", Format: "pagerduty"}, "api.webhooks[0].key"},
		{Webhook{Name: "a", URL: "https://events.pagerduty.com/v2/enqueue", Format: "pagerduty", Key: "env:PD"}, ""},
		{Webhook{Name: "a", URL: "https://api.opsgenie.com/v2/alerts", Format: "opsgenie"}, "api.webhooks[0].key"},
		{Webhook{Name: "a", URL: "https://x.example/", Format: "teams"}, ""},
		{Webhook{Name: "a", URL: "http://alertmanager:9093/api/v2/alerts", Format: "alertmanager"}, ""},
		{Webhook{Name: "a", URL: "https://x.example/", Format: "email"}, "api.webhooks[0].format"},
	} {
		cfg := Default()
		cfg.API.Webhooks = []Webhook{tc.hook}
		err := cfg.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s webhook %+v: got %v, want valid", tc.hook.Format, tc.hook, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s webhook %+v: got %v, want an error naming %s", tc.hook.Format, tc.hook, err, tc.wantErr)
		}
	}
}

// TestKafkaSecurityValidate checks the TLS and SASL settings are checked
// together.
func TestKafkaSecurityValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*Kafka)
		wantErr string
	}{
		{"msk scram", func(k *Kafka) {
			k.TLS = TLS{Enabled: true}
			k.SASL = SASL{Mechanism: "SCRAM-SHA-512", Username: "musubi", Password: "env:MSK_PASSWORD"}
		}, ""},
		{"mutual tls", func(k *Kafka) { k.TLS = TLS{Enabled: true, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"} }, ""},
		{"cert without key", func(k *Kafka) { k.TLS = TLS{Enabled: true, CertFile: "/c.pem"} }, "kafka.tls"},
		{"tls keys while off", func(k *Kafka) { k.TLS = TLS{CAFile: "/ca.pem"} }, "kafka.tls.enabled"},
		{"unknown mechanism", func(k *Kafka) { k.SASL = SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"} }, "kafka.sasl.mechanism"},
		{"no password", func(k *Kafka) { k.SASL = SASL{Mechanism: "PLAIN", Username: "u"} }, "kafka.sasl"},
		{"password without mechanism", func(k *Kafka) { k.SASL = SASL{Username: "u", Password: "p"} }, "kafka.sasl.mechanism"},
		{"msk iam", func(k *Kafka) {
			k.TLS = TLS{Enabled: true}
			k.SASL = SASL{Mechanism: "AWS_MSK_IAM", Region: "eu-west-1"}
		}, ""},
		{"msk iam, region from env", func(k *Kafka) { k.TLS = TLS{Enabled: true}; k.SASL = SASL{Mechanism: "AWS_MSK_IAM"} }, ""},
		{"msk iam without tls", func(k *Kafka) { k.SASL = SASL{Mechanism: "AWS_MSK_IAM"} }, "kafka.tls.enabled"},
		{"msk iam with a password", func(k *Kafka) {
			k.TLS = TLS{Enabled: true}
			k.SASL = SASL{Mechanism: "AWS_MSK_IAM", Username: "u", Password: "p"}
		}, "remove username and password"},
		{"region with scram", func(k *Kafka) {
			k.SASL = SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p", Region: "eu-west-1"}
		}, "kafka.sasl.region"},
	} {
		cfg := Default()
		tc.set(&cfg.Kafka)
		err := cfg.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.wantErr)
		}
	}
}

// TestDefaultIngestIsDecoderDefault: without an ingest section serve hands
// the decoder its documented default limits.
func TestDefaultIngestIsDecoderDefault(t *testing.T) {
	if got, want := Default().Ingest, ingest.DefaultLimits(); got != want {
		t.Errorf("default configuration gives limits %+v, want ingest.DefaultLimits %+v", got, want)
	}
}
