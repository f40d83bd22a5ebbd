package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/storage"
)

// errCrashed is returned by Run when a test hook simulated a crash.
var errCrashed = errors.New("consumer crashed before commit (test hook)")

// Writer makes a batch durable. It returns nil only when every row is
// stored; the consumer commits offsets only then.
type Writer interface {
	Write(ctx context.Context, b storage.Batch) error
}

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	Brokers []string
	GroupID string
	// Topics maps a topic to the source it carries.
	Topics    map[string]ingest.Source
	BatchSize int
	// BatchBytes bounds the raw bytes of one batch's messages; zero means
	// 16 MiB. A message larger than it is a batch of its own.
	BatchBytes    int
	FlushInterval time.Duration
	// MaxWait is how long the broker holds a fetch of an empty partition
	// (kafka-go sends MaxWait minus up to one second) and also how long the
	// reader waits for a fetch's response before it drops the connection
	// and fetches again: below a fetch round trip the reader never gets a
	// batch, so keep it well above one second (the default is 2 s).
	MaxWait       time.Duration
	QueueCapacity int
	// SessionTimeout and RebalanceTimeout are the consumer group's; zero
	// keeps the client's defaults.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// DeadLetterTopic, when set, also receives every dead letter (raw
	// bytes, with the reason and origin in headers) before the commit.
	DeadLetterTopic string
	// IdleAfter is how long the consumer waits for input before it advances
	// the correlator's event time on its own (absence timers). It does so
	// only once the consumer has received input since it started, so a
	// restarted engine does not age its restored state before it reads.
	IdleAfter time.Duration
	// SourceDelay is how far behind the wall clock the slowest source
	// delivers (CloudTrail: up to about 15 minutes). When input is idle,
	// event time advances to now minus SourceDelay, so events still on
	// their way are not counted late.
	SourceDelay time.Duration
	// OnDurable, when set, is called with every batch once it is durable
	// (before the commit); the webhook notifier observes incidents here.
	OnDurable func(storage.Batch)
	// OnAssign, when set, is called with the consumer's partitions when
	// the group hands it a new assignment after its first (a rebalance),
	// or also its first with AssignFirst, before any record of it is
	// processed; it is retried like a write until it succeeds. The engine
	// rebuilds its correlation state from storage here, so the state of a
	// scope follows the partitions that carry it.
	OnAssign func(context.Context, Assignment) error
	// AssignFirst calls OnAssign for the first assignment too: a
	// correlate process restores the tenants it owns only once it knows
	// its partitions.
	AssignFirst bool
	// SignalsTopic, when set (-role detect), receives the signals of every
	// durable batch (Processor.Detect), keyed by tenant and acknowledged
	// by every in-sync replica, before the batch's offsets are committed.
	SignalsTopic string
	// RetryBackoff is the first wait after a failed write; it doubles up to
	// MaxBackoff.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// LagInterval is how often the consumer lag is read from the brokers;
	// zero means 15 seconds.
	LagInterval time.Duration
	// TLS, when set, encrypts every connection to the brokers; SASL, when
	// set, authenticates them. Both apply to the group reader, the lag and
	// metadata client and the dead-letter writer alike.
	TLS  *tls.Config
	SASL sasl.Mechanism
}

// transport returns a kafka-go transport with the consumer's TLS and SASL.
func (c *Consumer) transport(clientID string) *kafka.Transport {
	return &kafka.Transport{TLS: c.cfg.TLS, SASL: c.cfg.SASL, ClientID: clientID, DialTimeout: 10 * time.Second}
}

