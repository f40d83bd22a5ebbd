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

// kindOf names a statement of a workflow update by the table it serves.
func kindOf(q string) string {
	switch {
	case strings.HasPrefix(q, "INSERT"):
		return "insert-" + strings.Fields(q)[2][strings.LastIndex(strings.Fields(q)[2], ".")+1:]
	case strings.Contains(q, TableMovesIndex):
		return "read-moves"
	}
	return "read-incident"
}

// BenchmarkWorkflowUpdateStatements makes b.N workflow updates of one
// incident one after another (the store's part of BenchmarkAPIPatch) and
// reports p50 and p99 of each statement they send, the active parts the
// workflow and audit tables have at the end, and the inserts the server
// delayed meanwhile (system.events DelayedInserts: more than
// parts_to_delay_insert active parts in a partition), to find which
// statement a slow PATCH waits for:
//
//	MUSUBI_REQUIRE_CLICKHOUSE=1 go test ./storage/ -run '^$' -bench WorkflowUpdateStatements -benchtime 300x -count 6
func BenchmarkWorkflowUpdateStatements(b *testing.B) {
	s := testStore(b)
	ctx := context.Background()
	write(b, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc", 1, testAlert("t1", "al-1", 0, "ev-1"))}})
	delayed := func() uint64 {
		return count(b, s, "SELECT toUInt64(sum(value)) FROM system.events WHERE event = 'DelayedInserts'")
	}
	before := delayed()
	cc, stop := watch(s)
	b.ResetTimer()
	for i := range b.N {
		_, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: []string{"t1"}, IncidentID: "inc", Actor: "alice",
			ExpectedVersion: uint64(i), Tags: &[]string{fmt.Sprintf("t%d", i)}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop()
	times := map[string][]time.Duration{}
	for _, st := range cc.sent() {
		times[kindOf(st.sql)] = append(times[kindOf(st.sql)], st.took)
	}
	for kind, lat := range times {
		slices.Sort(lat)
		q := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
		}
		b.ReportMetric(q(0.50), kind+"-p50-ms")
		b.ReportMetric(q(0.99), kind+"-p99-ms")
	}
	for _, tbl := range []string{TableWorkflow, TableAudit} {
		n := count(b, s, "SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active", s.cfg.Database, tbl)
		b.ReportMetric(float64(n), tbl+"-parts")
	}
	b.ReportMetric(float64(delayed()-before), "delayed-inserts")
}
