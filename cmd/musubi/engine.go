package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/notify"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// engine is every component of `musubi serve`, wired from one Config.
type engine struct {
	cfg      config.Config
	logger   *slog.Logger
	registry *prometheus.Registry
	store    *storage.Store
	rules    *rules.Engine
	manager  *rules.Manager
	corr     *correlate.Correlator
	proc     *pipeline.Processor
	consumer *pipeline.Consumer
	notifier *notify.Notifier
	server   *http.Server
	listener net.Listener
}

// newEngine opens storage (applying migrations when configured), loads the
// rules, restores the correlator and prepares the consumer and the API.
func newEngine(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *engine, err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfoGauge(currentBuild()))
	e := &engine{cfg: cfg, logger: logger, registry: reg}

	store, err := storage.Open(ctx, cfg.StorageConfig(), logger, reg)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	e.store = store
	defer func() {
		if err != nil {
			store.Close() // a half-built engine releases its connections
		}
	}()
	if cfg.ClickHouse.MigrateOnStart {
		if err := store.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}

	set, err := rules.Load(cfg.Rules.Dir)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	e.rules = rules.NewEngine(reg, logger)
	e.rules.Swap(set)
	reg.MustRegister(newRuleSetCollector(e.rules))
	e.manager = ruleManager(cfg, e.rules, logger)
	logger.Info("rules loaded", "component", "rules", "dir", cfg.Rules.Dir, "rules", len(set.Rules()))

	seq, err := correlate.LoadRules(cfg.Rules.Dir)
	if err != nil {
		return nil, fmt.Errorf("correlation rules: %w", err)
	}
	sequences := func() []*correlate.SequenceRule { return seq }
	if cfg.ServesData() {
		if err := e.wireDataPath(ctx, seq); err != nil {
			return nil, err
		}
		// Correlation rules reload with the detection rules, or neither.
		e.manager.AddCompanion(e.corr.Reloader())
		sequences = e.corr.SequenceRules
	} else {
		e.manager.AddCompanion(correlate.Checker())
	}

	handler, err := api.New(api.Options{
		Store:     store,
		Rules:     rulesAdapter{engine: e.rules, manager: e.manager, sequences: sequences, gatherer: reg},
		Ready:     e.ready,
		Registry:  reg,
		Gatherer:  reg,
		Tokens:    apiTokens(cfg.API.Tokens),
		Tenants:   apiTenants(cfg.Tenants),
		Logger:    logger,
		CursorKey: apiCursorKey(cfg.API.CursorKey),
		SLA:       apiSLA(cfg.API.SLA),
		Directory: cfg.APIDirectory(),
		// Tokens created through the API survive restarts via the audit log.
		RestoreTokens: true,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	e.listener = ln
	// The console (/ui/) is served beside the API, outside /v1.
	e.server = &http.Server{Handler: serverHandler(cfg.API, handler), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	return e, nil
}

// ruleManager keeps eng's rules in step with rules.dir, polling every
// rules.reload_interval.
func ruleManager(cfg config.Config, eng *rules.Engine, logger *slog.Logger) *rules.Manager {
	m := rules.NewManager(cfg.Rules.Dir, eng, logger)
	m.Interval = cfg.Rules.ReloadInterval
	return m
}

// sourceSignals labels the signals topic's records (metrics, dead letters).
const sourceSignals ingest.Source = "signals"

// wireDataPath builds what a data-path role runs: the correlator (restored
// from storage), the processor, the webhook notifier and the Kafka consumer.
// Role all consumes the raw topics and does everything; detect consumes
// them, stores events and publishes signals (the correlator only says what
// it needs); correlate consumes the signals and stores alerts and
// incidents.
func (e *engine) wireDataPath(ctx context.Context, seq []*correlate.SequenceRule) error {
	cfg, logger, store := e.cfg, e.logger, e.store
	corr, err := correlate.New(cfg.CorrelateConfig(), seq, logger, e.registry)
	if err != nil {
		return fmt.Errorf("correlate: %w", err)
	}
	e.corr = corr
	// Role all restores every tenant now; a correlate process only the
	// tenants whose signals partitions it is assigned, once it knows them
	// (OnAssign with AssignFirst, below).
	if cfg.Role == config.RoleAll {
		if err := restoreCorrelator(ctx, store, corr, cfg, nil, logger); err != nil {
			return err
		}
	}

	dec := ingest.NewDecoder(cfg.Ingest)
	// The processor decodes only Kafka messages, whose values kafka-go
	// allocates one by one and nothing writes again: events may share
	// their bytes instead of copying each record.
	dec.ShareInput()
	e.proc = pipeline.NewProcessor(dec, e.rules, corr, tenantFunc(cfg.Tenants), cfg.ClickHouse.StoreRaw, logger, e.registry)
	groupID, signalsTopic, queue := cfg.Kafka.GroupID, "", cfg.Kafka.QueueCapacity
	topics := map[string]ingest.Source{}
	for src, topic := range cfg.Kafka.Topics {
		s, err := ingest.ParseSource(src)
		if err != nil {
			return err
		}
		topics[topic] = s
	}
	switch cfg.Role {
	case config.RoleDetect:
		// The correlator only says what it needs of each event; its
		// state stays empty: the correlate role owns incident state.
		e.proc.Detect(corr.Needs, corr.LinkSignal)
		signalsTopic = cfg.Kafka.SignalsTopic
	case config.RoleCorrelate:
		e.proc.ReadSignals(corr.ProcessInput)
		groupID = cfg.Kafka.SignalsGroupID
		// A signal message may be far larger than a raw record: its
		// prefetch has a bound of its own.
		queue = cfg.Kafka.SignalsQueueCapacity
		topics = map[string]ingest.Source{cfg.Kafka.SignalsTopic: sourceSignals}
	}
	kafkaTLS, err := cfg.Kafka.TLS.Client("kafka", logger)
	if err != nil {
		return err
	}
	kafkaSASL, err := saslMechanism(ctx, cfg.Kafka.SASL)
	if err != nil {
		return err
	}
	var onDurable func(storage.Batch)
	var onAssign func(context.Context, pipeline.Assignment) error
	if cfg.Role != config.RoleDetect {
		// Incidents are made where the correlator runs: webhooks are sent
		// from there, and a new assignment rebuilds its state.
		notifier, err := newNotifier(cfg, logger, e.registry)
		if err != nil {
			return fmt.Errorf("webhooks: %w", err)
		}
		e.notifier = notifier
		onDurable = func(b storage.Batch) { notifier.Observe(b.Incidents) }
		// A new assignment after a rebalance: the scopes this engine now
		// owns were correlated elsewhere until now, and everything that
		// engine derived is durable in ClickHouse before its commits.
		// A correlate process owns the tenants whose signals partitions
		// it holds (the signals are keyed by tenant) and restores only
		// those; role all consumes raw topics keyed by account, whose
		// tenants it cannot tell apart, and restores every tenant.
		onAssign = func(ctx context.Context, a pipeline.Assignment) error {
			if err := corr.Reset(); err != nil {
				return err
			}
			var owned []string
			if cfg.Role == config.RoleCorrelate {
				owned = pipeline.OwnedTenants(tenantIDs(cfg.Tenants), a, cfg.Kafka.SignalsTopic)
			}
			return restoreCorrelator(ctx, store, corr, cfg, owned, logger)
		}
	}
	e.consumer = pipeline.NewConsumer(pipeline.ConsumerConfig{
		Brokers:          cfg.Kafka.Brokers,
		GroupID:          groupID,
		Topics:           topics,
		SignalsTopic:     signalsTopic,
		BatchSize:        cfg.Pipeline.BatchSize,
		BatchBytes:       cfg.Pipeline.BatchBytes,
		FlushInterval:    cfg.Pipeline.FlushInterval,
		MaxWait:          cfg.Kafka.MaxWait,
		QueueCapacity:    queue,
		DeadLetterTopic:  cfg.Kafka.DeadLetterTopic,
		SessionTimeout:   cfg.Kafka.SessionTimeout,
		RebalanceTimeout: cfg.Kafka.RebalanceTimeout,
		LagInterval:      cfg.Kafka.LagInterval,
		TLS:              kafkaTLS,
		SASL:             kafkaSASL,
		SourceDelay:      cfg.Correlate.SourceDelay,
		OnDurable:        onDurable,
		OnAssign:         onAssign,
		AssignFirst:      cfg.Role == config.RoleCorrelate,
	}, e.proc, e.writer(), logger)
	return nil
}

// writer is what the consumer writes batches with: the store, and where
// incidents are made (roles all and correlate) the asset scorer in front
// of it.
func (e *engine) writer() pipeline.Writer {
	if e.cfg.Role == config.RoleDetect {
		return e.store
	}
	return newAssetScorer(e.store, e.cfg.Exposure, e.logger, e.registry)
}

// ready reports whether the dependencies of the engine's role answer
// (/readyz). A process that serves the API (roles all and api) needs
// ClickHouse only: a Kafka outage must not take the API and console out of
// their Service, and the data path waits for Kafka on its own. A data-path
// role (detect, correlate) also needs a Kafka broker to answer.
func (e *engine) ready(ctx context.Context) error {
	return readiness(e.cfg, e.store.Ping)(ctx)
}

func readiness(cfg config.Config, pingStore func(context.Context) error) func(context.Context) error {
	needKafka := cfg.Role == config.RoleDetect || cfg.Role == config.RoleCorrelate
	return func(ctx context.Context) error {
		var errs []error
		if err := pingStore(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clickhouse: %w", err))
		}
		if needKafka {
			if err := pingKafka(ctx, cfg.Kafka.Brokers); err != nil {
				errs = append(errs, fmt.Errorf("kafka: %w", err))
			}
		}
		return errors.Join(errs...)
	}
}

// run runs every component until ctx is cancelled, then shuts down within
// a deadline. The errgroup owns every goroutine.
func (e *engine) run(ctx context.Context) error {
	defer e.store.Close()
	g, ctx := errgroup.WithContext(ctx)
	if e.consumer != nil {
		g.Go(func() error { return e.consumer.Run(ctx) })
	}
	g.Go(func() error { return e.manager.Run(ctx) })
	if e.notifier != nil {
		g.Go(func() error { return e.notifier.Run(ctx) })
	}
	g.Go(func() error {
		if err := e.server.Serve(e.listener); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return e.server.Shutdown(shutdown)
	})
	return g.Wait()
}

// addr is the API's listen address.
func (e *engine) addr() string { return e.listener.Addr().String() }

func pingKafka(ctx context.Context, brokers []string) error {
	var d net.Dialer
	var errs []error
	for _, b := range brokers {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := d.DialContext(ctx, "tcp", b)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
