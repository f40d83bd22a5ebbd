package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// memoryWriter keeps every written event id; it needs no database.
// memoryWriter keeps what the consumer writes: how often each event was
// written, and the raw size of each event of every batch.
type memoryWriter struct {
	mu      sync.Mutex
	events  map[string]int
	batches [][]int
}

func (w *memoryWriter) Write(_ context.Context, b storage.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sizes []int
	for _, e := range b.Events {
		w.events[e.Metadata.UID]++
		sizes = append(sizes, len(e.Raw))
	}
	if len(sizes) > 0 {
		w.batches = append(w.batches, sizes)
	}
	return nil
}

func (w *memoryWriter) distinct() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

type noRules struct{}

func (noRules) Evaluate(*ocsf.Event) []alert.Alert { return nil }

// runMemoryConsumer runs a consumer of the test topic (no rules, raw bytes
// kept) into a memoryWriter until the test ends; cfg needs only what the
// test tunes. It returns the writer, the consumer's result and a stop.
func runMemoryConsumer(t *testing.T, ctx context.Context, brokers []string, cfg ConsumerConfig) (*memoryWriter, <-chan error, context.CancelFunc) {
	t.Helper()
	mem := &memoryWriter{events: map[string]int{}}
	done, _, stop := runConsumer(t, ctx, brokers, cfg, noRules{}, mem)
	return mem, done, stop
}

// runConsumer runs a consumer of the test topic (rules ev, raw bytes
// kept) into w until the test ends or stop is called; cfg needs only what
// the test tunes.
func runConsumer(t *testing.T, ctx context.Context, brokers []string, cfg ConsumerConfig, ev Evaluator, w Writer) (<-chan error, *Processor, context.CancelFunc) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	corr, err := correlate.New(correlate.DefaultConfig(), nil, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	proc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), ev, corr, func(string) string { return "default" }, true, logger, nil)
	cfg.Brokers, cfg.GroupID, cfg.Topics = brokers, "musubi", map[string]ingest.Source{topic: ingest.SourceCloudTrail}
	c := NewConsumer(cfg, proc, w, logger)
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go func() { done <- c.Run(runCtx) }()
	return done, proc, stop
}

