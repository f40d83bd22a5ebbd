//go:build faults

package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
)

// rolesYAML is the configuration the split-role tests add: one tenant
// owns the chain's three accounts, another everything else, and the
// scenario's shared addresses are hubs.
func rolesYAML(t *testing.T) string {
	exp := attackExpectation(t)
	return exp.config() + fmt.Sprintf(`tenants:
  - {id: acme, name: Acme, accounts: ["%s", "%s", "%s"]}
  - {id: other, name: Other, accounts: ["*"]}
`, accountWeb, accountCICD, accountApp)
}

// signalsPartitions is the partition count of the signals topic in these
// tests.
const signalsPartitions = 2

// rolesCluster is a broker with the raw topics (partitions each) and the
// signals topic.
func rolesCluster(t *testing.T, partitions int) (*kfake.Cluster, map[string]string) {
	t.Helper()
	topics := scenarioTopics()
	var seed []string
	for _, tp := range topics {
		seed = append(seed, tp)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), seed...),
		kfake.SeedTopics(signalsPartitions, config.Default().Kafka.SignalsTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster, topics
}

// produceChain publishes the three-account chain's records, each keyed by
// its account, as the README asks producers to.
func produceChain(t *testing.T, ctx context.Context, brokers []string, topics map[string]string, recs []chainRecord) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: kafkatest.Transport(t)}
	defer w.Close()
	var km []kafka.Message
	for _, r := range recs {
		km = append(km, kafka.Message{Topic: topics[string(r.source)], Key: []byte(r.account), Value: r.value})
	}
	if err := w.WriteMessages(ctx, km...); err != nil {
		t.Fatal(err)
	}
}

// signalsBacklog is how many signal messages the correlate role's group
// has not committed yet (-1 when the broker cannot tell).
func signalsBacklog(ctx context.Context, brokers []string) int64 {
	cfg := config.Default().Kafka
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: cfg.SignalsGroupID, Topics: map[string][]int{cfg.SignalsTopic: {0, 1}}})
	if err != nil {
		return -1
	}
	end := endOffsets(ctx, brokers, cfg.SignalsTopic, signalsPartitions)
	if end == nil {
		return -1
	}
	committed := make([]int64, signalsPartitions)
	for _, p := range resp.Topics[cfg.SignalsTopic] {
		if p.Error == nil && p.Partition < signalsPartitions {
			committed[p.Partition] = max(p.CommittedOffset, 0)
		}
	}
	var backlog int64
	for p := range signalsPartitions {
		backlog += end[p] - committed[p]
	}
	return backlog
}

