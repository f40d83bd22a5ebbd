package replay

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// Filter selects the events a replay keeps. The zero value keeps all.
// Events filtered out are counted (Stats.Filtered), not correlated.
type Filter struct {
	// Since and Until bound event time (Until exclusive); zero is unbounded.
	Since, Until time.Time
	// Accounts keeps only events of these AWS accounts; empty keeps all.
	Accounts []string
	// Sources keeps only files of these sources; empty keeps all.
	Sources []ingest.Source
}

func (f Filter) keepSource(src ingest.Source) bool {
	return len(f.Sources) == 0 || slices.Contains(f.Sources, src)
}

func (f Filter) keep(ev *ocsf.Event) bool {
	if !f.Since.IsZero() && ev.Time < f.Since.UnixMilli() {
		return false
	}
	if !f.Until.IsZero() && ev.Time >= f.Until.UnixMilli() {
		return false
	}
	return len(f.Accounts) == 0 || slices.Contains(f.Accounts, ev.Cloud.Account.UID)
}

// overlaps reports whether the event-time window [lo, hi] can hold an event
// the filter keeps.
func (f Filter) overlaps(lo, hi int64) bool {
	return (f.Since.IsZero() || hi >= f.Since.UnixMilli()) && (f.Until.IsZero() || lo < f.Until.UnixMilli())
}

// Stats is the progress of a Stream run; Run returns the final one.
type Stats struct {
	// Phase is "scan" while the first pass reads the files' time windows,
	// then "replay".
	Phase string
	// Files and Bytes are the inputs' totals; Scanned counts the files of
	// the first pass; FilesDone and BytesDone those replayed.
	Files, Scanned, FilesDone int
	Bytes, BytesDone          int64
	// Records is the number of events the first pass found (before the
	// filter): the denominator of the ETA.
	Records int64
	// Events counts the events replayed, by source.
	Events map[string]int64
	// Filtered counts events (and files) dropped by the Filter.
	Filtered, FilteredFiles int64
	// DeadLetters counts records that could not be decoded, by reason.
	DeadLetters map[string]int64
	// Late counts events the correlator received later than the allowed
	// lateness behind their source's watermark.
	Late int64
	// Alerts counts distinct stored alerts (folded alerts once);
	// Incidents distinct incidents not merged into another.
	Alerts, Incidents int64
	Started           time.Time
	Elapsed           time.Duration
}

// EventsTotal is the number of events replayed over every source.
func (s Stats) EventsTotal() int64 {
	var n int64
	for _, v := range s.Events {
		n += v
	}
	return n
}

// DeadLettersTotal is the number of dead letters over every reason.
func (s Stats) DeadLettersTotal() int64 {
	var n int64
	for _, v := range s.DeadLetters {
		n += v
	}
	return n
}

func (s Stats) clone() Stats {
	c := s
	c.Events = maps.Clone(s.Events)
	c.DeadLetters = maps.Clone(s.DeadLetters)
	if !s.Started.IsZero() && s.Elapsed == 0 {
		c.Elapsed = time.Since(s.Started)
	}
	return c
}

// Stream replays exported files of any size in bounded memory (see the
// package comment). Build it with NewStream; Run it once.
type Stream struct {
	opts   Options
	filter Filter
	st     stages
	// Workers is how many files are decoded and evaluated at once
	// (default GOMAXPROCS).
	Workers int
	// Chunk is how many events the correlator receives per call, as one
	// of serve's batches (default 5000, as serve with pipeline.batch_size
	// 5000: the correlator links a batch's events before it places its
	// alerts, so the chunking can change which links an alert sees).
	Chunk int
	// SegmentBytes and SegmentRecords bound the pieces a large file is
	// read in: a file whose content (after gzip) is larger than
	// SegmentBytes, or that holds more records than one message may
	// (ingest.Limits.MaxRecords), is read in segments of whole records of
	// at most SegmentBytes and SegmentRecords each (default 16 MiB and
	// 1024), so memory does not grow with the file (see segment.go).
	SegmentBytes, SegmentRecords int
	// SegmentBudget bounds the segments of large files cut but not yet
	// merged (being cut, decoded, or decoded and waiting for the merge),
	// over every large file at once (default twice Workers): however many
	// large files overlap, their read-ahead shares it. The file the merge
	// waits for may take one segment more when the budget is spent, so
	// that the merge always progresses (see segBudget).
	SegmentBudget int

	mu      sync.Mutex
	ctx     context.Context // Run's, for the feeders of large files
	workers int
	feeders sync.WaitGroup
	budget  *segBudget
	stats   Stats
	alerts  map[string]struct{}
	incs    map[string]bool // id → merged away
}

