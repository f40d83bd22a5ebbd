package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// countingRules evaluates nothing and counts the events it is shown;
// reached is closed once the count passes at.
type countingRules struct {
	n       atomic.Int64
	at      int64
	reached chan struct{}
}

func (r *countingRules) Evaluate(*ocsf.Event) []alert.Alert {
	if r.n.Add(1) == r.at+1 {
		close(r.reached)
	}
	return nil
}

// orderWriter checks, at every write, that everything written before
// is committed and nothing later; its first write is held until the
// next batch has been processed.
type orderWriter struct {
	t       *testing.T
	ctx     context.Context
	brokers []string
	rules   *countingRules
	mu      sync.Mutex
	written int64 // events (one per record) written so far
	writes  int
}

func (w *orderWriter) Write(ctx context.Context, b storage.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if got := max(committedOffset(w.t, w.ctx, w.brokers), 0); got != w.written {
		w.t.Errorf("write %d: committed offset %d, want %d (every earlier batch, nothing of this one)", w.writes, got, w.written)
	}
	if w.writes == 1 {
		// The next batch is decoded and evaluated while this one is
		// written.
		select {
		case <-w.rules.reached:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.written += int64(len(b.Events))
	return nil
}

// TestWriteOverlapsTheNextBatch: the consumer processes batch n+1 while
// batch n is written, yet writes and commits stay in order: when a batch
// is written, every batch before it is committed and it is not.
func TestWriteOverlapsTheNextBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, kw := testBroker(t)
	brokers := cluster.ListenAddrs()
	msgs := stratusRecords(t)
	if err := kw.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	const batch = 50
	rules := &countingRules{at: batch, reached: make(chan struct{})}
	w := &orderWriter{t: t, ctx: ctx, brokers: brokers, rules: rules}
	done, _, stop := runConsumer(t, ctx, brokers, ConsumerConfig{
		BatchSize: batch, FlushInterval: 100 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
	}, rules, w)
	waitUntil(t, ctx, done, func() bool { return committedOffset(t, ctx, brokers) == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written != int64(len(msgs)) || w.writes < len(msgs)/batch {
		t.Errorf("wrote %d events in %d writes, want %d in at least %d", w.written, w.writes, len(msgs), len(msgs)/batch)
	}
}

func TestOversized(t *testing.T) {
	c := NewConsumer(ConsumerConfig{BatchSize: 3, BatchBytes: 100}, nil, nil, slog.New(slog.DiscardHandler))
	raw := func(n int) []byte { return make([]byte, n) }
	for _, tc := range []struct {
		name string
		b    storage.Batch
		want bool
	}{
		{"within the bounds", storage.Batch{Events: []ocsf.Event{{Raw: raw(40)}, {Raw: raw(60)}}}, false},
		{"more events than the batch size", storage.Batch{Events: make([]ocsf.Event, 4)}, true},
		{"more raw bytes than the batch bytes", storage.Batch{Events: []ocsf.Event{{Raw: raw(60)}, {Raw: raw(41)}}}, true},
		{"dead letters count", storage.Batch{Events: []ocsf.Event{{Raw: raw(60)}}, DeadLetters: []storage.DeadLetter{{Raw: raw(41)}}}, true},
	} {
		if got := c.oversized(tc.b); got != tc.want {
			t.Errorf("%s: oversized %v, want %v", tc.name, got, tc.want)
		}
	}
}
