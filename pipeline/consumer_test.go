package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

const topic = "musubi.raw.cloudtrail"

// testMaxWait is the consumers' kafka.max_wait in these tests, the
// production default. kafka-go uses max_wait twice: the broker holds an
// empty fetch for max_wait minus up to one second, and the reader gives the
// fetch's response header max_wait to arrive, else it drops the
// connection, backs off, redials, seeks and fetches again. A few tens of
// milliseconds (what these tests once used, to "poll fast") is shorter than
// one fetch round trip to kfake under the race detector on a loaded
// machine, so the first fetch timed out again and again and the first
// batch came after seconds, minutes or never. kfake answers a held fetch
// as soon as records arrive, so a long wait costs the tests nothing.
const testMaxWait = 2 * time.Second

// testBudget is the wall-clock safety net of the tests that run a consumer
// against kfake: it only turns a hang into a failure with a message. A
// consumer gets its first batch in well under a second even on a loaded
// machine, so no test's outcome depends on it.
const testBudget = 5 * time.Minute

// ruleYAML raises an alert on every successful or failed API call of the
// Stratus detonations, so every batch carries alerts and incidents.
const ruleYAML = `id: test.any_api_call
title: Any API call
description: Matches every CloudTrail API call.
status: test
severity: medium
stage: discovery
attack: {tactics: [TA0007], techniques: [T1526]}
sources: {log_names: [cloudtrail]}
condition: event.api.operation != ""
entities: [session, access_key, ip]
tests:
  - {name: call, match: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: a}, api: {operation: ListBuckets}}}
  - {name: none, match: false, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: b}}}
`

// stratusRecords returns every real CloudTrail record of the Stratus Red
// Team detonation logs (Apache-2.0, see NOTICE.md), one per message.
func stratusRecords(t *testing.T) []kafka.Message {
	t.Helper()
	files, err := filepath.Glob("../ingest/cloudtrail/testdata/stratus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no stratus samples: %v", err)
	}
	var msgs []kafka.Message
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var recs []json.RawMessage
		if err := json.Unmarshal(data, &recs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range recs {
			msgs = append(msgs, kafka.Message{Value: r})
		}
	}
	return msgs
}

// testBroker starts a kfake broker holding the raw CloudTrail topic and a
// writer to it; both close when the test ends.
func testBroker(t *testing.T) (*kfake.Cluster, *kafka.Writer) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	w := &kafka.Writer{Addr: kafka.TCP(cluster.ListenAddrs()...), Topic: topic, BatchTimeout: 5 * time.Millisecond, Transport: kafkatest.Transport(t)}
	t.Cleanup(func() { w.Close() })
	return cluster, w
}

// pipelineUnderTest is one incarnation of the engine's data path.
type pipelineUnderTest struct {
	consumer *Consumer
	store    *storage.Store
}

