package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest/vpcflow"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Batch is everything one pipeline step derived from a set of input records.
// Write stores it whole; only then may the caller commit the input offsets.
type Batch struct {
	Events      []ocsf.Event
	Alerts      []alert.Alert
	Incidents   []incident.Incident
	DeadLetters []DeadLetter
	// Inventory is the asset inventory the batch's AWS Config events
	// carry (pipeline.InventoryOf), stored in the same Write as the events.
	Inventory []InventoryRow
	// Links are the correlator's link signals (correlate.Result.Links),
	// stored in TableLinkSignals for a restart to read back.
	Links []LinkSignal
	// Stages are the plain events sequence rules' stages kept
	// (correlate.Result.Stages), stored in TableStageInputs for a restart
	// to read back.
	Stages []StageInput
}

// Rows is the number of top-level rows in b (events, alerts, incidents,
// dead letters, inventory items, link signals and stage inputs); the graph
// rows of incidents are not counted.
func (b Batch) Rows() int {
	return len(b.Events) + len(b.Alerts) + len(b.Incidents) + len(b.DeadLetters) + len(b.Inventory) + len(b.Links) + len(b.Stages)
}

// DeadLetter is a record that can never be processed. Its id is (topic,
// partition, offset); Time should be the record's own timestamp, so a
// replayed dead letter lands in the same daily partition and folds.
type DeadLetter struct {
	TenantUID, Source, Topic string
	Partition                int
	Offset                   int64
	// Record is the failed record's index within the message (-1 when the
	// whole message failed), so several bad records of one message are
	// kept apart.
	Record        int
	Raw           []byte
	Reason, Error string
	Time          time.Time
}

// Raw encodings of the raw columns (raw_encoding). Musubi writes RawNone:
// the record as it came, left to ClickHouse's block compression, which
// compresses a block of similar records together (the mix's events: 195
// bytes a record on disk, against 516 for each record zstd-compressed on
// its own, and no client CPU for it). RawZstd rows, each record
// compressed alone, were written by earlier versions and are still read.
const (
	RawNone = ""
	RawZstd = "zstd"
)

// columns is one table's rows in column order: names[i] is the column of
// values[i], a typed slice with one element per row.
type columns struct {
	table  string
	names  []string
	values []any
	rows   int
	// arena backs string values of the table (eventColumns) without a
	// copy; release hands it back once no INSERT reads them.
	arena *arenaBufs
	// fill, when set, makes the values of rows [lo, hi) that are written
	// only as their block is sent (the events' JSON documents), each
	// block's over the same small arena: a batch's documents are never in
	// memory all at once. An error is the rows' own (never transient).
	fill func(lo, hi int) error
}

// release returns the table's arena to the pool. The values must not be
// read after it.
func (c *columns) release() {
	if c.arena != nil {
		arenas.Put(c.arena)
		c.arena = nil
	}
}

func (c *columns) insertSQL(s *Store) string {
	return "INSERT INTO " + s.t(c.table) + " (" + strings.Join(c.names, ", ") + ")"
}

