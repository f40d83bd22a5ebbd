package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// lagMonitor asks the brokers, on its own schedule, how far the consumer
// group's committed offsets are behind the high-water marks of the
// partitions this consumer holds, and publishes it per topic and partition
// as musubi_kafka_consumer_lag.
//
// It does not depend on the fetch loop: while fetching or writing is stalled
// (ClickHouse down, a broker slow) nothing is committed, producers keep
// appending, and the gauge keeps growing — the truth an alert needs. The
// committed offset, not the fetch position, is the reference, because only
// committed records are durable: a batch fetched but not yet written is
// still lag.
//
// The partitions held are the group's assignment for this consumer's member,
// found by its client id (unique per consumer). Partitions that move away
// lose their series, so summing the gauge over every engine of a group counts
// each partition once.
type lagMonitor struct {
	client   *kafka.Client
	group    string
	clientID string
	interval time.Duration
	gauge    *prometheus.GaugeVec
	errors   prometheus.Counter
	logger   *slog.Logger
	// tick, when set, runs at every refresh, before the brokers are
	// asked (the consumer samples its buffered messages here).
	tick func()
	// held are the series currently published, "topic/partition" → labels.
	held    map[string][2]string
	lastLog time.Time
}

// run refreshes the gauge every interval until ctx is cancelled. A failed
// refresh leaves the last values, counts the failure and logs at most every
// 30 seconds.
func (m *lagMonitor) run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		if m.tick != nil {
			m.tick()
		}
		if err := m.update(ctx); err != nil && ctx.Err() == nil {
			m.errors.Inc()
			if time.Since(m.lastLog) > 30*time.Second {
				m.logger.Warn("cannot read consumer lag from the brokers; the gauge keeps its last values", "error", err)
				m.lastLog = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// update reads this member's assignment, the group's committed offsets and
// the partitions' first and high-water offsets, and sets the gauge.
func (m *lagMonitor) update(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	assigned, err := m.assignment(ctx)
	if err != nil {
		return err
	}
	lag := map[string]int64{}
	labels := map[string][2]string{}
	if len(assigned) > 0 {
		committed, err := m.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: m.group, Topics: assigned})
		if err != nil {
			return fmt.Errorf("offset fetch: %w", err)
		}
		if committed.Error != nil {
			return fmt.Errorf("offset fetch: %w", committed.Error)
		}
		req := map[string][]kafka.OffsetRequest{}
		for t, ps := range assigned {
			for _, p := range ps {
				req[t] = append(req[t], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
			}
		}
		ends, err := m.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
		if err != nil {
			return fmt.Errorf("list offsets: %w", err)
		}
		commit := map[string]int64{}
		for t, ps := range committed.Topics {
			for _, p := range ps {
				if p.Error == nil {
					commit[partitionKey(t, p.Partition)] = p.CommittedOffset
				}
			}
		}
		var errs []error
		for t, ps := range ends.Topics {
			for _, p := range ps {
				if p.Error != nil {
					errs = append(errs, fmt.Errorf("list offsets %s/%d: %w", t, p.Partition, p.Error))
					continue
				}
				k := partitionKey(t, p.Partition)
				// No commit yet: the group starts at the first offset.
				from, ok := commit[k]
				if !ok || from < 0 {
					from = p.FirstOffset
				}
				lag[k] = max(p.LastOffset-from, 0)
				labels[k] = [2]string{t, strconv.Itoa(p.Partition)}
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	for k, l := range m.held {
		if _, ok := lag[k]; !ok {
			m.gauge.DeleteLabelValues(l[0], l[1])
		}
	}
	for k, n := range lag {
		m.gauge.WithLabelValues(labels[k][0], labels[k][1]).Set(float64(n))
	}
	m.held = labels
	return nil
}

// assignment returns the partitions the group assigned to this consumer's
// member: none while it has not joined or the group is rebalancing.
func (m *lagMonitor) assignment(ctx context.Context) (map[string][]int, error) {
	resp, err := m.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{m.group}})
	if err != nil {
		return nil, fmt.Errorf("describe group: %w", err)
	}
	out := map[string][]int{}
	for _, g := range resp.Groups {
		if g.Error != nil {
			return nil, fmt.Errorf("describe group: %w", g.Error)
		}
		for _, mem := range g.Members {
			if mem.ClientID != m.clientID {
				continue
			}
			for _, t := range mem.MemberAssignments.Topics {
				out[t.Topic] = append(out[t.Topic], t.Partitions...)
			}
		}
	}
	return out, nil
}

func partitionKey(topic string, partition int) string { return topic + "/" + strconv.Itoa(partition) }
