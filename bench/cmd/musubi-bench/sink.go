package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/storage"
)

// sinkMain is the ceiling: the same stream consumed from Kafka and inserted
// into ClickHouse with no rules and no correlation — fetch (no auto-commit,
// the pipeline's reader settings and batching), ingest decode, storage.Write
// of the events, commit. The harness runs it as its own process under
// GOMAXPROCS=1, as it runs the engine.
func sinkMain(args []string) int {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated")
	group := fs.String("group", "bench-ceiling", "consumer group")
	prefix := fs.String("topics", "bench.load", "topic prefix")
	addr := fs.String("clickhouse", "127.0.0.1:19000", "ClickHouse native address")
	db := fs.String("database", "", "ClickHouse database (created)")
	compression := fs.String("compression", "", "clickhouse.compression (empty: the default, lz4)")
	batchSize := fs.Int("batch", pipeline.DefaultBatch().BatchSize, "records per batch (pipeline.batch_size; the engine's default)")
	flush := fs.Duration("flush", time.Second, "partial batch wait (pipeline.flush_interval)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiles at http://ADDR/debug/pprof/ (the harness's -profile)")
	_ = fs.Parse(args)
	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr); err != nil {
			fmt.Fprintln(os.Stderr, "sink:", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sink(ctx, strings.Split(*brokers, ","), *group, newTopicSet(*prefix), *addr, *db, *compression, *batchSize, *flush); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "sink:", err)
		return 1
	}
	return 0
}

func sink(ctx context.Context, brokers []string, group string, ts topicSet, addr, db, compression string, batchSize int, flush time.Duration) error {
	cfg := storage.Default()
	cfg.Addr, cfg.Database, cfg.StoreRaw = []string{addr}, db, true
	if compression != "" {
		cfg.Compression = compression // storage.Open validates it
	}
	store, err := storage.Open(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	sources := map[string]ingest.Source{}
	for s, t := range ts {
		sources[t] = ingest.Source(s)
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: group, GroupTopics: ts.names(), StartOffset: kafka.FirstOffset,
		MaxWait: 2 * time.Second, QueueCapacity: 1000, CommitInterval: 0, MaxBytes: 16 << 20,
	})
	defer r.Close()
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	dec.ShareInput() // as the engine's: Kafka message values are never written again
	// As pipeline.Consumer does, the write and commit of a batch run
	// beside the fetch and decoding of the next, one batch at most on
	// its way.
	type flight struct {
		msgs []kafka.Message
		b    storage.Batch
	}
	flights, landed := make(chan flight), make(chan error, 1)
	landCtx, stopLanding := context.WithCancel(ctx)
	go func() {
		for f := range flights {
			landed <- land(landCtx, store, r, f.b, f.msgs)
		}
	}()
	aloft := false
	defer func() {
		// A write still retrying when the sink stops is given up.
		stopLanding()
		close(flights)
		if aloft {
			<-landed
		}
	}()
	for {
		msgs := make([]kafka.Message, 0, batchSize)
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
		deadline, cancel := context.WithTimeout(ctx, flush)
		for len(msgs) < batchSize {
			m, err := r.FetchMessage(deadline)
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// As pipeline.Processor decodes: every message's events appended
		// to one slice, sized for one event per message.
		b := storage.Batch{Events: make([]ocsf.Event, 0, len(msgs))}
		for _, m := range msgs {
			n0 := len(b.Events)
			var errs []*ingest.DecodeError
			b.Events, errs = dec.DecodeAppend(b.Events, sources[m.Topic], m.Value)
			if len(errs) > 0 {
				return fmt.Errorf("%s/%d/%d: %v", m.Topic, m.Partition, m.Offset, errs[0])
			}
			for i := n0; i < len(b.Events); i++ {
				b.Events[i].Metadata.TenantUID = "default"
			}
		}
		if aloft {
			aloft = false
			if err := <-landed; err != nil {
				return err
			}
		}
		flights <- flight{msgs, b}
		aloft = true
	}
}

// land writes b, retrying until it is durable, and commits msgs.
func land(ctx context.Context, store *storage.Store, r *kafka.Reader, b storage.Batch, msgs []kafka.Message) error {
	var err error
	for {
		if err = store.Write(ctx, b); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	return r.CommitMessages(ctx, msgs...)
}
