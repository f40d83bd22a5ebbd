package replay

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// segBudget bounds the segments of large files cut and not yet merged
// into their runs, over all large files at once: each large file's feeder
// takes a share before it cuts a segment and the merge gives it back when
// it merges the segment's part. Without it every open large file would
// read ahead on its own (a segment being cut, one per decoding goroutine,
// the queued parts), so overlapping large files held about three
// segments each.
//
// The k-way merge needs the next segment of the file it waits for
// (merger.fill), which another file's read-ahead may have spent the budget
// on. So the file the merge waits for, when it holds no segment at all, may
// take one beyond the limit: the budget never blocks the merge, and at most
// limit+1 segments are cut and unmerged at once, however many large files
// overlap. (The alternative, bounding how many large files are open, would
// have to deliver the others' records late or read them again.) What the
// budget does not count is each open file's current segment once merged
// into its run, which the k-way merge needs to compare heads: that part of
// memory still grows with the number of large files whose time ranges
// overlap.
type segBudget struct {
	mu          sync.Mutex
	cond        sync.Cond
	limit, used int
	peak        int // the most segments held at once, for tests
	stopped     bool
}

// newSegBudget returns a budget of limit segments whose waiters give up
// when ctx is done.
func newSegBudget(ctx context.Context, limit int) *segBudget {
	b := &segBudget{limit: max(1, limit)}
	b.cond.L = &b.mu
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.stopped = true
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	return b
}

// acquire waits until r may cut a segment: the budget has room, or the
// merge waits for r and r holds none. It reports false when the replay
// stops.
func (b *segBudget) acquire(r *run) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.stopped && b.used >= b.limit && !(r.wanted && r.held == 0) {
		b.cond.Wait()
	}
	if b.stopped {
		return false
	}
	b.used++
	r.held++
	b.peak = max(b.peak, b.used)
	return true
}

// release gives back a segment of r's.
func (b *segBudget) release(r *run) {
	b.mu.Lock()
	b.used--
	r.held--
	b.cond.Broadcast()
	b.mu.Unlock()
}

// want marks whether the merge waits for r's next part.
func (b *segBudget) want(r *run, w bool) {
	b.mu.Lock()
	r.wanted = w
	if w {
		b.cond.Broadcast()
	}
	b.mu.Unlock()
}