// Consumer reads the raw topics as one consumer group and drives a
// Processor, committing offsets only after the batch is durable.
type Consumer struct {
	cfg    ConsumerConfig
	proc   *Processor
	writer Writer
	logger *slog.Logger
	// crashBeforeCommit, when set, runs between the durable write and the
	// commit; when it returns true the consumer stops right there, as if
	// killed. Tests use it to crash at exactly that point.
	crashBeforeCommit func() bool
	// lastFetchLog throttles the warnings about failed fetches.
	lastFetchLog time.Time
	// pending holds, per partition, the last message of durable batches
	// whose commit failed; they are committed with the next commit.
	pending []kafka.Message
	// seenInput is set once a message arrived; idle time advances event
	// time only after that.
	seenInput bool
	// committed is, per partition (partitionKey), the offset this
	// consumer last committed there; no commit goes below it.
	committed map[string]int64
	// generations counts the group generations joined (see reassigned).
	generations int64
	// now is the clock the detection latency is measured with.
	now func() time.Time
	// inHand is the number of fetched messages of the batch being
	// processed and of the one being written and committed
	// (musubi_kafka_consumer_buffered_messages).
	inHand atomic.Int64
}

// NewConsumer returns a consumer feeding proc and writing through w.
func NewConsumer(cfg ConsumerConfig, proc *Processor, w Writer, logger *slog.Logger) *Consumer {
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 16 << 20
	}
	if cfg.IdleAfter <= 0 {
		cfg.IdleAfter = 5 * time.Second
	}
	if cfg.LagInterval <= 0 {
		cfg.LagInterval = 15 * time.Second
	}
	return &Consumer{cfg: cfg, proc: proc, writer: w, logger: logger.With("component", "consumer"), now: time.Now}
}

