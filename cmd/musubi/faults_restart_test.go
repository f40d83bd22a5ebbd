//go:build faults

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/ocsf"
)

const attackChainDir = "../../testdata/scenarios/attack-chain"

// scenarioMessage is one Kafka message of the attack-chain scenario with
// the earliest event time it carries and its AWS account ("" for Falco).
type scenarioMessage struct {
	topic   string
	value   []byte
	time    int64
	account string
}

// attackChainMessages splits the scenario into one message per record
// (CloudTrail records one by one, line files line by line) ordered by event
// time.
func attackChainMessages(t *testing.T, topics map[string]string) []scenarioMessage {
	t.Helper()
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	var out []scenarioMessage
	for _, part := range scenarioParts(t, attackChainDir) {
		f, src, p := part.file, part.source, part.value
		evs, errs := dec.Decode(src, p)
		if len(errs) > 0 || len(evs) == 0 {
			t.Fatalf("%s: %d events, errors %v", f, len(evs), errs)
		}
		m := scenarioMessage{topic: topics[string(src)], value: p, time: evs[0].Time, account: evs[0].Cloud.Account.UID}
		for _, e := range evs {
			m.time = min(m.time, e.Time)
		}
		if m.topic == "" {
			t.Fatalf("%s: no topic for source %s", f, src)
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b scenarioMessage) int { return int(a.time - b.time) })
	return out
}

// produceScenario publishes msgs, each with the key key gives it.
func produceScenario(t *testing.T, ctx context.Context, brokers []string, msgs []scenarioMessage, key func(i int, m scenarioMessage) string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: kafkatest.Transport(t)}
	defer w.Close()
	var km []kafka.Message
	for i, m := range msgs {
		km = append(km, kafka.Message{Topic: m.topic, Key: []byte(key(i, m)), Value: m.value})
	}
	if err := w.WriteMessages(ctx, km...); err != nil {
		t.Fatal(err)
	}
}

// scenarioTopics are the raw topics of every source, two partitions each.
func scenarioTopics() map[string]string {
	topics := map[string]string{}
	for src, topic := range config.Default().Kafka.Topics {
		topics[src] = topic
	}
	return topics
}

