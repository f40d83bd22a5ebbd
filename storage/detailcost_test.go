package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// queryCost is what one query cost the server: the rows and bytes it read
// (its progress packets) and the time from sending it to closing its rows.
type queryCost struct {
	sql         string
	rows, bytes uint64
	took        time.Duration
}

// costConn counts the queries made through a store's connection and what
// each read.
// With rounds set, it holds each query until every query of its round is
// in flight: rounds[i] is the number of queries of the i-th round. A read
// that waits for one query before making the next never fills its round,
// and each query is then let go after roundWait and the round reported.
type costConn struct {
	driver.Conn
	mu      sync.Mutex
	queries []*queryCost
	rounds  []int
	gates   []chan struct{}
	arrived []int
	short   []string
}

// roundWait is how long a query waits for the rest of its round: far
// longer than a loaded server takes to start the queries of a round.
const roundWait = 20 * time.Second

// hold blocks the n-th query (from 0) until its round is complete.
func (c *costConn) hold(n int) {
	r, first := 0, 0
	for r < len(c.rounds) && n >= first+c.rounds[r] {
		first += c.rounds[r]
		r++
	}
	if r == len(c.rounds) {
		return
	}
	c.arrived[r]++
	gate := c.gates[r]
	if c.arrived[r] == c.rounds[r] {
		close(gate)
	}
	c.mu.Unlock()
	defer c.mu.Lock()
	select {
	case <-gate:
	case <-time.After(roundWait):
		c.mu.Lock()
		c.short = append(c.short, fmt.Sprintf("round %d: %d of %d queries in flight together", r+1, c.arrived[r], c.rounds[r]))
		c.mu.Unlock()
	}
}

type costRows struct {
	driver.Rows
	c     *queryCost
	start time.Time
	once  sync.Once
}

func (r *costRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(func() { r.c.took = time.Since(r.start) })
	return err
}

func (c *costConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	qc := &queryCost{sql: strings.Join(strings.Fields(q), " ")}
	c.mu.Lock()
	c.queries = append(c.queries, qc)
	c.hold(len(c.queries) - 1)
	c.mu.Unlock()
	ctx = clickhouse.Context(ctx, clickhouse.WithProgress(func(p *clickhouse.Progress) {
		c.mu.Lock()
		qc.rows += p.Rows
		qc.bytes += p.Bytes
		c.mu.Unlock()
	}))
	start := time.Now()
	rows, err := c.Conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return &costRows{Rows: rows, c: qc, start: start}, nil
}

func (c *costConn) take() []*queryCost {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queries
	c.queries = nil
	return q
}

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
	rounds := []int{3, 4}
	cc := &costConn{Conn: s.conn, rounds: rounds, arrived: make([]int, len(rounds))}
	for range rounds {
		cc.gates = append(cc.gates, make(chan struct{}))
	}
	s.conn = cc
	ctx := context.Background()
	d, err := s.GetIncident(ctx, []string{"t1"}, "inc-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Alerts) != 30 || len(d.Evidence) != 60 || len(d.Nodes) != 31 || len(d.Edges) != 30 {
		t.Fatalf("got %d alerts, %d evidence events, %d nodes, %d edges; want 30, 60, 31, 30", len(d.Alerts), len(d.Evidence), len(d.Nodes), len(d.Edges))
	}
	qs := cc.take()
	var rows, bytes uint64
	for _, q := range qs {
		rows, bytes = rows+q.rows, bytes+q.bytes
		t.Logf("%6.1f ms %7d rows %9d bytes  %.150s", float64(q.took.Microseconds())/1000, q.rows, q.bytes, q.sql)
	}
	t.Logf("%d queries, %d rows, %d bytes read", len(qs), rows, bytes)
	if len(qs) != 7 {
		t.Errorf("one detail read made %d queries, want 7", len(qs))
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
		t.Errorf("the detail read waits for one query before making the next: %s", sh)
	}
}