// TestFetchErrorsAreRetried makes the broker fail every Fetch for a while:
// the consumer must keep going (an engine that exits on a transient broker
// error is down until someone restarts it), lose nothing and commit
// everything once the broker answers again.
func TestFetchErrorsAreRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, w := testBroker(t)
	brokers := cluster.ListenAddrs()
	msgs := stratusRecords(t)
	if err := w.WriteMessages(ctx, msgs[:len(msgs)/2]...); err != nil {
		t.Fatal(err)
	}

	mem, done, stop := runMemoryConsumer(t, ctx, brokers, ConsumerConfig{
		BatchSize: 50, FlushInterval: 100 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
		RetryBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	waitUntil(t, ctx, done, func() bool { return committedOffset(t, ctx, brokers) == int64(len(msgs)/2) })

	// Every Fetch fails until the fault is removed.
	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.UnknownServerError, Count: -1})
	if err := w.WriteMessages(ctx, msgs[len(msgs)/2:]...); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, 30*time.Second)
	_ = fault.Wait(waitCtx, 5)
	cancelWait()
	select {
	case err := <-done:
		t.Fatalf("consumer stopped on a transient fetch error: %v", err)
	case <-time.After(time.Second):
	}
	hits := fault.Hits()
	fault.Remove()
	waitUntil(t, ctx, done, func() bool { return committedOffset(t, ctx, brokers) == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%d fetches failed; %d of %d records written, all committed", hits, mem.distinct(), len(msgs))
	if mem.distinct() != len(msgs) {
		t.Errorf("got %d distinct events written, want %d", mem.distinct(), len(msgs))
	}
}

// waitUntil polls cond; it fails when ctx ends or the consumer stops.
func waitUntil(t *testing.T, ctx context.Context, done <-chan error, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("consumer stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("timed out")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestFailedCommitsAreRetried fails every offset commit while the whole
// topic is consumed, then lets commits through again without producing
// anything more: the durable batches' offsets must still be committed, so
// a restart does not reprocess them and the lag reads zero.
func TestFailedCommitsAreRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, w := testBroker(t)
	brokers := cluster.ListenAddrs()
	msgs := stratusRecords(t)
	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.CoordinatorNotAvailable, Count: -1})
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	mem, done, stop := runMemoryConsumer(t, ctx, brokers, ConsumerConfig{
		BatchSize: 50, FlushInterval: 100 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
		IdleAfter: 500 * time.Millisecond,
	})
	waitUntil(t, ctx, done, func() bool { return mem.distinct() == len(msgs) })
	if got := committedOffset(t, ctx, brokers); got > 0 {
		t.Fatalf("got committed offset %d while every commit fails", got)
	}
	hits := fault.Hits()
	fault.Remove()
	waitUntil(t, ctx, done, func() bool { return committedOffset(t, ctx, brokers) == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%d commits failed; all %d offsets committed once commits worked again, with no new input", hits, len(msgs))
}

// TestBatchBytesBoundsABatch checks pipeline.batch_bytes: a batch closes
// once its messages reach the byte bound, well before batch_size, so big
// messages cannot pile up in one batch.
func TestBatchBytesBoundsABatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, w := testBroker(t)
	msgs := stratusRecords(t)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	limit := 0
	for _, m := range msgs[:3] {
		limit += len(m.Value)
	}
	out, done, stop := runMemoryConsumer(t, ctx, cluster.ListenAddrs(), ConsumerConfig{
		BatchSize: 1000, BatchBytes: limit, FlushInterval: time.Second, MaxWait: testMaxWait, QueueCapacity: 1000,
	})
	waitUntil(t, ctx, done, func() bool { return out.distinct() == len(msgs) })
	stop()
	<-done
	most := 0
	for i, b := range out.batches {
		before := 0
		for _, n := range b[:len(b)-1] {
			before += n
		}
		if before >= limit {
			t.Errorf("batch %d: %d bytes before its last message, want the batch closed at %d", i, before, limit)
		}
		most = max(most, len(b))
	}
	t.Logf("%d messages in %d batches of at most %d messages (batch_bytes %d, batch_size 1000)", len(msgs), len(out.batches), most, limit)
	if len(out.batches) < len(msgs)/10 {
		t.Errorf("%d batches for %d messages: batch_bytes did not close them", len(out.batches), len(msgs))
	}
}

// TestGenerationEnded: a commit refused because the group's generation is
// over drops the offsets (their partitions' next owner reads them again);
// any other failure keeps them to commit later. Each refusal is checked as
// kafka-go returns it, wrapped as the consumer may see it.
func TestGenerationEnded(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{kafka.RebalanceInProgress, true},
		{kafka.IllegalGeneration, true},
		{kafka.UnknownMemberId, true},
		{kafka.FencedInstanceID, true},
		{fmt.Errorf("commit: %w", kafka.RebalanceInProgress), true},
		{kafka.GroupCoordinatorNotAvailable, false},
		{kafka.NotCoordinatorForGroup, false},
		{kafka.RequestTimedOut, false},
		{context.DeadlineExceeded, false},
		{io.ErrUnexpectedEOF, false},
	} {
		if got := generationEnded(c.err); got != c.want {
			t.Errorf("generationEnded(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestCommitsRefusedByARebalance: while the broker refuses every commit
// with REBALANCE_IN_PROGRESS the consumer goes on consuming (the batches
// are durable; nothing is dropped), and once commits are accepted again
// the next record's commit covers the partition.
func TestCommitsRefusedByARebalance(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, w := testBroker(t)
	brokers := cluster.ListenAddrs()
	msgs := stratusRecords(t)
	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.RebalanceInProgress, Count: -1})
	if err := w.WriteMessages(ctx, msgs[:len(msgs)-1]...); err != nil {
		t.Fatal(err)
	}
	mem, done, stop := runMemoryConsumer(t, ctx, brokers, ConsumerConfig{
		BatchSize: 50, FlushInterval: 100 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
		IdleAfter: 500 * time.Millisecond,
	})
	waitUntil(t, ctx, done, func() bool { return mem.distinct() == len(msgs)-1 })
	if got := committedOffset(t, ctx, brokers); got > 0 {
		t.Fatalf("got committed offset %d while every commit is refused", got)
	}
	fault.Remove()
	if err := w.WriteMessages(ctx, msgs[len(msgs)-1]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, done, func() bool { return committedOffset(t, ctx, brokers) == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestCommitable: a commit carries, per partition, the last message of a
// partition the member owns now, and never an offset at or below the one
// it committed there before (a batch fetched in an earlier generation).
func TestCommitable(t *testing.T) {
	msg := func(topic string, p int, off int64) kafka.Message {
		return kafka.Message{Topic: topic, Partition: p, Offset: off}
	}
	msgs := []kafka.Message{
		msg("a", 0, 10), msg("a", 0, 12), msg("a", 0, 11), // owned: 12 is the last
		msg("a", 1, 40), // revoked: not owned now
		msg("a", 2, 5),  // owned, but 9 was committed already
		msg("b", 0, 7),  // owned, first commit there
		msg("c", 0, 1),  // a topic with nothing owned
	}
	owned := map[string][]int{"a": {0, 2}, "b": {0}}
	committed := map[string]int64{partitionKey("a", 2): 9, partitionKey("a", 0): 12}
	got := commitable(msgs, owned, committed)
	want := []kafka.Message{msg("a", 0, 12), msg("b", 0, 7)}
	if !slices.EqualFunc(got, want, func(x, y kafka.Message) bool {
		return x.Topic == y.Topic && x.Partition == y.Partition && x.Offset == y.Offset
	}) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := commitable(msgs, nil, nil); len(got) != 0 {
		t.Errorf("while the group rebalances (nothing owned): got %v, want nothing", got)
	}
}
