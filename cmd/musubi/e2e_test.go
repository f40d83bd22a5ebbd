package main

import (
	"context"
	"encoding/json"

	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/notify"
)

// stratusStop is a real CloudTrail StopLogging record (Stratus Red Team
// detonation log, Apache-2.0; see NOTICE.md).
const stratusStop = "../../ingest/cloudtrail/testdata/stratus/aws.defense-evasion.cloudtrail-stop.json"

// TestServeEndToEnd drives the walking skeleton through every stage: a
// Kafka topic (kfake, over the wire) → CloudTrail normalization → a CEL rule
// → alert → incident → ClickHouse → GET /v1/incidents, with a malformed
// record that must become a dead letter, and offsets committed after the
// write.
func TestServeEndToEnd(t *testing.T) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg := config.Default()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, cfg.Kafka.Topics["cloudtrail"], "musubi.deadletter"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.Topics = map[string]string{"cloudtrail": cfg.Kafka.Topics["cloudtrail"]}
	cfg.ClickHouse.Addr = []string{chtest.Addr()}
	cfg.ClickHouse.Database = db
	cfg.Rules.Dir = "testdata/rules"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.API.Tokens = []config.Token{{Name: "analyst-1", Secret: "s3cret-token", Role: "analyst", Tenants: []string{"*"}}}
	cfg.Pipeline.FlushInterval = 200 * time.Millisecond
	cfg.Kafka.DeadLetterTopic = "musubi.deadletter"
	// A webhook receiver: the new incident must be announced, signed.
	const whSecret = "whsec_bXVzdWJpLXRlc3Qtd2ViaG9vay1zZWNyZXQtMzJieXQ="
	hooks := make(chan []byte, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(whSecret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		hooks <- body
	}))
	defer receiver.Close()
	cfg.API.Webhooks = []config.Webhook{{Name: "soc", URL: receiver.URL, Secret: whSecret, Format: "generic", MinSeverity: 1}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	var records []json.RawMessage
	data, err := os.ReadFile(stratusStop)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &records); err != nil {
		t.Fatal(err)
	}
	var eventID struct{ EventID string }
	_ = json.Unmarshal(records[0], &eventID)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, stop := startEngine(t, ctx, cfg, logger)
	defer stop()

	w := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: cfg.Kafka.Topics["cloudtrail"], BatchTimeout: 10 * time.Millisecond, Transport: kafkatest.Transport(t)}
	msgs := []kafka.Message{{Value: records[0]}, {Value: []byte(`{"eventVersion": "1.09", "eventName": `)}}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	base := "http://" + e.addr()
	var page casework.IncidentPage
	waitFor(t, ctx, "an incident in GET /v1/incidents", func() bool {
		page = casework.IncidentPage{}
		return getJSON(t, base+"/v1/incidents", "s3cret-token", &page) == http.StatusOK && len(page.Items) > 0
	})
	in := page.Items[0]
	if !slices.Contains(in.RuleIDs, "e2e.cloudtrail_stopped") {
		t.Errorf("got incident rules %v, want e2e.cloudtrail_stopped", in.RuleIDs)
	}
	if in.Status != "new" || len(in.AlertIDs) != 1 {
		t.Errorf("got status %q with %d alerts, want new with 1", in.Status, len(in.AlertIDs))
	}

	var detail casework.IncidentDetail
	if code := getJSON(t, base+"/v1/incidents/"+in.ID, "s3cret-token", &detail); code != http.StatusOK {
		t.Fatalf("GET incident: got %d, want 200", code)
	}
	if len(detail.Evidence) != 1 || detail.Evidence[0].ID != eventID.EventID {
		t.Errorf("got evidence %+v, want the StopLogging event %s", detail.Evidence, eventID.EventID)
	}
	if len(detail.Alerts) != 1 || detail.Alerts[0].RuleVersion == "" {
		t.Errorf("got alerts %+v, want one with a rule version", detail.Alerts)
	}

	// The malformed record is a dead letter with its raw bytes and reason.
	var dead uint64
	var reason, raw string
	waitFor(t, ctx, "the dead letter", func() bool {
		row := conn.QueryRow(ctx, "SELECT count(), any(reason), any(raw) FROM dead_letters")
		return row.Scan(&dead, &reason, &raw) == nil && dead == 1
	})
	if reason == "" || !strings.Contains(raw, `"eventName": `) {
		t.Errorf("got dead letter reason %q raw %q, want a reason and the raw bytes", reason, raw)
	}

	// ...and is also on the dead-letter topic, with its origin in headers.
	dlq := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.DeadLetterTopic, MaxWait: 2 * time.Second})
	defer dlq.Close()
	m, err := dlq.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("read dead-letter topic: %v", err)
	}
	headers := map[string]string{}
	for _, h := range m.Headers {
		headers[h.Key] = string(h.Value)
	}
	if string(m.Value) != string(msgs[1].Value) || headers["musubi-reason"] != reason || headers["musubi-topic"] != cfg.Kafka.Topics["cloudtrail"] {
		t.Errorf("got dead-letter message %q with headers %v, want the raw record with reason %q and its topic", m.Value, headers, reason)
	}

	// Both offsets are committed: the batch was durable before the commit.
	waitFor(t, ctx, "committed offsets", func() bool { return committed(ctx, cfg) == 2 })

	// The webhook announced the incident.
	select {
	case body := <-hooks:
		var msg struct {
			Type string
			Data struct{ ID string }
		}
		if err := json.Unmarshal(body, &msg); err != nil || msg.Data.ID != in.ID || !strings.Contains(msg.Type, "created") {
			t.Errorf("got webhook %s, want the creation of %s", body, in.ID)
		}
	case <-ctx.Done():
		t.Error("no webhook for the new incident")
	}

	// Health, readiness and metrics answer without a token.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "musubi_pipeline_commits_total"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: got %d %.200s, want 200 containing %q", path, resp.StatusCode, body, want)
		}
	}
	// Without a token the queue is closed.
	if code := getJSON(t, base+"/v1/incidents", "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/incidents without a token: got %d, want 401", code)
	}
}

// startEngine runs the engine of cfg until the returned stop is called,
// which reports the error the engine ended with.
func startEngine(t *testing.T, ctx context.Context, cfg config.Config, logger *slog.Logger) (*engine, func()) {
	t.Helper()
	e, err := newEngine(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.run(runCtx) }()
	return e, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	}
}

// committed sums the committed offsets of the consumer group over every
// topic of cfg (partitions 0 and 1; a partition a topic lacks has none).
func committed(ctx context.Context, cfg config.Config) int64 {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...)}
	req := &kafka.OffsetFetchRequest{GroupID: cfg.Kafka.GroupID, Topics: map[string][]int{}}
	for _, topic := range cfg.Kafka.Topics {
		req.Topics[topic] = []int{0, 1}
	}
	resp, err := client.OffsetFetch(ctx, req)
	if err != nil {
		return -1
	}
	var sum int64
	for _, parts := range resp.Topics {
		for _, p := range parts {
			if p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
	}
	return sum
}

func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
