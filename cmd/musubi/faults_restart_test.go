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

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/ocsf"
)

const attackChainDir = "../../testdata/scenarios/attack-chain"

// scenarioMessage is one Kafka message of the attack-chain scenario with
// the earliest event time it carries.
type scenarioMessage struct {
	topic string
	value []byte
	time  int64
}

// attackChainMessages splits the scenario into one message per record
// (CloudTrail records one by one, line files line by line) ordered by event
// time.
func attackChainMessages(t *testing.T, topics map[string]string) []scenarioMessage {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(attackChainDir, "*"))
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	var out []scenarioMessage
	for _, f := range files {
		if filepath.Base(f) == "expected.json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := ingest.Detect(data)
		var parts [][]byte
		if src == ingest.SourceCloudTrail {
			var doc struct{ Records []json.RawMessage }
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			for _, r := range doc.Records {
				parts = append(parts, r)
			}
		} else {
			parts = splitMessages(src, data)
		}
		for _, p := range parts {
			evs, errs := dec.Decode(src, p)
			if len(errs) > 0 || len(evs) == 0 {
				t.Fatalf("%s: %d events, errors %v", f, len(evs), errs)
			}
			m := scenarioMessage{topic: topics[string(src)], value: p, time: evs[0].Time}
			for _, e := range evs {
				m.time = min(m.time, e.Time)
			}
			if m.topic == "" {
				t.Fatalf("%s: no topic for source %s", f, src)
			}
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b scenarioMessage) int { return int(a.time - b.time) })
	return out
}

func produceScenario(t *testing.T, ctx context.Context, brokers []string, msgs []scenarioMessage) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var km []kafka.Message
	for i, m := range msgs {
		km = append(km, kafka.Message{Topic: m.topic, Key: []byte(fmt.Sprint(i % 7)), Value: m.value})
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
	var page api.IncidentPage
	if err := getAPI(ctx, base+"/v1/incidents?limit=100", faultToken, &page); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, in := range page.Items {
		if in.Severity < ocsf.SeverityHigh {
			continue
		}
		var d api.IncidentDetail
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

// TestCorrelatorRestartMidChain publishes the first half of the attack
// chain (by event time), lets the engine store it, stops the engine
// (SIGTERM, and in the second run SIGKILL), starts a new one and publishes
// the rest: the new engine restores the correlation state from ClickHouse
// and the chain still forms exactly one high or critical incident with
// every expected entity.
func TestCorrelatorRestartMidChain(t *testing.T) {
	var exp struct {
		HubIPs []string `json:"hub_ips"`
		Attack struct {
			Entities []string `json:"entities"`
		} `json:"attack"`
	}
	b, err := os.ReadFile(filepath.Join(attackChainDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			db, _ := chtest.Database(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			topics := scenarioTopics()
			var seed []string
			for _, tp := range topics {
				seed = append(seed, tp)
			}
			const partitions = 2
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, seed...))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			env, base := newClusterEnv(t, cluster, topics, chtest.Addr(), db, "",
				fmt.Sprintf("correlate: {hub_cidrs: [%s]}\n", strings.Join(exp.HubIPs, ", ")))
			msgs := attackChainMessages(t, topics)
			half := len(msgs) / 2
			first, rest := msgs[:half], msgs[half:]
			waitGroup := func(want int64) {
				for groupCommitted(ctx, env.brokers, topics, partitions) < want {
					select {
					case <-ctx.Done():
						t.Fatalf("timed out: committed %d of %d; log:\n%s", groupCommitted(context.Background(), env.brokers, topics, partitions), want, engineLog(env))
					case <-time.After(200 * time.Millisecond):
					}
				}
			}
			cmd := env.start(t, bin)
			produceScenario(t, ctx, env.brokers, first)
			waitGroup(int64(half))
			_ = cmd.Process.Signal(sig)
			_ = cmd.Wait()
			cut := time.UnixMilli(first[len(first)-1].time).UTC()
			cmd = env.start(t, bin)
			defer func() { _ = cmd.Process.Kill() }()
			produceScenario(t, ctx, env.brokers, rest)
			waitGroup(int64(len(msgs)))

			// The incident forms from the stored alerts; wait until it
			// holds every expected entity (or the deadline).
			var high map[string][]string
			missing := exp.Attack.Entities
			deadline := time.Now().Add(60 * time.Second)
			for len(missing) > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Second)
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
