package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// benchEvents returns n CloudTrail-like events of one tenant.
func benchEvents(n int, raw bool) []ocsf.Event {
	evs := make([]ocsf.Event, n)
	for i := range evs {
		e := testEvent("tenant-a", fmt.Sprintf("bench-%08d", i), time.Duration(i)*time.Millisecond)
		if !raw {
			e.Raw = nil
		}
		evs[i] = e
	}
	return evs
}

// BenchmarkWriteEvents measures Store.Write of event rows into the local
// server, in batches of 20 000 (about one second of a busy partition).
// Run with -cpu 1 for the one-core number.
func BenchmarkWriteEvents(b *testing.B) {
	for _, raw := range []bool{false, true} {
		b.Run(fmt.Sprintf("raw=%v", raw), func(b *testing.B) {
			s := testStore(b)
			s.cfg.StoreRaw = raw
			benchWrite(b, s, benchEvents(20_000, raw))
		})
	}
}

// benchWrite writes evs as one batch b.N times, reporting allocations and
// the client's and server's CPU per row.
func benchWrite(b *testing.B, s *Store, evs []ocsf.Event) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		if err := s.Write(ctx, Batch{Events: evs}); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, b.N*len(evs))
}

// BenchmarkWriteBlockRows writes 3,000-row batches of events with raw
// records (a pipeline batch's size at a few thousand events a second) in
// native blocks of different sizes, the choice behind sendBlockRows:
// allocation per batch, and the client's and the server's CPU per row.
func BenchmarkWriteBlockRows(b *testing.B) {
	for _, rows := range []int{64, 128, 256, 1024, 4096} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			defer func(n int) { sendBlockRows = n }(sendBlockRows)
			sendBlockRows = rows
			benchWrite(b, testStore(b), benchEvents(3000, true))
		})
	}
}