func newPipeline(t *testing.T, ctx context.Context, brokers []string, db, rulesDir string) *pipelineUnderTest {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := storage.Default()
	cfg.Addr, cfg.Database, cfg.StoreRaw = []string{chtest.Addr()}, db, true
	store, err := storage.Open(ctx, cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(rulesDir)
	if err != nil {
		t.Fatal(err)
	}
	eng := rules.NewEngine(nil, logger)
	eng.Swap(set)
	corr, err := correlate.New(correlate.DefaultConfig(), nil, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	state, err := store.LoadOpenState(ctx, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	corr.Restore(state.Incidents, state.Alerts)
	proc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), eng, corr, func(string) string { return "default" }, true, logger, nil)
	c := NewConsumer(ConsumerConfig{
		Brokers: brokers, GroupID: "musubi", Topics: map[string]ingest.Source{topic: ingest.SourceCloudTrail},
		BatchSize: 50, FlushInterval: 100 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
	}, proc, store, logger)
	return &pipelineUnderTest{consumer: c, store: store}
}

// TestCrashBetweenWriteAndCommit kills the consumer after its first durable
// write and before the offset commit, restarts it, and checks that nothing
// was lost and that the replayed batch folded into the same rows.
func TestCrashBetweenWriteAndCommit(t *testing.T) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	rulesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(rulesDir, "any.yaml"), []byte(ruleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cluster, w := testBroker(t)
	brokers := cluster.ListenAddrs()
	msgs := stratusRecords(t)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	// First incarnation: crashes right after its first durable write.
	first := newPipeline(t, ctx, brokers, db, rulesDir)
	first.consumer.crashBeforeCommit = func() bool { return true }
	if err := first.consumer.Run(ctx); err != errCrashed {
		t.Fatalf("got %v, want the simulated crash", err)
	}
	first.store.Close()
	var written uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&written); err != nil {
		t.Fatal(err)
	}
	if written == 0 {
		t.Fatal("the first incarnation wrote nothing before the crash")
	}
	if got := committedOffset(t, ctx, brokers); got > 0 {
		t.Fatalf("got committed offset %d after a crash before commit, want none", got)
	}
	t.Logf("crashed after writing %d event rows, before committing", written)

	// Second incarnation: resumes from the last commit (none) and finishes.
	second := newPipeline(t, ctx, brokers, db, rulesDir)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- second.consumer.Run(runCtx) }()
	for committedOffset(t, ctx, brokers) < int64(len(msgs)) {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out; committed %d of %d", committedOffset(t, ctx, brokers), len(msgs))
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second.store.Close()

	var rows, distinct, final uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_uid) FROM events").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages; %d event rows written (replayed batch included), %d distinct, %d after FINAL", len(msgs), rows, distinct, final)
	if distinct != uint64(len(msgs)) || final != distinct {
		t.Errorf("got %d distinct events and %d after FINAL, want %d each: lost or duplicated", distinct, final, len(msgs))
	}
	// Every message matches the rule once; the correlator folds repeats on
	// the same entities, so the alerts are those of one offline pass, each
	// once, and their counts add up to every match exactly: the replayed
	// batch's matches are at or below the origins of the folded alerts the
	// crashed process stored, and are not counted again.
	want := offlineAlerts(t, rulesDir, msgs)
	var alerts, alertsFinal, matches uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(alert_id), (SELECT count() FROM alerts FINAL), (SELECT sum(c) FROM (SELECT max(fold_count) AS c FROM alerts GROUP BY alert_id)) FROM alerts").Scan(&alerts, &alertsFinal, &matches); err != nil {
		t.Fatal(err)
	}
	if alerts != uint64(want) || alertsFinal != alerts {
		t.Errorf("got %d distinct alerts, %d after FINAL, want %d each", alerts, alertsFinal, want)
	}
	if matches != uint64(len(msgs)) {
		t.Errorf("got folded alerts counting %d matches, want %d: the replayed batch counted once", matches, len(msgs))
	}
}

// offlineAlerts returns how many alerts one pass over msgs stores.
func offlineAlerts(t *testing.T, rulesDir string, msgs []kafka.Message) int {
	t.Helper()
	set, err := rules.Load(rulesDir)
	if err != nil {
		t.Fatal(err)
	}
	eng := rules.NewEngine(nil, nil)
	eng.Swap(set)
	corr, err := correlate.New(correlate.DefaultConfig(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	proc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), eng, corr, func(string) string { return "default" }, true, slog.New(slog.DiscardHandler), nil)
	recs := make([]Record, len(msgs))
	for i, m := range msgs {
		recs[i] = Record{Source: ingest.SourceCloudTrail, Value: m.Value}
	}
	ids := map[string]bool{}
	for _, a := range proc.Process(recs).Alerts {
		ids[a.ID] = true
	}
	return len(ids)
}

func committedOffset(t *testing.T, ctx context.Context, brokers []string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: kafkatest.Transport(t)}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "musubi", Topics: map[string][]int{topic: {0}}})
	if err != nil || len(resp.Topics[topic]) == 0 {
		return -1
	}
	return resp.Topics[topic][0].CommittedOffset
}
