package main

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/musubi-xdr/musubi/bench/loadgen"
)

// partitions per topic of the embedded broker.
const partitions = 4

// topicSet names one raw topic per source.
type topicSet map[string]string

func newTopicSet(prefix string) topicSet {
	ts := topicSet{}
	for _, s := range loadgen.Sources {
		ts[s] = prefix + "." + s
	}
	return ts
}

func (ts topicSet) names() []string {
	var out []string
	for _, s := range loadgen.Sources {
		out = append(out, ts[s])
	}
	return out
}

func newWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Hash{},
		BatchSize:    2000,
		BatchBytes:   900_000, // under the broker's default max.message.bytes (1 MiB)
		BatchTimeout: 2 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
}

func message(ts topicSet, r loadgen.Record) kafka.Message {
	return kafka.Message{Topic: ts[r.Source], Key: r.Key, Value: r.Value, Time: r.Time}
}

// preload writes n records of g to the topics as fast as the broker takes
// them, and then the rest of the chains already begun (with the background
// records in between), and returns how many records and chains it wrote.
// Where each chain's records went is noted in places.
func preload(ctx context.Context, brokers []string, ts topicSet, g *loadgen.Generator, n int, places *chainPlaces) (records, chains int, err error) {
	w := newWriter(brokers)
	w.Completion = places.written
	defer w.Close()
	const chunk = 20_000
	msgs := make([]kafka.Message, 0, chunk)
	for records < n || g.Pending() > 0 {
		if records == n {
			g.StopChains()
		}
		r := g.Next()
		records++
		places.add(r)
		if r.Last {
			chains++
		}
		msgs = append(msgs, message(ts, r))
		if len(msgs) == chunk || (records >= n && g.Pending() == 0) {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return records, chains, fmt.Errorf("preload: %s", clip(err.Error()))
			}
			msgs = msgs[:0]
		}
	}
	return records, chains, nil
}

// offsets sums the end offsets of the topics and the offsets group has
// committed on them.
func offsets(ctx context.Context, brokers []string, ts topicSet, group string) (end, committed int64, err error) {
	return offsetsOf(ctx, brokers, ts.names(), group)
}

// offsetsOf sums the end offsets of topics (each of `partitions`
// partitions) and the offsets group has committed on them.
func offsetsOf(ctx context.Context, brokers []string, topics []string, group string) (end, committed int64, err error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	parts := map[string][]int{}
	reqs := map[string][]kafka.OffsetRequest{}
	for _, t := range topics {
		for p := range partitions {
			parts[t] = append(parts[t], p)
			reqs[t] = append(reqs[t], kafka.LastOffsetOf(p))
		}
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: reqs})
	if err != nil {
		return 0, 0, err
	}
	for _, ps := range lo.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return 0, 0, p.Error
			}
			end += p.LastOffset
		}
	}
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return end, 0, err
	}
	for _, ps := range of.Topics {
		for _, p := range ps {
			if p.CommittedOffset > 0 {
				committed += p.CommittedOffset
			}
		}
	}
	return end, committed, nil
}

// clip shortens a message (kafka-go repeats one error per message).
func clip(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

// createTopics creates topics of `partitions` partitions each.
func createTopics(ctx context.Context, brokers []string, names ...string) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, n := range names {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: n, NumPartitions: partitions, ReplicationFactor: 1})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return err
	}
	for t, err := range resp.Errors {
		if err != nil {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return nil
}

// groupMembers returns how many members group has when it is stable, and
// 0 while it rebalances.
func groupMembers(ctx context.Context, brokers []string, group string) int {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].GroupState != "Stable" {
		return 0
	}
	return len(resp.Groups[0].Members)
}
