//go:build faults

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/internal/chtest"
)

// Helpers shared by the fault tests beyond faults_test.go: a private
// ClickHouse server that a test may stop, the engine's memory and metrics,
// per-partition offsets and the checks that nothing was lost.

// privateClickHouse is a second ClickHouse server with its own data folder
// and ports, started by deployments/local/clickhouse.sh. Tests that stop or
// slow the database use it, never the shared server on 19000.
type privateClickHouse struct {
	dir                    string
	tcp, http, interserver int
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPrivateClickHouse starts a ClickHouse of the test's own; it is
// stopped when the test ends.
func startPrivateClickHouse(t *testing.T) *privateClickHouse {
	t.Helper()
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if _, err := os.Stat("/usr/bin/clickhouse"); err != nil {
			if chtest.Required() {
				t.Fatal("clickhouse-server is required (MUSUBI_REQUIRE_CLICKHOUSE=1) but not installed")
			}
			t.Skip("clickhouse-server not installed")
		}
	}
	ch := &privateClickHouse{dir: t.TempDir(), tcp: freePort(t), http: freePort(t), interserver: freePort(t)}
	ch.start(t)
	t.Cleanup(func() { ch.stop(t) })
	return ch
}

func (ch *privateClickHouse) addr() string { return fmt.Sprintf("127.0.0.1:%d", ch.tcp) }

func (ch *privateClickHouse) script(t *testing.T, action string) {
	t.Helper()
	cmd := exec.Command("../../deployments/local/clickhouse.sh", action)
	cmd.Env = append(os.Environ(), "MUSUBI_CH_DIR="+ch.dir,
		"MUSUBI_CH_TCP_PORT="+strconv.Itoa(ch.tcp), "MUSUBI_CH_HTTP_PORT="+strconv.Itoa(ch.http),
		"MUSUBI_CH_INTERSERVER_PORT="+strconv.Itoa(ch.interserver))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse.sh %s: %v\n%s", action, err, out)
	}
}

func (ch *privateClickHouse) start(t *testing.T) { t.Helper(); ch.script(t, "start") }
func (ch *privateClickHouse) stop(t *testing.T)  { t.Helper(); ch.script(t, "stop") }

// database creates a database on the private server and connects to it.
func (ch *privateClickHouse) database(t *testing.T) (string, driver.Conn) {
	t.Helper()
	db := fmt.Sprintf("musubi_fault_%d", time.Now().UnixNano()%1e9)
	opts := chtest.Options(db)
	opts.Addr = []string{ch.addr()}
	admin := *opts
	admin.Auth.Database = "default"
	a, err := clickhouse.Open(&admin)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Exec(context.Background(), "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return db, conn
}

// newClusterEnv is newFaultEnv over a cluster the test controls, with the
// API on a known port (for /metrics) and extra YAML appended.
func newClusterEnv(t *testing.T, cluster *kfake.Cluster, topics map[string]string, chAddr, db, rulesDir, extra string) (*faultEnv, string) {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.Topics = topics
	cfg.ClickHouse.Addr = []string{chAddr}
	cfg.ClickHouse.Database = db
	if rulesDir == "" {
		rulesDir, _ = filepath.Abs("../../detections")
	}
	cfg.Rules.Dir = rulesDir
	cfg.Pipeline.BatchSize = 200
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var ts []string
	for src, topic := range topics {
		ts = append(ts, src+": "+topic)
	}
	slices.Sort(ts)
	path := filepath.Join(t.TempDir(), "musubi.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%s], group_id: musubi, topics: {%s}, session_timeout: 6s, rebalance_timeout: 6s}
clickhouse: {addr: [%s], database: %s}
rules: {dir: %s, reload_interval: 1s}
api: {listen: "%s", tokens: [{name: fault-admin, secret: "%s", role: admin, tenants: ["*"]}]}
pipeline: {batch_size: %d, flush_interval: 100ms}
log: {level: warn}
%s`, strings.Join(cfg.Kafka.Brokers, ", "), strings.Join(ts, ", "), chAddr, db, rulesDir, listen, faultToken, cfg.Pipeline.BatchSize, extra)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	topic := topics["cloudtrail"]
	return &faultEnv{brokers: cfg.Kafka.Brokers, topic: topic, cfg: cfg, cfgPath: path}, "http://" + listen
}

// faultToken is the admin API token of the engines the fault tests start.
const faultToken = "fault-suite-admin-token"

// rssMiB is the resident memory of a process, from /proc/<pid>/status.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// metric sums the samples of a metric on the engine's /metrics whose line
// contains every filter string; -1 when it cannot be read.
func metric(base, name string, filters ...string) float64 {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum, seen := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, f := range filters {
			ok = ok && strings.Contains(line, f)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, seen = sum+v, true
		}
	}
	if !seen {
		return 0
	}
	return sum
}

// partitionOffsets is the group's committed offset of each partition of
// topic (-1 when none).
func partitionOffsets(ctx context.Context, brokers []string, topic string, partitions int) []int64 {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "musubi", Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil
	}
	out := make([]int64, partitions)
	for i := range out {
		out[i] = -1
	}
	for _, p := range resp.Topics[topic] {
		if p.Error == nil && p.Partition < partitions {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out
}

// endOffsets is the end (next offset) of each partition of topic.
func endOffsets(ctx context.Context, brokers []string, topic string, partitions int) []int64 {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	var reqs []kafka.OffsetRequest
	for p := 0; p < partitions; p++ {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil
	}
	out := make([]int64, partitions)
	for _, p := range resp.Topics[topic] {
		if p.Partition < partitions {
			out[p.Partition] = p.LastOffset
		}
	}
	return out
}

// stopEngine stops the engine gracefully and reports a failed exit.
func stopEngine(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}

// engineLog is the tail of the engine's log, for failure messages.
func engineLog(e *faultEnv) string {
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(e.cfgPath), "engine.log"))
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	return string(log)
}

// checkNothingLost checks that every produced CloudTrail record is stored
// exactly once after dedup and that the stored alerts equal a fault-free
// offline run.
func checkNothingLost(t *testing.T, ctx context.Context, conn driver.Conn, e *faultEnv, recs [][]byte) {
	t.Helper()
	var total, distinct, final uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_uid) FROM events").Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("  checked events: %d produced, %d rows written (rewrites included), %d distinct, %d after FINAL\n", len(recs), total, distinct, final)
	if distinct != uint64(len(recs)) || final != distinct {
		t.Errorf("got %d distinct events, %d after FINAL; want %d each", distinct, final, len(recs))
	}
	want := expectedAlerts(t, e.cfg, recs)
	var got []string
	r, err := conn.Query(ctx, "SELECT DISTINCT alert_id FROM alerts FINAL WHERE NOT correlated ORDER BY alert_id")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id string
		_ = r.Scan(&id)
		got = append(got, id)
	}
	r.Close()
	fmt.Printf("  checked alerts: %d expected from a fault-free offline run, %d stored\n", len(want), len(got))
	if !slices.Equal(got, want) {
		var extra, missing []string
		for _, id := range got {
			if _, ok := slices.BinarySearch(want, id); !ok {
				extra = append(extra, id)
			}
		}
		for _, id := range want {
			if _, ok := slices.BinarySearch(got, id); !ok {
				missing = append(missing, id)
			}
		}
		t.Errorf("stored alerts differ from a fault-free run: %d stored, %d expected; stored only %v, expected only %v",
			len(got), len(want), extra[:min(3, len(extra))], missing[:min(3, len(missing))])
	}
}
