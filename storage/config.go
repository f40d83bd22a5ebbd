package storage

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/musubi-xdr/musubi/internal/tlsconf"
)

// Config configures the ClickHouse store. Start from Default and override.
type Config struct {
	// Addr lists ClickHouse native-protocol addresses (host:port).
	Addr     []string `yaml:"addr"`
	Database string   `yaml:"database"`
	Username string   `yaml:"username"`
	// Password is the password itself, "env:NAME" to read it from the
	// environment, or "file:PATH" to read it from a file (a mounted
	// Secret).
	Password string `yaml:"password"`
	// TLS encrypts the connections (ClickHouse's tcp_port_secure, 9440 by
	// default; ClickHouse Cloud's native port).
	TLS tlsconf.Config `yaml:"tls"`
	// Cluster names the ClickHouse cluster (remote_servers) for ON CLUSTER
	// DDL, Replicated*MergeTree and Distributed tables. Empty means one node.
	Cluster string `yaml:"cluster"`
	// ZooKeeperPrefix is the root of the replicated tables' ZooKeeper paths
	// in cluster mode; the server's {shard} and {replica} macros complete it.
	ZooKeeperPrefix string `yaml:"zookeeper_prefix"`
	// DialTimeout bounds connecting to a server.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxOpenConns bounds the connection pool.
	MaxOpenConns int `yaml:"max_open_conns"`
	// MaxExecutionTime is sent as max_execution_time with every query.
	MaxExecutionTime time.Duration `yaml:"max_execution_time"`
	// MaxResultRows is sent as max_result_rows with every read; each read
	// also carries its own LIMIT below it.
	MaxResultRows int `yaml:"max_result_rows"`
	// Retention is how long each table keeps its data, by table name (see
	// Tables). Partitions older than that are dropped by
	// DropExpiredPartitions. A table that is absent or zero is kept forever.
	// The graph tables (incident_nodes, incident_edges, incident_alerts)
	// always follow incidents. Keep incident_workflow at least as long as
	// incidents, or analysts' state disappears from live incidents.
	Retention map[string]time.Duration `yaml:"retention"`
	// StoreRaw keeps each event's source record, as it came (RawNone).
	StoreRaw bool `yaml:"store_raw"`
	// EvidenceLookback is how far before an incident's first alert the
	// evidence events of its alerts are searched for.
	EvidenceLookback time.Duration `yaml:"evidence_lookback"`
	// RetryMin and RetryMax bound the back-off between write attempts.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// AttemptTimeout bounds one INSERT attempt.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// Compression is how the native protocol compresses the blocks both
	// ways (compressions): lz4 by default; none spares the engine's CPU
	// (about a tenth of it goes to LZ4 when it writes the raw records)
	// where ClickHouse is on the same host or a fast network, at many
	// times the bytes on the wire; zstd sends the fewest bytes for more
	// CPU. What is stored on disk follows the tables' own codecs either
	// way.
	Compression string `yaml:"compression"`
	// IncidentNumbers says which incident numbers this writer hands out
	// (see numbers.go).
	IncidentNumbers NumberConfig `yaml:"incident_numbers"`
}

// NumberConfig splits the incident numbers of a tenant among the engines
// that write incidents: engine Allocator of Allocators hands out the
// numbers n with n % Allocators == Allocator (1, 2, 3 … with the default
// single allocator), so engines never hand out the same number without
// coordinating. Give every engine replica that correlates its own
// Allocator and the same Allocators.
type NumberConfig struct {
	Allocator  int `yaml:"allocator"`
	Allocators int `yaml:"allocators"`
}

// compressions are the native protocol's block compressions by their
// names in Config.Compression.
var compressions = map[string]clickhouse.CompressionMethod{
	"none":  clickhouse.CompressionNone,
	"lz4":   clickhouse.CompressionLZ4,
	"lz4hc": clickhouse.CompressionLZ4HC,
	"zstd":  clickhouse.CompressionZSTD,
}