// NewStream loads the rules of o.RulesDir and a fresh correlator with
// o.Correlate's allowed lateness.
func NewStream(o Options, f Filter) (*Stream, error) {
	o = o.withDefaults()
	st, err := load(o)
	if err != nil {
		return nil, err
	}
	return &Stream{opts: o, filter: f, st: st, alerts: map[string]struct{}{}, incs: map[string]bool{},
		stats: Stats{Events: map[string]int64{}, DeadLetters: map[string]int64{}}}, nil
}

// Progress returns a snapshot of the running replay's statistics; it is
// safe to call from another goroutine while Run runs.
func (s *Stream) Progress() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// Sink receives each correlated chunk: its events, the alerts and incident
// versions the correlator emitted for it, and the dead letters of the files
// merged since the last chunk. It must not keep b.Events after it returns
// (their backing array is reused). An error stops the replay.
type Sink func(b storage.Batch) error

// run is one input: its event-time window and, once loaded, its events
// (filtered, sorted by event time, ties by uid) with the rule matches of
// each, and its dead letters.
type run struct {
	src     ingest.Source
	lo, hi  int64 // event time range, ms, of the records (ingest.Window)
	records int   // records that decode, before the filter
	skip    bool  // filtered out as a whole
	readErr error

	events  []ocsf.Event
	matches [][]rules.Match // per event
	dead    []storage.DeadLetter
	pos     int
	order   int
	bytes   int64

	// A large file (big) is read in segments, whose windows (segs) the
	// first pass read; its events arrive in parts, one per segment,
	// merged into events as the run drains (see merger.fill).
	big       bool
	segs      []segWin
	sufMin    []int64 // sufMin[j]: the earliest event of segments j on
	next      int     // the next segment to merge into events
	parts     chan *part
	rawTotal  int64 // the file's decompressed size
	bytesDone int64 // of bytes, those counted done with the parts merged
	// held counts the file's segments cut and not yet merged; wanted is
	// set while the merge waits for the file's next part. Both are
	// guarded by the segBudget's mutex.
	held   int
	wanted bool
}

// segWin is the first pass's window of one segment of a large file.
type segWin struct {
	lo, hi  int64
	records int
	size    int64
}

// part is one decoded segment of a large file: its events (filtered and
// sorted as a file's), their matches and its dead letters. done closes
// when it is decoded.
type part struct {
	events  []ocsf.Event
	matches [][]rules.Match
	dead    []storage.DeadLetter
	bytes   int64 // its share of the file's stored size
	done    chan struct{}
	held    bool // it holds a share of the segment budget
}

// nextLo is the earliest event time the segments not yet merged into the
// run's events can hold: unknown (the least time) when the file has more
// segments than the first pass saw.
func (r *run) nextLo() int64 {
	if r.next < len(r.sufMin) {
		return r.sufMin[r.next]
	}
	return math.MinInt64
}

func (r *run) head() *ocsf.Event { return &r.events[r.pos] }

type runHeap []*run

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	a, b := h[i].head(), h[j].head()
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	if c := strings.Compare(a.Metadata.UID, b.Metadata.UID); c != 0 {
		return c < 0
	}
	return h[i].order < h[j].order
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*run)) }
func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

