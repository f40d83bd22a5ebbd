-- Asset inventory with history: one row per AWS Config configuration item,
-- that is per resource and capture time. The sort key starts with the
-- tenant, account, resource type and id, so "the state of every resource
-- as of time T" reads one contiguous range per resource and keeps the row
-- with the greatest capture_ms <= T (argMax); a redelivered item (a
-- snapshot repeating a history item) has the same key and folds. Deletions
-- are rows too (deleted = 1), so a resource deleted before T is absent as
-- of T. item_json is the typed record (ingest/awsconfig.Item) as JSON:
-- 18.16 has no JSON type, and the readers decode it in Go.
CREATE TABLE IF NOT EXISTS {{table "asset_inventory"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    account_uid String,
    resource_type LowCardinality(String),
    resource_id String,
    capture_time DateTime('UTC'),
    capture_ms Int64,
    region LowCardinality(String),
    arn String,
    resource_name String,
    status LowCardinality(String),
    deleted UInt8,
    item_uid String,
    item_json String,
    inserted_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "asset_inventory" "inserted_ms"}}
PARTITION BY toYYYYMM(capture_time)
ORDER BY (tenant_uid, account_uid, resource_type, resource_id, capture_ms)
SETTINGS index_granularity = 1024;

{{distributed "asset_inventory" "cityHash64(tenant_uid, account_uid)"}}
