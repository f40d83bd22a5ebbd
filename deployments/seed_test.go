package deployments_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/replay"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

const scenarioDir = "../testdata/scenarios/attack-chain"

// seeded is a fresh database holding what the real pipeline stores for the
// attack scenario, plus analyst workflow and a dead letter.
type seeded struct {
	db       string
	conn     driver.Conn
	tenant   string
	incident string // the attack incident, the most severe one
	from, to time.Time
}

// seed replays the scenario files through ingest, the shipped detections and
// the correlator (pipeline.Processor, as `musubi replay -write` does),
// writes the batch with storage.Store.Write, then moves the attack incident
// through the analyst workflow.
func seed(t *testing.T) seeded { t.Helper(); return seedWith(t, false) }

// seedEventsOnly stores only the scenario's events and dead letters: an
// installation before its first alert and incident.
func seedEventsOnly(t *testing.T) seeded { t.Helper(); return seedWith(t, true) }

func seedWith(t *testing.T, eventsOnly bool) seeded {
	t.Helper()
	db, _ := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg := storage.Default()
	cfg.Addr, cfg.Database = []string{chtest.Addr()}, db
	store, err := storage.Open(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	ccfg := correlate.DefaultConfig()
	ccfg.HubIPs = append(ccfg.HubIPs, "198.51.100.7/32") // the office NAT of the scenario
	const tenant = "default"
	proc, err := replay.NewProcessor(replay.Options{RulesDir: "../detections", Correlate: ccfg, StoreRaw: true,
		Tenant: func(string) string { return tenant }})
	if err != nil {
		t.Fatal(err)
	}

	files, err := filepath.Glob(filepath.Join(scenarioDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []pipeline.Record
	for i, f := range files {
		if filepath.Base(f) == "expected.json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, pipeline.Record{Source: ingest.SourceAuto, Topic: "scenario", Partition: 0, Offset: int64(i), Value: data, Time: time.Now()})
	}
	// One record that can never be processed, for the dead-letter panels.
	recs = append(recs, pipeline.Record{Source: ingest.SourceAuto, Topic: "musubi.raw.cloudtrail", Partition: 0, Offset: 99, Value: []byte("this is not telemetry"), Time: time.Now()})
	batch := proc.Process(recs)
	if len(batch.Events) < 50 || len(batch.Alerts) == 0 || len(batch.Incidents) == 0 || len(batch.DeadLetters) == 0 {
		t.Fatalf("replay gave %d events, %d alerts, %d incident versions, %d dead letters; want the whole scenario",
			len(batch.Events), len(batch.Alerts), len(batch.Incidents), len(batch.DeadLetters))
	}
	if eventsOnly {
		s := seeded{db: db, tenant: tenant, from: time.Now(), to: time.Time{}}
		if err := store.Write(ctx, storage.Batch{Events: batch.Events, DeadLetters: batch.DeadLetters}); err != nil {
			t.Fatal(err)
		}
		for _, ev := range batch.Events {
			at := time.UnixMilli(ev.Time)
			s.from, s.to = minTime(s.from, at), maxTime(s.to, at)
		}
		s.from, s.to = s.from.Add(-time.Hour), s.to.Add(time.Hour)
		s.conn = openSeeded(t, db)
		return s
	}
	// The shipped pack has no experimental rule, so the scenario raises no
	// shadow alert; the shadow panels get one, built by the engine for an
	// experimental copy of a pack rule on the scenario's first event.
	pack, err := rules.Load("../detections")
	if err != nil {
		t.Fatal(err)
	}
	experimental := *pack.Rules()[0]
	experimental.ID, experimental.Status = "seed.experimental_copy", rules.StatusExperimental
	batch.Alerts = append(batch.Alerts, rules.NewAlert(&experimental, &batch.Events[0]))
	if err := store.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}

	s := seeded{db: db, tenant: tenant}
	var first, last int64 = 1<<63 - 1, 0
	best := incident.Incident{}
	for _, in := range batch.Incidents {
		first, last = min(first, in.FirstSeen), max(last, in.LastSeen)
		if in.MergedInto == "" && (in.Severity > best.Severity || (in.Severity == best.Severity && len(in.Nodes) > len(best.Nodes))) {
			best = in
		}
	}
	s.incident = best.ID
	s.from, s.to = time.UnixMilli(first).Add(-time.Hour), time.UnixMilli(last).Add(time.Hour)

	// An analyst acknowledges the attack incident, then resolves it; the
	// others stay open.
	for i, status := range []string{"in_progress", "resolved"} {
		st := status
		if _, err := store.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{
			Tenants: []string{tenant}, IncidentID: s.incident, ExpectedVersion: uint64(i), Status: &st, Actor: "analyst@example.com",
		}); err != nil {
			t.Fatalf("workflow %s: %v", status, err)
		}
	}

	s.conn = openSeeded(t, db)
	return s
}

// openSeeded opens a connection whose default database is the seeded one:
// panels run there, as the provisioned datasource's defaultDatabase is
// Musubi's.
func openSeeded(t *testing.T, db string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(chtest.Options(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
