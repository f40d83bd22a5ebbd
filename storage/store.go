package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/internal/secret"
)

// ErrPermanent wraps write errors that retrying cannot fix (schema
// mismatch, rejected data). The batch must be dealt with, not retried.
// Reads and workflow changes answer with casework's errors (ErrNotFound,
// ErrConflict, ErrInvalidArgument).
var ErrPermanent = errors.New("storage: permanent write error")

// Store is Musubi's ClickHouse storage: writes of the pipeline's output and
// the reads of the incident API. It is safe for concurrent use.
type Store struct {
	cfg     Config
	conn    driver.Conn
	opts    clickhouse.Options // how conn was opened (execPerShard reuses it)
	log     *slog.Logger
	dialect dialect
	metrics *metrics
	// dec reads raw columns earlier versions compressed (RawZstd).
	dec *zstd.Decoder

	// wfLocks serializes workflow updates per incident in this process.
	wfMu    sync.Mutex
	wfLocks map[string]*wfLock
	// updateSlots bounds the workflow updates that use the pool at once.
	updateSlots chan struct{}

	// numbers assigns incident numbers (numbers.go).
	numbers numberer

	// blocks remembers each table's largest String blocks (reserveStrings).
	blocks blockMemo
}

type metrics struct {
	rows    *prometheus.CounterVec
	seconds prometheus.Histogram
	errors  *prometheus.CounterVec
	retries prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_storage_insert_rows_total",
			Help: "Rows inserted into ClickHouse, by table.",
		}, []string{"table"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "musubi_storage_insert_seconds",
			Help:    "Duration of one successful INSERT attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_storage_insert_errors_total",
			Help: "Failed INSERT attempts, by table and kind (transient, permanent, canceled).",
		}, []string{"table", "kind"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "musubi_storage_retries_total",
			Help: "INSERT attempts repeated after a transient error.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.seconds, m.errors, m.retries)
	}
	return m
}

// Open connects to ClickHouse and checks the connection. It does not
// migrate; call Migrate.
func Open(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Every statement names its tables with the database (dialect.table),
	// so the session needs no default database: Open works before Migrate
	// has created it.
	tlsConf, err := cfg.TLS.Client("clickhouse", logger)
	if err != nil {
		return nil, err
	}
	password, err := secret.Resolve(cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("clickhouse.password: %w", err)
	}
	opts := clickhouse.Options{
		Addr: cfg.Addr,
		TLS:  tlsConf,
		Auth: clickhouse.Auth{Username: cfg.Username, Password: password},
		Settings: clickhouse.Settings{
			"allow_experimental_low_cardinality_type": 1,
		},
		DialTimeout:     cfg.DialTimeout,
		MaxOpenConns:    cfg.MaxOpenConns,
		MaxIdleConns:    cfg.MaxOpenConns,
		ConnMaxLifetime: 0,
		Compression:     &clickhouse.Compression{Method: compressions[cfg.Compression]},
	}
	conn, err := clickhouse.Open(&opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg: cfg, conn: conn, opts: opts, dialect: newDialect(cfg),
		log:     logger.With("component", "storage"),
		metrics: newMetrics(reg),
		dec:     dec,
		wfLocks: map[string]*wfLock{},
		// One slot per connection of the pool: see updateSlot.
		updateSlots: make(chan struct{}, cfg.MaxOpenConns),
	}
	if err := s.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ping clickhouse %v: %w", cfg.Addr, err)
	}
	if cfg.Cluster != "" {
		if err := s.checkLoadBalancing(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkLoadBalancing refuses a cluster whose user profile reads and
// inserts through the Distributed tables at a random replica of each shard
// (ClickHouse's default): a read could then miss the rows this store has
// just written, still on their way to the other replica, and an analyst's
// update would fail with a version conflict or not find the incident.
// With load_balancing = in_order every statement goes to the first healthy
// replica of each shard in remote_servers order (the server's own replica
// when it holds one), so reads see this store's writes while that replica
// is up. 18.16's native protocol cannot carry the setting per query, so it
// belongs in the profile of Musubi's user (docs/deploy.md).
func (s *Store) checkLoadBalancing(ctx context.Context) error {
	var v string
	if err := s.conn.QueryRow(s.queryCtx(ctx), "SELECT value FROM system.settings WHERE name = 'load_balancing'").Scan(&v); err != nil {
		return fmt.Errorf("read the load_balancing setting: %w", err)
	}
	if v != "in_order" {
		return fmt.Errorf("%w: cluster %s: the profile of user %q has load_balancing = %s; set it to in_order so reads see the rows just written (docs/deploy.md)",
			errConfig, s.cfg.Cluster, s.cfg.Username, v)
	}
	return nil
}

// Ping checks that a server answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close closes the connections.
func (s *Store) Close() error {
	s.dec.Close()
	return s.conn.Close()
}

// queryCtx attaches the per-query limits every statement carries.
func (s *Store) queryCtx(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": int(s.cfg.MaxExecutionTime.Seconds()),
	}))
}

// readCtx is queryCtx plus the result-size cap of reads.
func (s *Store) readCtx(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": int(s.cfg.MaxExecutionTime.Seconds()),
		"max_result_rows":    s.cfg.MaxResultRows,
	}))
}

func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	return s.conn.Exec(s.queryCtx(ctx), q, args...)
}

// t is the qualified name of table t for reads and inserts.
func (s *Store) t(t string) string { return s.dialect.table(t) }

// execPerShard runs q, an ALTER of a replicated _local table, once in each
// shard of the cluster: at the first replica of the shard (in
// remote_servers order) that answers, which writes the change to
// ZooKeeper for the shard's other replicas to apply. It is not sent ON
// CLUSTER because 18.16 runs such an ALTER through an election among the
// shard's replicas in which two can both claim it: the loser's DDL worker
// then stops ("Node exists: …/executed") and every later ON CLUSTER
// statement waits for it until that server restarts.
func (s *Store) execPerShard(ctx context.Context, q string) error {
	rows, err := s.conn.Query(s.queryCtx(ctx),
		"SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", s.cfg.Cluster)
	if err != nil {
		return fmt.Errorf("list the shards of cluster %s: %w", s.cfg.Cluster, err)
	}
	var order []uint32
	replicas := map[uint32][]string{}
	for rows.Next() {
		var shard uint32
		var host string
		var port uint16
		if err := rows.Scan(&shard, &host, &port); err != nil {
			rows.Close()
			return err
		}
		if _, ok := replicas[shard]; !ok {
			order = append(order, shard)
		}
		replicas[shard] = append(replicas[shard], net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("%w: the server knows no cluster %s (remote_servers)", errConfig, s.cfg.Cluster)
	}
	for _, shard := range order {
		opts := s.opts
		opts.Addr = replicas[shard]
		opts.MaxOpenConns, opts.MaxIdleConns = 1, 1
		conn, err := clickhouse.Open(&opts)
		if err != nil {
			return fmt.Errorf("shard %d %v: %w", shard, opts.Addr, err)
		}
		err = conn.Exec(s.queryCtx(ctx), q)
		_ = conn.Close()
		if err != nil {
			return fmt.Errorf("shard %d %v: %w", shard, opts.Addr, err)
		}
	}
	return nil
}

// execDDL runs one DDL statement: on a cluster an ALTER (always of a
// replicated _local table) once per shard, everything else as it is (ON
// CLUSTER where the dialect put it).
func (s *Store) execDDL(ctx context.Context, q string) error {
	if s.dialect.cluster != "" && strings.HasPrefix(q, "ALTER TABLE ") {
		return s.execPerShard(ctx, q)
	}
	return s.exec(ctx, q)
}
