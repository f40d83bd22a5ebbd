//go:build faults

package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/internal/faultproxy"
)

// memCapMiB is the resident memory the engine must stay under while its
// database is down or slow and the backlog grows.
const memCapMiB = 512

// outageDuration is how long TestClickHouseOutage keeps the database down:
// MUSUBI_FAULT_OUTAGE (a Go duration), 60s by default.
func outageDuration(t *testing.T) time.Duration {
	if s := os.Getenv("MUSUBI_FAULT_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("MUSUBI_FAULT_OUTAGE: %v", err)
		}
		return d
	}
	return 60 * time.Second
}

// TestClickHouseOutage stops the engine's ClickHouse under load, keeps
// producing while it is down, and starts it again on the same data: no
// offset may advance while the database is down (except the one batch whose
// write completed before the stop), memory stays bounded, and after the
// restart the engine catches up with nothing lost or duplicated. The
// engine takes at most two batches from Kafka beyond its commits: the one
// it cannot write and the one it processed meanwhile.
func TestClickHouseOutage(t *testing.T) {
	outage := outageDuration(t)
	ctx, cancel := context.WithTimeout(context.Background(), outage+6*time.Minute)
	defer cancel()
	ch := startPrivateClickHouse(t)
	db, conn := ch.database(t)
	t0 := time.Now()
	bin := buildBinary(t)
	fmt.Printf("  (build took %s)\n", time.Since(t0).Round(time.Second))
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "musubi.raw.cloudtrail"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	env, base := newClusterEnv(t, cluster, map[string]string{"cloudtrail": "musubi.raw.cloudtrail"}, ch.addr(), db, "", "")
	recs := syntheticCloudTrail(t, 40)
	before := len(recs) / 8
	env.produce(t, ctx, recs[:before])
	cmd := env.start(t, bin)
	defer func() { _ = cmd.Process.Kill() }()
	waitCommitted(t, ctx, env, int64(before))

	// Load keeps arriving while the database is down: the rest of the
	// records, in chunks, over the outage.
	fmt.Printf("  (setup and first %d records took %s)\n", before, time.Since(t0).Round(time.Second))
	ch.stop(t)
	down := time.Now()
	atStop := env.committed(ctx)
	chunks := 10
	rest := recs[before:]
	per := (len(rest) + chunks - 1) / chunks
	produced := before
	maxCommitted, maxRSS, maxRecords := atStop, 0.0, 0.0
	next := 0
	for time.Since(down) < outage {
		if next < chunks && time.Since(down) >= time.Duration(next)*outage/time.Duration(chunks) {
			part := rest[min(next*per, len(rest)):min((next+1)*per, len(rest))]
			env.produce(t, ctx, part)
			produced += len(part)
			next++
		}
		// Records before offsets, as in TestSlowClickHouse: a commit
		// between the two reads must not look like a second batch taken.
		maxRecords = max(maxRecords, metric(base, "musubi_pipeline_records_total"))
		maxCommitted = max(maxCommitted, env.committed(ctx))
		maxRSS = max(maxRSS, rssMiB(cmd.Process.Pid))
		time.Sleep(500 * time.Millisecond)
	}
	for ; next < chunks; next++ {
		part := rest[min(next*per, len(rest)):min((next+1)*per, len(rest))]
		env.produce(t, ctx, part)
		produced += len(part)
	}
	retries := metric(base, "musubi_storage_insert_errors_total", "transient") + metric(base, "musubi_pipeline_write_retries_total")
	fmt.Printf("ClickHouse outage: injected %s down with %d records produced meanwhile (%d before)\n", outage.Round(time.Second), produced-before, before)
	fmt.Printf("  committed offsets: %d at the stop, at most %d while down (one batch is %d); records taken from Kafka at most %.0f\n",
		atStop, maxCommitted, env.cfg.Pipeline.BatchSize, maxRecords)
	fmt.Printf("  failed inserts retried while down: %.0f (musubi_storage_insert_errors_total{transient}); engine memory at most %.0f MiB (cap %d MiB)\n", retries, maxRSS, memCapMiB)
	if maxCommitted > atStop+int64(env.cfg.Pipeline.BatchSize) {
		t.Errorf("offsets advanced from %d to %d while ClickHouse was down, want at most one batch (%d)", atStop, maxCommitted, env.cfg.Pipeline.BatchSize)
	}
	// The batch whose write fails and the one processed behind it.
	if maxRecords > float64(maxCommitted)+2*float64(env.cfg.Pipeline.BatchSize) {
		t.Errorf("the engine took %.0f records from Kafka with %d committed: more than two batches in flight", maxRecords, maxCommitted)
	}
	if retries < 1 {
		t.Errorf("no write retries while the database was down; engine log:\n%s", engineLog(env))
	}
	if maxRSS > memCapMiB {
		t.Errorf("engine memory reached %.0f MiB, want under %d MiB", maxRSS, memCapMiB)
	}

	ch.start(t)
	up := time.Now()
	waitCommitted(t, ctx, env, int64(len(recs)))
	fmt.Printf("  caught up %d records within %s of the restart\n", len(recs)-int(atStop), time.Since(up).Round(time.Second))
	stopEngine(t, cmd)
	t1 := time.Now()
	checkNothingLost(t, ctx, conn, env, recs)
	fmt.Printf("  (checks took %s)\n", time.Since(t1).Round(time.Second))
}

