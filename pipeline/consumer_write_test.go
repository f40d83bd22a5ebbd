package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/storage"
)

// classifyingWriter fails the way storage does after its own retries:
// batches with events fail with err; batches of dead letters only are
// stored.
type classifyingWriter struct {
	err         error
	mu          sync.Mutex
	eventWrites int
	dlWrites    int
	firstWrite  time.Time
	deadLetters []storage.DeadLetter
}

func (w *classifyingWriter) Write(_ context.Context, b storage.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.firstWrite.IsZero() {
		w.firstWrite = time.Now()
	}
	if len(b.Events) > 0 {
		w.eventWrites++
		return w.err
	}
	w.dlWrites++
	w.deadLetters = append(w.deadLetters, b.DeadLetters...)
	return nil
}

func (w *classifyingWriter) counts() (events, dls, letters int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.eventWrites, w.dlWrites, len(w.deadLetters)
}

// runWriterConsumer runs a consumer of the test topic into w until the
// test ends.
func runWriterConsumer(t *testing.T, ctx context.Context, brokers []string, w Writer) (<-chan error, *Processor) {
	t.Helper()
	done, proc, _ := runConsumer(t, ctx, brokers, ConsumerConfig{
		BatchSize: 50, FlushInterval: 100 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
		RetryBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
	}, noRules{}, w)
	return done, proc
}

// TestPermanentWriteErrorBecomesDeadLetters: a batch storage rejects
// permanently is never retried; every record of it is stored as a dead
// letter with its raw bytes and the reason, and the offsets are committed,
// so the partition keeps flowing.
func TestPermanentWriteErrorBecomesDeadLetters(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, kw := testBroker(t)
	msgs := stratusRecords(t)
	if err := kw.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w := &classifyingWriter{err: fmt.Errorf("insert 3 rows into events: %w: code 16: no such column", storage.ErrPermanent)}
	done, _ := runWriterConsumer(t, ctx, cluster.ListenAddrs(), w)
	waitUntil(t, ctx, done, func() bool { return committedOffset(t, ctx, cluster.ListenAddrs()) == int64(len(msgs)) })

	events, dls, letters := w.counts()
	if events == 0 || events != dls {
		t.Errorf("got %d rejected writes and %d dead-letter writes, want one dead-letter write per rejected batch and no retry", events, dls)
	}
	if letters != len(msgs) {
		t.Fatalf("got %d dead letters, want one per record (%d)", letters, len(msgs))
	}
	byOffset := map[int64]storage.DeadLetter{}
	for _, d := range w.deadLetters {
		byOffset[d.Offset] = d
	}
	for i, m := range msgs {
		d, ok := byOffset[int64(i)]
		switch {
		case !ok:
			t.Errorf("offset %d: no dead letter", i)
		case !bytes.Equal(d.Raw, m.Value):
			t.Errorf("offset %d: dead letter raw bytes differ from the record", i)
		case d.Reason != ReasonWriteRejected || !strings.Contains(d.Error, "no such column"):
			t.Errorf("offset %d: got reason %q error %q, want %q with the storage error", i, d.Reason, d.Error, ReasonWriteRejected)
		}
	}
}

// TestUnclassifiedWriteErrorStops: the consumer does not retry writes; an
// error the writer returns without classifying it permanent (storage
// retries its transient errors itself until they pass) stops the consumer
// with that error and commits nothing.
func TestUnclassifiedWriteErrorStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, kw := testBroker(t)
	msgs := stratusRecords(t)
	if err := kw.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	w := &classifyingWriter{err: boom}
	start := time.Now()
	done, _ := runWriterConsumer(t, ctx, cluster.ListenAddrs(), w)
	var err error
	select {
	case err = <-done:
		w.mu.Lock()
		t.Logf("first write after %v, Run returned %v after it", w.firstWrite.Sub(start), time.Since(w.firstWrite))
		w.mu.Unlock()
	case <-ctx.Done():
		t.Fatal("consumer kept running after an unclassified write error")
	}
	if !errors.Is(err, boom) {
		t.Errorf("Run returned %v, want the write error", err)
	}
	if events, dls, _ := w.counts(); events != 1 || dls != 0 {
		t.Errorf("got %d writes of the batch and %d dead-letter writes, want 1 and 0 (no retry)", events, dls)
	}
	if got := committedOffset(t, ctx, cluster.ListenAddrs()); got > 0 {
		t.Errorf("committed offset %d, want nothing committed", got)
	}
}
