package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
)

// timedConn times each statement a Store sends, from the call to the
// end of its result (a read's Close, an insert's Send), by the kind of
// statement (kindOf).
type timedConn struct {
	driver.Conn
	mu    sync.Mutex
	times map[string][]time.Duration
}

func (c *timedConn) record(q string, start time.Time) {
	d := time.Since(start)
	c.mu.Lock()
	c.times[kindOf(q)] = append(c.times[kindOf(q)], d)
	c.mu.Unlock()
}

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

type timedRows struct {
	driver.Rows
	done func()
}

func (r timedRows) Close() error { err := r.Rows.Close(); r.done(); return err }

type timedBatch struct {
	driver.Batch
	done func()
}

func (b timedBatch) Send() error { err := b.Batch.Send(); b.done(); return err }

func (c *timedConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	start := time.Now()
	rows, err := c.Conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return timedRows{rows, func() { c.record(q, start) }}, nil
}

func (c *timedConn) PrepareBatch(ctx context.Context, q string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	start := time.Now()
	b, err := c.Conn.PrepareBatch(ctx, q, opts...)
	if err != nil {
		return nil, err
	}
	return timedBatch{b, func() { c.record(q, start) }}, nil
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
	tc := &timedConn{Conn: s.conn, times: map[string][]time.Duration{}}
	s.conn = tc
	b.ResetTimer()
	for i := range b.N {
		_, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: []string{"t1"}, IncidentID: "inc", Actor: "alice",
			ExpectedVersion: uint64(i), Tags: &[]string{fmt.Sprintf("t%d", i)}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s.conn = tc.Conn
	for kind, lat := range tc.times {
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