// Run consumes until ctx is cancelled. It returns nil on cancellation and an
// error only when the consumer cannot go on.
func (c *Consumer) Run(ctx context.Context) error {
	topics := make([]string, 0, len(c.cfg.Topics))
	for t := range c.cfg.Topics {
		topics = append(topics, t)
	}
	if err := c.waitForTopics(ctx, topics); err != nil {
		return nil // cancelled
	}
	// A client id of its own lets the lag monitor find this consumer's
	// member, and so its partitions, in the group.
	clientID := memberClientID()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: c.cfg.Brokers,
		Dialer: &kafka.Dialer{ClientID: clientID, Timeout: 10 * time.Second, DualStack: true,
			TLS: c.cfg.TLS, SASLMechanism: c.cfg.SASL},
		GroupID:          c.cfg.GroupID,
		GroupTopics:      topics,
		StartOffset:      kafka.FirstOffset,
		MaxWait:          c.cfg.MaxWait,
		QueueCapacity:    c.cfg.QueueCapacity,
		CommitInterval:   0, // synchronous commits, only after a durable write
		SessionTimeout:   c.cfg.SessionTimeout,
		RebalanceTimeout: c.cfg.RebalanceTimeout,
		MaxBytes:         16 << 20,
		GroupBalancers:   []kafka.GroupBalancer{scopeBalancer{}},
		ErrorLogger:      kafka.LoggerFunc(func(msg string, args ...any) { c.logger.Warn(fmt.Sprintf(msg, args...)) }),
	})
	defer r.Close()
	stats := &readerStats{r: r}
	tr := c.transport(clientID)
	defer tr.CloseIdleConnections()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	// The lag monitor also tells the commits which partitions the group
	// assigns to this member now (see commit).
	group := &lagMonitor{
		client: &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr},
		group:  c.cfg.GroupID, clientID: clientID, interval: c.cfg.LagInterval,
		gauge: c.proc.metrics.lag, errors: c.proc.metrics.lagErrors, logger: c.logger,
		// What this consumer holds in memory is sampled on the same
		// schedule, also while a batch is stuck in processing or writing.
		tick: func() { c.observeBuffered(stats.sample()) },
	}
	go func() {
		defer close(lagDone)
		group.run(lagCtx)
	}()
	defer func() { stopLag(); <-lagDone }()
	var dlq *kafka.Writer
	if c.cfg.DeadLetterTopic != "" {
		dlq = &kafka.Writer{
			Addr: kafka.TCP(c.cfg.Brokers...), Topic: c.cfg.DeadLetterTopic,
			RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond,
			Transport: tr,
		}
		defer dlq.Close()
	}
	var signals *kafka.Writer
	if c.cfg.SignalsTopic != "" {
		signals = newSignalWriter(c.cfg.Brokers, c.cfg.SignalsTopic, tr)
		defer signals.Close()
	}
	c.logger.Info("consuming", "brokers", c.cfg.Brokers, "group", c.cfg.GroupID, "topics", topics, "signals_topic", c.cfg.SignalsTopic)

	// The write of a batch — with its signals, dead letters and commit —
	// overlaps the fetch and processing of the next: the engine decodes,
	// evaluates and correlates batch n+1 while ClickHouse stores batch n.
	// One batch at most is on its way (aloft), and the next waits for it
	// to land before it is handed on, so writes and commits keep their
	// order, a failed write stops the consumer before anything later is
	// committed, and memory holds at most two batches — or one that
	// outgrew the batch bounds once decoded (oversized), which lands
	// before the next is fetched. Everything that needs storage to hold
	// what came before (the idle timers, a state rebuild after a
	// rebalance) lands the batch aloft first.
	landCtx, stopLanding := context.WithCancel(ctx)
	flights := make(chan *flight)
	landings := make(chan error, 1)
	go func() {
		for f := range flights {
			landings <- c.land(landCtx, f, r, group, signals, dlq)
		}
	}()
	var aloft, spare *flight
	// settle waits for the batch aloft to land and keeps its slices for
	// the next batch; it returns errStopped or the error that stops the
	// consumer.
	settle := func() error {
		if aloft == nil {
			return nil
		}
		err := <-landings
		c.inHand.Add(-int64(len(aloft.msgs)))
		if err == nil {
			c.proc.Recycle(aloft.batch.Events)
			spare = aloft
		}
		aloft = nil
		return err
	}
	defer func() {
		// Run returns with a batch aloft only when it stops: nothing of
		// that batch is committed, and it is read again after a restart.
		stopLanding()
		close(flights)
		if aloft != nil {
			<-landings
		}
	}()
	for {
		f := &flight{}
		if spare != nil {
			// Cleared first, so that the landed batch's messages are
			// released now rather than as the fetch reaches their slots.
			clear(spare.msgs)
			clear(spare.recs)
			f.msgs, f.recs, spare = spare.msgs[:0], spare.recs[:0], nil
		} else {
			f.msgs, f.recs = make([]kafka.Message, 0, c.cfg.BatchSize), make([]Record, 0, c.cfg.BatchSize)
		}
		start, err := c.fetchBatch(ctx, r, &f.msgs)
		if errors.Is(err, errIdle) {
			if err := settle(); err != nil {
				return stopped(err)
			}
			c.commitPending(ctx, r, group)
			if !c.seenInput {
				// Until this consumer has received input, event time
				// stays where the restored state left it: an engine
				// waiting for its partitions after a restart must not
				// age the restored incidents to the wall clock and turn
				// the backlog it is about to read into late events.
				continue
			}
			if b := c.proc.Idle(time.Now().Add(-c.cfg.SourceDelay)); b.Rows() > 0 {
				if _, _, err := c.write(ctx, b, nil); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				c.durable(b)
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("fetch: %w", err) // the reader was closed
			}
			// A broker error (a failed fetch, a group that cannot be
			// joined) is transient: the reader retries from the same
			// offset. Messages fetched before it are processed and
			// committed as usual; dropping them would let a later commit
			// skip them.
			// The reader backs off between its own attempts and queues
			// each failure as one item, so the consumer fetches again
			// at once: waiting here would let stale failures pile up in
			// the queue and delay recovery long after the broker is back.
			c.proc.metrics.fetchErrors.Inc()
			if time.Since(c.lastFetchLog) > 30*time.Second {
				c.logger.Warn("fetch failed; the reader retries, nothing is committed meanwhile", "error", err)
				c.lastFetchLog = time.Now()
			}
			if len(f.msgs) == 0 {
				spare = f
				continue
			}
		}
		c.seenInput = true
		c.inHand.Add(int64(len(f.msgs)))
		rebalances, queued := stats.take()
		c.observeBuffered(queued)
		if c.reassigned(rebalances) {
			// The rebuild reads storage, which must hold every batch
			// processed before it.
			if err := settle(); err != nil {
				return stopped(err)
			}
			c.proc.metrics.reassignments.Inc()
			c.logger.Info("new partition assignment; rebuilding correlation state from storage before processing it")
			if err := c.retry(ctx, "correlation state rebuild", func() error {
				a, err := c.assignment(ctx, group)
				if err != nil {
					return err
				}
				return c.cfg.OnAssign(ctx, a)
			}); err != nil {
				return nil
			}
		}
		for _, m := range f.msgs {
			f.recs = append(f.recs, Record{
				Source: c.cfg.Topics[m.Topic], Topic: m.Topic, Partition: m.Partition,
				Offset: m.Offset, Value: m.Value, Time: m.Time, Ordered: true,
			})
			c.proc.metrics.records.WithLabelValues(m.Topic).Inc()
		}
		f.start = start
		f.batch = c.proc.Process(f.recs)
		f.sigs = c.proc.TakeSignals()
		if err := settle(); err != nil {
			return stopped(err)
		}
		big := c.oversized(f.batch)
		aloft = f
		flights <- f
		if big {
			if err := settle(); err != nil {
				return stopped(err)
			}
		}
	}
}