// feed starts reading a large file in segments for the merge: one
// goroutine cuts the file, in order, a segment at a time as the shared
// segment budget allows, and hands each segment to a decoding goroutine
// (at most workers at once); the parts reach the run in file order, at
// most workers-1 (at least one) of them queued ahead of the one the merge
// waits for.
func (s *Stream) feed(dec *ingest.Decoder, in Input, r *run) {
	ctx := s.ctx
	workers := s.workers
	parts := make(chan *part, max(1, workers-1))
	r.parts = parts
	sem := make(chan struct{}, workers)
	s.feeders.Add(1)
	go func() {
		defer s.feeders.Done()
		defer close(parts)
		send := func(p *part) bool {
			select {
			case parts <- p:
				return true
			case <-ctx.Done():
				return false
			}
		}
		unreadable := func(err error) {
			p := &part{done: make(chan struct{})}
			p.dead = []storage.DeadLetter{{TenantUID: s.opts.Tenant(""), Source: string(r.src), Topic: in.Name, Record: -1,
				Reason: "unreadable", Error: named(in.Name, err).Error(), Time: time.Now()}}
			close(p.done)
			send(p)
		}
		rc, err := in.stream()
		if err != nil {
			unreadable(err)
			return
		}
		defer rc.Close()
		g := newSegmenter(rc, r.src, dec.Limits(), s.segmentBytes(), s.segmentRecords())
		left := r.bytes
		for j := 0; ; j++ {
			if !s.budget.acquire(r) {
				return
			}
			seg, err := g.next()
			if err != nil {
				s.budget.release(r)
				// The first pass read it: a file changed under the
				// replay is a dead letter of its own.
				unreadable(err)
				return
			}
			if seg == nil {
				s.budget.release(r)
				return
			}
			p := &part{done: make(chan struct{}), held: true}
			if r.rawTotal > 0 {
				p.bytes = min(left, r.bytes*seg.size/r.rawTotal)
				left -= p.bytes
			}
			var win *segWin
			if j < len(r.segs) {
				win = &r.segs[j]
			}
			if !send(p) {
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s.feeders.Add(1)
			go func() {
				defer s.feeders.Done()
				s.decodePart(dec, in, r.src, seg, win, p)
				<-sem
				close(p.done)
			}()
		}
	}()
}

// decodePart decodes one segment of a large file into p, as load decodes
// a file: dead letters with their raw bytes, events filtered, sorted and
// matched. A segment the filter rules out by its window is not decoded.
func (s *Stream) decodePart(dec *ingest.Decoder, in Input, src ingest.Source, seg *segment, win *segWin, p *part) {
	var events []ocsf.Event
	errs := seg.dead
	if win != nil && win.records > 0 && !s.filter.overlaps(win.lo, win.hi) && win.records == seg.records {
		s.mu.Lock()
		s.stats.Filtered += int64(win.records)
		s.mu.Unlock()
	} else {
		var errs1 []*ingest.DecodeError
		events, errs1 = decodeSegment(dec, src, seg)
		errs = append(errs, errs1...)
	}
	for _, de := range errs {
		raw := de.Raw
		if raw == nil {
			raw = seg.data
		}
		p.dead = append(p.dead, storage.DeadLetter{
			TenantUID: s.opts.Tenant(""), Source: string(src), Topic: in.Name,
			Record: de.Record, Raw: raw, Reason: de.Reason, Error: de.Error(), Time: time.Now(),
		})
	}
	p.events, p.matches = s.prepare(events)
}

// decodeSegment decodes a segment as decodeAsServe decodes a file, its
// errors numbered as records of the file. Should a malformed record of an
// array segment take the records after it down with it (the decoder stops
// reading an array at a syntax error, and keeps them in its raw bytes),
// the segment is decoded record by record instead, so that the malformed
// one alone is a dead letter, with its own bytes.
func decodeSegment(dec *ingest.Decoder, src ingest.Source, seg *segment) ([]ocsf.Event, []*ingest.DecodeError) {
	events, errs := decodeAsServe(dec, src, seg.data)
	if seg.elems != nil && (len(events)+len(errs) != seg.records || slices.ContainsFunc(errs, func(de *ingest.DecodeError) bool {
		return de.Record < 0 || de.Record >= seg.records || len(de.Raw) > len(seg.raw(de.Record))
	})) {
		events, errs = events[:0], nil
		for i := range seg.records {
			msg := seg.element(i)
			var errs1 []*ingest.DecodeError
			events, errs1 = dec.DecodeAppend(events, src, msg)
			for _, de := range errs1 {
				de.Record = i
				if len(de.Raw) == 0 || len(de.Raw) > len(seg.raw(i)) {
					de.Raw = seg.raw(i)
				}
			}
			errs = append(errs, errs1...)
		}
	}
	for _, de := range errs {
		if de.Record >= 0 {
			de.Record += seg.first
		}
	}
	return events, errs
}

// windowSegment is decodeSegment for the first pass: the segment's window.
func windowSegment(dec *ingest.Decoder, src ingest.Source, seg *segment) ingest.Window {
	w := dec.Window(src, seg.data)
	if seg.elems == nil || w.Records+w.Failed == seg.records {
		return w
	}
	var all ingest.Window
	for i := range seg.records {
		wi := dec.Window(src, seg.element(i))
		if wi.Records > 0 {
			if all.Records == 0 || wi.Lo < all.Lo {
				all.Lo = wi.Lo
			}
			if all.Records == 0 || wi.Hi > all.Hi {
				all.Hi = wi.Hi
			}
		}
		all.Records += wi.Records
		all.Failed += wi.Failed
	}
	return all
}

// raw is the bytes of the segment's i-th record.
func (seg *segment) raw(i int) []byte {
	end := seg.elems[i+1]
	if i+1 < seg.records {
		end-- // the comma before the next record
	}
	return seg.data[seg.elems[i]:end]
}

// element is the segment's i-th record alone in the segment's envelope.
func (seg *segment) element(i int) []byte {
	open := seg.data[:seg.elems[0]]
	if seg.records > 0 && seg.elems[0] > 0 && seg.data[seg.elems[0]-1] == ',' {
		open = open[:len(open)-1]
	}
	shut := seg.data[seg.elems[seg.records]:]
	raw := seg.raw(i)
	msg := make([]byte, 0, len(open)+len(raw)+len(shut))
	return append(append(append(msg, open...), raw...), shut...)
}

// fill merges the parts of a large file into its run while the run's head
// may not be its earliest remaining event: while it is not earlier than
// every event of the segments still to come (their windows are known from
// the first pass). The file's events so reach the merge in event-time
// order, as a whole file's would, whatever the order of its segments,
// unless more than maxBuffered of them would have to be held: then the
// head goes on, and the records of later segments that are earlier than
// it reach the correlator late (counted, against the allowed lateness, as
// serve counts them).
func (m *merger) fill(r *run) error {
	s := m.s
	for r.parts != nil {
		buffered := len(r.events) - r.pos
		if buffered > 0 && (buffered >= m.maxBuffered || r.events[r.pos].Time < r.nextLo()) {
			return nil
		}
		var p *part
		var ok bool
		s.budget.want(r, true)
		select {
		case p, ok = <-r.parts:
		case <-m.ctx.Done():
			return m.ctx.Err()
		}
		s.budget.want(r, false)
		if !ok {
			r.parts = nil
			s.mu.Lock()
			s.stats.BytesDone += r.bytes - r.bytesDone
			s.mu.Unlock()
			return nil
		}
		select {
		case <-p.done:
		case <-m.ctx.Done():
			return m.ctx.Err()
		}
		r.next++
		r.bytesDone += p.bytes
		m.cur.dead = append(m.cur.dead, p.dead...)
		s.mu.Lock()
		s.stats.BytesDone += p.bytes
		for _, dl := range p.dead {
			s.stats.DeadLetters[dl.Reason]++
		}
		s.mu.Unlock()
		r.events, r.matches = mergeSorted(r.events[r.pos:], r.matches[r.pos:], p.events, p.matches)
		r.pos = 0
		if p.held {
			s.budget.release(r)
		}
	}
	return nil
}

// mergeSorted merges two runs of events sorted by event time, ties by uid,
// with their matches; on equal keys a's come first.
func mergeSorted(a []ocsf.Event, am [][]rules.Match, b []ocsf.Event, bm [][]rules.Match) ([]ocsf.Event, [][]rules.Match) {
	if len(a) == 0 {
		return b, bm
	}
	if len(b) == 0 {
		return a, am
	}
	out := make([]ocsf.Event, 0, len(a)+len(b))
	outM := make([][]rules.Match, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if cmp.Or(cmp.Compare(b[j].Time, a[i].Time), strings.Compare(b[j].Metadata.UID, a[i].Metadata.UID)) < 0 {
			out, outM = append(out, b[j]), append(outM, bm[j])
			j++
		} else {
			out, outM = append(out, a[i]), append(outM, am[i])
			i++
		}
	}
	out, outM = append(out, a[i:]...), append(outM, am[i:]...)
	out, outM = append(out, b[j:]...), append(outM, bm[j:]...)
	return out, outM
}
