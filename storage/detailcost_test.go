package storage

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// detailFixture writes an incident shaped like the demo's attack chain
// (30 alerts of two events each, 16 versions) into tenant t1 among what a
// busy tenant holds besides: 3,000 other events in the same hours and 200
// other incidents with their workflow, and two granules of later events
// in the evidence window, so that a read that is not keyed by the incident
// shows in the rows or bytes it reads.
func detailFixture(t testing.TB, s *Store) {
	t.Helper()
	var evs []ocsf.Event
	var als []alert.Alert
	for i := range 30 {
		e1, e2 := fmt.Sprintf("ev-%02d-a", i), fmt.Sprintf("ev-%02d-b", i)
		evs = append(evs, testEvent("t1", e1, time.Duration(i)*time.Minute), testEvent("t1", e2, time.Duration(i)*time.Minute+time.Second))
		als = append(als, testAlert("t1", fmt.Sprintf("al-%02d", i), time.Duration(i)*time.Minute+time.Second, e1, e2))
	}
	for i := range 3000 {
		evs = append(evs, testEvent("t1", fmt.Sprintf("noise-%05d", i), time.Duration(i)*time.Second))
	}
	// Two more granules (8,192 rows each) of the tenant's events in the
	// evidence window, after the incident's.
	for i := range 2 * 8192 {
		evs = append(evs, testEvent("t1", fmt.Sprintf("later-%05d", i), 2*time.Hour+time.Duration(i)*time.Second))
	}
	write(t, s, Batch{Events: evs, Alerts: als})
	for v := range 16 {
		n := 2 * (v + 1)
		write(t, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc-1", uint64(v+1), als[:min(n, len(als))]...)}})
	}
	var others []incident.Incident
	var wf []casework.Incident
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 200 {
		a := testAlert("t1", fmt.Sprintf("other-%03d", i), time.Duration(i)*time.Second, fmt.Sprintf("noise-%05d", i))
		id := fmt.Sprintf("inc-other-%03d", i)
		others = append(others, testIncident("t1", id, 1, a))
		var w casework.Incident
		w.ID = id
		w.Workflow = casework.Workflow{Version: 1, Status: "in_progress", Assignee: "alice", UpdatedAt: now, UpdatedBy: "alice"}
		wf = append(wf, w)
	}
	write(t, s, Batch{Incidents: others})
	if err := s.insert(context.Background(), workflowColumns("t1", wf)); err != nil {
		t.Fatal(err)
	}
}

// TestGetIncidentCost logs every query one detail read makes with what it
// read, and fails when the read makes more queries or reads more rows than
// an incident's own rows need.
func TestGetIncidentCost(t *testing.T) {
	s := testStore(t)
	detailFixture(t, s)
	// The incident row, the tenant's merges and the incident's moves; then
	// the nodes, edges, alerts and evidence.
	cc, stop := watch(s, 3, 4)
	defer stop()
	ctx := context.Background()
	d, err := s.GetIncident(ctx, []string{"t1"}, "inc-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Alerts) != 30 || len(d.Evidence) != 60 || len(d.Nodes) != 31 || len(d.Edges) != 30 {
		t.Fatalf("got %d alerts, %d evidence events, %d nodes, %d edges; want 30, 60, 31, 30", len(d.Alerts), len(d.Evidence), len(d.Nodes), len(d.Edges))
	}
	qs := cc.sent()
	var rows, bytes uint64
	for _, q := range qs {
		rows, bytes = rows+q.rows, bytes+q.bytes
		t.Logf("%6.1f ms %7d rows %9d bytes  %.150s", float64(q.took.Microseconds())/1000, q.rows, q.bytes, q.sql)
	}
	t.Logf("%d statements, %d rows, %d bytes read", len(qs), rows, bytes)
	if len(qs) != 7 {
		t.Errorf("one detail read sent %d statements, want 7", len(qs))
	}
	// The evidence read reads the event JSON and raw bytes of the granule
	// holding the incident's events, not of every event in its window.
	var all uint64
	if err := cc.Conn.QueryRow(ctx, "SELECT sum(length(event_json) + length(raw)) FROM "+s.t(TableEvents)+" WHERE tenant_uid = 't1'").Scan(&all); err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if strings.Contains(q.sql, "FROM "+s.t(TableEvents)) && q.bytes > all/2 {
			t.Errorf("the evidence read read %d bytes; the events of its window hold %d bytes of JSON and raw records", q.bytes, all)
		}
	}
	for _, sh := range cc.short {
		t.Errorf("the detail read waits for one statement before sending the next: %s", sh)
	}
}