// BenchmarkWriteEventsConcurrent runs two writers (as two pipeline
// partitions would), so one encodes while the other waits for the server.
func BenchmarkWriteEventsConcurrent(b *testing.B) {
	s := testStore(b)
	const batch = 20_000
	evs := [2][]ocsf.Event{benchEvents(batch, false), benchEvents(batch, false)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if err := s.Write(ctx, Batch{Events: evs[w]}); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	cpu.report(b, b.N*batch)
}

// BenchmarkEncodeEvents measures only the client-side encoding of events
// into columns (JSON, written block by block as an INSERT writes it, and
// raw records included), without the server.
func BenchmarkEncodeEvents(b *testing.B) {
	s := &Store{cfg: Default()}
	s.cfg.StoreRaw = true
	evs := benchEvents(1000, true)
	b.ReportAllocs()
	for b.Loop() {
		c, err := s.eventColumns(evs, 0)
		if err != nil {
			b.Fatal(err)
		}
		for lo := 0; lo < c.rows; lo += sendBlockRows {
			if err := c.fill(lo, min(lo+sendBlockRows, c.rows)); err != nil {
				b.Fatal(err)
			}
		}
		c.release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/row")
}

// cpuMeter measures the CPU time the benchmark process and, when its pid
// file is found, the local ClickHouse server spend per row. On a shared
// machine wall-clock rows/s swings with the load; CPU per row does not.
type cpuMeter struct {
	client, server time.Duration
	serverPID      string
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU reads utime+stime of pid from /proc (clock ticks of 10ms).
func serverCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func startCPU() *cpuMeter {
	m := &cpuMeter{client: processCPU()}
	if b, err := os.ReadFile(filepath.Join("..", ".local", "clickhouse", "clickhouse-server.pid")); err == nil {
		m.serverPID = strings.TrimSpace(string(b))
		m.server = serverCPU(m.serverPID)
	}
	return m
}

func (m *cpuMeter) report(b *testing.B, rows int) {
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	b.ReportMetric(float64((processCPU()-m.client).Nanoseconds())/float64(rows), "client-cpu-ns/row")
	if m.serverPID != "" {
		b.ReportMetric(float64((serverCPU(m.serverPID)-m.server).Nanoseconds())/float64(rows), "server-cpu-ns/row")
	}
}

// BenchmarkGetIncident measures Store.GetIncident of an incident shaped
// like the demo's attack chain (the console's first request): 30 alerts of
// two events each, written in 16 versions, read with its graph, alerts and
// first evidence page, among a busy tenant's other events and incidents
// (detailFixture, which TestGetIncidentCost reads too).
func BenchmarkGetIncident(b *testing.B) {
	s := testStore(b)
	detailFixture(b, s)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, err := s.GetIncident(ctx, []string{"t1"}, "inc-1", "")
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Alerts) != 30 || len(d.Evidence) != 60 {
			b.Fatalf("got %d alerts and %d evidence events, want 30 and 60", len(d.Alerts), len(d.Evidence))
		}
	}
}

// BenchmarkIncidentRowUnmergedHistory measures the read every PATCH makes
// (the incident's queue row: its latest version joined with its latest
// workflow version) of an incident with 2,000 workflow versions that
// ClickHouse has not merged (merges stopped; 20 parts of 100 versions)
// against one with a single version in the same table, alternating, and
// reports p50 and p99 of each and the rows the server read per read (the
// measure the machine's load does not blur). The workflow table's sort key
// is the incident, so merges fold its versions into one row per partition;
// this is the worst case between merges. Both reads read the same rows:
// 18.16 reads the one granule of every small unmerged part, whichever
// incident it holds, so the cost follows the table's merge backlog, not
// the incident's history:
//
//	MUSUBI_REQUIRE_CLICKHOUSE=1 go test ./storage/ -run '^$' -bench IncidentRowUnmergedHistory -benchtime 300x -count 6
func BenchmarkIncidentRowUnmergedHistory(b *testing.B) {
	const prior, perInsert = 2000, 100
	s := testStore(b)
	ctx := context.Background()
	a := testAlert("t1", "al", 0, "ev")
	write(b, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc-history", 1, a), testIncident("t1", "inc-fresh", 1, a)}})
	if err := s.conn.Exec(ctx, "SYSTEM STOP MERGES "+s.t(TableWorkflow)); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	version := func(id string, v uint64) casework.Incident {
		var in casework.Incident
		in.ID = id
		in.Workflow = casework.Workflow{Version: v, Status: "in_progress", Assignee: "alice", Tags: []string{fmt.Sprint("t", v)},
			UpdatedAt: now, UpdatedBy: "alice", AcknowledgedAt: now}
		return in
	}
	for from := uint64(1); from <= prior; from += perInsert {
		var ins []casework.Incident
		for v := from; v < from+perInsert; v++ {
			ins = append(ins, version("inc-history", v))
		}
		if err := s.insert(ctx, workflowColumns("t1", ins)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.insert(ctx, workflowColumns("t1", []casework.Incident{version("inc-fresh", 1)})); err != nil {
		b.Fatal(err)
	}
	var rows uint64
	if err := s.conn.QueryRow(ctx, "SELECT sum(rows) FROM system.parts WHERE active AND database = ? AND table = ?",
		s.cfg.Database, TableWorkflow).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if rows != prior+1 {
		b.Fatalf("the workflow table holds %d rows, want %d unmerged", rows, prior+1)
	}
	ids, want := []string{"inc-history", "inc-fresh"}, []uint64{prior, 1}
	lat := [][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	var read [2]uint64
	b.ResetTimer()
	for range b.N {
		for k, id := range ids {
			start := time.Now()
			pctx := clickhouse.Context(ctx, clickhouse.WithProgress(func(p *clickhouse.Progress) { read[k] += p.Rows }))
			in, err := s.IncidentRow(pctx, []string{"t1"}, id)
			lat[k] = append(lat[k], time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if in.Workflow.Version != want[k] {
				b.Fatalf("%s: got workflow version %d, want %d", id, in.Workflow.Version, want[k])
			}
		}
	}
	b.StopTimer()
	for k, name := range []string{"history", "fresh"} {
		slices.Sort(lat[k])
		q := func(p float64) float64 {
			return float64(lat[k][min(len(lat[k])-1, int(p*float64(len(lat[k]))))].Microseconds()) / 1000
		}
		b.ReportMetric(q(0.50), name+"-p50-ms")
		b.ReportMetric(q(0.99), name+"-p99-ms")
		b.ReportMetric(float64(read[k])/float64(b.N), name+"-rows-read")
	}
}
