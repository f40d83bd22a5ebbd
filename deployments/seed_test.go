package deployments_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/exposure"
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

// seedOn is where seed writes: nil for the single test server (chtest), or
// a cluster (the cluster tests, behind the cluster build tag, set it for
// the dashboard tests they run again).
var seedOn *clusterTarget

// clusterTarget is a ClickHouse cluster: the native addresses of its
// servers and the name of its remote_servers definition.
type clusterTarget struct {
	addrs []string
	name  string
}

// openStore opens a migrated store on a fresh database of the single test
// server (tgt nil) or of the cluster, dropped when the test ends.
func openStore(ctx context.Context, t *testing.T, tgt *clusterTarget) (*storage.Store, storage.Config) {
	t.Helper()
	cfg := storage.Default()
	if tgt == nil {
		db, _ := chtest.Database(t)
		cfg.Addr, cfg.Database = []string{chtest.Addr()}, db
	} else {
		cfg.Addr, cfg.Cluster, cfg.Database = tgt.addrs, tgt.name, freshName()
		t.Cleanup(func() { dropClusterDatabase(t, tgt, cfg.Database) })
	}
	store, err := storage.Open(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store, cfg
}

// freshName is a database name no other test uses.
func freshName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "musubi_test_" + hex.EncodeToString(b[:])
}

// dropClusterDatabase drops db on every server of the cluster (and with it
// the replicated tables' ZooKeeper nodes).
func dropClusterDatabase(t *testing.T, tgt *clusterTarget, db string) {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: tgt.addrs, Auth: clickhouse.Auth{Username: "default"}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Errorf("drop %s: %v", db, err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+tgt.name); err != nil {
		t.Errorf("drop %s: %v", db, err)
	}
}

// replayScenario replays the scenario files through ingest, the shipped
// detections and the correlator (pipeline.Processor, as `musubi replay
// -write` does), plus one record that can never be processed.
func replayScenario(t *testing.T) (storage.Batch, string) {
	t.Helper()
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
	return batch, tenant
}

func seedWith(t *testing.T, eventsOnly bool) seeded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, cfg := openStore(ctx, t, seedOn)
	db := cfg.Database
	batch, tenant := replayScenario(t)
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
		s.conn = openSeeded(t, cfg)
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
	// The demo account's AWS Config snapshot, stored before the attack's
	// incidents are scored by their assets as serve scores them, so the
	// exposure panel has the attack on its predicted path.
	seedInventory(ctx, t, store, tenant)
	scorer := exposure.NewScorer(store.InventoryAsOf, exposure.ScorerConfig{})
	if err := scorer.Score(ctx, batch.Incidents); err != nil {
		t.Fatal(err)
	}
	if err := store.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}

	s := seeded{db: db, tenant: tenant}
	s.incident, s.from, s.to = attackIncident(batch)

	// An analyst acknowledges the attack incident, then resolves it; the
	// others stay open.
	resolve(ctx, t, store, tenant, s.incident)

	s.conn = openSeeded(t, cfg)
	return s
}

// seedInventory stores the demo account's AWS Config snapshot as tenant's
// inventory, as serve derives it from the events.
func seedInventory(ctx context.Context, t *testing.T, store *storage.Store, tenant string) {
	t.Helper()
	data, err := os.ReadFile("../testdata/demo/config-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, data)
	if len(errs) != 0 || len(evs) == 0 {
		t.Fatalf("demo inventory: %d events, %v", len(evs), errs)
	}
	for i := range evs {
		evs[i].Metadata.TenantUID = tenant
	}
	if err := store.WriteInventory(ctx, pipeline.InventoryOf(evs)); err != nil {
		t.Fatal(err)
	}
}

// attackIncident is the most severe incident of batch (the attack), and
// the time range of all its incidents with an hour on each side.
func attackIncident(batch storage.Batch) (string, time.Time, time.Time) {
	var first, last int64 = 1<<63 - 1, 0
	best := incident.Incident{}
	for _, in := range batch.Incidents {
		first, last = min(first, in.FirstSeen), max(last, in.LastSeen)
		if in.MergedInto == "" && (in.Severity > best.Severity || (in.Severity == best.Severity && len(in.Nodes) > len(best.Nodes))) {
			best = in
		}
	}
	return best.ID, time.UnixMilli(first).Add(-time.Hour), time.UnixMilli(last).Add(time.Hour)
}

// resolve moves an incident through the analyst workflow: in progress,
// then resolved.
func resolve(ctx context.Context, t *testing.T, store *storage.Store, tenant, id string) {
	t.Helper()
	for i, status := range []string{"in_progress", "resolved"} {
		st := status
		if _, err := store.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{
			Tenants: []string{tenant}, IncidentID: id, ExpectedVersion: uint64(i), Status: &st, Actor: "analyst@example.com",
		}); err != nil {
			t.Fatalf("workflow %s: %v", status, err)
		}
	}
}

// openSeeded opens a connection whose default database is the seeded one:
// panels run there, as the provisioned datasource's defaultDatabase is
// Musubi's.
func openSeeded(t *testing.T, cfg storage.Config) driver.Conn {
	t.Helper()
	opts := chtest.Options(cfg.Database)
	opts.Addr = cfg.Addr
	conn, err := clickhouse.Open(opts)
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