// oversized reports whether b outgrew the batch bounds once decoded: more
// events than BatchSize (a compressed file of many records), or more raw
// bytes kept, of events and dead letters, than BatchBytes. Such a batch
// is not held beside another.
func (c *Consumer) oversized(b storage.Batch) bool {
	if len(b.Events) > c.cfg.BatchSize {
		return true
	}
	n := 0
	for i := range b.Events {
		n += len(b.Events[i].Raw)
	}
	for i := range b.DeadLetters {
		n += len(b.DeadLetters[i].Raw)
	}
	return n > c.cfg.BatchBytes
}

// flight is a processed batch on its way to storage and to its commit.
type flight struct {
	msgs  []kafka.Message
	recs  []Record
	start time.Time // when its first message was fetched
	// batch is what Process derived; its events go back to the processor
	// (Recycle) once the batch is durable, whatever land stored instead.
	batch storage.Batch
	sigs  []EncodedSignal
}

// errStopped says the consumer stops without an error: its context
// ended while a batch was landing.
var errStopped = errors.New("consumer stopped")

// stopped returns what Run returns for an error of land.
func stopped(err error) error {
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

// land makes f durable, publishes its signals and dead letters and
// commits its offsets. It returns errStopped when ctx ends and an error
// when the consumer cannot go on; a failed commit is not one (the offsets
// are kept and committed with the next commit).
func (c *Consumer) land(ctx context.Context, f *flight, r *kafka.Reader, group assignments, signals, dlq *kafka.Writer) error {
	batch, rejected, err := c.write(ctx, f.batch, f.recs)
	if err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		return err // nothing committed: the batch is read again after a restart
	}
	c.durable(batch)
	if signals != nil && !rejected && len(f.sigs) > 0 {
		// After the write, before the commit: a crash in between
		// publishes the same signals again, which the correlator folds.
		if err := c.retry(ctx, "signal publish", func() error { return c.publishSignals(ctx, signals, f.sigs) }); err != nil {
			return errStopped
		}
	}
	if dlq != nil && len(batch.DeadLetters) > 0 {
		if err := c.retry(ctx, "dead-letter publish", func() error { return publishDeadLetters(ctx, dlq, batch.DeadLetters) }); err != nil {
			return errStopped
		}
	}
	if c.crashBeforeCommit != nil && c.crashBeforeCommit() {
		return errCrashed
	}
	if err := c.commit(ctx, r, group, f.msgs); err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		// The batch is durable; a lost commit only means it is
		// processed again after a restart, and deterministic ids fold
		// the rewrite. The offsets are kept and committed with the next
		// batch or when input goes idle, so a partition that receives
		// nothing more does not stay behind.
		c.keepPending(f.msgs)
		c.logger.Warn("offset commit failed; retried with the next commit", "error", err)
		return nil
	}
	c.proc.metrics.commits.Inc()
	c.proc.metrics.batches.Observe(time.Since(f.start).Seconds())
	return nil
}

