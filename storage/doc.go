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
// Compression: 18.16 has no per-column CODEC clause, so the raw source
// record is compressed client-side with zstd (raw, raw_encoding = 'zstd')
// when Config.StoreRaw is set; all other columns get the server's default
// block compression (LZ4). On current ClickHouse one may additionally add
// CODEC(ZSTD(3)) to event_json with ALTER TABLE ... MODIFY COLUMN; the
// stored bytes and the queries stay the same.
//
// # Idempotency
//
// Every table is a ReplacingMergeTree whose ORDER BY ends in the row's
// deterministic id: events by metadata.uid, alerts by Alert.ID, incidents
// by Incident.ID (version column: the highest version wins), graph nodes and
// edges by (incident id, node/edge id), dead letters by (topic, partition,
// offset). A retried or replayed batch writes identical keys, and the rows
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
// incident_comments, audit_log: append-only, monthly partitions, ids chosen
// by the caller (or random) so a retried request folds.
//
// dead_letters: PARTITION BY toYYYYMMDD(time), ORDER BY (tenant_uid,
// source, topic, kafka_partition, kafka_offset). Raw bytes are always kept
// (zstd), because they are the only copy once the offset is committed.
//
// # Writes and overload
//
// Store.Write is synchronous: one INSERT per non-empty table, each retried
// with jittered exponential back-off (Config.RetryMin..RetryMax) while the
// error is transient (network errors, timeouts, overload codes such as
// TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED, READONLY), until the caller's
// context ends. Permanent errors (unknown column, type mismatch) return at
// once wrapped in ErrPermanent. Write returns nil only when every row is
// stored, so the caller commits Kafka offsets after it and never before.
// Memory is bounded by the caller's batch: Write holds one encoded copy.
//
// Buffer aggregates small batches into one Write per ~second or per
// MaxRows rows. Its overload policy is backpressure: Add blocks while
// MaxRows are pending (the Kafka consumer stops fetching) and fails with
// the context's error if the caller gives up; nothing is ever dropped.
//
// # Clusters
//
// With Config.Cluster set, DDL runs ON CLUSTER, data tables are
// Replicated*MergeTree at <zookeeper_prefix>/<db>/<table>_local with the
// server's {replica} macro, and a Distributed table of the plain name
// shards by cityHash64(tenant_uid, incident_id) (incident tables) or the
// row id, so all versions of a row meet on one shard and fold there.
// Inserts use insert_distributed_sync=1 so Write returns only when the
// shards hold the rows. Retention drops partitions of the _local tables
// ON CLUSTER.
//
// # Reads
//
// Every read takes the caller's tenant list and filters on it; an id in
// another tenant is ErrNotFound. Every query carries max_execution_time and
// max_result_rows, and a LIMIT below them.
package storage
