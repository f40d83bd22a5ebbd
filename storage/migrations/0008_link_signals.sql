-- Link signals: the plain events that taught the correlator a lineage link
-- (identity and deployment lineage) or the address an instance session
-- called from, reduced to what the correlator reads (correlate.LinkSignal).
-- They raised no alert, so nothing else stored keeps them; a restarted
-- correlator, or the new owner of a tenant after a rebalance, reads the
-- longest correlation window of them back (Store.LoadState). The event uid
-- is the row's deterministic id: a replayed batch rewrites the same rows,
-- which fold. 18.16 has no TTL: the table is partitioned by day and
-- clickhouse.retention.link_signals drops the old days.
CREATE TABLE IF NOT EXISTS {{table "link_signals"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    event_uid String,
    time DateTime('UTC'),
    time_ms Int64,
    log_name LowCardinality(String),
    class_uid UInt32,
    operation LowCardinality(String),
    obs_entity Array(String),
    obs_name Array(String),
    obs_value Array(String),
    inserted_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "link_signals" "inserted_ms"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, time, event_uid)
SETTINGS index_granularity = 8192;

{{distributed "link_signals" "cityHash64(tenant_uid, event_uid)"}}