// Write stores b: one INSERT per non-empty table, each retried with
// exponential back-off while the error is transient, until ctx is done.
// It returns nil only when every row is stored. A permanent error (for
// example a schema mismatch) is returned at once, wrapped in ErrPermanent;
// the tables inserted before it stay inserted, which is harmless because
// every row has a deterministic id and a repeated write folds. An event
// whose JSON cannot be written is found as its block is filled, after the
// INSERT's earlier blocks went out; the INSERT is abandoned, and the
// server may keep those blocks' rows, as after any failure mid-INSERT.
//
// Write reads the raw bytes of b's events and dead letters in place,
// without a copy: they must not change until it returns.
func (s *Store) Write(ctx context.Context, b Batch) error {
	tables, err := s.encode(b)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range tables {
			c.release()
		}
	}()
	if len(b.Incidents) > 0 {
		// Numbers first: an incident is never visible without one for
		// longer than its first write takes.
		if err := s.assignNumbers(ctx, b.Incidents); err != nil {
			return err
		}
	}
	for _, c := range tables {
		if c.rows == 0 {
			continue
		}
		if err := s.insert(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// encode converts a batch into column slices, once, so that every retry
// sends the identical rows.
func (s *Store) encode(b Batch) ([]*columns, error) {
	now := time.Now().UnixMilli()
	out := make([]*columns, 0, 8)
	if len(b.Events) > 0 {
		c, err := s.eventColumns(b.Events, now)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(b.Alerts) > 0 {
		c, err := alertColumns(b.Alerts, now)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(b.Incidents) > 0 {
		cs, err := incidentColumns(b.Incidents, now)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	if len(b.DeadLetters) > 0 {
		out = append(out, s.deadLetterColumns(b.DeadLetters))
	}
	if len(b.Inventory) > 0 {
		c, err := inventoryColumns(b.Inventory, now)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(b.Links) > 0 {
		out = append(out, linkSignalColumns(b.Links, now))
	}
	if len(b.Stages) > 0 {
		out = append(out, stageInputColumns(b.Stages, now))
	}
	return out, nil
}

// insert sends one table's rows, retrying transient failures.
func (s *Store) insert(ctx context.Context, c *columns) error {
	err := s.retry(ctx, c.table, fmt.Sprintf("insert %d rows into %s", c.rows, c.table), func(ctx context.Context) error {
		start := time.Now()
		if err := s.sendBlocks(ctx, c); err != nil {
			return err
		}
		s.metrics.seconds.Observe(time.Since(start).Seconds())
		return nil
	})
	if err == nil {
		s.metrics.rows.WithLabelValues(c.table).Add(float64(c.rows))
	}
	return err
}

// retry runs one step of a write (an INSERT, or the lookup that precedes
// claiming incident numbers) until it succeeds, fails permanently or ctx
// ends. Transient errors are retried with exponential back-off and full
// jitter; a permanent one is returned at once, wrapped in ErrPermanent.
// Every step a write takes goes through here, so a database outage at
// any step is waited out, never reported as a failed batch.
func (s *Store) retry(ctx context.Context, table, step string, op func(context.Context) error) error {
	backoff := s.cfg.RetryMin
	for attempt := 0; ; attempt++ {
		err := s.attempt(ctx, step, op)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			s.metrics.errors.WithLabelValues(table, "canceled").Inc()
			return fmt.Errorf("%s: %w (last error: %v)", step, ctx.Err(), err)
		}
		if !Transient(err) {
			s.metrics.errors.WithLabelValues(table, "permanent").Inc()
			s.log.Error("write step failed permanently", "step", step, "err", err)
			return fmt.Errorf("%s: %w: %w", step, ErrPermanent, err)
		}
		s.metrics.errors.WithLabelValues(table, "transient").Inc()
		if attempt == 0 || attempt%10 == 0 {
			s.log.Warn("write step failed, retrying", "step", step, "attempt", attempt+1, "err", err)
		}
		// Full jitter keeps many writers from retrying in lock step.
		sleep := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			s.metrics.errors.WithLabelValues(table, "canceled").Inc()
			return fmt.Errorf("%s: %w (last error: %v)", step, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(backoff*2, s.cfg.RetryMax)
		s.metrics.retries.Inc()
	}
}

// attemptHook, when set by tests, runs before each attempt of a write
// step (done false) and after a successful one (done true), and may fail
// it: after, it simulates an acknowledgement lost on the way back.
var attemptHook func(step string, done bool) error

// attempt runs op once, bounded by the attempt timeout.
func (s *Store) attempt(ctx context.Context, step string, op func(context.Context) error) error {
	if attemptHook != nil {
		if err := attemptHook(step, false); err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	if err := op(actx); err != nil {
		return err
	}
	if attemptHook != nil {
		return attemptHook(step, true)
	}
	return nil
}

// sendBlockRows is the number of rows per native-protocol block. Every
// INSERT starts with empty column buffers (clickhouse-go's PrepareBatch
// offers no way to size or keep them) that grow by doubling while its
// first block is appended, and later blocks reuse them: a smaller block
// makes that growth, and the buffers, smaller. The server gathers the
// blocks of one INSERT into one part whatever their size. For a 3,000-row
// batch of events with raw records (BenchmarkWriteBlockRows), blocks of
// 256 rows allocate 3.0 MB where 1,024 rows allocate 8.9 MB and 4,096
// rows 25.3 MB, for about 15% less client CPU; 128 and 64 rows allocate
// little less (2.2, 2.0 MB) in two and four times the blocks.
var sendBlockRows = 256

func (s *Store) sendBlocks(ctx context.Context, c *columns) error {
	settings := clickhouse.Settings{"max_execution_time": int(s.cfg.MaxExecutionTime.Seconds())}
	if s.dialect.cluster != "" {
		// Return only once the shards hold the rows, not a local spool.
		settings["insert_distributed_sync"] = 1
	}
	batch, err := s.conn.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithSettings(settings)), c.insertSQL(s))
	if err != nil {
		return err
	}
	// Large inserts go out as several blocks of one INSERT: the column
	// buffers stay small and are reused, and the server decodes one block
	// while the next is being appended (measured with BenchmarkWriteEvents).
	var cols []column.Interface
	most := make([]int, len(c.values)) // this INSERT's largest block of each String column
	for lo := 0; lo < c.rows; lo += sendBlockRows {
		hi := min(lo+sendBlockRows, c.rows)
		if c.fill != nil {
			if err := c.fill(lo, hi); err != nil {
				_ = batch.Abort()
				return err
			}
		}
		blockBytes(most, c.values, lo, hi)
		if lo == 0 {
			cols = batch.Columns()
			reserveStrings(cols, c.values, s.blocks.want(c.table, most, hi < c.rows))
		}
		for i, v := range c.values {
			if err := appendRows(batch.Column(i), lowCardinality(cols, i), v, lo, hi, c.rows); err != nil {
				_ = batch.Abort()
				return &encodeError{column: c.names[i], err: err}
			}
		}
		if hi < c.rows {
			if err := batch.Flush(); err != nil {
				_ = batch.Abort()
				return err
			}
		}
	}
	if err := batch.Send(); err != nil {
		return err
	}
	s.blocks.keep(c.table, most)
	return nil
}

// blockBytes raises most[i] to the bytes of String column i's rows [lo,
// hi) where they are more.
func blockBytes(most []int, values []any, lo, hi int) {
	for i, v := range values {
		if ss, ok := v.([]string); ok {
			n := 0
			for _, s := range ss[lo:hi] {
				n += len(s)
			}
			most[i] = max(most[i], n)
		}
	}
}

// blockMemo remembers, for each table, the bytes of the largest block of
// each String column in its last INSERTs. The events INSERT's rows come
// sorted by the table's key (sortOrder), so its blocks differ: a block of
// flow records holds no documents, one of CloudTrail records 2 KB of
// document and 1.5 KB of raw record a row. Sized for the first block, the
// buffers grew again for a larger one later (600 bytes an event more
// allocated on the benchmark's mix than before the rows were sorted).
type blockMemo struct {
	mu   sync.Mutex
	most map[string][]int
}

// want returns the bytes to reserve for each String column of an INSERT
// into table whose first block holds first[i]: first itself when no block
// follows (more false), else, in a new slice, the larger of first and
// what the table's blocks held before, that at most maxZeroBuf (a larger
// block grows its buffer as it is appended).
func (m *blockMemo) want(table string, first []int, more bool) []int {
	if !more {
		return first
	}
	out := slices.Clone(first)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, n := range m.most[table] {
		if i < len(out) {
			out[i] = max(out[i], min(n, maxZeroBuf))
		}
	}
	return out
}

// keep records the largest blocks of an INSERT into table. What was
// remembered shrinks by an eighth an INSERT, so that one large block does
// not size every INSERT after it.
func (m *blockMemo) keep(table string, most []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.most == nil {
		m.most = map[string][]int{}
	}
	old := m.most[table]
	if len(old) != len(most) {
		old = make([]int, len(most))
		m.most[table] = old
	}
	for i, n := range most {
		old[i] = max(n, old[i]-old[i]/8)
	}
}

// reserveStrings sizes the buffer of each String column of a new INSERT
// for want[i] bytes, the largest block expected, with an eighth to spare;
// the blocks reuse the buffer. Every INSERT's columns are new
// (clickhouse-go's PrepareBatch), and a buffer grown by appending its rows
// one by one reallocated and copied itself about five times its size:
// the engine's largest allocation (16% of its bytes over a run of the
// benchmark, mostly the event documents and raw records). clickhouse-go
// offers no way to size a column, so one row of the wanted length (read
// from zeroes) is appended and the column reset, which keeps its buffer.
func reserveStrings(cols []column.Interface, values []any, want []int) {
	for i, v := range values {
		if _, ok := v.([]string); !ok || i >= len(cols) {
			continue
		}
		col, ok := cols[i].(*column.String)
		if !ok {
			continue
		}
		n := want[i]
		if n += n / 8; n < minReserve {
			continue
		}
		_ = col.AppendRow(unsafe.String(&zeroes(n)[0], n))
		col.Reset()
	}
}

// minReserve is the smallest buffer reserveStrings sizes: a smaller one
// grows in few steps.
const minReserve = 16 << 10

// zeroBuf is read-only zeroes that reserveStrings appends from, grown to
// the largest length asked for up to maxZeroBuf; a longer one is made for
// the call and not kept (a block of large raw records).
var zeroBuf atomic.Pointer[[]byte]

const maxZeroBuf = 4 << 20

func zeroes(n int) []byte {
	if p := zeroBuf.Load(); p != nil && len(*p) >= n {
		return *p
	}
	b := make([]byte, n)
	if n <= maxZeroBuf {
		zeroBuf.Store(&b)
	}
	return b
}

// lowCardinality reports whether column i is a LowCardinality column.
func lowCardinality(cols []column.Interface, i int) bool {
	if i >= len(cols) {
		return false
	}
	_, ok := cols[i].(*column.LowCardinality)
	return ok
}

// appendRows appends rows [lo, hi) of the column values v (a typed slice
// of length rows). Array(String) columns, and string columns that are
// LowCardinality (lc), go row by row: clickhouse-go's slice append walks
// a [][]string, and a LowCardinality column's any slice, by reflection,
// boxing every element through reflect.Value (3% of the engine's CPU for
// the events' LowCardinality columns); its row append takes the value
// directly, and is what the slice append calls for each element.
func appendRows(col driver.BatchColumn, lc bool, v any, lo, hi, rows int) error {
	if ss, ok := v.([][]string); ok {
		for _, row := range ss[lo:hi] {
			if err := col.AppendRow(row); err != nil {
				return err
			}
		}
		return nil
	}
	if ss, ok := v.([]string); ok && lc {
		for _, s := range ss[lo:hi] {
			if err := col.AppendRow(s); err != nil {
				return err
			}
		}
		return nil
	}
	if lo > 0 || hi < rows {
		v = reflect.ValueOf(v).Slice(lo, hi).Interface()
	}
	return col.Append(v)
}

// encodeError is a client-side conversion failure: the rows do not fit the
// table's columns. Never transient.
type encodeError struct {
	column string
	err    error
}

func (e *encodeError) Error() string { return "column " + e.column + ": " + e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// transientCodes are ClickHouse server error codes worth retrying: the
// server is overloaded, restarting, or a replica/ZooKeeper is away.
var transientCodes = map[int32]bool{
	3:   true, // UNEXPECTED_END_OF_FILE
	159: true, // TIMEOUT_EXCEEDED
	164: true, // READONLY
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203: true, // NO_FREE_CONNECTION
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	236: true, // ABORTED
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	279: true, // ALL_CONNECTION_TRIES_FAILED
	285: true, // TOO_FEW_LIVE_REPLICAS
	319: true, // UNKNOWN_STATUS_OF_INSERT
	425: true, // SYSTEM_ERROR
	999: true, // KEEPER_EXCEPTION
}

// Transient reports whether err is worth retrying: network failures,
// timeouts of one attempt, and the server errors of overload or restart.
// Everything else — schema mismatch, type errors, syntax — is permanent.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var enc *encodeError
	if errors.As(err, &enc) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return transientCodes[ex.Code]
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), // one attempt timed out
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.Is(err, clickhouse.ErrConnectionClosed):
		return true
	}
	return false
}

// eventColumns encodes events. The event is kept whole as OCSF JSON
// (event_json) and its most-hunted attributes are lifted into columns; a
// VPC flow record that a vpcflow.Row holds is kept as the Row's typed
// columns instead, with event_json empty.
// The rows are written block by block as the INSERT sends them (see
// eventRows.fill); only what no block can fix is checked here.
func (s *Store) eventColumns(evs []ocsf.Event, now int64) (*columns, error) {
	for i := range evs {
		if evs[i].Metadata.UID == "" {
			return nil, fmt.Errorf("%w: event %d has no metadata.uid", ErrPermanent, i)
		}
	}
	n := len(evs)
	ab := arenas.Get().(*arenaBufs)
	// The column slices are the last batch's when they are large enough
	// (a 5,000-row batch's are 2.4 MB).
	sl := slab{old: ab.cols, used: ab.cols[:0]}
	r := &eventRows{evs: evs, ab: ab, now: now, storeRaw: s.cfg.StoreRaw}
	r.order = sortOrder(evs, ab.order)
	ab.order = r.order
	r.tenant, r.uid, r.status, r.logName, r.product = take[string](&sl, n), take[string](&sl, n), take[string](&sl, n), take[string](&sl, n), take[string](&sl, n)
	r.account, r.region, r.apiSvc, r.op = take[string](&sl, n), take[string](&sl, n), take[string](&sl, n), take[string](&sl, n)
	r.actorUID, r.actorName, r.session, r.key = take[string](&sl, n), take[string](&sl, n), take[string](&sl, n), take[string](&sl, n)
	r.srcIP, r.dstIP, r.devUID, r.devHost = take[string](&sl, n), take[string](&sl, n), take[string](&sl, n), take[string](&sl, n)
	r.msg, r.js, r.raw, r.rawEnc = take[string](&sl, n), take[string](&sl, n), take[string](&sl, n), take[string](&sl, n)
	r.ts = take[time.Time](&sl, n)
	r.tms, r.ins = take[int64](&sl, n), take[int64](&sl, n)
	r.class, r.typ = take[uint32](&sl, n), take[uint32](&sl, n)
	r.act = take[int32](&sl, n)
	r.sev = take[uint8](&sl, n)
	r.ents = take[[]string](&sl, n)
	f := &r.flow
	f.version, f.logStatus, f.zone = take[string](&sl, n), take[string](&sl, n), take[string](&sl, n)
	f.iface, f.instance, f.vpc, f.subnet = take[string](&sl, n), take[string](&sl, n), take[string](&sl, n), take[string](&sl, n)
	f.action, f.direction, f.ipVersion = take[uint8](&sl, n), take[uint8](&sl, n), take[uint8](&sl, n)
	f.srcPort, f.dstPort = take[uint16](&sl, n), take[uint16](&sl, n)
	f.protocol, f.tcpFlags, f.packets, f.bytes, f.end = take[int64](&sl, n), take[int64](&sl, n), take[int64](&sl, n), take[int64](&sl, n), take[int64](&sl, n)
	ab.cols = sl.used
	return &columns{table: TableEvents, rows: n, arena: ab, fill: r.fill,
		names: []string{"tenant_uid", "event_uid", "time", "time_ms", "class_uid", "activity_id", "type_uid", "severity_id",
			"status", "log_name", "product", "account_uid", "region", "api_service", "operation",
			"actor_user_uid", "actor_user_name", "actor_session_uid", "access_key_uid", "src_ip", "dst_ip",
			"device_uid", "device_hostname", "entities", "message", "event_json", "raw", "raw_encoding", "inserted_ms",
			"flow_version", "flow_log_status", "flow_action", "flow_direction", "flow_zone",
			"flow_interface", "flow_instance", "flow_vpc", "flow_subnet", "flow_src_port", "flow_dst_port",
			"flow_protocol", "flow_tcp_flags", "flow_ip_version", "flow_packets", "flow_bytes", "flow_end_ms"},
		values: []any{r.tenant, r.uid, r.ts, r.tms, r.class, r.act, r.typ, r.sev,
			r.status, r.logName, r.product, r.account, r.region, r.apiSvc, r.op,
			r.actorUID, r.actorName, r.session, r.key, r.srcIP, r.dstIP,
			r.devUID, r.devHost, r.ents, r.msg, r.js, r.raw, r.rawEnc, r.ins,
			f.version, f.logStatus, f.action, f.direction, f.zone,
			f.iface, f.instance, f.vpc, f.subnet, f.srcPort, f.dstPort,
			f.protocol, f.tcpFlags, f.ipVersion, f.packets, f.bytes, f.end},
	}, nil
}

// eventRows is the events INSERT's column slices, one value per row, and
// what fill writes them from.
type eventRows struct {
	evs []ocsf.Event
	// order is the rows' events in the table's sort order (sortOrder):
	// row i is evs[order[i]].
	order    []int32
	ab       *arenaBufs
	now      int64
	storeRaw bool

	tenant, uid, status, logName, product, account, region, apiSvc, op []string
	actorUID, actorName, session, key, srcIP, dstIP, devUID, devHost   []string
	msg, js, raw, rawEnc                                               []string
	ts                                                                 []time.Time
	tms, ins                                                           []int64
	class, typ                                                         []uint32
	act                                                                []int32
	sev                                                                []uint8
	ents                                                               [][]string
	flow                                                               flowColumns
}

// flowColumns are the typed columns of a flow record's row (vpcflow.Row),
// at their zero values in every other row.
type flowColumns struct {
	version, logStatus, zone, iface, instance, vpc, subnet []string
	action, direction, ipVersion                           []uint8
	srcPort, dstPort                                       []uint16
	protocol, tcpFlags, packets, bytes, end                []int64
}

// set writes row i.
func (f *flowColumns) set(i int, r *vpcflow.Row) {
	f.version[i], f.logStatus[i], f.zone[i] = r.Version, r.LogStatus, r.Zone
	f.iface[i], f.instance[i], f.vpc[i], f.subnet[i] = r.Interface, r.Instance, r.VPC, r.Subnet
	f.action[i], f.direction[i], f.ipVersion[i] = r.Action, r.Direction, r.IPVersion
	f.srcPort[i], f.dstPort[i] = r.SrcPort, r.DstPort
	f.protocol[i], f.tcpFlags[i], f.packets[i], f.bytes[i], f.end[i] = r.Protocol, r.TCPFlags, r.Packets, r.Bytes, r.End
}

// fill writes rows [lo, hi), one block, just before the INSERT sends it.
// The OCSF JSON documents and the entity keys ("kind:value") are appended
// to arenas that every block reuses from their start (clickhouse-go has
// copied the last block's values into its own buffers by then), and each
// value is a string over them made without a copy (unsafe.String), cut
// once the block is written since an arena may move while it grows.
// Writing a batch's documents at once kept them all in memory until the
// INSERT ended (27 MB for 5,000 events of the benchmark's mix, held by
// the pool between batches too); a block's are about 1.4 MB, and each
// event is read once, in one pass. The raw records are strings over the
// events' own bytes, which do not change while Write runs (see Write);
// copied into an arena they were a second copy of the batch's records.
// ocsf.Event.AppendJSON writes what encoding/json would, without
// reflection (BenchmarkEncodeEvents). A retry writes the rows again, byte
// for byte the same.
func (r *eventRows) fill(lo, hi int) error {
	ab := r.ab
	// Size the arena from the bytes per row of the last block rather than
	// doubling it from nothing whenever the pool was emptied by a GC.
	if want := int(arenaRowBytes.Load()) * (hi - lo + (hi-lo)/8); cap(ab.main) < want {
		ab.main = make([]byte, 0, want)
	}
	arena, entArena := ab.main[:0], ab.ents[:0]
	entEnd := ab.entEnd[:0] // entEnd[k] ends the k-th key in entArena
	jsEnd := ab.jsEnd[:0]   // jsEnd[i-lo] ends row i's document in arena
	rowEnt := ab.rowEnt[:0] // rowEnt[i-lo] ends row i's keys in entEnd
	var err error
	for i := lo; i < hi; i++ {
		e := &r.evs[r.order[i]]
		r.tenant[i], r.uid[i] = e.Metadata.TenantUID, e.Metadata.UID
		r.ts[i], r.tms[i], r.ins[i] = msTime(e.Time), e.Time, r.now
		r.class[i], r.typ[i], r.act[i], r.sev[i] = uint32(e.ClassUID), uint32(e.TypeUID), int32(e.ActivityID), clampU8(e.SeverityID)
		r.status[i], r.logName[i], r.product[i] = e.Status, e.Metadata.LogName, e.Metadata.Product.Name
		r.account[i], r.region[i] = e.Cloud.Account.UID, e.Cloud.Region
		r.apiSvc[i], r.op[i] = e.API.Service.Name, e.API.Operation
		r.actorUID[i], r.actorName[i] = e.Actor.User.UID, e.Actor.User.Name
		r.session[i] = e.Actor.Session.UID
		r.key[i] = e.Actor.User.CredentialUID
		if r.key[i] == "" {
			r.key[i] = e.Actor.Session.CredentialUID
		}
		r.srcIP[i], r.dstIP[i] = e.SrcEndpoint.IP, e.DstEndpoint.IP
		r.devUID[i], r.devHost[i] = e.Device.UID, e.Device.Hostname
		r.msg[i] = e.Message
		if r.storeRaw {
			// As it came: the native protocol's LZ4 and the part's
			// compression see a block of records and so find what one
			// record shares with the next, which compressing each
			// record alone cannot (see RawNone).
			r.raw[i] = bytesString(e.Raw)
		}
		for _, o := range e.Observables {
			entArena = appendEntityKey(entArena, o)
			entEnd = append(entEnd, len(entArena))
		}
		rowEnt = append(rowEnt, len(entEnd))
		// A flow record a Row holds is its typed columns, and no
		// document: the reader builds the document back (scanEvidence).
		row, compact := vpcflow.RowOf(e)
		r.flow.set(i, &row)
		if !compact {
			if arena, err = e.AppendJSON(arena); err != nil {
				return &encodeError{column: "event_json", err: fmt.Errorf("event %s: %w", e.Metadata.UID, err)}
			}
		}
		jsEnd = append(jsEnd, len(arena))
	}
	all := bytesString(arena)
	for i, start := lo, 0; i < hi; i++ {
		r.js[i], start = all[start:jsEnd[i-lo]], jsEnd[i-lo]
	}
	entAll := bytesString(entArena)
	keys := slices.Grow(ab.keys[:0], len(entEnd))[:len(entEnd)]
	for k, start := 0, 0; k < len(entEnd); k++ {
		keys[k], start = entAll[start:entEnd[k]], entEnd[k]
	}
	for i, start := lo, 0; i < hi; i++ {
		end := rowEnt[i-lo]
		r.ents[i], start = keys[start:end:end], end
	}
	ab.main, ab.ents, ab.entEnd, ab.jsEnd, ab.rowEnt, ab.keys = arena[:0], entArena[:0], entEnd[:0], jsEnd[:0], rowEnt[:0], keys[:0]
	arenaRowBytes.Store(int64(len(arena) / max(hi-lo, 1)))
	return nil
}

// sortOrder returns the indexes of evs in the events table's ORDER BY
// order (tenant_uid, class_uid, time, event_uid), in buf's array when it
// is large enough. ClickHouse sorts the rows of every part it writes by
// that key; rows that come sorted it does not sort again, and that sort
// (a copy of every String column, event_json and raw above all) was 6–15
// µs of the server's ~50 µs of CPU an event row on 18.16. The events are
// sorted by index, without moving them, and always into the same order: a
// retry writes the same rows.
func sortOrder(evs []ocsf.Event, buf []int32) []int32 {
	order := slices.Grow(buf[:0], len(evs))[:len(evs)]
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &evs[i], &evs[j]
		if c := strings.Compare(a.Metadata.TenantUID, b.Metadata.TenantUID); c != 0 {
			return c
		}
		if c := cmp.Compare(uint32(a.ClassUID), uint32(b.ClassUID)); c != 0 {
			return c
		}
		if c := cmp.Compare(msSecond(a.Time), msSecond(b.Time)); c != 0 {
			return c
		}
		if c := strings.Compare(a.Metadata.UID, b.Metadata.UID); c != 0 {
			return c
		}
		return cmp.Compare(i, j) // a batch may hold an event twice
	})
	return order
}

// bytesString is b as a string without a copy, for a column value that
// clickhouse-go copies into its block while b does not change.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// arenaBufs are what the events INSERT encodes its rows into, reused
// across batches: the typed column slices of the last batch, and what
// eventRows.fill writes a block into (the byte arenas of the JSON
// documents and of the entity keys, where each document and key ends, and
// the keys as strings).
type arenaBufs struct {
	cols                  []any
	order                 []int32
	main, ents            []byte
	entEnd, jsEnd, rowEnt []int
	keys                  []string
}

// slab hands out a table's column slices, reusing the last batch's (taken
// in the same order) where they are large enough. used becomes the next
// batch's old.
type slab struct{ old, used []any }

// take returns the next column slice of n zero values.
func take[T any](s *slab, n int) []T {
	var v []T
	if i := len(s.used); i < len(s.old) {
		if o, ok := s.old[i].([]T); ok && cap(o) >= n {
			v = o[:n]
			clear(v)
		}
	}
	if v == nil {
		v = make([]T, n)
	}
	s.used = append(s.used, v)
	return v
}

var arenas = sync.Pool{New: func() any { return new(arenaBufs) }}

// arenaRowBytes is the arena bytes per event row of the last batch.
var arenaRowBytes atomic.Int64

func alertColumns(as []alert.Alert, now int64) (*columns, error) {
	n := len(as)
	var (
		tenant, id, ruleID, ruleVer, title, stage, account, region, source, obs, summary = mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n)
		ts                                                                               = mk[time.Time](n)
		tms, ins, firstMS, lastMS                                                        = mk[int64](n), mk[int64](n), mk[int64](n), mk[int64](n)
		class, count                                                                     = mk[uint32](n), mk[uint32](n)
		sev, corr, shadow                                                                = mk[uint8](n), mk[uint8](n), mk[uint8](n)
		tactics, techs, ents, evIDs                                                      = mk[[]string](n), mk[[]string](n), mk[[]string](n), mk[[]string](n)
		oTopics, oParts, oOffsets                                                        = mk[[]string](n), mk[[]int32](n), mk[[]int64](n)
		unheldSev, unheldSummary                                                         = mk[uint8](n), mk[string](n)
	)
	for i := range as {
		a := &as[i]
		if a.ID == "" {
			return nil, fmt.Errorf("%w: alert %d has no id", ErrPermanent, i)
		}
		b, err := json.Marshal(a.Entities)
		if err != nil {
			return nil, fmt.Errorf("%w: encode alert %s: %w", ErrPermanent, a.ID, err)
		}
		tenant[i], id[i], ruleID[i], ruleVer[i], title[i] = a.TenantUID, a.ID, a.RuleID, a.RuleVersion, a.Title
		// The sort key holds the hour, not the exact time: a folded alert
		// rewritten in place keeps its row even when an earlier repeat
		// moves its first-seen time (fold windows divide an hour).
		ts[i], tms[i], ins[i], class[i] = msTime(a.Time-a.Time%hourMS), a.Time, now, ocsf.ClassDetectionFinding
		sev[i], stage[i] = clampU8(a.Severity), a.Stage
		tactics[i], techs[i] = nonNil(a.Tactics), nonNil(a.Techniques)
		account[i], region[i], source[i] = a.AccountUID, a.Region, a.Source
		ents[i], obs[i], evIDs[i] = entityKeys(a.Entities), string(b), nonNil(a.EventIDs)
		if a.Correlated {
			corr[i] = 1
		}
		if a.Shadow {
			shadow[i] = 1
		}
		summary[i] = a.Summary
		count[i], firstMS[i], lastMS[i] = uint32(max(a.Count, 1)), a.FirstSeen, a.LastSeen
		if a.FirstSeen == 0 {
			firstMS[i], lastMS[i] = a.Time, a.Time
		}
		oTopics[i], oParts[i], oOffsets[i] = make([]string, len(a.Origins)), make([]int32, len(a.Origins)), make([]int64, len(a.Origins))
		for j, o := range a.Origins {
			oTopics[i][j], oParts[i][j], oOffsets[i][j] = o.Topic, o.Partition, o.Offset
		}
		if u := a.Unheld; u != nil {
			unheldSev[i], unheldSummary[i] = max(clampU8(u.Severity), 1), u.Summary
		}
	}
	return &columns{table: TableAlerts, rows: n,
		names: []string{"tenant_uid", "alert_id", "time", "time_ms", "class_uid", "rule_id", "rule_version", "title", "severity_id",
			"stage", "tactics", "techniques", "account_uid", "region", "source", "entities", "observables_json", "event_ids",
			"correlated", "summary", "fold_count", "first_seen_ms", "last_seen_ms", "inserted_ms", "shadow",
			"origin_topics", "origin_partitions", "origin_offsets", "unheld_severity", "unheld_summary"},
		values: []any{tenant, id, ts, tms, class, ruleID, ruleVer, title, sev,
			stage, tactics, techs, account, region, source, ents, obs, evIDs, corr, summary, count, firstMS, lastMS, ins, shadow,
			oTopics, oParts, oOffsets, unheldSev, unheldSummary},
	}, nil
}

