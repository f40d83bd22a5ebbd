package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Table names. On a cluster each is a Distributed table over <name>_local.
const (
	TableEvents      = "events"
	TableAlerts      = "alerts"
	TableIncidents   = "incidents"
	TableNodes       = "incident_nodes"
	TableEdges       = "incident_edges"
	TableLinks       = "incident_alerts"
	TableWorkflow    = "incident_workflow"
	TableComments    = "incident_comments"
	TableAudit       = "audit_log"
	TableDeadLetters = "dead_letters"
	TableNumbers     = "incident_numbers"
	TableMigrations  = "schema_migrations"
)

// graphTables hold an incident's graph; they expire with the incident.
var graphTables = []string{TableNodes, TableEdges, TableLinks}

// tableSpec says how a table is partitioned, which DropExpiredPartitions
// needs to turn a partition id back into a time range.
type tableSpec struct {
	monthly bool // toYYYYMM(...) rather than toYYYYMMDD(...)
}

var tableSpecs = map[string]tableSpec{
	TableEvents:      {},
	TableAlerts:      {},
	TableIncidents:   {},
	TableNodes:       {},
	TableEdges:       {},
	TableLinks:       {},
	TableWorkflow:    {monthly: true},
	TableComments:    {monthly: true},
	TableAudit:       {monthly: true},
	TableDeadLetters: {},
	TableNumbers:     {},
	TableMigrations:  {},
	TableInventory:   {monthly: true},
	TableLinkSignals: {},
	TableStageInputs: {},
	TableMoves:       {},
	TableMovesIndex:  {},
	TableViews:       {},
}

// Tables lists the data tables in a stable order.
func Tables() []string {
	return []string{TableEvents, TableAlerts, TableIncidents, TableNodes, TableEdges,
		TableLinks, TableWorkflow, TableComments, TableAudit, TableDeadLetters, TableNumbers, TableInventory, TableLinkSignals, TableStageInputs, TableMoves, TableMovesIndex, TableViews}
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one embedded schema migration.
type Migration struct {
	Version  int
	Name     string
	Checksum string // sha256 of the template text
	text     string
}

// MigrationStatus says whether a migration has been applied.
type MigrationStatus struct {
	Version   int
	Name      string
	Checksum  string
	Applied   bool
	AppliedAt time.Time
	// Changed is set when the applied checksum differs from the embedded one.
	Changed bool
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", name)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), Checksum: hex.EncodeToString(sum[:]), text: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("duplicate migration version %d", out[i].Version)
		}
	}
	return out, nil
}

// dialect renders DDL for one deployment shape: a single node or a cluster.
type dialect struct {
	db, cluster, zk string
}

func newDialect(cfg Config) dialect {
	return dialect{db: cfg.Database, cluster: cfg.Cluster, zk: strings.TrimRight(cfg.ZooKeeperPrefix, "/")}
}

// local is the name of the table that holds a table's data.
func (d dialect) local(t string) string {
	if d.cluster != "" {
		return t + "_local"
	}
	return t
}

// table is the fully qualified name reads and inserts use.
func (d dialect) table(t string) string { return d.db + "." + t }

// globalIn is the IN of a subquery whose table may be Distributed: GLOBAL
// IN on a cluster (a plain IN would run the subquery on every shard
// against every shard), a plain IN on one node, where it means the same
// and, unlike GLOBAL IN, ClickHouse 18.16 uses the primary key for it (a
// keyed lookup of one alert's moves read 1 granule by IN and all 22 of
// the table by GLOBAL IN).
func (d dialect) globalIn() string {
	if d.cluster == "" {
		return "IN"
	}
	return "GLOBAL IN"
}

// globalNotIn is the NOT IN of a subquery, chosen as globalIn chooses.
func (d dialect) globalNotIn() string {
	if d.cluster == "" {
		return "NOT IN"
	}
	return "GLOBAL NOT IN"
}

// parts is the table that lists the data parts of every shard: this
// server's system.parts on one node, and on a cluster system.parts of one
// replica of each shard (a shard's replicas hold the same partitions).
func (d dialect) parts() string {
	if d.cluster == "" {
		return "system.parts"
	}
	return "cluster('" + d.cluster + "', system, parts)"
}

func (d dialect) onCluster() string {
	if d.cluster == "" {
		return ""
	}
	return "ON CLUSTER " + d.cluster
}

func (d dialect) engine(kind, t, version string) string {
	if d.cluster == "" {
		return kind + "(" + version + ")"
	}
	args := fmt.Sprintf("'%s/%s/%s', '{replica}'", d.zk, d.db, d.local(t))
	if version != "" {
		args += ", " + version
	}
	return "Replicated" + kind + "(" + args + ")"
}

