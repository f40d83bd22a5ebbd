package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/storage"
)

// TestRestoreOnlyOwnedTenants replays two scenarios with -write under two
// tenants into one database, then restores a correlator the way a
// correlate process does on an assignment: with the tenants it owns only
// those tenants' incidents, alerts and links come back; with none, nothing;
// without a limit (-role all), both.
func TestRestoreOnlyOwnedTenants(t *testing.T) {
	db, _ := chtest.Database(t)
	t.Setenv("MUSUBI_CLICKHOUSE_DATABASE", db)
	t.Setenv("MUSUBI_CLICKHOUSE_ADDR", chtest.Addr())
	for tenant, dir := range map[string]string{"owned": "attack-chain", "elsewhere": "signin-burst-user"} {
		if code, _, stderr := runCLI("replay", "-rules", "../../detections", "-write", "-tenant", tenant, "-quiet",
			"../../testdata/scenarios/"+dir); code != 0 {
			t.Fatalf("replay -write -tenant %s exited %d\nstderr:\n%s", tenant, code, stderr)
		}
	}
	ctx := context.Background()
	cfg := config.Default()
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = []string{chtest.Addr()}, db
	store, err := storage.Open(ctx, cfg.StorageConfig(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	restored := func(tenants []string) (incidents, entities int) {
		t.Helper()
		corr, err := correlate.New(cfg.CorrelateConfig(), nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := restoreCorrelator(ctx, store, corr, cfg, tenants, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		return corr.OpenIncidents(), corr.TrackedEntities()
	}
	oneInc, oneEnt := restored([]string{"owned"})
	otherInc, otherEnt := restored([]string{"elsewhere"})
	bothInc, bothEnt := restored(nil)
	noneInc, noneEnt := restored([]string{})
	if oneInc == 0 || oneEnt == 0 || otherInc == 0 || otherEnt == 0 {
		t.Fatalf("restored %d incidents and %d entities of the owned tenant, %d and %d of the other; want some of each", oneInc, oneEnt, otherInc, otherEnt)
	}
	if bothInc != oneInc+otherInc || bothEnt != oneEnt+otherEnt {
		t.Errorf("every tenant: %d incidents, %d entities; want the sum of the tenants' %d+%d and %d+%d", bothInc, bothEnt, oneInc, otherInc, oneEnt, otherEnt)
	}
	if noneInc != 0 || noneEnt != 0 {
		t.Errorf("no tenant owned: restored %d incidents and %d entities, want none", noneInc, noneEnt)
	}
}