// incidentColumns encodes incidents and their graph: the incident row, one
// row per node, edge and alert link, all carrying the incident's version
// and last_seen (the partition key), so a version's rows live and expire
// together.
func incidentColumns(incs []incident.Incident, now int64) ([]*columns, error) {
	n := len(incs)
	var (
		tenant, id, title, status, timeline, merged         = mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n)
		version                                             = mk[uint64](n)
		last                                                = mk[time.Time](n)
		sev, risk                                           = mk[uint8](n), mk[uint8](n)
		first, lastMS, upd                                  = mk[int64](n), mk[int64](n), mk[int64](n)
		stages, tactics, techs, accounts, ruleIDs, alertIDs = mk[[]string](n), mk[[]string](n), mk[[]string](n), mk[[]string](n), mk[[]string](n), mk[[]string](n)
		ents, riskJSON                                      = mk[[]string](n), mk[string](n)
		nodeCount, edgeCount                                = mk[uint32](n), mk[uint32](n)
	)
	nodes := &columns{table: TableNodes, names: []string{"tenant_uid", "incident_id", "version", "last_seen", "id", "title", "subtitle",
		"mainstat", "secondarystat", "color", "detail__kind", "detail__entity", "detail__value", "detail__severity_id", "detail__first_seen_ms"}}
	var nT, nI, nID, nTitle, nSub, nMain, nSec, nColor, nKind, nEnt, nVal []string
	var nVer []uint64
	var nLast []time.Time
	var nSev []uint8
	var nFirst []int64
	edges := &columns{table: TableEdges, names: []string{"tenant_uid", "incident_id", "version", "last_seen", "id", "source", "target",
		"mainstat", "secondarystat", "detail__rule_id", "detail__rule_version", "detail__join_key", "detail__gap_ms", "detail__time_ms", "event_ids"}}
	var eT, eI, eID, eSrc, eDst, eMain, eSec, eRule, eRuleV, eKey []string
	var eVer []uint64
	var eLast []time.Time
	var eGap, eTime []int64
	var eEv [][]string
	links := &columns{table: TableLinks, names: []string{"tenant_uid", "incident_id", "alert_id", "version", "last_seen", "alert_time_ms"}}
	var lT, lI, lA []string
	var lVer []uint64
	var lLast []time.Time
	var lTime []int64

	for i := range incs {
		in := &incs[i]
		if in.ID == "" {
			return nil, fmt.Errorf("%w: incident %d has no id", ErrPermanent, i)
		}
		tl, err := json.Marshal(nonNilT(in.Timeline))
		if err != nil {
			return nil, fmt.Errorf("%w: encode incident %s: %w", ErrPermanent, in.ID, err)
		}
		ls := msTime(in.LastSeen)
		tenant[i], id[i], version[i], last[i] = in.TenantUID, in.ID, in.Version, ls
		title[i], sev[i], risk[i], status[i] = in.Title, clampU8(in.Severity), clampU8(in.RiskScore), in.Status
		first[i], lastMS[i], upd[i] = in.FirstSeen, in.LastSeen, now
		stages[i], tactics[i], techs[i] = nonNil(in.Stages), nonNil(in.Tactics), nonNil(in.Techniques)
		accounts[i], ruleIDs[i], alertIDs[i] = nonNil(in.Accounts), nonNil(in.RuleIDs), nonNil(in.AlertIDs)
		timeline[i], merged[i] = string(tl), in.MergedInto
		if in.Risk != nil {
			rj, err := json.Marshal(in.Risk)
			if err != nil {
				return nil, fmt.Errorf("%w: encode the risk of incident %s: %w", ErrPermanent, in.ID, err)
			}
			riskJSON[i] = string(rj)
		}
		nodeCount[i], edgeCount[i] = uint32(len(in.Nodes)), uint32(len(in.Edges))
		var ek []string
		for _, nd := range in.Nodes {
			if nd.Kind == incident.NodeEntity && nd.Entity != "" {
				ek = append(ek, string(nd.Entity)+":"+nd.Value)
			}
			nT, nI, nVer, nLast = append(nT, in.TenantUID), append(nI, in.ID), append(nVer, in.Version), append(nLast, ls)
			nID, nTitle, nSub, nMain = append(nID, nd.ID), append(nTitle, nd.Title), append(nSub, nd.Subtitle), append(nMain, nd.MainStat)
			nSec, nColor = append(nSec, ocsf.SeverityName(nd.Severity)), append(nColor, severityColor(nd.Severity, nd.Kind))
			nKind, nEnt, nVal = append(nKind, string(nd.Kind)), append(nEnt, string(nd.Entity)), append(nVal, nd.Value)
			nSev, nFirst = append(nSev, clampU8(nd.Severity)), append(nFirst, nd.FirstSeen)
		}
		ents[i] = nonNil(ek)
		for _, e := range in.Edges {
			eT, eI, eVer, eLast = append(eT, in.TenantUID), append(eI, in.ID), append(eVer, in.Version), append(eLast, ls)
			eID, eSrc, eDst = append(eID, e.ID), append(eSrc, e.Source), append(eDst, e.Target)
			eMain, eSec = append(eMain, e.Relation), append(eSec, (time.Duration(e.GapMS)*time.Millisecond).String())
			eRule, eRuleV, eKey = append(eRule, e.RuleID), append(eRuleV, e.RuleVersion), append(eKey, e.JoinKey)
			eGap, eTime, eEv = append(eGap, e.GapMS), append(eTime, e.Time), append(eEv, nonNil(e.EventIDs))
		}
		alertTimes := map[string]int64{}
		for _, t := range in.Timeline {
			alertTimes[t.AlertID] = t.Time
		}
		for _, a := range in.AlertIDs {
			lT, lI, lA, lVer, lLast = append(lT, in.TenantUID), append(lI, in.ID), append(lA, a), append(lVer, in.Version), append(lLast, ls)
			lTime = append(lTime, alertTimes[a])
		}
	}
	inc := &columns{table: TableIncidents, rows: n,
		names: []string{"tenant_uid", "incident_id", "version", "last_seen", "title", "severity_id", "risk_score", "status",
			"first_seen_ms", "last_seen_ms", "stages", "tactics", "techniques", "accounts", "rule_ids", "alert_ids", "entities",
			"node_count", "edge_count", "timeline_json", "merged_into", "updated_ms", "risk_json"},
		values: []any{tenant, id, version, last, title, sev, risk, status,
			first, lastMS, stages, tactics, techs, accounts, ruleIDs, alertIDs, ents,
			nodeCount, edgeCount, timeline, merged, upd, riskJSON},
	}
	nodes.rows = len(nID)
	nodes.values = []any{nT, nI, nVer, nLast, nID, nTitle, nSub, nMain, nSec, nColor, nKind, nEnt, nVal, nSev, nFirst}
	edges.rows = len(eID)
	edges.values = []any{eT, eI, eVer, eLast, eID, eSrc, eDst, eMain, eSec, eRule, eRuleV, eKey, eGap, eTime, eEv}
	links.rows = len(lA)
	links.values = []any{lT, lI, lA, lVer, lLast, lTime}
	// The graph rows go first: an incident version becomes visible only
	// when its nodes, edges and alert links are already stored.
	return []*columns{nodes, edges, links, inc}, nil
}

