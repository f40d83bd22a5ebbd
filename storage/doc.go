// Package storage is Musubi's ClickHouse storage layer: the schema and its
// migrations, the batched idempotent writer the pipeline commits offsets
// behind, and the reads of the SOC incident API.
//
// # Servers
//
// The schema and every query run on ClickHouse 18.16 (the only server our
// test machines can install, and what the tests run against) and on current
// ClickHouse (24.x+, production). Hence: no DateTime64 (times are Int64
// milliseconds *_ms plus a second-precision DateTime column for
// partitioning), no Map/JSON types (the event is kept as OCSF JSON text in
// event_json, searchable with visitParam*; entities are "kind:value"
// strings in Array(String)), no TTL (retention drops partitions), no server
// parameters (values are bound client-side with ? and identifiers such as
// sort columns come from allow-lists), and every INSERT names its columns.
//
// VPC flow records: a record in the default format, or a custom one of the
// common fields (vpcflow.Row says which), is stored as typed flow_*
// columns (ports, protocol, packets, bytes, action, interface, ...)
// beside src_ip, dst_ip, account_uid, region and time_ms, with event_json
// empty: its OCSF document is ten times the 111-byte line. The reader
// builds the document back from the columns with the reading version's
// vpcflow code (scanEvidence: the same bytes ocsf.Event.AppendJSON wrote
// before, TestFlowRowsRoundTrip; a later mapping change shows in rows
// already stored, as it would in a replay of the record), and the
// full-text search looks in their addresses, ids and ports
// (eventTextSQL). Every other row keeps the flow columns at their
// defaults.
//
// Order: an events INSERT's rows go in the table's sort order (tenant_uid,
// class_uid, time, event_uid; sortOrder), so that the server writes its
// parts without sorting them (18.16 counts such blocks in
// MergeTreeDataWriterBlocksAlreadySorted); the sort copied every String
// column on the server, a sixth to a quarter of its CPU for an event row.
// The String columns are sized for the largest block of the table's
// recent INSERTs (blockMemo), since sorted blocks differ in size.
//
// Encoding: a batch is sent column by column (one typed slice per column,
// blocks of sendBlockRows rows; each String column sized for the largest
// block expected, see reserveStrings). event_json is ocsf.Event.AppendJSON's
// output — byte for byte encoding/json's, written without reflection —
// appended to a pooled arena one block at a time as the INSERT sends it (a
// batch's documents are never all in memory); the entity keys go to
// another arena, turned into strings once per batch. Encoding a batch costs
// a few allocations, not a few per row. Raw records and dead letters are strings over their
// own bytes (Write's caller leaves them unchanged while it runs).
//
// Compression: the raw source record (raw, when Config.StoreRaw is set) is
// stored as it came (raw_encoding empty), like every other column: the
// native protocol's LZ4 compresses each block on the wire and the server
// compresses each part with its default method (LZ4; zstd where the
// server's <compression> section says so), both over many records at
// once, which finds far more than compressing each record alone (rows
// earlier versions wrote with raw_encoding = 'zstd' are still read). On
// current ClickHouse one may additionally add CODEC(ZSTD(3)) to event_json
// and raw with ALTER TABLE ... MODIFY COLUMN; the stored bytes and the
// queries stay the same.
//
// # Idempotency
//
// Every table is a ReplacingMergeTree whose ORDER BY ends in the row's
// deterministic id: events by metadata.uid, alerts by Alert.ID, incidents
// by Incident.ID (version column: the highest version wins), graph nodes and
// edges by (incident id, node/edge id), dead letters by (topic, partition,
// offset, record). A retried or replayed batch writes identical keys, and the rows
// fold at merge time; reads use FINAL or argMax(…, version), so duplicates
// are never visible, even before a merge. Folding happens within one
// partition only, so every partition key is derived from the row itself
// (event time, alert time, incident last_seen), never from the write time.
//
// # Keys: why they are what they are
//
// events: PARTITION BY toYYYYMMDD(time), ORDER BY (tenant_uid, class_uid,
// time, event_uid). Hunting always names a tenant and a time range and
// usually a class (API activity, network, process); the daily partition
// prunes the range and retention drops whole days. Operation, actor, IPs and
// entities are plain columns scanned within that range (18.16 has no
// usable skip indexes; on current ClickHouse a bloom_filter index on
// event_uid and entities is a worthwhile addition). Evidence lookups by
// event_uid are bounded by the alert times (Config.EvidenceLookback).
//
// alerts: PARTITION BY toYYYYMMDD(time), ORDER BY (tenant_uid, time,
// alert_id): the correlator's restore reads a tenant's recent alerts, and
// the incident view reads an incident's alerts by id within its time span.
//
// incidents, incident_nodes, incident_edges, incident_alerts: PARTITION BY
// toYYYYMMDD(last_seen), ORDER BY (tenant_uid, incident_id[, id]). The queue
// lists a tenant's incidents; per-tenant incident counts are small (thousands),
// so the queue aggregates the latest version per incident (argMax) and sorts
// in memory. last_seen only grows across versions, so all versions of an
// incident sit in its last day's partition or earlier ones: dropping
// partitions older than the retention removes incidents whose last activity
// is older, never half an incident. Every version rewrites its nodes, edges
// and alert links with the incident's version; reads take the rows of the
// latest version, so a node removed from the graph disappears.
// Node and edge columns are named as Grafana's Node Graph panel expects
// (id, title, subtitle, mainstat, secondarystat, color, detail__*; id,
// source, target, mainstat, ...), so a panel query is a plain SELECT.
//
// incident_workflow: the analyst-owned state (status, assignee, verdict,
// tags, severity override) is a separate table with its own version, so the
// correlator (writing incidents) and analysts (writing workflow) never
// overwrite each other. PARTITION BY toYYYYMM(updated): the rows are few;
// keep its retention at least as long as the incidents'.
//
// incident_alerts links an incident version to its alerts; the alert to
// evidence-event link is alerts.event_ids, which the evidence query joins.
//
// alert_moves: an analyst's move of an alert to another incident (and the
// moves a merge makes), ORDER BY (tenant_uid, alert_id) with the move's
// version, no partitions (few rows). The correlator rewrites alert_ids and
// the links from its own state with every version, so a move cannot be a
// change of its rows: it is a row of its own that every read applies (the
// incident's alerts, evidence and alert_ids, the alert queue). moves.go
// says which reads follow it and which keep the correlator's view.
// alert_moves_by_incident indexes the moves by incident: a row (tenant,
// incident, alert) for the target and the source of every move, ORDER BY
// (tenant_uid, incident_id, alert_id). An incident's moves are read
// through it by key (the alerts it names, then their latest moves by
// alert_moves' key), so a PATCH reads its incident's moves, not its
// tenant's (TestWorkflowUpdateReadsOnlyItsIncident).
//
// saved_views: a principal's named queue filters, ORDER BY (owner,
// view_id), versioned like comments (a deletion is a version). The one
// table without a tenant, and the only one without a tenant_uid column: a
// view belongs to a token name, and its query is checked against the
// caller's tenants when it is used.
//
// incident_comments, audit_log: append-only, monthly partitions, ids chosen
// by the caller (or random) so a retried request folds. Workflow changes
// and merges write their audit entry (deterministic id) before the change.
//
// dead_letters: PARTITION BY toYYYYMMDD(time), ORDER BY (tenant_uid,
// source, topic, kafka_partition, kafka_offset, record): one message may
// hold several bad records (a CloudTrail delivery file), each its own row. Raw bytes are always kept,
// because they are the only copy once the offset is committed.
// DeadLetter.Time should be the record's timestamp so a replay folds.
//
// schema_migrations describes the database, not data: its tenant_uid
// column is always empty. saved_views (above) has none.
//
// DateTime columns are DateTime('UTC'), so partitions are UTC days whatever
// the server's timezone.
//
// # Writes and overload
//
// Store.Write is synchronous: one INSERT per non-empty table (events,
// alerts, then each incident's nodes, edges and alert links before the
// incident row, so a visible incident version has its graph), each retried
// with jittered exponential back-off (Config.RetryMin..RetryMax) while the
// error is transient (network errors, timeouts, overload codes such as
// TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED, READONLY), until the caller's
// context ends. Permanent errors (unknown column, type mismatch) return at
// once wrapped in ErrPermanent. Write returns nil only when every row is
// stored, so the caller commits Kafka offsets after it and never before.
// Memory is bounded by the caller's batch: Write holds one encoded copy.
//
// # Clusters
//
// With Config.Cluster set, DDL runs ON CLUSTER, data tables are
// Replicated*MergeTree at <zookeeper_prefix>/<db>/<table>_local with the
// server's {replica} macro, and a Distributed table of the plain name
// shards by cityHash64(tenant_uid, incident_id) (incident tables) or the
// row id, so all versions of a row meet on one shard and fold there.
// Inserts use insert_distributed_sync=1 so Write returns only when the
// shards hold the rows. Every IN or NOT IN over a subquery is the
// dialect's (dialect.globalIn): GLOBAL on a cluster, which Distributed
// tables require, and plain on one node, where it means the same and 18.16
// uses the primary key for it and not for GLOBAL IN. A migration that
// adds columns alters the _local tables once per shard (not ON CLUSTER:
// 18.16's replica election for it can stop a server's DDL worker) and
// recreates the Distributed table ON CLUSTER (18.16 refuses ALTER ON
// CLUSTER of a table that is not replicated). Retention and the watermark
// list the partitions of every shard (cluster(<name>, system, parts)) and
// retention drops them from the _local tables of each shard. Open requires
// load_balancing = in_order in the user's profile, so reads go to the
// replica this store's inserts went to and see them. `make test-cluster`
// runs all of this on a local cluster of two shards, one with two replicas
// (deployments/cluster_test.go).
//
// # Reads
//
// Every read takes the caller's tenant list and filters on it; an id in
// another tenant is ErrNotFound. Every query carries max_execution_time and
// max_result_rows (Config), and a LIMIT below them; a read that would
// exceed max_result_rows fails rather than returning a silently cut result.
//
// The queue (ListIncidents) filters on the effective status and severity:
// the analyst's workflow value when set, the correlator's otherwise. Its
// cursor is an opaque keyset position (sort value, tenant, id), so pages
// stay stable while incidents are written; it is bound to its sort order.
// CountsByStatus applies every filter except Status.
//
// Evidence pages (GetIncident) are the events named by the incident's
// alerts' event_ids, oldest first, 100 per page, searched from
// EvidenceLookback before the first alert to a day after the last.
//
// Workflow updates are compare-and-set on the workflow version: read the
// latest, compare, insert version+1. Without transactions this has a race
// window between two processes (see UpdateIncidentWorkflow); within one process a
// per-incident lock closes it.
//
// # Grafana
//
// The Node Graph panel reads the graph tables directly, for example:
//
//	SELECT id, title, subtitle, mainstat, secondarystat, color, detail__kind, detail__value
//	FROM incident_nodes FINAL
//	WHERE tenant_uid = '$tenant' AND incident_id = '$incident'
//	  AND version = (SELECT max(version) FROM incidents WHERE tenant_uid = '$tenant' AND incident_id = '$incident')
//
//	SELECT id, source, target, mainstat, secondarystat, detail__rule_id, detail__join_key
//	FROM incident_edges FINAL WHERE ... (the same condition)
//
// # On current ClickHouse
//
// The same DDL and queries run unchanged on 24.x. What one would do
// differently there, and may add by a later migration once 18.16 is no
// longer a test target: CODEC(ZSTD) on event_json and raw, TTL instead of
// DropExpiredPartitions, bloom_filter skip indexes on event_uid and
// entities, DateTime64(3) instead of the *_ms columns, and
// insert_deduplication_token for batch-level dedup on top of the row ids.
// LowCardinality needs no setting there (the one we send is harmless).
//
// Migrations are append-only: never edit a released file (Migrate warns on
// a checksum change). 18.16 has no ADD COLUMN IF NOT EXISTS; Migrate treats
// a duplicate-column error of an ADD COLUMN as already applied.
package storage
