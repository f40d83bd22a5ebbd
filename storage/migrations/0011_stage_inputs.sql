-- Stage inputs: the plain events a sequence rule's stage kept (the first
-- stage of a chain, a threshold's inputs), reduced to what the stage keeps
-- (correlate.StageInput): the rule, its document's content hash, the stage,
-- the event's uid, time and the observables the rule keys on. They raised
-- no alert, so nothing else stored lets a restarted correlator, or the new
-- owner of a tenant after a rebalance, resume those chains; it reads the
-- longest correlation window of them back (Store.LoadState). The event uid
-- with the rule and stage is the row's deterministic id: a replayed batch
-- rewrites the same rows, which fold. 18.16 has no TTL: the table is
-- partitioned by day and clickhouse.retention.stage_inputs drops old days.
CREATE TABLE IF NOT EXISTS {{table "stage_inputs"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    rule_id LowCardinality(String),
    rule_sum String,
    stage UInt16,
    event_uid String,
    time DateTime('UTC'),
    time_ms Int64,
    obs_entity Array(String),
    obs_name Array(String),
    obs_value Array(String),
    inserted_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "stage_inputs" "inserted_ms"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, time, rule_id, stage, event_uid)
SETTINGS index_granularity = 8192;

{{distributed "stage_inputs" "cityHash64(tenant_uid, event_uid)"}}