// waitSignalsFolded waits until the raw topics are committed up to want
// records and the correlate role has committed every signal published.
func waitSignalsFolded(t *testing.T, ctx context.Context, env *faultEnv, topics map[string]string, partitions int, want int64) {
	t.Helper()
	waitGroupCommitted(t, ctx, env, topics, partitions, want)
	for signalsBacklog(ctx, env.brokers) != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: %d signal messages not committed by the correlate role; log:\n%s", signalsBacklog(context.Background(), env.brokers), engineLog(env))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stored is what a database holds after a run, folded by id: every event
// uid, every alert id with its fold count, and the latest version of every
// incident.
type stored struct {
	events, eventRows, eventsFinal uint64
	alerts                         map[string]uint32 // detection alerts
	correlated                     []string          // rules of the correlated alerts
	incidents                      map[string]string
	mergedAway                     map[string]bool // incidents merged into another
	high                           []string        // entities of each open high or critical incident
}

func readStored(t *testing.T, ctx context.Context, conn driver.Conn) stored {
	t.Helper()
	s := stored{alerts: map[string]uint32{}, incidents: map[string]string{}, mergedAway: map[string]bool{}}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(event_uid), count() FROM events").Scan(&s.events, &s.eventRows); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&s.eventsFinal); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT alert_id, any(rule_id), any(correlated), argMax(fold_count, inserted_ms) FROM alerts GROUP BY alert_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, rule string
		var correlated uint8
		var n uint32
		if err := rows.Scan(&id, &rule, &correlated, &n); err != nil {
			t.Fatal(err)
		}
		if correlated != 0 {
			// A sequence's alert is named after the stage alerts that
			// completed it, which depends on where batches begin and end
			// (in -role all too): compare which rules completed.
			s.correlated = append(s.correlated, rule)
			continue
		}
		s.alerts[id] = n
	}
	rows.Close()
	slices.Sort(s.correlated)
	s.correlated = slices.Compact(s.correlated)
	rows, err = conn.Query(ctx, `SELECT incident_id, argMax(severity_id, version), argMax(merged_into, version), argMax(title, version),
		argMax(entities, version), argMax(alert_ids, version), argMax(accounts, version) FROM incidents GROUP BY incident_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, merged, title string
		var sev uint8
		var ents, alerts, accounts []string
		if err := rows.Scan(&id, &sev, &merged, &title, &ents, &alerts, &accounts); err != nil {
			t.Fatal(err)
		}
		slices.Sort(ents)
		alerts = slices.DeleteFunc(alerts, func(id string) bool { return strings.HasPrefix(id, "corr-") })
		slices.Sort(alerts)
		slices.Sort(accounts)
		s.incidents[id] = fmt.Sprintf("severity %d, merged into %q, %q, accounts %v, alerts %v, entities %v", sev, merged, title, accounts, alerts, ents)
		s.mergedAway[id] = merged != ""
		if merged == "" && sev >= 4 {
			s.high = append(s.high, strings.Join(ents, " "))
		}
	}
	rows.Close()
	return s
}

// compareStored reports every difference between a split-role run and a
// -role all run of the same input. An incident merged away in one run may
// be missing from the other: the correlator links a batch's events before
// it places the batch's alerts, so where the batches break (they differ
// between one process and a detect → signals → correlate pipeline) decides
// whether an alert opens an incident that a later link merges into
// another. Every open incident must be the same.
func compareStored(t *testing.T, got, want stored) {
	t.Helper()
	if got.events != want.events || got.eventsFinal != got.events {
		t.Errorf("split roles: %d distinct events, %d after FINAL; -role all %d", got.events, got.eventsFinal, want.events)
	}
	for id, n := range want.alerts {
		if g, ok := got.alerts[id]; !ok || g != n {
			t.Errorf("alert %s: split roles count %d (stored %v), -role all %d", id, g, ok, n)
		}
	}
	for id := range got.alerts {
		if _, ok := want.alerts[id]; !ok {
			t.Errorf("alert %s stored by the split roles is not one of -role all", id)
		}
	}
	if !slices.Equal(got.correlated, want.correlated) {
		t.Errorf("correlation rules that raised alerts: split roles %v, -role all %v", got.correlated, want.correlated)
	}
	for id, w := range want.incidents {
		g, ok := got.incidents[id]
		if !ok && want.mergedAway[id] {
			t.Logf("incident %s was merged away in the -role all run only: %s", id, w)
			continue
		}
		if g != w {
			t.Errorf("incident %s:\n split roles %s\n -role all   %s", id, g, w)
		}
	}
	for id, g := range got.incidents {
		if _, ok := want.incidents[id]; !ok {
			if got.mergedAway[id] {
				t.Logf("incident %s was merged away in the split-role run only: %s", id, g)
				continue
			}
			t.Errorf("incident %s of the split roles is not one of -role all: %s", id, g)
		}
	}
}

// TestSplitRolesThreeAccounts runs the attack chain spread over three AWS
// accounts of one tenant through three `-role detect` processes and one
// `-role correlate` process joined by the signals topic, and the same
// input through one `-role all` process into another database. Half-way
// (by event time) the correlate process and the detect process that took
// most records are killed with SIGKILL; the two other detect processes
// take over its raw partitions and detect and publish the rest of the
// chain while no correlate process runs, and a new correlate process
// rebuilds from ClickHouse and folds in the signals it had not committed. The split roles must store exactly what -role all
// stores: every event once, the same alerts with the same counts, and the
// same incidents — one high incident holding the chain's entities and its
// three accounts.
func TestSplitRolesThreeAccounts(t *testing.T) {
	exp := attackExpectation(t)
	bin := buildBinary(t)
	recs := threeAccountChain(t)
	half := len(recs) / 2
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const partitions = 3

	// -role all, the reference.
	allDB, allConn := chtest.Database(t)
	allCluster, allTopics := rolesCluster(t, partitions)
	allEnv, _ := newClusterEnv(t, allCluster, allTopics, chtest.Addr(), allDB, "", rolesYAML(t))
	all := allEnv.start(t, bin)
	defer func() { _ = all.Process.Kill() }()
	produceChain(t, ctx, allEnv.brokers, allTopics, recs[:half])
	waitGroupCommitted(t, ctx, allEnv, allTopics, partitions, int64(half))
	produceChain(t, ctx, allEnv.brokers, allTopics, recs[half:])
	waitGroupCommitted(t, ctx, allEnv, allTopics, partitions, int64(len(recs)))

	// The split roles.
	db, conn := chtest.Database(t)
	cluster, topics := rolesCluster(t, partitions)
	env, base := newClusterEnv(t, cluster, topics, chtest.Addr(), db, "", rolesYAML(t))
	var detects []*exec.Cmd
	var detectBases []string
	for range 3 {
		port := freePort(t)
		d := env.start(t, bin, "MUSUBI_ROLE=detect", fmt.Sprintf("MUSUBI_API_LISTEN=127.0.0.1:%d", port))
		defer func() { _ = d.Process.Kill() }()
		detects = append(detects, d)
		detectBases = append(detectBases, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	for groupMembers(ctx, env.brokers) < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("the three detect processes never shared the group: %s; log:\n%s", describeGroup(env.brokers), engineLog(env))
		case <-time.After(200 * time.Millisecond):
		}
	}
	corr := env.start(t, bin, "MUSUBI_ROLE=correlate")
	produceChain(t, ctx, env.brokers, topics, recs[:half])
	waitSignalsFolded(t, ctx, env, topics, partitions, int64(half))
	_ = corr.Process.Signal(syscall.SIGKILL)
	_ = corr.Wait()
	// The detect process that took most of the first half dies with it;
	// its raw partitions move to the other two.
	busiest, most := 0, -1.0
	for i, b := range detectBases {
		if n := metric(b, "musubi_pipeline_records_total"); n > most {
			busiest, most = i, n
		}
	}
	_ = detects[busiest].Process.Signal(syscall.SIGKILL)
	_ = detects[busiest].Wait()
	produceChain(t, ctx, env.brokers, topics, recs[half:])
	waitGroupCommitted(t, ctx, env, topics, partitions, int64(len(recs)))
	backlog := signalsBacklog(ctx, env.brokers)
	corr = env.start(t, bin, "MUSUBI_ROLE=correlate")
	defer func() { _ = corr.Process.Kill() }()
	waitSignalsFolded(t, ctx, env, topics, partitions, int64(len(recs)))

	var took []string
	reached := 1 // the killed one
	took = append(took, fmt.Sprintf("%.0f (killed)", most))
	for i, b := range detectBases {
		if i == busiest {
			continue
		}
		n := metric(b, "musubi_pipeline_records_total")
		took = append(took, fmt.Sprintf("%.0f", n))
		if n > 0 {
			reached++
		}
	}
	published := 0.0
	for i, b := range detectBases {
		if i != busiest {
			published += metric(b, "musubi_signals_published_total")
		}
	}
	// The -role all process and the correlate process write their last
	// incident versions before they commit; stop both gracefully so
	// nothing is in flight when the databases are read.
	high, missing := exp.waitIncident(ctx, base)
	stopEngine(t, corr)
	stopEngine(t, all)
	for i, d := range detects {
		if i != busiest {
			stopEngine(t, d)
		}
	}
	got, want := readStored(t, ctx, conn), readStored(t, ctx, allConn)
	fmt.Printf("split roles, attack chain over three accounts: %d records keyed by account; 3 detect processes took %s records (the survivors published %.0f signals); after %d records the busiest detect process and the correlate process were killed (SIGKILL), %d signal messages waited for the new correlate process\n",
		len(recs), strings.Join(took, "/"), published, half, backlog)
	fmt.Printf("  split roles: %d events (%d rows, %d after FINAL), %d alerts, %d incidents (%d high); -role all: %d events, %d alerts, %d incidents (%d high); API: %d high, missing %v\n",
		got.events, got.eventRows, got.eventsFinal, len(got.alerts), len(got.incidents), len(got.high), want.events, len(want.alerts), len(want.incidents), len(want.high), len(high), missing)
	if most <= 0 || reached < 2 {
		t.Errorf("the chain's records reached %d detect process(es) (the killed one took %.0f), want at least 2", reached, most)
	}
	if backlog <= 0 {
		t.Errorf("%d signal messages waited for the restarted correlate process, want some", backlog)
	}
	compareStored(t, got, want)
	if len(got.high) != 1 || len(want.high) != 1 {
		t.Fatalf("got %d high incidents (-role all %d), want 1", len(got.high), len(want.high))
	}
	for _, e := range exp.Attack.Entities {
		if !strings.Contains(" "+got.high[0]+" ", " "+e+" ") {
			t.Errorf("the attack incident lacks %s", e)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the API shows the attack incident without %v", missing)
	}
}
