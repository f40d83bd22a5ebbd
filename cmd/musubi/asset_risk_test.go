package main

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/storage"
)

// TestAssetScorerWritesInventoryFirst: a batch that brings the demo
// account's Config items and an incident on its web server stores the
// incident scored on those items (the inventory is written before the
// incident is scored), with the explanation read back as stored; when the
// inventory cannot be read the incident is still written, with the
// correlator's risk, and the failure is counted.
func TestAssetScorerWritesInventoryFirst(t *testing.T) {
	db, _ := chtest.Database(t)
	ctx := context.Background()
	cfg := storage.Default()
	cfg.Addr, cfg.Database = []string{chtest.Addr()}, db
	store, err := storage.Open(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../testdata/demo/config-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, data)
	if len(errs) != 0 || len(evs) == 0 {
		t.Fatalf("demo inventory: %d events, %v", len(evs), errs)
	}
	for i := range evs {
		evs[i].Metadata.TenantUID = "default"
	}
	web := incident.Incident{ID: "inc-web", Version: 1, TenantUID: "default", Title: "web server", Severity: 3, RiskScore: 40,
		Status: "open", FirstSeen: 1795658400000, LastSeen: 1795658400000, Accounts: []string{"111122223333"},
		Nodes: []incident.Node{{ID: "n1", Kind: incident.NodeEntity, Entity: ocsf.EntityInstance, Value: "i-0a1b2c3d4e5f60718"}}}
	w := newAssetScorer(store, exposure.RiskOptions{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err := w.Write(ctx, storage.Batch{Events: evs, Inventory: pipeline.InventoryOf(evs), Incidents: []incident.Incident{web}}); err != nil {
		t.Fatal(err)
	}
	exs, err := store.RiskExplanations(ctx, []string{"default"}, []string{"inc-web"})
	if err != nil {
		t.Fatal(err)
	}
	ex, ok := exs["inc-web"]
	var names []string
	for _, f := range ex.Factors {
		names = append(names, f.Name)
	}
	for _, want := range []string{exposure.FactorInternetFacing, exposure.FactorIMDSv1, exposure.FactorOnPredictedPath, exposure.FactorWritesDeploySrc} {
		if !ok || !slices.Contains(names, want) {
			t.Errorf("stored explanation %+v lacks %s", ex, want)
		}
	}
	if ex.Correlation != 40 {
		t.Errorf("correlation %d, want the correlator's 40", ex.Correlation)
	}

	// A tenant scored before it had any inventory: its empty snapshot is
	// cached, and a batch of its Config items alone (no incidents) makes
	// the scorer forget it, so the incident's next version is scored on
	// them at once.
	late := web
	late.TenantUID = "late"
	if err := w.Write(ctx, storage.Batch{Incidents: []incident.Incident{late}}); err != nil {
		t.Fatal(err)
	}
	lateEvs := slices.Clone(evs)
	for i := range lateEvs {
		lateEvs[i].Metadata.TenantUID = "late"
	}
	if err := w.Write(ctx, storage.Batch{Events: lateEvs, Inventory: pipeline.InventoryOf(lateEvs)}); err != nil {
		t.Fatal(err)
	}
	late.Version = 2
	if err := w.Write(ctx, storage.Batch{Incidents: []incident.Incident{late}}); err != nil {
		t.Fatal(err)
	}
	lateExs, err := store.RiskExplanations(ctx, []string{"late"}, []string{"inc-web"})
	if err != nil {
		t.Fatal(err)
	}
	if got := lateExs["inc-web"]; len(got.Factors) != len(ex.Factors) {
		t.Errorf("late tenant's incident after its inventory: %d factors %+v; want %d as for default", len(got.Factors), got.Factors, len(ex.Factors))
	}

	// The store closed: scoring fails, the write still runs (and fails
	// on its own account), and the failure is counted.
	closed, err := storage.Open(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	reg2 := prometheus.NewRegistry()
	w2 := newAssetScorer(closed, exposure.RiskOptions{}, slog.New(slog.DiscardHandler), reg2)
	other := web
	other.ID, other.FirstSeen = "inc-other", web.FirstSeen+1
	batch := storage.Batch{Incidents: []incident.Incident{other}}
	cctx, cancel := context.WithCancel(ctx)
	cancel() // the write retries transient errors until its context ends
	_ = w2.Write(cctx, batch)
	mfs, err := reg2.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "musubi_exposure_risk_errors_total" {
			got = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 1 {
		t.Errorf("musubi_exposure_risk_errors_total %v, want 1", got)
	}
	if batch.Incidents[0].RiskScore != 40 || batch.Incidents[0].Risk == nil || batch.Incidents[0].Risk.Unavailable == "" {
		t.Errorf("unscored incident: got %d %+v, want 40 and why", batch.Incidents[0].RiskScore, batch.Incidents[0].Risk)
	}
}