// TestSlowClickHouse puts a proxy that delays every 16 KiB chunk between
// the engine and ClickHouse: backpressure must reach Kafka (consumer lag
// grows, committed offsets fall behind), the engine holds at most two
// batches (the one being written and the one processed behind it) and
// bounded memory, and once the database is fast again everything is
// stored.
func TestSlowClickHouse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ch := startPrivateClickHouse(t)
	db, conn := ch.database(t)
	proxy, err := faultproxy.Start(ch.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	bin := buildBinary(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "musubi.raw.cloudtrail"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	env, base := newClusterEnv(t, cluster, map[string]string{"cloudtrail": "musubi.raw.cloudtrail"}, proxy.Addr(), db, "", "")
	recs := syntheticCloudTrail(t, 20)
	env.produce(t, ctx, recs[:200])
	cmd := env.start(t, bin)
	defer func() { _ = cmd.Process.Kill() }()
	waitCommitted(t, ctx, env, 200)

	const delay = 100 * time.Millisecond
	const slowFor = 30 * time.Second
	proxy.SetDelay(delay)
	env.produce(t, ctx, recs[200:])
	start := time.Now()
	maxLag, maxRSS, maxInFlight := 0.0, 0.0, 0.0
	for time.Since(start) < slowFor {
		// The records counter is read before the committed offsets:
		// offsets read later can only be further on, so the difference
		// never counts a batch committed between the two reads as in
		// flight.
		r := metric(base, "musubi_pipeline_records_total")
		committed := env.committed(ctx)
		maxLag = max(maxLag, metric(base, "musubi_kafka_consumer_lag"))
		maxRSS = max(maxRSS, rssMiB(cmd.Process.Pid))
		if r >= 0 && committed >= 0 {
			maxInFlight = max(maxInFlight, r-float64(committed))
		}
		time.Sleep(500 * time.Millisecond)
	}
	behind := int64(len(recs)) - env.committed(ctx)
	fmt.Printf("slow ClickHouse: injected %s per 16 KiB chunk for %s with %d records produced\n", delay, slowFor, len(recs)-200)
	fmt.Printf("  consumer lag up to %.0f (musubi_kafka_consumer_lag), %d records not committed after the slow period\n", maxLag, behind)
	fmt.Printf("  records taken from Kafka and not committed at most %.0f (two batches are %d); engine memory at most %.0f MiB (cap %d MiB)\n",
		maxInFlight, 2*env.cfg.Pipeline.BatchSize, maxRSS, memCapMiB)
	if maxLag <= 0 || behind <= int64(env.cfg.Pipeline.BatchSize) {
		t.Errorf("no backpressure: lag %.0f, %d records behind", maxLag, behind)
	}
	if maxInFlight > 2*float64(env.cfg.Pipeline.BatchSize) {
		t.Errorf("got %.0f records in flight, want at most two batches (%d)", maxInFlight, 2*env.cfg.Pipeline.BatchSize)
	}
	if maxRSS > memCapMiB {
		t.Errorf("engine memory reached %.0f MiB, want under %d MiB", maxRSS, memCapMiB)
	}
	proxy.SetDelay(0)
	waitCommitted(t, ctx, env, int64(len(recs)))
	stopEngine(t, cmd)
	checkNothingLost(t, ctx, conn, env, recs)
}