// waitForTopics returns once every topic exists. A consumer group over a
// missing topic consumes nothing without a word, so the consumer waits and
// says which topics it is waiting for (readiness stays green: the API works).
func (c *Consumer) waitForTopics(ctx context.Context, topics []string) error {
	tr := c.transport("")
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}
	var lastLog time.Time
	for {
		resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		var missing []string
		if err == nil {
			found := map[string]bool{}
			for _, t := range resp.Topics {
				if t.Error == nil && len(t.Partitions) > 0 {
					found[t.Name] = true
				}
			}
			for _, t := range topics {
				if !found[t] {
					missing = append(missing, t)
				}
			}
			if len(missing) == 0 {
				c.checkCopartitioned(resp.Topics)
				return nil
			}
		}
		if time.Since(lastLog) > 30*time.Second {
			if err != nil {
				c.logger.Warn("cannot read topic metadata; waiting", "error", err)
			} else {
				c.logger.Error("configured topics do not exist; waiting for them (create them or fix kafka.topics)", "missing", missing)
			}
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// checkCopartitioned warns when the raw topics differ in partition count:
// records of one AWS account then land on different partition indexes, may
// reach different engines, and correlate separately (see scopeBalancer).
func (c *Consumer) checkCopartitioned(topics []kafka.Topic) {
	counts := map[string]int{}
	for _, t := range topics {
		counts[t.Name] = len(t.Partitions)
	}
	if n := len(slices.Compact(slices.Sorted(maps.Values(counts)))); n > 1 {
		c.logger.Warn("the raw topics differ in partition count: with more than one engine in the group, records of one account may reach different engines and correlate apart; give every raw topic the same number of partitions", "partitions", counts)
	}
}

// readerStats reads the reader's statistics for the fetch loop and the
// lag monitor alike. kafka-go resets its counters on every read, so the
// rebalances a sample sees are kept for the fetch loop (take), which
// decides on them.
type readerStats struct {
	mu         sync.Mutex
	r          *kafka.Reader
	rebalances int64
}

// sample returns how many messages the reader has prefetched.
func (s *readerStats) sample() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.r.Stats()
	s.rebalances += st.Rebalances
	return st.QueueLength
}

// take returns the rebalances counted since the last take and how many
// messages the reader has prefetched.
func (s *readerStats) take() (rebalances, queued int64) {
	queued = s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	rebalances, s.rebalances = s.rebalances, 0
	return rebalances, queued
}

// observeBuffered sets musubi_kafka_consumer_buffered_messages: the
// messages the reader prefetched (queued) plus the batches in hand (the one
// being processed and the one being written). Both are bounded —
// kafka.queue_capacity (kafka.signals_queue_capacity for -role correlate)
// and two pipeline.batch_size — so when processing or writing is
// slow this stays at the bound and the lag grows on the topic instead.
func (c *Consumer) observeBuffered(queued int64) {
	c.proc.metrics.buffered.Set(float64(queued + c.inHand.Load()))
}

// reassigned counts the group generations the reader joined (n since the
// last call) and reports whether OnAssign must run: on every generation
// after the first, whose state the engine restored when it started.
// kafka-go counts a partition leader change as a rebalance too; the
// rebuild it then causes is redundant but harmless.
func (c *Consumer) reassigned(n int64) bool {
	c.generations += n
	return n > 0 && (c.generations > 1 || c.cfg.AssignFirst) && c.cfg.OnAssign != nil
}

// Assignment is the partitions the group assigned to a consumer, by topic,
// with each topic's partition count.
type Assignment struct {
	Partitions map[string][]int
	Counts     map[string]int
}

// assignment reads the consumer's assignment from the group and the
// partition counts of its topics. An empty assignment while records
// arrive means the group is between generations: an error, retried.
func (c *Consumer) assignment(ctx context.Context, group *lagMonitor) (Assignment, error) {
	parts, err := group.assignment(ctx)
	if err != nil {
		return Assignment{}, err
	}
	if len(parts) == 0 {
		return Assignment{}, errors.New("the group has not settled this consumer's assignment yet")
	}
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	resp, err := group.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return Assignment{}, fmt.Errorf("topic metadata: %w", err)
	}
	a := Assignment{Partitions: parts, Counts: map[string]int{}}
	for _, t := range resp.Topics {
		if t.Error != nil {
			return Assignment{}, fmt.Errorf("topic metadata of %s: %w", t.Name, t.Error)
		}
		a.Counts[t.Name] = len(t.Partitions)
	}
	return a, nil
}