// waitGroupCommitted waits until the group has committed want records over
// every topic.
func waitGroupCommitted(t *testing.T, ctx context.Context, env *faultEnv, topics map[string]string, partitions int, want int64) {
	t.Helper()
	for groupCommitted(ctx, env.brokers, topics, partitions) < want {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: committed %d of %d; consumer group: %s; log:\n%s", groupCommitted(context.Background(), env.brokers, topics, partitions), want, describeGroup(env.brokers), engineLog(env))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// scenarioCluster is a broker (closed when the test ends) with the raw
// topic of every source, each with the given number of partitions.
func scenarioCluster(t *testing.T, partitions int) (*kfake.Cluster, map[string]string) {
	t.Helper()
	topics := scenarioTopics()
	var seed []string
	for _, tp := range topics {
		seed = append(seed, tp)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), seed...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster, topics
}

// groupCommitted sums the group's committed offsets over every topic.
func groupCommitted(ctx context.Context, brokers []string, topics map[string]string, partitions int) int64 {
	var sum int64
	for _, topic := range topics {
		for _, o := range partitionOffsets(ctx, brokers, topic, partitions) {
			sum += max(o, 0)
		}
	}
	return sum
}

// highIncidents lists the high or critical incidents through the API, each
// with its entity node ids ("kind:value").
func highIncidents(ctx context.Context, base string) (map[string][]string, error) {
	var page casework.IncidentPage
	if err := getAPI(ctx, base+"/v1/incidents?limit=100", faultToken, &page); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, in := range page.Items {
		if in.Severity < ocsf.SeverityHigh {
			continue
		}
		var d casework.IncidentDetail
		if err := getAPI(ctx, base+"/v1/incidents/"+in.ID, faultToken, &d); err != nil {
			return nil, err
		}
		var ids []string
		for _, n := range d.Nodes {
			if n.Kind == "entity" {
				ids = append(ids, string(n.Entity)+":"+n.Value)
			}
		}
		out[in.ID] = ids
	}
	return out, nil
}

// attackChain is what the attack-chain scenario must become
// (expected.json): one high or critical incident holding these entities.
type attackChain struct {
	HubIPs []string `json:"hub_ips"`
	Attack struct {
		Entities []string `json:"entities"`
	} `json:"attack"`
}

func attackExpectation(t *testing.T) attackChain {
	t.Helper()
	var exp attackChain
	b, err := os.ReadFile(filepath.Join(attackChainDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

// config is the engine configuration the scenario needs (its shared
// addresses as hubs).
func (exp attackChain) config() string {
	return fmt.Sprintf("correlate: {hub_cidrs: [%s]}\n", strings.Join(exp.HubIPs, ", "))
}

// waitIncident waits (up to a minute) until the API at base shows a high or
// critical incident holding every expected entity, and returns the high or
// critical incidents with the entities still missing.
func (exp attackChain) waitIncident(ctx context.Context, base string) (map[string][]string, []string) {
	var high map[string][]string
	missing := exp.Attack.Entities
	deadline := time.Now().Add(60 * time.Second)
	for len(missing) > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		var err error
		if high, err = highIncidents(ctx, base); err != nil {
			continue
		}
		missing = exp.Attack.Entities
		for _, ids := range high {
			if slices.Contains(ids, exp.Attack.Entities[0]) {
				missing = nil
				for _, e := range exp.Attack.Entities {
					if !slices.Contains(ids, e) {
						missing = append(missing, e)
					}
				}
			}
		}
	}
	return high, missing
}

// TestCorrelatorRestartMidChain publishes the first half of the attack
// chain (by event time), lets the engine store it, stops the engine
// (SIGTERM, and in the second run SIGKILL), starts a new one and publishes
// the rest: the new engine restores the correlation state from ClickHouse
// and the chain still forms exactly one high or critical incident with
// every expected entity.
func TestCorrelatorRestartMidChain(t *testing.T) {
	exp := attackExpectation(t)
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			db, _ := chtest.Database(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			const partitions = 2
			cluster, topics := scenarioCluster(t, partitions)
			env, base := newClusterEnv(t, cluster, topics, chtest.Addr(), db, "", exp.config())
			msgs := attackChainMessages(t, topics)
			half := len(msgs) / 2
			first, rest := msgs[:half], msgs[half:]
			cmd := env.start(t, bin)
			produceScenario(t, ctx, env.brokers, first, scattered)
			waitGroupCommitted(t, ctx, env, topics, partitions, int64(half))
			_ = cmd.Process.Signal(sig)
			_ = cmd.Wait()
			cut := time.UnixMilli(first[len(first)-1].time).UTC()
			cmd = env.start(t, bin)
			defer func() { _ = cmd.Process.Kill() }()
			produceScenario(t, ctx, env.brokers, rest, scattered)
			waitGroupCommitted(t, ctx, env, topics, partitions, int64(len(msgs)))

			high, missing := exp.waitIncident(ctx, base)
			fmt.Printf("correlator restart (%s) mid attack chain: %d messages before the stop (event time up to %s), %d after; %d high or critical incidents, expected entities missing: %v\n",
				sig, half, cut.Format(time.DateTime), len(rest), len(high), missing)
			if len(high) != 1 {
				t.Errorf("got %d high or critical incidents, want exactly 1", len(high))
			}
			if len(missing) > 0 {
				t.Errorf("the attack incident lacks %v", missing)
			}
			stopEngine(t, cmd)
		})
	}
}

// byAccount keys the scenario by AWS account, as the README asks producers
// to: every record of one account lands on the same partition index of
// every raw topic. Falco events carry no account; their producer keys them
// by the account of its host, fallback.
func byAccount(fallback string) func(int, scenarioMessage) string {
	return func(_ int, m scenarioMessage) string {
		if m.account != "" {
			return m.account
		}
		return fallback
	}
}

// scattered spreads the scenario over the partitions regardless of account.
func scattered(i int, _ scenarioMessage) string { return fmt.Sprint(i % 7) }

// groupMembers is the number of members of the engines' consumer group
// that hold an assignment.
func groupMembers(ctx context.Context, brokers []string) int {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{"musubi"}})
	if err != nil || len(resp.Groups) == 0 || resp.Groups[0].GroupState != "Stable" {
		return 0
	}
	n := 0
	for _, m := range resp.Groups[0].Members {
		if len(m.MemberAssignments.Topics) > 0 {
			n++
		}
	}
	return n
}

