package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// gatedWriter blocks every write until the test opens its gate, as a
// correlate process whose writes (or correlation) cannot keep up; it
// reports its first call.
type gatedWriter struct {
	called chan struct{}
	gate   chan struct{}
	once   sync.Once
}

func (w *gatedWriter) Write(ctx context.Context, _ storage.Batch) error {
	w.once.Do(func() { close(w.called) })
	select {
	case <-w.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gaugeValue reads an unlabelled gauge from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// groupOffsets returns the end offset of topic's partition 0 and the
// offset group committed there (0 before its first commit).
func groupOffsets(t *testing.T, ctx context.Context, brokers []string, group, topic string) (end, committed int64) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: kafkatest.Transport(t)}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil || len(lo.Topics[topic]) == 0 {
		return -1, -1
	}
	end = lo.Topics[topic][0].LastOffset
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
	if err != nil || len(of.Topics[topic]) == 0 {
		return end, -1
	}
	return end, max(of.Topics[topic][0].CommittedOffset, 0)
}

// TestSlowCorrelatePushesBackOnTheSignalsTopic runs a detect consumer and
// a correlate consumer joined by a signals topic, and blocks the
// correlate side's first write while detect publishes a signal for every
// few raw records. The correlate process must hold no more than its
// prefetch bound plus two batches — the one it processed while the first
// waits to be written, and that one (musubi_kafka_consumer_buffered_messages) —
// and read nothing past it, while the signals wait on the topic as its
// group's lag; detect must not be slowed (it commits every raw record).
// Once the write goes through, every signal is correlated exactly once and
// the lag drains to zero.
func TestSlowCorrelatePushesBackOnTheSignalsTopic(t *testing.T) {
	const (
		signalsTopic = "musubi.signals"
		detectBatch  = 5
		queueCap     = 4
		corrBatch    = 3
	)
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic, signalsTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	msgs := stratusRecords(t)
	logger := slog.New(slog.DiscardHandler)
	corr, err := correlate.New(correlate.DefaultConfig(), nil, logger, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Detect: every event travels as a link fact, so each uid must reach
	// the correlate side once.
	detectProc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), noRules{}, corr, func(string) string { return "default" }, false, logger, nil)
	detectProc.Detect(func(*ocsf.Event) correlate.Need { return correlate.NeedLinks }, corr.LinkSignal)
	detect := NewConsumer(ConsumerConfig{
		Brokers: brokers, GroupID: "musubi", Topics: map[string]ingest.Source{topic: ingest.SourceCloudTrail},
		SignalsTopic: signalsTopic, BatchSize: detectBatch, FlushInterval: 20 * time.Millisecond,
		MaxWait: testMaxWait, QueueCapacity: 100, LagInterval: time.Second,
	}, detectProc, &memoryWriter{events: map[string]int{}}, logger)

	// Correlate: counts every link it is fed; its writes wait at the gate.
	var mu sync.Mutex
	seen := map[string]int{}
	reg := prometheus.NewRegistry()
	corrProc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), noRules{}, corr, func(string) string { return "default" }, false, logger, reg)
	corrProc.ReadSignals(func(in correlate.Input) correlate.Result {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range in.Links {
			seen[ev.Metadata.UID]++
		}
		return correlate.Result{}
	})
	gw := &gatedWriter{called: make(chan struct{}), gate: make(chan struct{})}
	correlator := NewConsumer(ConsumerConfig{
		Brokers: brokers, GroupID: "musubi-correlate", Topics: map[string]ingest.Source{signalsTopic: "signals"},
		BatchSize: corrBatch, FlushInterval: 20 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: queueCap,
		LagInterval: 20 * time.Millisecond,
	}, corrProc, gw, logger)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- detect.Run(runCtx) }()
	go func() { done <- correlator.Run(runCtx) }()
	defer func() {
		stop()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("consumer: %v", err)
			}
		}
	}()

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchTimeout: time.Millisecond, Transport: kafkatest.Transport(t)}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gw.called:
	case <-ctx.Done():
		t.Fatal("the correlate consumer never wrote a batch")
	}

	// Detect goes on at its own pace while correlate is stuck.
	waitUntil(t, ctx, done, func() bool {
		end, committed := groupOffsets(t, ctx, brokers, "musubi", topic)
		return end == int64(len(msgs)) && committed == end
	})
	signals, committed := groupOffsets(t, ctx, brokers, "musubi-correlate", signalsTopic)
	if min := int64(len(msgs) / detectBatch); signals < min {
		t.Fatalf("got %d signal messages, want at least %d (one per detect batch)", signals, min)
	}
	if committed != 0 {
		t.Fatalf("correlate committed %d signals while its first write is stuck, want 0", committed)
	}
	// The client fills its prefetch queue up to its bound and stops
	// there, beside the batches in hand (the one stuck in its write and
	// the one processed behind it, one to corrBatch messages each): the
	// gauge reaches the full queue and never passes the bound.
	bound := float64(queueCap + 2*corrBatch)
	var held float64
	waitUntil(t, ctx, done, func() bool {
		held = gaugeValue(t, reg, "musubi_kafka_consumer_buffered_messages")
		if held > bound {
			t.Fatalf("correlate holds %v signal messages, want at most %v (prefetch %d + 2 batches of %d)", held, bound, queueCap, corrBatch)
		}
		return held > queueCap
	})
	// What waits beyond the bound waits on the topic, as lag.
	lag := lagByPartition(t, reg)[signalsTopic+"/0"]
	waitUntil(t, ctx, done, func() bool {
		lag = lagByPartition(t, reg)[signalsTopic+"/0"]
		return lag == float64(signals)
	})
	mu.Lock()
	fed := 0
	for _, n := range seen {
		fed += n
	}
	mu.Unlock()
	if fed > 2*corrBatch*detectBatch {
		t.Fatalf("correlate was fed %d events while its first batch is stuck, want at most %d (two batches of signals)", fed, 2*corrBatch*detectBatch)
	}
	if held >= float64(signals) {
		t.Fatalf("the bound %v is not below the %d signals waiting: the test shows nothing", held, signals)
	}

	// The writes go through: the lag drains, every event correlated once.
	close(gw.gate)
	waitUntil(t, ctx, done, func() bool {
		end, committed := groupOffsets(t, ctx, brokers, "musubi-correlate", signalsTopic)
		return committed == end && lagByPartition(t, reg)[signalsTopic+"/0"] == 0
	})
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	for _, m := range msgs {
		evs, _ := dec.DecodeAppend(nil, ingest.SourceCloudTrail, m.Value)
		for _, ev := range evs {
			want[ev.Metadata.UID] = true
		}
	}
	for uid := range want {
		if seen[uid] != 1 {
			t.Errorf("event %s correlated %d times, want once", uid, seen[uid])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("correlated %d distinct events, want %d", len(seen), len(want))
	}
}