// Run replays inputs, handing every correlated chunk to sink, and returns
// the final statistics. Files that cannot be read are an error; records
// that cannot be decoded are dead letters (in the batches and the stats).
func (s *Stream) Run(ctx context.Context, inputs []Input, sink Sink) (Stats, error) {
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	size := s.Chunk
	if size <= 0 {
		size = 5000
	}
	s.mu.Lock()
	s.stats.Phase, s.stats.Files, s.stats.Started = "scan", len(inputs), time.Now()
	for _, in := range inputs {
		s.stats.Bytes += in.Size
	}
	s.mu.Unlock()

	runs, err := s.scan(ctx, inputs, workers)
	if err != nil {
		return s.Progress(), err
	}
	order := make([]int, 0, len(runs))
	for i := range runs {
		if !runs[i].skip {
			order = append(order, i)
		}
	}
	// Files in order of their earliest event (files without events, only
	// dead letters, first), ties by name order.
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(runs[a].lo, runs[b].lo) })
	for k, i := range order {
		runs[i].order = k
	}
	s.mu.Lock()
	s.stats.Phase = "replay"
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.feeders.Wait()
	}()
	s.ctx, s.workers = ctx, workers
	budget := s.SegmentBudget
	if budget <= 0 {
		budget = 2 * workers
	}
	s.budget = newSegBudget(ctx, budget)
	ready := make([]chan *run, len(order))
	for i := range ready {
		ready[i] = make(chan *run, 1)
	}
	// At most inflight decoded runs wait for the merge: the decode side's
	// share of memory.
	inflight := make(chan struct{}, 2*workers)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := ingest.NewDecoder(s.opts.Limits)
			for k := range jobs {
				r := runs[order[k]]
				s.load(dec, inputs[order[k]], r)
				ready[k] <- r
			}
		}()
	}
	go func() {
		defer close(jobs)
		for k := range order {
			select {
			case inflight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()

	// Unbuffered: the merger fills the next chunk while the correlator
	// works on one, and waits to hand it on. A chunk of 5,000 events is
	// about 30 MiB (an event's struct, its record's string and its
	// observables), so every chunk queued beside those two would be as
	// much memory again, for no speed: the merge only copies events.
	toCorr := make(chan chunk)
	free := make(chan []ocsf.Event, 1)
	corrDone := make(chan error, 1)
	go func() { corrDone <- s.correlate(toCorr, free, sink, cancel) }()
	m := merger{s: s, size: size, out: toCorr, free: free, ctx: ctx, maxBuffered: 4 * s.segmentRecords()}
	err = m.merge(order, runs, ready, inflight)
	if err == nil {
		err = m.flush()
	}
	close(toCorr)
	if cerr := <-corrDone; cerr != nil {
		err = cerr
	}
	if err != nil {
		return s.Progress(), err
	}
	// No more input: fire every pending timer.
	if err := s.deliver(s.st.corr.Advance(EndOfTime), nil, nil, sink); err != nil {
		return s.Progress(), err
	}
	s.mu.Lock()
	s.stats.Elapsed = time.Since(s.stats.Started)
	s.mu.Unlock()
	return s.Progress(), nil
}

// scan is the first pass: every input read in parallel for its source,
// event-time window and record count (ingest.Decoder.Window, a fraction of
// a decode), so that each file is decoded once, when the merge needs it.
func (s *Stream) scan(ctx context.Context, inputs []Input, workers int) ([]*run, error) {
	runs := make([]*run, len(inputs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := ingest.NewDecoder(s.opts.Limits)
			for i := range next {
				r := &run{bytes: inputs[i].Size}
				runs[i] = r
				s.window(dec, inputs[i], r)
				s.mu.Lock()
				s.stats.Scanned++
				s.stats.Records += int64(r.records)
				if r.skip {
					s.stats.FilteredFiles++
					s.stats.Filtered += int64(r.records)
				}
				s.mu.Unlock()
			}
		}()
	}
	func() {
		defer close(next)
		for i := range inputs {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var errs []error
	for _, r := range runs {
		errs = append(errs, r.readErr)
	}
	return runs, errors.Join(errs...)
}

// window reads one input's source and event-time window into r, marking
// it skipped when the filter rules the whole file out. It runs on a worker.
// A large file is read in segments, each windowed, and marked big.
func (s *Stream) window(dec *ingest.Decoder, in Input, r *run) {
	rc, err := in.stream()
	if err != nil {
		r.readErr = err
		return
	}
	defer rc.Close()
	limit := s.segmentBytes()
	head, err := readAll(io.LimitReader(rc, int64(limit)+1), min(in.Size+1, int64(limit)+1))
	if err != nil {
		r.readErr = named(in.Name, err)
		return
	}
	r.src = ingest.Detect(head)
	if !s.filter.keepSource(r.src) {
		r.skip = true
		return
	}
	if len(head) <= limit {
		w := dec.Window(r.src, head)
		if w.Records < dec.Limits().MaxRecords {
			r.lo, r.hi, r.records = w.Lo, w.Hi, w.Records
			if r.records > 0 && !s.filter.overlaps(r.lo, r.hi) {
				r.skip = true
			}
			return
		}
	}
	r.big = true
	g := newSegmenter(io.MultiReader(bytes.NewReader(head), rc), r.src, dec.Limits(), limit, s.segmentRecords())
	for {
		seg, err := g.next()
		if err != nil {
			r.readErr = named(in.Name, err)
			return
		}
		if seg == nil {
			break
		}
		w := windowSegment(dec, r.src, seg)
		r.segs = append(r.segs, segWin{lo: w.Lo, hi: w.Hi, records: w.Records, size: seg.size})
		r.rawTotal += seg.size
		if w.Records > 0 {
			if r.records == 0 || w.Lo < r.lo {
				r.lo = w.Lo
			}
			if r.records == 0 || w.Hi > r.hi {
				r.hi = w.Hi
			}
		}
		r.records += w.Records
	}
	r.sufMin = make([]int64, len(r.segs)+1)
	r.sufMin[len(r.segs)] = math.MaxInt64
	for j := len(r.segs) - 1; j >= 0; j-- {
		r.sufMin[j] = r.sufMin[j+1]
		if r.segs[j].records > 0 {
			r.sufMin[j] = min(r.sufMin[j], r.segs[j].lo)
		}
	}
	if r.records > 0 && !s.filter.overlaps(r.lo, r.hi) {
		r.skip = true
	}
}

// named prefixes an error with the file's name unless it has it already.
func named(name string, err error) error {
	if strings.HasPrefix(err.Error(), name+":") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (s *Stream) segmentBytes() int {
	if s.SegmentBytes > 0 {
		return s.SegmentBytes
	}
	return defaultSegmentBytes
}

func (s *Stream) segmentRecords() int {
	if s.SegmentRecords > 0 {
		return s.SegmentRecords
	}
	return defaultSegmentRecords
}

// load decodes one input into r, whose window the first pass read: it
// filters, sets the tenant, sorts by event time (ties by uid) and runs the
// rules on each event. It runs on a worker.
func (s *Stream) load(dec *ingest.Decoder, in Input, r *run) {
	if r.big {
		s.feed(dec, in, r)
		return
	}
	data, err := in.Read()
	if err != nil {
		// The scan read it; a file changed under the replay is a dead
		// letter of its own.
		r.dead = append(r.dead, storage.DeadLetter{TenantUID: s.opts.Tenant(""), Topic: in.Name, Reason: "unreadable", Error: err.Error(), Time: time.Now()})
		return
	}
	events, errs := decodeAsServe(dec, r.src, data)
	for _, de := range errs {
		raw := de.Raw
		if raw == nil {
			raw = data
		}
		r.dead = append(r.dead, storage.DeadLetter{
			TenantUID: s.opts.Tenant(""), Source: string(r.src), Topic: in.Name,
			Record: de.Record, Raw: raw, Reason: de.Reason, Error: de.Error(), Time: time.Now(),
		})
	}
	r.events, r.matches = s.prepare(events)
}

// prepare filters a file's (or a segment's) events, sets their tenant,
// sorts them by event time (ties by uid) and runs the rules on each.
func (s *Stream) prepare(events []ocsf.Event) ([]ocsf.Event, [][]rules.Match) {
	kept := events[:0]
	filtered := 0
	for i := range events {
		ev := &events[i]
		if !s.filter.keep(ev) {
			filtered++
			continue
		}
		ev.Metadata.TenantUID = s.opts.Tenant(ev.Cloud.Account.UID)
		if !s.opts.StoreRaw {
			ev.Raw = nil
		}
		detach(ev)
		kept = append(kept, *ev)
	}
	clear(events[len(kept):])
	slices.SortStableFunc(kept, func(a, b ocsf.Event) int {
		if a.Time != b.Time {
			return cmp.Compare(a.Time, b.Time)
		}
		return strings.Compare(a.Metadata.UID, b.Metadata.UID)
	})
	matches := make([][]rules.Match, len(kept))
	for i := range kept {
		matches[i] = s.st.engine.Match(&kept[i])
	}
	if filtered > 0 {
		s.mu.Lock()
		s.stats.Filtered += int64(filtered)
		s.mu.Unlock()
	}
	return kept, matches
}

// detach copies the bytes an event shares with what it was decoded from
// (its raw record, kept when raw records are stored, and a CloudTrail
// record's request and response parameters are sub-slices of them) into
// one allocation of its own. Otherwise each event in flight keeps its
// whole file or segment alive (up to 16 MiB), and the merge and the chunks
// hold events of dozens of segments at once: on six overlapping 200 MiB
// CloudTrail files that was 64 MB of a live heap of 518 (heap profile at
// its peak, musubi replay -memprofile).
func detach(ev *ocsf.Event) {
	raw, req, resp := ev.Raw, ev.API.Request.Data, ev.API.Response.Data
	if len(raw)+len(req)+len(resp) == 0 {
		return
	}
	buf := make([]byte, 0, len(raw)+len(req)+len(resp))
	buf = append(append(append(buf, raw...), req...), resp...)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		out := buf[:len(b):len(b)]
		buf = buf[len(b):]
		return out
	}
	ev.Raw, ev.API.Request.Data, ev.API.Response.Data = take(raw), take(req), take(resp)
}

// decodeAsServe decodes one file as serve decodes the messages it arrives
// in: a VPC flow log line by line, each with the file's header, as the
// demo and the shippers publish it, because a flow record's uid (it has no
// id of its own) hashes its line number in its message. Other sources
// carry their own ids and are decoded whole.
func decodeAsServe(dec *ingest.Decoder, src ingest.Source, data []byte) ([]ocsf.Event, []*ingest.DecodeError) {
	if src != ingest.SourceVPCFlow {
		return dec.Decode(src, data)
	}
	msgs := SplitMessages(src, data)
	// One event per line, sized once: decoding line by line into a
	// growing slice would copy the file's events again at every line
	// (events are about 4 KiB).
	events := make([]ocsf.Event, 0, len(msgs))
	var errs []*ingest.DecodeError
	for i, msg := range msgs {
		var errs1 []*ingest.DecodeError
		events, errs1 = dec.DecodeAppend(events, src, msg)
		for _, de := range errs1 {
			if de.Raw == nil {
				de.Raw = msg
			}
			de.Record = i
		}
		errs = append(errs, errs1...)
	}
	return events, errs
}

// chunk is a slice of the merged stream on its way to the correlator: its
// events and their rule matches, in event-time order.
type chunk struct {
	events  []ocsf.Event
	matches []rules.Match
	dead    []storage.DeadLetter
	bySrc   map[string]int64
}

// merger hands the runs' events, in event-time order, to the correlating
// goroutine, which applies suppression and correlates. The channel between
// them holds no chunk: the merger fills one while the correlator works on
// the one before; the chunks' event arrays are reused (free).
type merger struct {
	s    *Stream
	size int
	h    runHeap
	cur  chunk
	out  chan<- chunk
	free chan []ocsf.Event
	ctx  context.Context
	// maxBuffered bounds the events of a large file held to put its
	// segments in order (see fill).
	maxBuffered int
}

// emitBefore moves every buffered event earlier than t into chunks.
func (m *merger) emitBefore(t int64) error {
	for m.h.Len() > 0 && m.h[0].head().Time < t {
		r := m.h[0]
		if m.cur.bySrc == nil {
			m.cur.bySrc = map[string]int64{}
			select {
			case ev := <-m.free:
				m.cur.events = ev[:0]
			default:
				m.cur.events = make([]ocsf.Event, 0, m.size)
			}
		}
		m.cur.events = append(m.cur.events, r.events[r.pos])
		m.cur.matches = append(m.cur.matches, r.matches[r.pos]...)
		m.cur.bySrc[string(r.src)]++
		// Free what was handed on: a run's memory shrinks as it drains.
		r.events[r.pos] = ocsf.Event{}
		r.matches[r.pos] = nil
		r.pos++
		if r.parts != nil {
			if err := m.fill(r); err != nil {
				return err
			}
		}
		if r.pos == len(r.events) {
			heap.Pop(&m.h)
			r.events, r.matches = nil, nil
		} else {
			heap.Fix(&m.h, 0)
		}
		if len(m.cur.events) >= m.size {
			if err := m.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush sends the current chunk on.
func (m *merger) flush() error {
	if len(m.cur.events) == 0 && len(m.cur.dead) == 0 {
		return nil
	}
	select {
	case m.out <- m.cur:
		m.cur = chunk{}
		return nil
	case <-m.ctx.Done():
		return m.ctx.Err()
	}
}

// correlate is the ordered stage: suppression over each chunk's matches in
// event-time order (the first event of a window keeps it, as in serve),
// then the correlator, then the sink. It returns each chunk's event array
// to free. After an error it drains its input.
func (s *Stream) correlate(in <-chan chunk, free chan<- []ocsf.Event, sink Sink, cancel context.CancelFunc) error {
	var err error
	for c := range in {
		if err != nil {
			continue
		}
		alerts := make([]alert.Alert, 0, len(c.matches))
		for _, mt := range c.matches {
			if s.st.engine.Suppressed(mt) {
				continue
			}
			a := mt.Alert
			if a.TenantUID == "" {
				a.TenantUID = s.opts.Tenant(a.AccountUID)
			}
			alerts = append(alerts, a)
		}
		res := s.st.corr.Process(c.events, alerts)
		s.mu.Lock()
		for src, n := range c.bySrc {
			s.stats.Events[src] += n
		}
		s.stats.Late += int64(res.Late)
		s.mu.Unlock()
		if err = s.deliver(res, c.events, c.dead, sink); err != nil {
			cancel()
		}
		if c.events != nil {
			clear(c.events)
			select {
			case free <- c.events[:0]:
			default:
			}
		}
	}
	return err
}

// deliver counts what the correlator emitted and hands it to the sink with
// the dead letters.
func (s *Stream) deliver(res correlate.Result, events []ocsf.Event, dead []storage.DeadLetter, sink Sink) error {
	s.mu.Lock()
	for _, a := range res.Alerts {
		if _, seen := s.alerts[a.ID]; !seen {
			s.alerts[a.ID] = struct{}{}
			s.stats.Alerts++
		}
	}
	for _, in := range res.Incidents {
		merged, seen := s.incs[in.ID]
		gone := in.MergedInto != ""
		switch {
		case !seen && !gone:
			s.stats.Incidents++
		case seen && !merged && gone:
			s.stats.Incidents--
		case seen && merged && !gone:
			s.stats.Incidents++
		}
		s.incs[in.ID] = gone
	}
	s.mu.Unlock()
	b := storage.Batch{Events: events, Alerts: res.Alerts, Incidents: res.Incidents, DeadLetters: dead,
		Inventory: pipeline.InventoryOf(events)}
	if b.Rows() == 0 {
		return nil
	}
	return sink(b)
}

// merge takes the loaded runs in order of their files' earliest events;
// before adding each, it hands on every buffered event earlier than that
// file's earliest, which no later file can precede.
func (m *merger) merge(order []int, runs []*run, ready []chan *run, inflight chan struct{}) error {
	s := m.s
	for k, idx := range order {
		var r *run
		select {
		case r = <-ready[k]:
		case <-m.ctx.Done():
			return m.ctx.Err()
		}
		<-inflight
		if runs[idx].records > 0 {
			if err := m.emitBefore(runs[idx].lo); err != nil {
				return err
			}
		}
		m.cur.dead = append(m.cur.dead, r.dead...)
		s.mu.Lock()
		s.stats.FilesDone++
		if !r.big {
			s.stats.BytesDone += r.bytes
		}
		for _, dl := range r.dead {
			s.stats.DeadLetters[dl.Reason]++
		}
		s.mu.Unlock()
		r.dead = nil
		if r.parts != nil {
			if err := m.fill(r); err != nil {
				return err
			}
		}
		if len(r.events) > 0 {
			heap.Push(&m.h, r)
		}
	}
	return m.emitBefore(math.MaxInt64)
}