func (s *Store) deadLetterColumns(ds []DeadLetter) *columns {
	n := len(ds)
	tenant, source, topic, reason, errText, raw, rawEnc := mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n)
	part, rec := mk[int32](n), mk[int32](n)
	off, tms := mk[int64](n), mk[int64](n)
	ts := mk[time.Time](n)
	for i, d := range ds {
		tenant[i], source[i], topic[i], reason[i], errText[i] = d.TenantUID, d.Source, d.Topic, d.Reason, d.Error
		part[i], off[i], rec[i] = int32(d.Partition), d.Offset, int32(d.Record)
		t := d.Time
		if t.IsZero() {
			t = time.Now()
		}
		ts[i], tms[i] = t.Truncate(time.Second), t.UnixMilli()
		// Dead letters always keep their bytes: they are the only copy
		// left once the offset is committed. Read in place (see Write):
		// a record flood's dead letter holds tens of megabytes.
		raw[i] = bytesString(d.Raw)
	}
	return &columns{table: TableDeadLetters, rows: n,
		names:  []string{"tenant_uid", "source", "topic", "kafka_partition", "kafka_offset", "record", "time", "time_ms", "reason", "error", "raw", "raw_encoding"},
		values: []any{tenant, source, topic, part, off, rec, ts, tms, reason, errText, raw, rawEnc},
	}
}

