package config

import (
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
			`clickhouse.database: "musubi; DROP" must be letters`,
			"clickhouse.max_open_conns: 0 is outside 1..1000",
			"api.cursor_key: is 5 bytes",
			"api.sla.urgent: is not a severity",
			"api.sla.high: must not be negative",
			`api.tokens[1].name: "Alice" is already the name of api.tokens[0]`,
			"pipeline.batch_size: 0 is outside",
			"pipeline.batch_bytes: must be positive",
			"ingest.max_message_bytes: 1000 is below ingest.max_record_bytes (1048576)",
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
	if len(cfg.Kafka.Topics) != len(Sources) {
		t.Errorf("got topics %v, want the defaults for every source", cfg.Kafka.Topics)
	}
}
