package pipeline

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// stallingWriter fails every write until released, as a ClickHouse outage
// does; it reports its first call.
type stallingWriter struct {
	called  chan struct{}
	release chan struct{}
	first   bool
}

func (w *stallingWriter) Write(ctx context.Context, _ storage.Batch) error {
	if !w.first {
		w.first = true
		close(w.called)
	}
	select {
	case <-w.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type lagNoRules struct{}

func (lagNoRules) Evaluate(*ocsf.Event) []alert.Alert { return nil }

type noCorrelation struct{}

func (noCorrelation) Process([]ocsf.Event, []alert.Alert) correlate.Result { return correlate.Result{} }
func (noCorrelation) Advance(time.Time) correlate.Result                   { return correlate.Result{} }

// byKey sends a message to the partition its key names.
type byKey struct{}

func (byKey) Balance(m kafka.Message, _ ...int) int {
	p, _ := strconv.Atoi(string(m.Key))
	return p
}

// lagByPartition reads musubi_kafka_consumer_lag from the registry.
func lagByPartition(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "musubi_kafka_consumer_lag" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var topic, part string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "topic":
					topic = l.GetValue()
				case "partition":
					part = l.GetValue()
				}
			}
			out[topic+"/"+part] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestConsumerLagPerPartitionDuringStall stalls the consumer on its first
// write (storage down), keeps producing, and checks that the lag of each
// partition follows the broker's high-water marks while nothing is fetched
// or committed, then falls to zero once the write goes through.
func TestConsumerLagPerPartitionDuringStall(t *testing.T) {
	const lagTopic = "musubi.raw.lagtest"
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, lagTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: lagTopic, Balancer: byKey{}, BatchTimeout: time.Millisecond, Transport: kafkatest.Transport(t)}
	defer w.Close()
	produce := func(partition, n int) {
		t.Helper()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: []byte(strconv.Itoa(partition)), Value: []byte(`{"eventVersion":"1.08"}`)}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 3)
	produce(1, 5)

	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	proc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), lagNoRules{}, noCorrelation{}, func(string) string { return "default" }, false, logger, reg)
	sw := &stallingWriter{called: make(chan struct{}), release: make(chan struct{})}
	c := NewConsumer(ConsumerConfig{
		Brokers: brokers, GroupID: "lagtest", Topics: map[string]ingest.Source{lagTopic: ingest.SourceCloudTrail},
		BatchSize: 100, FlushInterval: 50 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
		RetryBackoff: time.Millisecond, MaxBackoff: time.Millisecond, LagInterval: 20 * time.Millisecond,
	}, proc, sw, logger)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()

	select {
	case <-sw.called:
	case <-ctx.Done():
		t.Fatal("the consumer never wrote a batch")
	}
	p0, p1 := lagTopic+"/0", lagTopic+"/1"
	waitLag := func(want map[string]float64) {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var got map[string]float64
		for {
			got = lagByPartition(t, reg)
			if len(got) == len(want) && got[p0] == want[p0] && got[p1] == want[p1] {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("got lag %v, want %v", got, want)
			case <-tick.C:
			}
		}
	}
	// Stalled on the first write: nothing committed yet.
	waitLag(map[string]float64{p0: 3, p1: 5})
	// Still stalled: new records raise the lag of their partition only.
	produce(0, 4)
	waitLag(map[string]float64{p0: 7, p1: 5})
	// Storage is back: everything is written and committed.
	close(sw.release)
	waitLag(map[string]float64{p0: 0, p1: 0})
}

// TestDetectionLatency checks that every incident update of a durable batch
// is observed from the event time of its newest alert, and that an incident
// merged into another is not.
func TestDetectionLatency(t *testing.T) {
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	proc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), lagNoRules{}, noCorrelation{}, func(string) string { return "default" }, false, logger, reg)
	c := NewConsumer(ConsumerConfig{}, proc, nil, logger)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	c.durable(storage.Batch{Incidents: []incident.Incident{
		{ID: "a", LastSeen: now.Add(-3 * time.Second).UnixMilli()},
		{ID: "b", LastSeen: now.Add(-20 * time.Minute).UnixMilli()},
		{ID: "c", LastSeen: now.Add(-time.Hour).UnixMilli(), MergedInto: "a"},
	}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "musubi_pipeline_detection_latency_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if got, want := h.GetSampleCount(), uint64(2); got != want {
			t.Errorf("got %d observations, want %d", got, want)
		}
		if got, want := h.GetSampleSum(), 3.0+20*60; got != want {
			t.Errorf("got latency sum %v s, want %v s", got, want)
		}
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 5 && b.GetCumulativeCount() != 1 {
				t.Errorf("got %d updates within 5 s, want 1", b.GetCumulativeCount())
			}
		}
		return
	}
	t.Fatal("musubi_pipeline_detection_latency_seconds is not registered")
}