// entityKeys renders observables as "kind:value" strings, the form the
// entities columns hold and has(entities, 'ip:203.0.113.7') searches.
func entityKeys(obs []ocsf.Observable) []string {
	out := make([]string, 0, len(obs))
	for _, o := range obs {
		out = append(out, string(appendEntityKey(nil, o)))
	}
	return out
}

func appendEntityKey(b []byte, o ocsf.Observable) []byte {
	k := string(o.Entity)
	if k == "" {
		k = o.Name
	}
	b = append(b, k...)
	b = append(b, ':')
	return append(b, o.Value...)
}

func severityColor(sev int, kind incident.NodeKind) string {
	if kind == incident.NodeEntity {
		return "blue"
	}
	switch {
	case sev >= ocsf.SeverityCritical:
		return "darkred" // a CSS colour: the Node Graph draws it as is
	case sev >= ocsf.SeverityHigh:
		return "red"
	case sev >= ocsf.SeverityMedium:
		return "orange"
	default:
		return "yellow"
	}
}

func mk[T any](n int) []T { return make([]T, n) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilT[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func clampU8(v int) uint8 { return uint8(max(0, min(v, 255))) }

// msTime converts event-time milliseconds to the DateTime partition column
// (second precision, UTC); values before 1970 or after 2105 are clamped to
// the range DateTime can hold.
const hourMS = int64(time.Hour / time.Millisecond)

func msTime(ms int64) time.Time {
	return time.Unix(msSecond(ms), 0).UTC()
}

// msSecond is the second of a DateTime column for a time in ms: 18.16's
// DateTime holds 0 to 2^32-1.
func msSecond(ms int64) int64 {
	return max(0, min(ms/1000, 1<<32-1))
}