func (d dialect) distributed(t, key string) string {
	if d.cluster == "" {
		return ""
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s %s AS %s.%s\nENGINE = Distributed(%s, %s, %s, %s);",
		d.db, t, d.onCluster(), d.db, d.local(t), d.cluster, d.db, d.local(t), key)
}

// funcs are the template functions of one rendering. altered collects,
// on a cluster, the tables whose columns a migration changes, and keys
// each table's sharding key as its Distributed table was declared.
func (d dialect) funcs(altered *[]string, keys map[string]string) template.FuncMap {
	return template.FuncMap{
		"table": func(t string) string { return d.db + "." + d.local(t) },
		// tables names every table that a column change applies to. On
		// one node that is the table; on a cluster it is the local table,
		// and the Distributed table in front of it is recreated after the
		// migration's statements (see render).
		"tables": func(t string) []string {
			if d.cluster == "" {
				return []string{d.db + "." + t}
			}
			if !slices.Contains(*altered, t) {
				*altered = append(*altered, t)
			}
			return []string{d.db + "." + d.local(t)}
		},
		// all names the table a statement reads or inserts every row of:
		// the table, or on a cluster the Distributed table in front of it
		// (such a statement runs once, on one node).
		"all":        func(t string) string { return d.db + "." + t },
		"on_cluster": d.onCluster,
		"engine":     d.engine,
		"distributed": func(t, key string) string {
			keys[t] = key
			return d.distributed(t, key)
		},
	}
}