// waitGroupEmpty waits (up to 30 s) until the engines' consumer group has
// no members left.
func waitGroupEmpty(ctx context.Context, brokers []string) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{"musubi"}})
		if err == nil && len(resp.Groups) == 1 && len(resp.Groups[0].Members) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("  the group still has members after 30 s: %s\n", describeGroup(brokers))
}

// describeGroup tells the state of the engines' consumer group and which
// member holds which partitions, for the message of a test that timed out.
func describeGroup(brokers []string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{"musubi"}})
	if err != nil || len(resp.Groups) == 0 {
		return fmt.Sprintf("not described (%v)", err)
	}
	g := resp.Groups[0]
	out := g.GroupState
	for _, m := range g.Members {
		out += fmt.Sprintf("; member %s (%s):", m.MemberID, m.ClientHost)
		for _, tp := range m.MemberAssignments.Topics {
			out += fmt.Sprintf(" %s%v", tp.Topic, tp.Partitions)
		}
	}
	return out
}

// TestScopeFollowsRebalance runs two engines in one consumer group over
// raw topics of four partitions each, with the scenario keyed by AWS
// account. The first half of the attack chain reaches one engine only (the
// scope's partitions of every topic go to one member); that engine is then
// killed (SIGKILL), its partitions move to the survivor, and the rest of
// the chain follows. The survivor must rebuild the scope's state on the
// new assignment: the chain still forms exactly one high or critical
// incident with every expected entity.
func TestScopeFollowsRebalance(t *testing.T) {
	exp := attackExpectation(t)
	bin := buildBinary(t)
	db, _ := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const partitions = 4
	cluster, topics := scenarioCluster(t, partitions)
	env, baseA := newClusterEnv(t, cluster, topics, chtest.Addr(), db, "", exp.config())
	portB := freePort(t)
	baseB := fmt.Sprintf("http://127.0.0.1:%d", portB)
	a := env.start(t, bin)
	defer func() { _ = a.Process.Kill() }()
	b := env.start(t, bin, fmt.Sprintf("MUSUBI_API_LISTEN=127.0.0.1:%d", portB))
	defer func() { _ = b.Process.Kill() }()
	for groupMembers(ctx, env.brokers) < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("the two engines never shared the group; log:\n%s", engineLog(env))
		case <-time.After(200 * time.Millisecond):
		}
	}
	msgs := attackChainMessages(t, topics)
	half := len(msgs) / 2
	const account = "111122223333" // the scenario's account, for Falco's records
	produceScenario(t, ctx, env.brokers, msgs[:half], byAccount(account))
	waitGroupCommitted(t, ctx, env, topics, partitions, int64(half))

	recA, recB := metric(baseA, "musubi_pipeline_records_total"), metric(baseB, "musubi_pipeline_records_total")
	fmt.Printf("scope follows rebalance: 2 engines, %d partitions per raw topic, first %d records keyed by account: engine A took %.0f, engine B %.0f\n", partitions, half, max(recA, 0), max(recB, 0))
	if (recA > 0) == (recB > 0) {
		t.Fatalf("the scope's records reached %s engine(s), want exactly one", map[bool]string{true: "both", false: "neither"}[recA > 0])
	}
	owner, survivor, base := a, b, baseB
	if recB > 0 {
		owner, survivor, base = b, a, baseA
	}
	_ = owner.Process.Kill()
	_ = owner.Wait()
	produceScenario(t, ctx, env.brokers, msgs[half:], byAccount(account))
	waitGroupCommitted(t, ctx, env, topics, partitions, int64(len(msgs)))
	reassigned := metric(base, "musubi_kafka_reassignments_total")
	high, missing := exp.waitIncident(ctx, base)
	fmt.Printf("  owner killed (SIGKILL); the survivor took its partitions (%.0f reassignment(s), state rebuilt from ClickHouse each time) and the other %d records: %d high or critical incidents, expected entities missing: %v\n",
		reassigned, len(msgs)-half, len(high), missing)
	if reassigned < 1 {
		t.Errorf("musubi_kafka_reassignments_total = %.0f on the survivor, want at least 1", reassigned)
	}
	if len(high) != 1 {
		t.Errorf("got %d high or critical incidents, want exactly 1", len(high))
	}
	if len(missing) > 0 {
		t.Errorf("the attack incident lacks %v", missing)
	}
	stopEngine(t, survivor)
}
