//go:build faults

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/faultproxy"
)

// TestStalledCorrelateProcessPushesBack runs `-role detect` and `-role
// correlate` as separate processes; the correlate process reaches
// ClickHouse through a proxy that stalls all its traffic, while the detect
// process writes directly. Detection goes on: every raw record is stored
// and committed, and its signals are published. The correlate process
// cannot make its incident writes durable, so it commits no signal, holds
// at most kafka.signals_queue_capacity + 2 × pipeline.batch_size signal
// messages in memory — the batch stuck in its write and the one processed
// behind it (musubi_kafka_consumer_buffered_messages) — with bounded
// memory, and the rest waits on the signals topic. Once the proxy lets
// traffic through again, every signal is folded in: no stored alert is left
// outside an incident.
func TestStalledCorrelateProcessPushesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	db, conn := chtest.Database(t)
	proxy, err := faultproxy.Start(chtest.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	const partitions = 3
	defaults := config.Default()
	topics := map[string]string{"cloudtrail": "musubi.raw.cloudtrail"}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics["cloudtrail"]),
		kfake.SeedTopics(signalsPartitions, defaults.Kafka.SignalsTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	env, corrBase := newClusterEnv(t, cluster, topics, chtest.Addr(), db, "", "")
	// The detect process publishes one signal message per tenant and
	// batch: small batches make enough messages to fill the correlate
	// process's queue many times over.
	setBatchSize(t, env, 20)
	recs := syntheticCloudTrail(t, 20)
	first := 200

	detectBase := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	detect := env.start(t, bin, "MUSUBI_ROLE=detect", "MUSUBI_API_LISTEN="+detectBase)
	detectBase = "http://" + detectBase
	defer func() { _ = detect.Process.Kill() }()
	corr := env.start(t, bin, "MUSUBI_ROLE=correlate", "MUSUBI_CLICKHOUSE_ADDR="+proxy.Addr())
	defer func() { _ = corr.Process.Kill() }()
	env.produce(t, ctx, recs[:first])
	waitSignalsFolded(t, ctx, env, topics, partitions, int64(first))
	committedAtStall := signalsCommitted(ctx, env.brokers)

	proxy.Stall()
	env.produce(t, ctx, recs[first:])
	bound := float64(defaults.Kafka.SignalsQueueCapacity + 2*env.cfg.Pipeline.BatchSize)
	maxBuffered, maxRSS := 0.0, 0.0
	sample := func() {
		maxBuffered = max(maxBuffered, metric(corrBase, "musubi_kafka_consumer_buffered_messages"))
		maxRSS = max(maxRSS, rssMiB(corr.Process.Pid))
	}
	// Detection is not held up by the stalled correlation: every raw
	// record is committed by the detect process.
	for groupCommitted(ctx, env.brokers, topics, partitions) < int64(len(recs)) {
		sample()
		select {
		case <-ctx.Done():
			t.Fatalf("the detect process stopped with correlation stalled: committed %d of %d; log:\n%s",
				groupCommitted(context.Background(), env.brokers, topics, partitions), len(recs), engineLog(env))
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The correlate process fills its prefetch queue up to its bound and
	// no further: wait for it to hold what it can.
	for metric(corrBase, "musubi_kafka_consumer_buffered_messages") < float64(defaults.Kafka.SignalsQueueCapacity) {
		sample()
		select {
		case <-ctx.Done():
			t.Fatalf("the stalled correlate process never filled its signal queue (holds %.0f); log:\n%s",
				metric(corrBase, "musubi_kafka_consumer_buffered_messages"), engineLog(env))
		case <-time.After(200 * time.Millisecond):
		}
	}
	for range 10 {
		sample()
		time.Sleep(200 * time.Millisecond)
	}
	published := metric(detectBase, "musubi_signals_published_total")
	var messages int64
	for _, e := range endOffsets(ctx, env.brokers, defaults.Kafka.SignalsTopic, signalsPartitions) {
		messages += e
	}
	backlog := signalsBacklog(ctx, env.brokers)
	committedStalled := signalsCommitted(ctx, env.brokers)
	fmt.Printf("stalled correlate process: %d records; detect published %.0f signals in %d messages; correlate held at most %.0f (bound %.0f = signals_queue_capacity + 2 × batch_size), %d waited on the topic; signal offsets committed %d at the stall, %d while stalled; correlate memory at most %.0f MiB (cap %d MiB)\n",
		len(recs), published, messages, maxBuffered, bound, backlog, committedAtStall, committedStalled, maxRSS, memCapMiB)
	if maxBuffered > bound {
		t.Errorf("the correlate process held %.0f signal messages, want at most %.0f", maxBuffered, bound)
	}
	if float64(backlog) <= bound {
		t.Errorf("%d signal messages waiting on the topic, want more than the correlate process may hold (%.0f): too few signals to show pushback", backlog, bound)
	}
	if committedStalled != committedAtStall {
		t.Errorf("signal offsets committed moved from %d to %d while the correlate process could not write", committedAtStall, committedStalled)
	}
	if maxRSS > memCapMiB {
		t.Errorf("correlate memory reached %.0f MiB, want under %d MiB", maxRSS, memCapMiB)
	}

	proxy.Resume()
	up := time.Now()
	waitSignalsFolded(t, ctx, env, topics, partitions, int64(len(recs)))
	fmt.Printf("  every signal folded in %s after the stall ended\n", time.Since(up).Round(time.Second))
	stopEngine(t, corr)
	stopEngine(t, detect)
	checkNothingLost(t, ctx, conn, env, recs)
	var orphans uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM (SELECT DISTINCT alert_id FROM alerts) WHERE alert_id NOT IN (SELECT alert_id FROM incident_alerts)").Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("  checked incidents: %d alerts belong to no incident\n", orphans)
	if orphans != 0 {
		t.Errorf("got %d alerts in no incident, want 0", orphans)
	}
}

// setBatchSize changes pipeline.batch_size in the engines' configuration.
func setBatchSize(t *testing.T, env *faultEnv, n int) {
	t.Helper()
	data, err := os.ReadFile(env.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("batch_size: %d,", env.cfg.Pipeline.BatchSize)
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s has no %q", env.cfgPath, old)
	}
	data = []byte(strings.Replace(string(data), old, fmt.Sprintf("batch_size: %d,", n), 1))
	if err := os.WriteFile(env.cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	env.cfg.Pipeline.BatchSize = n
}

// signalsCommitted is the correlate role's committed offsets over the
// signals topic's partitions, summed.
func signalsCommitted(ctx context.Context, brokers []string) int64 {
	end := endOffsets(ctx, brokers, config.Default().Kafka.SignalsTopic, signalsPartitions)
	var total int64
	for _, e := range end {
		total += e
	}
	return total - signalsBacklog(ctx, brokers)
}
