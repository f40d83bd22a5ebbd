//go:build faults

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
)

// plainLinkRecords are three agent records of the attack chain's web host,
// reshaped so that only a plain event ties the two alerts together: A, a
// web server spawning a shell, names the host by its name only; P, a
// log rotation that raises nothing, names the host and its instance; B, a
// web shell written a minute after P, names the instance only. A and B
// form one incident only through the link P taught the correlator.
func plainLinkRecords(t *testing.T) (a, p, b []byte) {
	t.Helper()
	f, err := os.Open(filepath.Join(attackChainDir, "agent.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) < 11 {
		t.Fatalf("agent.jsonl has %d lines, want the web host's records", len(lines))
	}
	A, P, B := lines[4], lines[10], lines[5]
	A["device"] = map[string]any{"hostname": "web-1", "type": "Server", "type_id": 1}
	B["device"] = map[string]any{"uid": "i-0a1b2c3d4e5f60718", "instance_uid": "i-0a1b2c3d4e5f60718", "type": "Server", "type_id": 1}
	B["time"] = P["time"].(float64) + 60_000
	enc := func(m map[string]any) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return enc(A), enc(P), enc(B)
}

// produceAgent publishes records to the agent topic, one message each.
func produceAgent(t *testing.T, ctx context.Context, brokers []string, topic string, recs ...[]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: kafkatest.Transport(t)}
	defer w.Close()
	var km []kafka.Message
	for _, r := range recs {
		km = append(km, kafka.Message{Topic: topic, Key: []byte("111122223333"), Value: r})
	}
	if err := w.WriteMessages(ctx, km...); err != nil {
		t.Fatal(err)
	}
}

// incidentsOfRules returns, per open incident (latest version) holding an
// alert of rule a or rule b, the rules it holds of the two.
func incidentsOfRules(t *testing.T, ctx context.Context, conn driver.Conn, a, b string) map[string][]string {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT incident_id, argMax(rule_ids, version), argMax(merged_into, version) FROM incidents GROUP BY incident_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id, merged string
		var ruleIDs []string
		if err := rows.Scan(&id, &ruleIDs, &merged); err != nil {
			t.Fatal(err)
		}
		if merged != "" {
			continue
		}
		for _, r := range ruleIDs {
			if r == a || r == b {
				out[id] = append(out[id], r)
			}
		}
	}
	return out
}

// TestPlainEventLinkSurvivesKillNine: a plain event's link, learned before
// the correlating process is killed (SIGKILL), still joins the alert that
// needs it after the restart, with -role all and with the split roles
// (-role detect and -role correlate, the correlate process killed): the
// two alerts form one incident. The link comes back from the link signals
// stored with the batch that taught it.
func TestPlainEventLinkSurvivesKillNine(t *testing.T) {
	const ruleA, ruleB = "host.webserver_spawns_shell", "host.webshell_written_under_webroot"
	bin := buildBinary(t)
	a, p, b := plainLinkRecords(t)
	for _, role := range []string{"all", "correlate"} {
		t.Run(role, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			db, conn := chtest.Database(t)
			const partitions = 1
			cluster, topics := rolesCluster(t, partitions)
			env, _ := newClusterEnv(t, cluster, topics, chtest.Addr(), db, "", "")
			start := func() (*os.Process, func()) {
				if role == "all" {
					cmd := env.start(t, bin)
					return cmd.Process, func() { _ = cmd.Wait() }
				}
				cmd := env.start(t, bin, "MUSUBI_ROLE=correlate", fmt.Sprintf("MUSUBI_API_LISTEN=127.0.0.1:%d", freePort(t)))
				return cmd.Process, func() { _ = cmd.Wait() }
			}
			settled := func(n int64) {
				if role == "all" {
					waitGroupCommitted(t, ctx, env, topics, partitions, n)
				} else {
					waitSignalsFolded(t, ctx, env, topics, partitions, n)
				}
			}
			if role == "correlate" {
				d := env.start(t, bin, "MUSUBI_ROLE=detect")
				defer stopEngine(t, d)
			}
			proc, wait := start()
			produceAgent(t, ctx, env.brokers, topics["agent"], a, p)
			settled(2)
			_ = proc.Signal(syscall.SIGKILL)
			wait()
			proc, wait = start()
			defer func() { _ = proc.Signal(syscall.SIGTERM); wait() }()
			produceAgent(t, ctx, env.brokers, topics["agent"], b)
			settled(3)
			var incs map[string][]string
			for {
				incs = incidentsOfRules(t, ctx, conn, ruleA, ruleB)
				seenB := false
				for _, rs := range incs {
					seenB = seenB || bytes.Contains([]byte(fmt.Sprint(rs)), []byte(ruleB))
				}
				if seenB {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("the alert after the restart is in no incident; log:\n%s", engineLog(env))
				case <-time.After(200 * time.Millisecond):
				}
			}
			var links uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM link_signals FINAL").Scan(&links); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("plain-event link across kill -9 (role %s): alert A, plain event P (%d link signal(s) stored), SIGKILL of the correlating process, restart, alert B: incidents %v\n",
				role, links, incs)
			if len(incs) != 1 {
				t.Errorf("got %d incidents holding the two alerts, want 1 (the plain event's link lost across the kill)", len(incs))
			}
			if links == 0 {
				t.Error("no link signal stored")
			}
		})
	}
}