// execute renders one migration template with the given functions.
func (d dialect) execute(m Migration, funcs template.FuncMap) (string, error) {
	tmpl, err := template.New(m.Name).Funcs(funcs).Parse(m.text)
	if err != nil {
		return "", fmt.Errorf("migration %s: %w", m.Name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, nil); err != nil {
		return "", fmt.Errorf("migration %s: %w", m.Name, err)
	}
	return buf.String(), nil
}

// render turns a migration template into the statements to execute.
//
// On a cluster, a migration that changes a table's columns alters the
// replicated local tables once per shard (Migrate runs every ALTER with
// Store.execPerShard), then drops and recreates ON CLUSTER the
// Distributed table in front of them (it holds no data: inserts are
// synchronous), because ClickHouse 18.16 refuses ALTER ... ON CLUSTER of a
// table that is not replicated on a cluster whose shards replicate
// internally ("Table isn't replicated, but shard is replicated"). The
// Distributed table is briefly absent while the migration runs. Both
// statements are idempotent, so a migration interrupted between them
// completes when it runs again.
func (d dialect) render(m Migration) ([]string, error) {
	var altered []string
	keys := map[string]string{}
	text, err := d.execute(m, d.funcs(&altered, keys))
	if err != nil {
		return nil, err
	}
	stmts := splitStatements(text)
	if d.cluster != "" {
		// ALTERs of the replicated tables run once per shard, not ON
		// CLUSTER (Store.execPerShard says why).
		for i, q := range stmts {
			if strings.HasPrefix(q, "ALTER TABLE ") {
				stmts[i] = strings.Replace(q, " "+d.onCluster()+" ", " ", 1)
			}
		}
	}
	if len(altered) == 0 {
		return stmts, nil
	}
	// The sharding keys are those the migrations declared their
	// Distributed tables with.
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var ignored []string
	for _, other := range ms {
		if _, err := d.execute(other, d.funcs(&ignored, keys)); err != nil {
			return nil, err
		}
	}
	for _, t := range altered {
		key, ok := keys[t]
		if !ok {
			return nil, fmt.Errorf("migration %s: no migration declares the Distributed table of %s", m.Name, t)
		}
		stmts = append(stmts,
			fmt.Sprintf("DROP TABLE IF EXISTS %s.%s %s", d.db, t, d.onCluster()),
			strings.TrimSuffix(d.distributed(t, key), ";"))
	}
	return stmts, nil
}

// migrationsTable renders the DDL of schema_migrations. On a cluster it is
// one replicated table shared by every node (no {shard} in its path), so a
// migration applied from any node is seen by all.
func (d dialect) migrationsTable() string {
	engine := "ReplacingMergeTree(applied_ms)"
	if d.cluster != "" {
		engine = fmt.Sprintf("ReplicatedReplacingMergeTree('/clickhouse/%s/%s/%s', '{replica}', applied_ms)", d.cluster, d.db, TableMigrations)
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s %s (
    tenant_uid LowCardinality(String),
    version UInt32,
    name String,
    checksum String,
    applied DateTime('UTC'),
    applied_ms Int64
) ENGINE = %s
ORDER BY version`, d.db, TableMigrations, d.onCluster(), engine)
}

// RenderDDL returns every DDL statement Migrate would run for cfg, in order,
// without touching a server: for review and for `musubi migrate --print`.
func RenderDDL(cfg Config) ([]string, error) {
	d := newDialect(cfg)
	out := []string{}
	if d.cluster != "" {
		out = append(out, "CREATE DATABASE IF NOT EXISTS "+d.db+" "+d.onCluster())
	}
	out = append(out, d.migrationsTable())
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		stmts, err := d.render(m)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// splitStatements splits SQL text on semicolons that end a line and drops
// comment-only and empty statements. Our DDL has no semicolons in strings.
func splitStatements(sql string) []string {
	var out []string
	for _, part := range strings.Split(sql, ";\n") {
		var lines []string
		for _, l := range strings.Split(part, "\n") {
			if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "--") {
				continue
			}
			lines = append(lines, strings.TrimRight(l, " \t"))
		}
		s := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";")
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Migrate creates the database objects and applies every embedded migration
// not yet recorded in schema_migrations. Every statement is idempotent (IF
// NOT EXISTS), so running it twice, or concurrently from two processes, or
// again after a crash half-way through a migration, is safe.
func (s *Store) Migrate(ctx context.Context) error {
	d := s.dialect
	if err := s.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+d.db+" "+d.onCluster()); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	if err := s.exec(ctx, d.migrationsTable()); err != nil {
		return fmt.Errorf("create %s: %w", TableMigrations, err)
	}
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	ms, err := Migrations()
	if err != nil {
		return err
	}
	for i, m := range ms {
		if status[i].Applied {
			if status[i].Changed {
				s.log.Warn("applied migration differs from the embedded one", "version", m.Version, "name", m.Name)
			}
			continue
		}
		stmts, err := d.render(m)
		if err != nil {
			return err
		}
		for _, q := range stmts {
			if err := s.execDDL(ctx, q); err != nil && !alreadyApplied(q, err) {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		now := time.Now()
		q := fmt.Sprintf("INSERT INTO %s.%s (tenant_uid, version, name, checksum, applied, applied_ms)", d.db, TableMigrations)
		b, err := s.conn.PrepareBatch(s.queryCtx(ctx), q)
		if err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		if err := b.Append("", uint32(m.Version), m.Name, m.Checksum, now, now.UnixMilli()); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		s.log.Info("applied migration", "version", m.Version, "name", m.Name, "statements", len(stmts))
	}
	return nil
}

// alreadyApplied reports whether err only says that an ALTER ... ADD COLUMN
// has been applied before: 18.16 has no ADD COLUMN IF NOT EXISTS, so a
// migration interrupted after such a statement would otherwise never
// complete.
func alreadyApplied(stmt string, err error) bool {
	var ex *clickhouse.Exception
	// 18.16 answers 15 (DUPLICATE_COLUMN), or 44 (ILLEGAL_COLUMN, "column
	// with this name already exists") when another process added it
	// concurrently.
	const duplicateColumn, illegalColumn = 15, 44
	return errors.As(err, &ex) && strings.Contains(strings.ToUpper(stmt), "ADD COLUMN") &&
		(ex.Code == duplicateColumn || ex.Code == illegalColumn && strings.Contains(ex.Message, "already exists"))
}

// MigrationStatus lists every embedded migration and whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	applied := map[int]MigrationStatus{}
	q := fmt.Sprintf("SELECT version, argMax(checksum, applied_ms), max(applied_ms) FROM %s.%s GROUP BY version LIMIT 100000", s.dialect.db, TableMigrations)
	rows, err := s.conn.Query(s.queryCtx(ctx), q)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", TableMigrations, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v uint32
		var sum string
		var at int64
		if err := rows.Scan(&v, &sum, &at); err != nil {
			return nil, err
		}
		applied[int(v)] = MigrationStatus{Checksum: sum, AppliedAt: time.UnixMilli(at).UTC(), Applied: true}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, len(ms))
	for i, m := range ms {
		st := MigrationStatus{Version: m.Version, Name: m.Name, Checksum: m.Checksum}
		if a, ok := applied[m.Version]; ok {
			st.Applied, st.AppliedAt, st.Changed = true, a.AppliedAt, a.Checksum != m.Checksum
		}
		out[i] = st
	}
	return out, nil
}
