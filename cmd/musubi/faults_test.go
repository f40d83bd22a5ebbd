//go:build faults

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/replay"
)

// The fault suite (make test-faults) drives the real binary as a separate
// process and injects crashes and outages. Every test prints what it
// injected and what it checked.

// buildBinary builds bin/musubi for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "musubi")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syntheticCloudTrail returns copies of every real Stratus Red Team
// CloudTrail record (Apache-2.0, see NOTICE.md), each copy with its own
// event id and shifted in time, so the stream is large and every record is
// distinct.
func syntheticCloudTrail(t *testing.T, copies int) [][]byte {
	t.Helper()
	files, _ := filepath.Glob("../../ingest/cloudtrail/testdata/stratus/*.json")
	var base []map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var recs []map[string]any
		if err := json.Unmarshal(data, &recs); err != nil {
			t.Fatal(err)
		}
		base = append(base, recs...)
	}
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var out [][]byte
	for c := 0; c < copies; c++ {
		for i, r := range base {
			r["eventID"] = fmt.Sprintf("%08x-0000-4000-8000-%012x", c, i)
			r["eventTime"] = start.Add(time.Duration(c)*20*time.Minute + time.Duration(i)*time.Second).Format(time.RFC3339)
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// faultEnv is a broker, a database and a config file for the binary.
type faultEnv struct {
	brokers []string
	topic   string
	cfg     config.Config
	cfgPath string
}

func newFaultEnv(t *testing.T, chAddr, db string) *faultEnv {
	t.Helper()
	cfg := config.Default()
	topic := cfg.Kafka.Topics["cloudtrail"]
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.Topics = map[string]string{"cloudtrail": topic}
	cfg.ClickHouse.Addr = []string{chAddr}
	cfg.ClickHouse.Database = db
	cfg.Rules.Dir, _ = filepath.Abs("../../detections")
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Pipeline.BatchSize = 200
	cfg.Pipeline.FlushInterval = 200 * time.Millisecond
	path := filepath.Join(t.TempDir(), "musubi.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%s], group_id: musubi, topics: {cloudtrail: %s}, session_timeout: 6s, rebalance_timeout: 6s}
clickhouse: {addr: [%s], database: %s}
rules: {dir: %s}
api: {listen: "127.0.0.1:0"}
pipeline: {batch_size: %d, flush_interval: 100ms}
log: {level: warn}
`, strings.Join(cfg.Kafka.Brokers, ", "), topic, chAddr, db, cfg.Rules.Dir, cfg.Pipeline.BatchSize)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return &faultEnv{brokers: cfg.Kafka.Brokers, topic: topic, cfg: cfg, cfgPath: path}
}

func (e *faultEnv) produce(t *testing.T, ctx context.Context, recs [][]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: e.topic, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, BatchSize: 1000, Transport: kafkatest.Transport(t)}
	defer w.Close()
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i % 97)), Value: r}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// committed sums the consumer group's committed offsets.
func (e *faultEnv) committed(ctx context.Context) int64 {
	client := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 5 * time.Second}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "musubi", Topics: map[string][]int{e.topic: {0, 1, 2}}})
	if err != nil {
		return -1
	}
	var sum int64
	for _, p := range resp.Topics[e.topic] {
		sum += max(p.CommittedOffset, 0)
	}
	return sum
}

// start runs `musubi serve` as a child process with its output in a file.
func (e *faultEnv) start(t *testing.T, bin string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-config", e.cfgPath)
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(e.cfgPath), "engine.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(engineEnviron(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// engineMemLimit is the engine's GOMEMLIMIT in the fault tests: what the
// deployments set for a container of memCapMiB (about 80% of its limit).
const engineMemLimit = "400MiB"

// engineEnviron is the environment of an engine under test: the test's,
// without MUSUBI_ variables (the engine takes its whole configuration from
// its file, not from what the Makefile exports for the in-process tests,
// such as MUSUBI_CLICKHOUSE_ADDR, which would point it at another server),
// and with GOMEMLIMIT set as the deployments set it.
func engineEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MUSUBI_") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOMEMLIMIT="+engineMemLimit)
}

// expectedAlerts runs the same pipeline code offline, in one pass without
// faults, and returns the alert ids it raises.
func expectedAlerts(t *testing.T, cfg config.Config, recs [][]byte) []string {
	t.Helper()
	proc, err := replay.NewProcessor(offlineOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	in := make([]pipeline.Record, len(recs))
	for i, r := range recs {
		in[i] = pipeline.Record{Source: ingest.SourceCloudTrail, Value: r}
	}
	var ids []string
	for _, a := range proc.Process(in).Alerts {
		if !a.Correlated {
			ids = append(ids, a.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func waitCommitted(t *testing.T, ctx context.Context, e *faultEnv, want int64) {
	t.Helper()
	for e.committed(ctx) < want {
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(filepath.Dir(e.cfgPath), "engine.log"))
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			t.Fatalf("timed out: committed %d of %d; consumer group: %s; engine log:\n%s", e.committed(context.Background()), want, describeGroup(e.brokers), log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestKillNineUnderLoad kills the engine with SIGKILL at random points
// while it works through a growing backlog, at least 20 times, then lets it
// finish and checks that no event or alert was lost or duplicated and that
// every alert is in an incident.
func TestKillNineUnderLoad(t *testing.T) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	env := newFaultEnv(t, chtest.Addr(), db)
	kills := 20
	if n, err := strconv.Atoi(os.Getenv("MUSUBI_FAULT_KILLS")); err == nil {
		kills = n
	}
	recs := syntheticCloudTrail(t, 60)
	chunk := len(recs) / (kills + 1)
	rng := rand.New(rand.NewPCG(7, 11))
	rows := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n)
		return n
	}
	midWork := 0
	for i := 0; i < kills; i++ {
		env.produce(t, ctx, recs[i*chunk:(i+1)*chunk])
		written := rows()
		cmd := env.start(t, bin)
		// Kill at a random point once this incarnation is working: after
		// its group join, while it decodes, detects, writes and commits.
		started := time.Now()
		for rows() == written && time.Since(started) < time.Minute {
			time.Sleep(20 * time.Millisecond)
		}
		// The chunk takes this incarnation about half a second: a kill
		// within 300 ms of its first write lands while it works.
		wait := time.Duration(rng.IntN(300)) * time.Millisecond
		time.Sleep(wait)
		before := env.committed(ctx)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if before < int64((i+1)*chunk) {
			midWork++
		}
		fmt.Printf("kill -9 #%02d, %4dms into processing: committed offsets %5d, event rows written %6d (backlog %d)\n",
			i+1, wait.Milliseconds(), before, rows(), int64((i+1)*chunk)-before)
		// The next incarnation starts once the broker has expired the
		// killed member (the session timeout): kfake can keep a member
		// killed in the middle of a rebalance in the group, holding its
		// partitions; joining with dead members is TestRebalanceUnderLoad's
		// subject, not this test's.
		waitGroupEmpty(ctx, env.brokers)
	}
	fmt.Printf("%d of %d kills landed with records taken and not yet committed\n", midWork, kills)
	env.produce(t, ctx, recs[kills*chunk:])
	written := rows()
	cmd := env.start(t, bin)
	for rows() == written {
		time.Sleep(20 * time.Millisecond)
	}
	waitCommitted(t, ctx, env, int64(len(recs)))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}

	checkNothingLost(t, ctx, conn, env, recs)
	var orphans uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM (SELECT DISTINCT alert_id FROM alerts) WHERE alert_id NOT IN (SELECT alert_id FROM incident_alerts)").Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("checked incidents: %d alerts belong to no incident\n", orphans)
	if orphans != 0 {
		t.Errorf("got %d alerts in no incident, want 0", orphans)
	}
}
