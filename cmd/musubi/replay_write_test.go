package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/internal/chtest"
)

// TestReplayWrite replays the attack chain with -write into a fresh
// database of the real ClickHouse and checks that its events, alerts and
// incidents land under the replay's own tenant (nothing under another),
// and that the stored incidents are the ones the replay printed.
func TestReplayWrite(t *testing.T) {
	db, conn := chtest.Database(t)
	t.Setenv("MUSUBI_CLICKHOUSE_DATABASE", db)
	t.Setenv("MUSUBI_CLICKHOUSE_ADDR", chtest.Addr())
	code, stdout, stderr := runCLI("replay", "-rules", "../../detections", "-write", "-tenant", "case-42", "-quiet",
		"../../testdata/scenarios/attack-chain")
	if code != 0 {
		t.Fatalf("replay -write exited %d\nstderr:\n%s", code, stderr)
	}
	var printed []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var in struct {
			ID     string `json:"id"`
			Tenant string `json:"tenant_uid"`
		}
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		if in.Tenant != "case-42" {
			t.Errorf("printed incident %s under tenant %q, want case-42", in.ID, in.Tenant)
		}
		printed = append(printed, in.ID)
	}
	if len(printed) == 0 {
		t.Fatal("the replay found no incident: the check would prove nothing")
	}
	ctx := context.Background()
	for _, table := range []string{"events", "alerts", "incidents"} {
		var mine, others uint64
		row := conn.QueryRow(ctx, "SELECT countIf(tenant_uid = 'case-42'), countIf(tenant_uid != 'case-42') FROM "+db+"."+table)
		if err := row.Scan(&mine, &others); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if mine == 0 || others != 0 {
			t.Errorf("%s: %d rows under case-42 and %d under other tenants, want some and none", table, mine, others)
		}
	}
	rows, err := conn.Query(ctx, "SELECT incident_id FROM "+db+".incidents FINAL WHERE tenant_uid = 'case-42' AND status != 'merged' ORDER BY incident_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stored []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, id)
	}
	slices.Sort(printed)
	if !slices.Equal(stored, printed) {
		t.Errorf("stored incidents %v, printed %v", stored, printed)
	}
}

// TestReplayWithoutTelemetry: a directory holding no telemetry file is an
// error that says so, not an empty report.
func TestReplayWithoutTelemetry(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("notes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("replay", "-rules", "../../detections", "-quiet", dir)
	if code == 0 || !strings.Contains(stderr, "no telemetry file in "+dir) || stdout != "" {
		t.Errorf("replay of a directory without telemetry: exit %d, stdout %q, stderr %q; want a failure naming the directory", code, stdout, stderr)
	}
}
