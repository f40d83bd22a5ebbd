package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
)

// TestWorkflowUpdateReadsOnlyItsIncident counts what one workflow update
// (the store's part of a PATCH) sends and reads, in a tenant with 20,000
// alert moves of other incidents: two reads (the incident's row with its
// workflow and ETag versions; its own moves) and two inserts (the audit
// entries, the workflow row), reading a few granules, not the tenant's
// moves (which it did: every PATCH read every move of its tenant). The
// answer's alert ids still follow this incident's moves.
func TestWorkflowUpdateReadsOnlyItsIncident(t *testing.T) {
	const others = 20_000
	s := testStore(t)
	ctx := context.Background()
	a1, a2 := testAlert("t1", "al-1", 0, "ev-1"), testAlert("t1", "al-2", time.Minute, "ev-2")
	write(t, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc", 1, a1, a2), testIncident("t1", "other", 1)}})
	// Moves of other incidents, with their index rows, as insertMoves
	// writes them.
	for _, q := range []string{
		`INSERT INTO %s (tenant_uid, alert_id, version, incident_id, from_incident, alert_time_ms, moved_ms, moved_by, reason)
SELECT 't1', concat('m-', toString(number)), 1, concat('o-', toString(number %% 997)), concat('p-', toString(number %% 991)), 0, 0, 'bob', 'r'
FROM system.numbers LIMIT %d`,
		`INSERT INTO %s (tenant_uid, incident_id, alert_id)
SELECT 't1', if(number %% 2 = 0, concat('o-', toString(intDiv(number, 2) %% 997)), concat('p-', toString(intDiv(number, 2) %% 991))),
    concat('m-', toString(intDiv(number, 2)))
FROM system.numbers LIMIT %d`,
	} {
		table, n := s.t(TableMoves), others
		if strings.Contains(q, "(tenant_uid, incident_id, alert_id)") {
			table, n = s.t(TableMovesIndex), 2*others
		}
		if err := s.conn.Exec(ctx, fmt.Sprintf(q, table, n)); err != nil {
			t.Fatal(err)
		}
	}
	// This incident's own moves: al-2 out to other, x in from other.
	now := time.Now()
	if err := s.insertMoves(ctx, "t1", "bob", "r", now, "other", []string{"al-2"}, []string{"inc"}, []int64{a2.Time}, []uint64{0}); err != nil {
		t.Fatal(err)
	}
	if err := s.insertMoves(ctx, "t1", "bob", "r", now, "inc", []string{"x"}, []string{"other"}, []int64{a1.Time}, []uint64{0}); err != nil {
		t.Fatal(err)
	}

	cc, stop := watch(s)
	in, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: []string{"t1"}, IncidentID: "inc", Actor: "alice",
		Status: ptr("in_progress"), Assignee: ptr("alice")})
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"al-1", "x"}; !slices.Equal(in.AlertIDs, want) {
		t.Errorf("got alert ids %v, want %v (al-2 moved out, x moved in)", in.AlertIDs, want)
	}
	var read uint64
	for _, st := range cc.sent() {
		read += st.rows
	}
	reads, inserts, execs := cc.sent("Query", "QueryRow"), cc.sent("PrepareBatch"), cc.sent("Exec")
	if len(reads) != 2 {
		t.Errorf("got %d reads, want 2 (the incident's row, its moves):\n%s", len(reads), sqlOf(reads, "\n---\n"))
	}
	if len(inserts) != 2 {
		t.Errorf("got %d inserts, want 2 (audit, workflow): %s", len(inserts), sqlOf(inserts, "; "))
	}
	if len(execs) != 0 {
		t.Errorf("got %d other statements, want none: %s", len(execs), sqlOf(execs, "; "))
	}
	// Each keyed read reads whole granules (1,024 rows for the moves and
	// their index): a handful of them, not the tenant's 60,000 rows.
	if read == 0 || read > 8*1024 {
		t.Errorf("the update read %d rows, want 1 to %d (this incident's rows and moves only)", read, 8*1024)
	}
	t.Logf("one update: %d reads, %d inserts, %d rows read", len(reads), len(inserts), read)
}

// TestMovesIndexBackfill: the migration that adds alert_moves_by_incident
// indexes the moves made before it, so their incidents still find them.
func TestMovesIndexBackfill(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	// A move as written before the index existed: its row only.
	if err := s.insert(ctx, moveColumns("t1", "bob", "r", time.Now(), "inc-b", []string{"al-1"}, []string{"inc-a"}, []int64{1}, []uint64{0})); err != nil {
		t.Fatal(err)
	}
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m Migration) bool { return strings.Contains(m.Name, "alert_moves_by_incident") })
	if i < 0 {
		t.Fatal("no migration adds alert_moves_by_incident")
	}
	stmts, err := s.dialect.render(ms[i])
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if err := s.exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, inc := range []string{"inc-a", "inc-b"} {
		moves, err := s.latestMoves(ctx, "t1", []string{inc})
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := moves["al-1"]; !ok || m.to != "inc-b" {
			t.Errorf("moves of %s after the backfill: got %v, want al-1 moved to inc-b", inc, moves)
		}
	}
}
