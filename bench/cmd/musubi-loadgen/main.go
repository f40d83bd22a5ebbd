// Command musubi-loadgen writes the bench/loadgen stream — mixed AWS
// telemetry with PRODUCT.md attack chains injected at known times — into
// Kafka, paced in real time at a given rate. A development tool, not part of
// the product binary.
//
//	go run ./bench/cmd/musubi-loadgen -rate 5000 -duration 1m             # embedded kfake broker
//	go run ./bench/cmd/musubi-loadgen -brokers kafka:9092 -rate 20000     # a real broker
//
// Topics are <prefix>.<source> (default musubi.raw.cloudtrail, ... — what
// `musubi serve` reads by default). With -rate 0 it writes -events records
// as fast as the broker takes them, event time advancing at -event-rate.
// Each chain's last record is logged with its event uid and the time the
// broker acknowledged it, so detection latency can be measured against it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/bench/loadgen"
)

func main() {
	brokers := flag.String("brokers", "", "Kafka brokers, comma-separated; empty runs an embedded kfake broker and keeps it up until Ctrl-C")
	prefix := flag.String("topics", "musubi.raw", "topic prefix: records go to <prefix>.<source>")
	rate := flag.Float64("rate", 5000, "records per second, paced in real time (0: as fast as possible)")
	eventRate := flag.Float64("event-rate", 20000, "with -rate 0: records per second of event time")
	duration := flag.Duration("duration", time.Minute, "how long to produce (paced mode)")
	events := flag.Int("events", 1_000_000, "records to write with -rate 0")
	seed := flag.Uint64("seed", 1, "generator seed (same seed, same stream)")
	entities := flag.Int("entities", 20000, "distinct background entities")
	chainEvery := flag.Duration("chain-every", 5*time.Second, "event time between injected chains (0: none)")
	chainSpan := flag.Duration("chain-span", 3*time.Second, "event time from a chain's first to last record")
	partitions := flag.Int("partitions", 4, "partitions per topic of the embedded broker")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	topics := map[string]string{}
	var names []string
	for _, s := range loadgen.Sources {
		topics[s] = *prefix + "." + s
		names = append(names, topics[s])
	}
	addrs := strings.Split(*brokers, ",")
	if *brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*partitions), names...))
		if err != nil {
			fmt.Fprintln(os.Stderr, "musubi-loadgen:", err)
			os.Exit(1)
		}
		defer c.Close()
		addrs = c.ListenAddrs()
		fmt.Fprintf(os.Stderr, "embedded Kafka broker on %s\n", strings.Join(addrs, ","))
	}
	cfg := loadgen.Config{Seed: *seed, Rate: *rate, Entities: *entities, ChainEvery: *chainEvery, ChainSpan: *chainSpan}
	if *rate <= 0 {
		cfg.Rate = *eventRate
		cfg.Start = time.Now().Add(-time.Duration(float64(*events) / *eventRate * float64(time.Second)))
	} else {
		cfg.Start = time.Now()
	}
	g := loadgen.New(cfg)
	w := &kafka.Writer{Addr: kafka.TCP(addrs...), Balancer: &kafka.Hash{}, BatchSize: 2000, BatchBytes: 900_000,
		BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()

	written := 0
	var msgs []kafka.Message
	var lasts []loadgen.Record
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
		acked := time.Now()
		written += len(msgs)
		for _, r := range lasts {
			fmt.Printf("chain %d last-event-uid %s acked %s\n", r.Chain, r.EventUID, acked.UTC().Format(time.RFC3339Nano))
		}
		msgs, lasts = msgs[:0], lasts[:0]
		return nil
	}
	add := func(r loadgen.Record) {
		msgs = append(msgs, kafka.Message{Topic: topics[r.Source], Key: r.Key, Value: r.Value, Time: r.Time})
		if r.Last {
			lasts = append(lasts, r)
		}
	}
	var err error
	if *rate <= 0 {
		for i := 0; i < *events && err == nil; i++ {
			add(g.Next())
			if len(msgs) == 20000 {
				err = flush()
			}
		}
	} else {
		end := time.Now().Add(*duration)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for err == nil && time.Now().Before(end) {
			for now := time.Now(); g.Now().Before(now); {
				add(g.Next())
			}
			err = flush()
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-tick.C:
			}
		}
	}
	if err == nil {
		err = flush()
	}
	fmt.Fprintf(os.Stderr, "wrote %d records, %d chains begun\n", written, g.Chains())
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "musubi-loadgen:", err)
		os.Exit(1)
	}
	if *brokers == "" && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "serving the embedded broker until Ctrl-C")
		<-ctx.Done()
	}
}
