package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/replay"
	"github.com/musubi-xdr/musubi/storage"
)

// TestReplayEqualsServeOverKafka publishes each scenario's files, split
// into the messages shippers send (a JSON document whole, a line file line
// by line), to the raw topics of a Kafka broker (kfake, over the wire) and
// runs the real engine on them into the real ClickHouse; `musubi replay`'s
// stream over the same files must find the same incidents as serve stored:
// ids, severities, alerts and entities.
func TestReplayEqualsServeOverKafka(t *testing.T) {
	for _, name := range []string{"attack-chain", "port-scan", "signin-burst-user"} {
		t.Run(name, func(t *testing.T) { replayEqualsServe(t, filepath.Join("../../testdata/scenarios", name)) })
	}
}

func replayEqualsServe(t *testing.T, dir string) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cfg := config.Default()
	files, err := replay.ReadFiles([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	// Each file's messages go to its source's topic, in file order, as a
	// shipper sends a delivery file.
	bySource := map[ingest.Source][]kafka.Message{}
	for _, f := range files {
		src := ingest.Detect(f.Value)
		for _, part := range replay.SplitMessages(src, f.Value) {
			bySource[src] = append(bySource[src], kafka.Message{Value: part})
		}
	}
	topics := map[string]string{}
	var seed []string
	for src := range bySource {
		topic := cfg.Kafka.Topics[string(src)]
		if topic == "" {
			t.Fatalf("no default topic for source %s", src)
		}
		topics[string(src)], seed = topic, append(seed, topic)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, seed...))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.Topics = topics
	cfg.ClickHouse.Addr = []string{chtest.Addr()}
	cfg.ClickHouse.Database = db
	cfg.Rules.Dir = "../../detections"
	cfg.Correlate.HubCIDRs = append(cfg.Correlate.HubCIDRs, "198.51.100.7/32") // the attack chain's office NAT
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Pipeline.FlushInterval = 200 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// What the replay finds, with the configuration serve runs.
	s, err := replay.NewStream(offlineOptions(cfg, logger), replay.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	inputs, cleanup, err := replay.Inputs([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	var replayed []incident.Incident
	if _, err := s.Run(ctx, inputs, func(b storage.Batch) error {
		replayed = append(replayed, b.Incidents...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := incidentRows(replay.LatestVersions(replayed))
	if len(want) == 0 {
		t.Fatal("the replay found no incident: the comparison would prove nothing")
	}

	var total int64
	for src, msgs := range bySource {
		w := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: topics[string(src)], BatchTimeout: 5 * time.Millisecond, Transport: kafkatest.Transport(t)}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
		total += int64(len(msgs))
	}
	_, stop := startEngine(t, ctx, cfg, logger)
	defer stop()
	waitFor(t, ctx, "every message committed", func() bool { return committed(ctx, cfg) == total })

	// The engine flushes what idle time releases (threshold windows) on
	// its own; what it has stored must become the replay's incidents.
	var got []string
	stored := func() bool {
		got = nil
		rows, err := conn.Query(ctx, "SELECT incident_id, severity_id, alert_ids, entities FROM "+db+
			".incidents FINAL WHERE merged_into = '' ORDER BY incident_id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var sev uint8
			var alerts, ents []string
			if err := rows.Scan(&id, &sev, &alerts, &ents); err != nil {
				t.Fatal(err)
			}
			got = append(got, incidentRow(id, int(sev), alerts, ents))
		}
		return slices.Equal(got, want)
	}
	deadline, stopWait := context.WithTimeout(ctx, time.Minute)
	defer stopWait()
	for !stored() {
		select {
		case <-deadline.Done():
			t.Fatalf("serve stored other incidents than the replay found:\n got %q\nwant %q", got, want)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// incidentRows describes open incidents as incidentRow does, sorted.
func incidentRows(incs []incident.Incident) []string {
	var out []string
	for _, in := range incs {
		if in.MergedInto != "" {
			continue
		}
		var ents []string
		for _, n := range in.Nodes {
			if n.Kind == incident.NodeEntity && n.Entity != "" {
				ents = append(ents, string(n.Entity)+":"+n.Value)
			}
		}
		out = append(out, incidentRow(in.ID, in.Severity, in.AlertIDs, ents))
	}
	slices.Sort(out)
	return out
}

// incidentRow is one incident as the comparison reads it: id, severity,
// alert ids and entity keys, the lists sorted.
func incidentRow(id string, sev int, alerts, ents []string) string {
	alerts, ents = slices.Clone(alerts), slices.Clone(ents)
	slices.Sort(alerts)
	slices.Sort(ents)
	return strings.Join([]string{id, strconv.Itoa(sev), strings.Join(alerts, ","), strings.Join(ents, ",")}, "|")
}
