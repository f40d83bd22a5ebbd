package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/musubi-xdr/musubi/ocsf"
)

// recorder is a WriteFunc that records the batches it is given.
type recorder struct {
	mu      sync.Mutex
	batches []Batch
	err     error
	block   chan struct{}
}

func (r *recorder) write(ctx context.Context, b Batch) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.batches = append(r.batches, b)
	return nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		out = append(out, b.Rows())
	}
	return out
}

func events(n int) Batch {
	b := Batch{}
	for i := range n {
		b.Events = append(b.Events, ocsf.Event{Metadata: ocsf.Metadata{UID: fmt.Sprint(i)}})
	}
	return b
}

func TestBufferFlushesByInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		bf := NewBuffer(r.write, BufferConfig{FlushRows: 100, Interval: time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- bf.Run(ctx) }()
		var acked []error
		for range 3 {
			if err := bf.Add(ctx, events(10), func(err error) { acked = append(acked, err) }); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if got := r.sizes(); len(got) != 0 {
			t.Fatalf("flushed %v before the interval", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := r.sizes(); len(got) != 1 || got[0] != 30 {
			t.Fatalf("got flushes %v, want one of 30 rows", got)
		}
		if len(acked) != 3 || acked[0] != nil {
			t.Errorf("got acks %v, want 3 nil", acked)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestBufferFlushesBySize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		bf := NewBuffer(r.write, BufferConfig{FlushRows: 100, Interval: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = bf.Run(ctx) }()
		for range 5 {
			if err := bf.Add(ctx, events(25), nil); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if got := r.sizes(); len(got) != 1 || got[0] != 100 {
			t.Errorf("got flushes %v, want one of 100 rows", got)
		}
		if bf.Pending() != 25 {
			t.Errorf("got %d pending, want 25", bf.Pending())
		}
	})
}

func TestBufferBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{block: make(chan struct{})}
		bf := NewBuffer(r.write, BufferConfig{FlushRows: 10, MaxRows: 20, Interval: time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = bf.Run(ctx) }()
		if err := bf.Add(ctx, events(20), nil); err != nil {
			t.Fatal(err)
		}
		// The writer is stuck: a further Add blocks, and gives up with its context.
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		if err := bf.Add(actx, events(1), nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Add on a full buffer: got %v, want DeadlineExceeded", err)
		}
		added := make(chan error, 1)
		go func() { added <- bf.Add(ctx, events(5), nil) }()
		synctest.Wait()
		select {
		case err := <-added:
			t.Fatalf("Add returned %v while the buffer is full", err)
		default:
		}
		close(r.block) // the database is back
		if err := <-added; err != nil {
			t.Fatal(err)
		}
		if got := r.sizes(); len(got) != 1 || got[0] != 20 {
			t.Errorf("got flushes %v, want one of 20", got)
		}
	})
}

func TestBufferPermanentError(t *testing.T) {
	r := &recorder{err: fmt.Errorf("bad rows: %w", ErrPermanent)}
	bf := NewBuffer(r.write, BufferConfig{FlushRows: 10})
	var got error
	if err := bf.Add(t.Context(), events(3), func(err error) { got = err }); err != nil {
		t.Fatal(err)
	}
	if err := bf.Flush(t.Context()); !errors.Is(err, ErrPermanent) {
		t.Fatalf("Flush: got %v, want ErrPermanent", err)
	}
	if !errors.Is(got, ErrPermanent) {
		t.Errorf("done callback: got %v, want ErrPermanent", got)
	}
	if err := bf.Add(t.Context(), events(1), nil); !errors.Is(err, ErrBufferClosed) {
		t.Errorf("Add after a permanent error: got %v, want ErrBufferClosed", err)
	}
}

func TestBufferTransientKeepsRows(t *testing.T) {
	r := &recorder{block: make(chan struct{})}
	bf := NewBuffer(r.write, BufferConfig{FlushRows: 10})
	if err := bf.Add(t.Context(), events(3), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := bf.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want Canceled", err)
	}
	if bf.Pending() != 3 {
		t.Errorf("got %d pending after a failed flush, want 3", bf.Pending())
	}
}
