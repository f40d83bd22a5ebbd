package storage

import (
	"context"
	"errors"
	"sync"
	"time"
)

// WriteFunc stores one batch durably; (*Store).Write is one.
type WriteFunc func(context.Context, Batch) error

// BufferConfig bounds a Buffer.
type BufferConfig struct {
	// FlushRows flushes once this many rows are pending (default 50 000).
	FlushRows int
	// MaxRows bounds the pending rows; Add blocks above it (default
	// 4×FlushRows).
	MaxRows int
	// Interval flushes pending rows at least this often (default 1s).
	Interval time.Duration
}

// Buffer accumulates batches and writes them together, when FlushRows rows
// are pending or Interval has passed, whichever comes first, so that the
// server sees about one INSERT per table per second. It is for callers that
// do not aggregate themselves.
//
// Overload policy: backpressure. Add blocks while MaxRows rows are pending
// (one batch larger than MaxRows is accepted when nothing else is pending),
// and returns the context's error when the caller stops waiting; nothing is
// dropped. A caller learns that its rows are durable from the done callback
// it passed to Add — only then may it commit the offsets they came from.
type Buffer struct {
	write WriteFunc
	cfg   BufferConfig

	flushMu sync.Mutex // one flush at a time

	mu      sync.Mutex
	pending Batch
	dones   []func(error)
	rows    int
	space   chan struct{} // closed and replaced when rows shrink
	full    chan struct{} // signals Run that FlushRows is reached
	err     error         // permanent error; the buffer stops accepting
}

// ErrBufferClosed is returned by Add after a permanent write failure.
var ErrBufferClosed = errors.New("storage: buffer stopped after a permanent write error")

// NewBuffer returns a Buffer writing through write. Run must be running for
// it to flush on its own; Flush writes on demand.
func NewBuffer(write WriteFunc, cfg BufferConfig) *Buffer {
	if cfg.FlushRows <= 0 {
		cfg.FlushRows = 50_000
	}
	if cfg.MaxRows < cfg.FlushRows {
		cfg.MaxRows = 4 * cfg.FlushRows
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	return &Buffer{write: write, cfg: cfg, space: make(chan struct{}), full: make(chan struct{}, 1)}
}

// Add queues b. done, if not nil, is called once with the outcome of the
// Write that stores b (nil: durable). Add blocks while the buffer is full.
func (bf *Buffer) Add(ctx context.Context, b Batch, done func(error)) error {
	n := b.Rows() + incidentGraphRows(b)
	for {
		bf.mu.Lock()
		if bf.err != nil {
			bf.mu.Unlock()
			return errors.Join(ErrBufferClosed, bf.err)
		}
		if bf.rows == 0 || bf.rows+n <= bf.cfg.MaxRows {
			bf.pending.Events = append(bf.pending.Events, b.Events...)
			bf.pending.Alerts = append(bf.pending.Alerts, b.Alerts...)
			bf.pending.Incidents = append(bf.pending.Incidents, b.Incidents...)
			bf.pending.DeadLetters = append(bf.pending.DeadLetters, b.DeadLetters...)
			if done != nil {
				bf.dones = append(bf.dones, done)
			}
			bf.rows += n
			if bf.rows >= bf.cfg.FlushRows {
				select {
				case bf.full <- struct{}{}:
				default:
				}
			}
			bf.mu.Unlock()
			return nil
		}
		space := bf.space
		bf.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run flushes every Interval, or sooner when FlushRows rows are pending,
// until ctx ends. It returns nil on cancellation and the error of a
// permanent write failure. Rows still pending when it returns are not
// written: call Flush with a shutdown deadline to store them.
func (bf *Buffer) Run(ctx context.Context) error {
	t := time.NewTicker(bf.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-bf.full:
		}
		if err := bf.Flush(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// Flush writes everything pending now and reports the outcome to the done
// callbacks. When the write fails because ctx ended, the rows stay pending
// for the next flush; on a permanent error they are reported failed and
// the buffer stops accepting.
func (bf *Buffer) Flush(ctx context.Context) error {
	bf.flushMu.Lock()
	defer bf.flushMu.Unlock()
	bf.mu.Lock()
	b, dones, rows := bf.pending, bf.dones, bf.rows
	bf.mu.Unlock()
	if rows == 0 {
		return nil
	}
	err := bf.write(ctx, b)
	if err != nil && !errors.Is(err, ErrPermanent) {
		return err // keep pending: the next flush retries the same rows
	}
	bf.mu.Lock()
	// Rows added during the write follow the flushed prefix.
	bf.pending = Batch{
		Events:      tail(bf.pending.Events, len(b.Events)),
		Alerts:      tail(bf.pending.Alerts, len(b.Alerts)),
		Incidents:   tail(bf.pending.Incidents, len(b.Incidents)),
		DeadLetters: tail(bf.pending.DeadLetters, len(b.DeadLetters)),
	}
	bf.dones = tail(bf.dones, len(dones))
	bf.rows -= rows
	if err != nil {
		bf.err = err
	}
	close(bf.space)
	bf.space = make(chan struct{})
	bf.mu.Unlock()
	for _, d := range dones {
		d(err)
	}
	return err
}

// Pending returns the number of rows waiting to be written.
func (bf *Buffer) Pending() int {
	bf.mu.Lock()
	defer bf.mu.Unlock()
	return bf.rows
}

func tail[T any](s []T, n int) []T {
	if len(s) == n {
		return nil
	}
	return append([]T(nil), s[n:]...)
}

// incidentGraphRows counts the rows an incident adds besides its own.
func incidentGraphRows(b Batch) int {
	n := 0
	for _, in := range b.Incidents {
		n += len(in.Nodes) + len(in.Edges) + len(in.AlertIDs)
	}
	return n
}
