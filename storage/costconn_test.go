package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// stmtCost is one statement a Store sent through a costConn and what it
// cost: the connection method that sent it (Query, QueryRow, Exec or
// PrepareBatch), its SQL with white space folded, the rows and bytes the
// server reported reading for it (its progress packets; an insert's are
// not asked for) and the time from sending it to the end of its result (a
// Query's Close, a QueryRow's Scan, an Exec's return, a batch's Send).
type stmtCost struct {
	method      string
	sql         string
	rows, bytes uint64
	took        time.Duration
}

// costConn records every statement a Store sends through its connection
// (watch puts one in place).
//
// With rounds set, it holds each statement until every statement of its
// round is in flight: rounds[i] is the number of statements of the i-th
// round. A read that waits for one statement before sending the next never
// fills its round; each statement is then let go after roundWait and the
// round reported in short.
type costConn struct {
	driver.Conn
	mu      sync.Mutex
	stmts   []*stmtCost
	rounds  []int
	gates   []chan struct{}
	arrived []int
	short   []string
}

// roundWait is how long a statement waits for the rest of its round: far
// longer than a loaded server takes to start the statements of a round.
const roundWait = 20 * time.Second

// watch puts a costConn in place of s's connection, holding statements in
// rounds (see costConn); stop puts the connection back.
func watch(s *Store, rounds ...int) (c *costConn, stop func()) {
	c = &costConn{Conn: s.conn, rounds: rounds, arrived: make([]int, len(rounds))}
	for range rounds {
		c.gates = append(c.gates, make(chan struct{}))
	}
	s.conn = c
	return c, func() { s.conn = c.Conn }
}

// sent returns a copy of the statements sent so far by the given methods
// (every statement without one), in the order they were sent.
func (c *costConn) sent(methods ...string) []stmtCost {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []stmtCost
	for _, st := range c.stmts {
		if len(methods) == 0 || slices.Contains(methods, st.method) {
			out = append(out, *st)
		}
	}
	return out
}

// begin records a statement, holds it until its round is in flight, and
// returns it with the function that ends it (the first call counts).
func (c *costConn) begin(method, q string) (*stmtCost, func()) {
	st := &stmtCost{method: method, sql: strings.Join(strings.Fields(q), " ")}
	c.mu.Lock()
	c.stmts = append(c.stmts, st)
	r, gate := c.arrive(len(c.stmts) - 1)
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-time.After(roundWait):
			c.mu.Lock()
			c.short = append(c.short, fmt.Sprintf("round %d: %d of %d statements in flight together", r+1, c.arrived[r], c.rounds[r]))
			c.mu.Unlock()
		}
	}
	start := time.Now()
	var once sync.Once
	return st, func() {
		once.Do(func() {
			d := time.Since(start)
			c.mu.Lock()
			st.took = d
			c.mu.Unlock()
		})
	}
}

// arrive counts the n-th statement (from 0) into its round and returns
// the round and its gate, nil past the last round. c.mu is held.
func (c *costConn) arrive(n int) (int, chan struct{}) {
	r, first := 0, 0
	for r < len(c.rounds) && n >= first+c.rounds[r] {
		first += c.rounds[r]
		r++
	}
	if r == len(c.rounds) {
		return r, nil
	}
	c.arrived[r]++
	if c.arrived[r] == c.rounds[r] {
		close(c.gates[r])
	}
	return r, c.gates[r]
}

// progress adds the server's progress packets for st to st.
func (c *costConn) progress(ctx context.Context, st *stmtCost) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithProgress(func(p *clickhouse.Progress) {
		c.mu.Lock()
		st.rows += p.Rows
		st.bytes += p.Bytes
		c.mu.Unlock()
	}))
}

func (c *costConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	st, done := c.begin("Query", q)
	rows, err := c.Conn.Query(c.progress(ctx, st), q, args...)
	if err != nil {
		done()
		return nil, err
	}
	return costRows{rows, done}, nil
}

func (c *costConn) QueryRow(ctx context.Context, q string, args ...any) driver.Row {
	st, done := c.begin("QueryRow", q)
	return costRow{c.Conn.QueryRow(c.progress(ctx, st), q, args...), done}
}

func (c *costConn) Exec(ctx context.Context, q string, args ...any) error {
	st, done := c.begin("Exec", q)
	defer done()
	return c.Conn.Exec(c.progress(ctx, st), q, args...)
}

func (c *costConn) PrepareBatch(ctx context.Context, q string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	_, done := c.begin("PrepareBatch", q)
	b, err := c.Conn.PrepareBatch(ctx, q, opts...)
	if err != nil {
		done()
		return nil, err
	}
	return costBatch{b, done}, nil
}

type costRows struct {
	driver.Rows
	done func()
}

func (r costRows) Close() error { err := r.Rows.Close(); r.done(); return err }

type costRow struct {
	driver.Row
	done func()
}

func (r costRow) Scan(dest ...any) error { err := r.Row.Scan(dest...); r.done(); return err }

func (r costRow) ScanStruct(dest any) error { err := r.Row.ScanStruct(dest); r.done(); return err }

type costBatch struct {
	driver.Batch
	done func()
}

func (b costBatch) Send() error { err := b.Batch.Send(); b.done(); return err }

// sqlOf joins the SQL of stmts with sep.
func sqlOf(stmts []stmtCost, sep string) string {
	var b strings.Builder
	for i, st := range stmts {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(st.sql)
	}
	return b.String()
}
