//go:build faults

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/musubi-xdr/musubi/internal/chtest"
)

const ctTopic = "musubi.raw.cloudtrail"

// watch reports when the engine process exits.
func watch(cmd *exec.Cmd) <-chan error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}

func alive(t *testing.T, e *faultEnv, done <-chan error, when string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("engine exited %s: %v; log:\n%s", when, err, engineLog(e))
	default:
	}
}

// TestKafkaBrokerFaults injects broker failures under load: every Fetch
// fails for a while, then every OffsetCommit, then the broker is shut down
// and started again on the same port and data directory (kfake persists
// topics and committed offsets). The engine must stay up through all of it
// and end with every record stored once and every offset committed.
func TestKafkaBrokerFaults(t *testing.T) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "kafka")
	port := freePort(t)
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dataDir), kfake.SeedTopics(3, ctTopic)}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cluster.Close() }()
	env, base := newClusterEnv(t, cluster, map[string]string{"cloudtrail": ctTopic}, chtest.Addr(), db, "", "")
	recs := syntheticCloudTrail(t, 24)
	part := len(recs) / 4
	env.produce(t, ctx, recs[:part])
	cmd := env.start(t, bin)
	done := watch(cmd)
	defer func() { _ = cmd.Process.Kill() }()
	waitCommitted(t, ctx, env, int64(part))

	// 1. Every Fetch fails for 10 seconds while records arrive.
	fetchFault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.UnknownServerError, Count: -1})
	env.produce(t, ctx, recs[part:2*part])
	time.Sleep(10 * time.Second)
	alive(t, env, done, "while fetches failed")
	during := env.committed(ctx)
	fetchHits := fetchFault.Hits()
	fetchFault.Remove()
	waitCommitted(t, ctx, env, int64(2*part))
	fmt.Printf("Kafka faults: injected %d failed fetches (UNKNOWN_SERVER_ERROR, 10s): engine stayed up, committed %d of %d meanwhile, all %d after\n",
		fetchHits, during, 2*part, 2*part)

	// 2. Every OffsetCommit fails for 10 seconds while records arrive.
	commitFault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.CoordinatorNotAvailable, Count: -1})
	before := env.committed(ctx)
	env.produce(t, ctx, recs[2*part:3*part])
	time.Sleep(10 * time.Second)
	alive(t, env, done, "while commits failed")
	during = env.committed(ctx)
	commitHits := commitFault.Hits()
	commitFault.Remove()
	waitCommitted(t, ctx, env, int64(3*part))
	fmt.Printf("  injected %d failed offset commits (COORDINATOR_NOT_AVAILABLE, 10s): committed stayed at %d (was %d), all %d once commits worked\n",
		commitHits, during, before, 3*part)
	if during != before {
		t.Errorf("committed offsets moved from %d to %d while every commit failed", before, during)
	}

	// 3. The broker goes away for 8 seconds and comes back on the same
	// port with its data.
	cluster.Close()
	down := time.Now()
	time.Sleep(8 * time.Second)
	alive(t, env, done, "while the broker was down")
	cluster, err = kfake.NewCluster(opts[:3]...) // topics come back from the data directory
	if err != nil {
		t.Fatalf("restart broker: %v", err)
	}
	env.produce(t, ctx, recs[3*part:])
	waitCommitted(t, ctx, env, int64(len(recs)))
	fmt.Printf("  broker shut down and restarted on port %d with its data: engine stayed up, caught up %s after the shutdown; fetch errors counted %.0f\n",
		port, time.Since(down).Round(time.Second), metric(base, "musubi_kafka_fetch_errors_total"))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	checkNothingLost(t, ctx, conn, env, recs)
}

// TestRebalanceUnderLoad runs a second and a third engine in the same
// consumer group while records keep arriving: the second is stopped
// gracefully, the third with SIGKILL (its partitions move after the
// session timeout). Each partition's committed offset must never move
// backwards, the final offsets must equal the produced counts, and every
// record must be stored once.
func TestRebalanceUnderLoad(t *testing.T) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	const partitions = 6
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, ctTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	env, _ := newClusterEnv(t, cluster, map[string]string{"cloudtrail": ctTopic}, chtest.Addr(), db, "", "")
	recs := syntheticCloudTrail(t, 40)
	a := env.start(t, bin)
	defer func() { _ = a.Process.Kill() }()

	// Produce in 40 chunks over the test while engines come and go; sample
	// the committed offsets in between.
	last := make([]int64, partitions)
	for i := range last {
		last[i] = -1
	}
	backwards := 0
	sample := func() {
		offs := partitionOffsets(ctx, env.brokers, ctTopic, partitions)
		for p, o := range offs {
			if o < last[p] {
				backwards++
				fmt.Printf("  partition %d committed offset moved back from %d to %d\n", p, last[p], o)
			}
			last[p] = max(last[p], o)
		}
	}
	const chunks = 40
	per := (len(recs) + chunks - 1) / chunks
	var b, c *exec.Cmd
	for i := 0; i < chunks; i++ {
		env.produce(t, ctx, recs[min(i*per, len(recs)):min((i+1)*per, len(recs))])
		switch i {
		case 5:
			b = env.start(t, bin, "MUSUBI_API_LISTEN=127.0.0.1:0")
			fmt.Println("rebalance: second engine joined the group")
		case 15:
			stopEngine(t, b)
			fmt.Println("rebalance: second engine stopped (SIGTERM)")
		case 20:
			c = env.start(t, bin, "MUSUBI_API_LISTEN=127.0.0.1:0")
			fmt.Println("rebalance: third engine joined the group")
		case 30:
			_ = c.Process.Kill()
			_ = c.Wait()
			fmt.Println("rebalance: third engine killed (SIGKILL)")
		}
		for j := 0; j < 4; j++ {
			sample()
			time.Sleep(250 * time.Millisecond)
		}
	}
	committed := func() int64 {
		var sum int64
		for _, o := range partitionOffsets(ctx, env.brokers, ctTopic, partitions) {
			sum += max(o, 0)
		}
		return sum
	}
	for committed() < int64(len(recs)) {
		sample()
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: committed %d of %d; log:\n%s", committed(), len(recs), engineLog(env))
		case <-time.After(250 * time.Millisecond):
		}
	}
	sample()
	end := endOffsets(ctx, env.brokers, ctTopic, partitions)
	fmt.Printf("  checked offsets: committed %v, partition ends %v, %d backward moves seen\n", last, end, backwards)
	for p := range end {
		if last[p] != end[p] {
			t.Errorf("partition %d: committed %d, want its end %d", p, last[p], end[p])
		}
	}
	if backwards > 0 {
		t.Errorf("committed offsets moved backwards %d times: a revoked partition was committed", backwards)
	}
	stopEngine(t, a)
	checkNothingLost(t, ctx, conn, env, recs)
}