// keepPending remembers the last message of each partition of a batch whose
// commit failed.
func (c *Consumer) keepPending(msgs []kafka.Message) {
	c.pending = lastPerPartition(append(c.pending, msgs...), nil)
}

// lastPerPartition returns, in order of first appearance, the message with
// the highest offset of each partition of msgs for which keep (when set)
// is true.
func lastPerPartition(msgs []kafka.Message, keep func(kafka.Message) bool) []kafka.Message {
	last := map[string]int{}
	var out []kafka.Message
	for _, m := range msgs {
		if keep != nil && !keep(m) {
			continue
		}
		k := partitionKey(m.Topic, m.Partition)
		if i, ok := last[k]; ok {
			if m.Offset > out[i].Offset {
				out[i] = m
			}
			continue
		}
		last[k] = len(out)
		out = append(out, m)
	}
	return out
}

// commitPending retries the commit of offsets whose commit failed earlier.
func (c *Consumer) commitPending(ctx context.Context, r *kafka.Reader, group assignments) {
	if len(c.pending) == 0 {
		return
	}
	if err := c.commit(ctx, r, group, nil); err != nil {
		if ctx.Err() == nil {
			c.logger.Warn("offset commit failed again; retried later", "error", err)
		}
		return
	}
	c.proc.metrics.commits.Inc()
}

// assignments reads which partitions the group assigns to this member now.
type assignments interface {
	assignment(ctx context.Context) (map[string][]int, error)
}

// commit commits the offsets of msgs, a durable batch, together with the
// pending ones, fenced to what this member may commit. kafka-go's reader
// hands a commit to whichever group generation is current when it is
// sent, and the broker checks the generation, not who owns the partition:
// a batch fetched before a rebalance and committed after it would commit
// a partition that is now another member's, behind its new owner. So a
// commit first asks the group which partitions are this member's now
// (none while it rebalances) and commits only those, and never an offset
// below one it already committed for the partition. Offsets left out are
// read again by the partition's owner from the last committed offset. The
// fence leaves one round trip, between the group's answer and the commit,
// in which a rebalance can still begin.
//
// On a refusal because the generation ended, the offsets are dropped, as
// the fence would; on any other error they stay pending (the caller keeps
// the batch's) and nil is returned only when every owned offset is
// committed.
func (c *Consumer) commit(ctx context.Context, r *kafka.Reader, group assignments, msgs []kafka.Message) error {
	owned, err := group.assignment(ctx)
	if err != nil {
		return err
	}
	keep := commitable(append(slices.Clip(msgs), c.pending...), owned, c.committed)
	if len(keep) > 0 {
		if err := r.CommitMessages(ctx, keep...); err != nil {
			if !generationEnded(err) {
				return err
			}
			c.logger.Info("offset commit refused by a rebalance; the partitions' next owner reads them again", "error", err)
			keep = nil
		}
	}
	if c.committed == nil {
		c.committed = map[string]int64{}
	}
	for _, m := range keep {
		k := partitionKey(m.Topic, m.Partition)
		c.committed[k] = max(c.committed[k], m.Offset+1)
	}
	c.pending = c.pending[:0]
	return nil
}