// Default returns the configuration for the local single-node server.
func Default() Config {
	return Config{
		Addr:             []string{"127.0.0.1:9000"},
		Database:         "musubi",
		Username:         "default",
		ZooKeeperPrefix:  "/clickhouse/tables/{shard}",
		DialTimeout:      5 * time.Second,
		MaxOpenConns:     8,
		MaxExecutionTime: 30 * time.Second,
		MaxResultRows:    100_000,
		Retention: map[string]time.Duration{
			TableEvents:      30 * 24 * time.Hour,
			TableAlerts:      180 * 24 * time.Hour,
			TableIncidents:   365 * 24 * time.Hour,
			TableWorkflow:    400 * 24 * time.Hour,
			TableComments:    400 * 24 * time.Hour,
			TableAudit:       400 * 24 * time.Hour,
			TableDeadLetters: 14 * 24 * time.Hour,
			// Read back over the longest correlation window only.
			TableLinkSignals: 7 * 24 * time.Hour,
			TableStageInputs: 7 * 24 * time.Hour,
		},
		EvidenceLookback: 7 * 24 * time.Hour,
		RetryMin:         100 * time.Millisecond,
		RetryMax:         10 * time.Second,
		AttemptTimeout:   60 * time.Second,
		Compression:      "lz4",
		IncidentNumbers:  NumberConfig{Allocator: 0, Allocators: 1},
	}
}

var (
	identRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	zkPathRE  = regexp.MustCompile(`^/[A-Za-z0-9_{}/.-]*$`)
	errConfig = errors.New("invalid storage config")
)

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{errConfig}, args...)...))
	}
	if len(c.Addr) == 0 {
		bad("addr: at least one address is required")
	}
	for i, a := range c.Addr {
		if _, port, err := net.SplitHostPort(a); err != nil {
			bad("addr[%d]: %q is not host:port", i, a)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("addr[%d]: port %q is not a number", i, port)
		}
	}
	if !identRE.MatchString(c.Database) {
		bad("database %q: must be an identifier ([A-Za-z_][A-Za-z0-9_]*)", c.Database)
	}
	if c.Cluster != "" && !identRE.MatchString(c.Cluster) {
		bad("cluster %q: must be an identifier", c.Cluster)
	}
	if c.Cluster != "" && !zkPathRE.MatchString(c.ZooKeeperPrefix) {
		bad("zookeeper_prefix %q: must be an absolute path", c.ZooKeeperPrefix)
	}
	if c.DialTimeout < 100*time.Millisecond {
		bad("dial_timeout: %s is shorter than 100ms", c.DialTimeout)
	}
	if c.MaxOpenConns < 1 || c.MaxOpenConns > 1000 {
		bad("max_open_conns: %d is outside 1..1000", c.MaxOpenConns)
	}
	if c.MaxExecutionTime < time.Second {
		bad("max_execution_time must be at least 1s")
	}
	if c.MaxResultRows <= 0 {
		bad("max_result_rows must be positive")
	}
	for t, d := range c.Retention {
		if _, ok := tableSpecs[t]; !ok || t == TableMigrations {
			bad("retention: unknown table %q", t)
		}
		if d < 0 {
			bad("retention of %s: negative duration", t)
		} else if d > 0 && d < 24*time.Hour {
			bad("retention of %s: %s is shorter than one daily partition", t, d)
		}
	}
	for _, t := range graphTables {
		if d, ok := c.Retention[t]; ok && d != c.Retention[TableIncidents] {
			bad("retention of %s (%s) differs from that of %s (%s): the graph expires with its incident; leave it unset",
				t, d, TableIncidents, c.Retention[TableIncidents])
		}
	}
	if c.EvidenceLookback < 0 {
		bad("evidence_lookback must not be negative")
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		bad("retry_min must be positive and retry_max at least retry_min")
	}
	if c.AttemptTimeout <= 0 {
		bad("attempt_timeout must be positive")
	}
	if _, ok := compressions[c.Compression]; !ok {
		bad("compression %q: want one of %s", c.Compression, strings.Join(slices.Sorted(maps.Keys(compressions)), ", "))
	}
	for _, err := range c.TLS.Validate() {
		bad("tls.%v", err)
	}
	if n := c.IncidentNumbers; n.Allocators < 1 || n.Allocators > 1000 || n.Allocator < 0 || n.Allocator >= n.Allocators {
		bad("incident_numbers: allocator %d of %d: want 1 <= allocators <= 1000 and 0 <= allocator < allocators", n.Allocator, n.Allocators)
	}
	return errors.Join(errs...)
}
