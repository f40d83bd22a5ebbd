package pipeline

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/internal/kafkatest"
)

// BenchmarkCommitFence measures one offset commit of a batch through a
// kfake broker over loopback: "fenced" is Consumer.commit (DescribeGroups
// for this member's assignment, then OffsetCommit), "unfenced" the
// reader's OffsetCommit alone. The difference is what the fence costs per
// batch; with a real broker it is one more network round trip.
func BenchmarkCommitFence(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchTimeout: time.Millisecond, Transport: kafkatest.Transport(b)}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("{}")}); err != nil {
		b.Fatal(err)
	}
	clientID := memberClientID()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: "bench", GroupTopics: []string{topic},
		Dialer:      &kafka.Dialer{ClientID: clientID, Timeout: 10 * time.Second},
		StartOffset: kafka.FirstOffset, MaxWait: testMaxWait, CommitInterval: 0,
	})
	defer r.Close()
	// The first fetch joins the group: from then on this member owns the
	// partition.
	first, err := r.FetchMessage(ctx)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	group := &lagMonitor{client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: kafkatest.Transport(b)}, group: "bench", clientID: clientID}
	if owned, err := group.assignment(ctx); err != nil || len(owned[topic]) != 1 {
		b.Fatalf("got assignment %v (%v), want partition 0 of %s", owned, err, topic)
	}
	c := NewConsumer(ConsumerConfig{GroupID: "bench"}, &Processor{metrics: newMetrics(nil)}, nil, logger)
	// Every commit names a later offset, as a consumer's do.
	next := func(i int) kafka.Message {
		m := first
		m.Offset = first.Offset + int64(i)
		return m
	}
	// The counters outlive each sub-benchmark's rounds: a fenced commit
	// below one already made would be skipped, not measured.
	fenced, unfenced := 0, 1<<30
	b.Run("fenced", func(b *testing.B) {
		for b.Loop() {
			fenced++
			if err := c.commit(ctx, r, group, []kafka.Message{next(fenced)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	})
	b.Run("unfenced", func(b *testing.B) {
		for b.Loop() {
			unfenced++
			if err := r.CommitMessages(ctx, next(unfenced)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	})
}