// commitable returns the last message of each partition of msgs that the
// member owns now (owned, by topic) and whose offset is past the one it
// last committed there (committed, by partitionKey).
func commitable(msgs []kafka.Message, owned map[string][]int, committed map[string]int64) []kafka.Message {
	return lastPerPartition(msgs, func(m kafka.Message) bool {
		if !slices.Contains(owned[m.Topic], m.Partition) {
			return false
		}
		c, ok := committed[partitionKey(m.Topic, m.Partition)]
		return !ok || m.Offset+1 > c
	})
}

// generationEnded reports whether a commit was refused because the
// consumer group's generation is over (a rebalance is under way or has
// happened): the broker's word that the committing member may no longer
// own the partitions. Other failures (an unavailable coordinator, a
// network error) leave the assignment as it was.
func generationEnded(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.FencedInstanceID)
}

// durable observes the detection latency of every incident update of a
// durable batch — from the event time of the incident's newest alert to
// now — and passes the batch to OnDurable. An incident merged into another
// is not observed: its update is bookkeeping, not a detection.
func (c *Consumer) durable(b storage.Batch) {
	now := c.now()
	for i := range b.Incidents {
		in := &b.Incidents[i]
		if in.MergedInto != "" || in.LastSeen == 0 {
			continue
		}
		c.proc.metrics.detectionLatency.Observe(max(now.Sub(time.UnixMilli(in.LastSeen)).Seconds(), 0))
	}
	if c.cfg.OnDurable != nil && len(b.Incidents) > 0 {
		c.cfg.OnDurable(b)
	}
}

// memberClientID returns a Kafka client id unique to one consumer: the
// host name and a random suffix.
func memberClientID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("musubi-%s-%x", host, b)
}

// errIdle says no message arrived within IdleAfter.
var errIdle = errors.New("no input")

// fetchBatch fetches up to BatchSize messages or BatchBytes, waiting at most FlushInterval
// once the first message has arrived. It returns the time of the first, or
// errIdle when nothing arrived within IdleAfter.
func (c *Consumer) fetchBatch(ctx context.Context, r *kafka.Reader, msgs *[]kafka.Message) (time.Time, error) {
	idle, cancelIdle := context.WithTimeout(ctx, c.cfg.IdleAfter)
	m, err := r.FetchMessage(idle)
	cancelIdle()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return time.Time{}, errIdle
		}
		return time.Time{}, err
	}
	start := time.Now()
	*msgs = append(*msgs, m)
	size := len(m.Value)
	deadline, cancel := context.WithDeadline(ctx, start.Add(c.cfg.FlushInterval))
	defer cancel()
	for len(*msgs) < c.cfg.BatchSize && size < c.cfg.BatchBytes {
		m, err := r.FetchMessage(deadline)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				break
			}
			return start, err
		}
		*msgs = append(*msgs, m)
		size += len(m.Value)
	}
	return start, nil
}

// write makes b durable and returns what was stored. Retries have one
// owner, the writer: storage classifies each error, backs off with jitter
// on transient ones until they pass or ctx ends, and returns a permanent
// one (storage.ErrPermanent) at once. The consumer never retries a write:
//
//   - a permanent error means the batch as derived can never be stored
//     (a row the schema rejects): every record of the batch becomes a dead
//     letter with its raw bytes and the reason, written instead, so the
//     partition keeps flowing and nothing is dropped silently;
//   - if the dead letters cannot be stored either, or the writer gave up on
//     an error it did not classify as permanent, write returns an error
//     and the consumer stops without committing: an operator must act, and
//     the records are read again after the restart.
func (c *Consumer) write(ctx context.Context, b storage.Batch, recs []Record) (_ storage.Batch, rejected bool, _ error) {
	err := c.writer.Write(ctx, b)
	if err == nil || ctx.Err() != nil {
		return b, false, err
	}
	if !errors.Is(err, storage.ErrPermanent) {
		return b, false, fmt.Errorf("batch write failed and the writer did not retry it: %w", err)
	}
	if len(recs) == 0 {
		// What event time derived on its own (absence timers) has no
		// record to keep as a dead letter.
		return b, false, fmt.Errorf("batch of timer results rejected permanently by storage; stopping: %w", err)
	}
	c.proc.metrics.writeRejected.Inc()
	c.logger.Error("batch rejected permanently by storage; its records are stored as dead letters", "records", len(recs), "error", err)
	dl := storage.Batch{DeadLetters: make([]storage.DeadLetter, 0, len(recs))}
	msg := err.Error()
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	for _, r := range recs {
		dl.DeadLetters = append(dl.DeadLetters, c.proc.recordDeadLetter(&r, ReasonWriteRejected, msg))
		c.proc.metrics.deadLetters.WithLabelValues(string(r.Source), ReasonWriteRejected).Inc()
	}
	if derr := c.writer.Write(ctx, dl); derr != nil {
		if ctx.Err() != nil {
			return b, false, derr
		}
		return b, false, fmt.Errorf("batch rejected permanently (%w) and its dead letters could not be stored either (%w); stopping without commit", err, derr)
	}
	return dl, true, nil
}

// publishSignals sends a durable batch's signals to the signals topic,
// each keyed by its tenant.
func (c *Consumer) publishSignals(ctx context.Context, w *kafka.Writer, sigs []EncodedSignal) error {
	msgs := make([]kafka.Message, len(sigs))
	for i, s := range sigs {
		msgs[i] = kafka.Message{Key: []byte(s.Tenant), Value: s.Value}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	c.proc.metrics.signalMsgs.Add(float64(len(msgs)))
	return nil
}

// ReasonWriteRejected is the dead-letter reason of records whose derived
// batch storage rejected permanently.
const ReasonWriteRejected = "write_rejected"

// retry runs op with exponential back-off until it succeeds or ctx is
// cancelled. Offsets are not committed meanwhile.
func (c *Consumer) retry(ctx context.Context, what string, op func() error) error {
	backoff := c.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.proc.metrics.writeRetries.Inc()
		c.logger.Warn(what+" failed; retrying, offsets not committed", "attempt", attempt, "backoff", backoff, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

// publishDeadLetters sends dead letters to the dead-letter topic: the raw
// bytes as the value, the reason and origin as headers.
func publishDeadLetters(ctx context.Context, w *kafka.Writer, dls []storage.DeadLetter) error {
	msgs := make([]kafka.Message, 0, len(dls))
	for _, d := range dls {
		msgs = append(msgs, kafka.Message{
			Key:   []byte(fmt.Sprintf("%s/%d/%d/%d", d.Topic, d.Partition, d.Offset, d.Record)),
			Value: d.Raw,
			Headers: []kafka.Header{
				{Key: "musubi-source", Value: []byte(d.Source)},
				{Key: "musubi-reason", Value: []byte(d.Reason)},
				{Key: "musubi-error", Value: []byte(d.Error)},
				{Key: "musubi-topic", Value: []byte(d.Topic)},
				{Key: "musubi-partition", Value: []byte(fmt.Sprint(d.Partition))},
				{Key: "musubi-offset", Value: []byte(fmt.Sprint(d.Offset))},
				{Key: "musubi-record", Value: []byte(fmt.Sprint(d.Record))},
			},
		})
	}
	return w.WriteMessages(ctx, msgs...)
}
