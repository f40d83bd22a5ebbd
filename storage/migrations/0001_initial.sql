-- Musubi's initial schema. Rendered as a Go text/template: "table" names
-- the table that holds data (t, or t_local on a cluster), "on_cluster"
-- adds ON CLUSTER, "engine" picks (Replicated)ReplacingMergeTree and
-- "distributed" adds the Distributed table on a cluster. See doc.go for why
-- each key is what it is.

-- Normalized OCSF events. One row per metadata.uid; retries and replays fold.
CREATE TABLE IF NOT EXISTS {{table "events"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    event_uid String,
    time DateTime('UTC'),
    time_ms Int64,
    class_uid UInt32,
    activity_id Int32,
    type_uid UInt32,
    severity_id UInt8,
    status LowCardinality(String),
    log_name LowCardinality(String),
    product LowCardinality(String),
    account_uid LowCardinality(String),
    region LowCardinality(String),
    api_service LowCardinality(String),
    operation LowCardinality(String),
    actor_user_uid String,
    actor_user_name String,
    actor_session_uid String,
    access_key_uid String,
    src_ip String,
    dst_ip String,
    device_uid String,
    device_hostname String,
    entities Array(String),
    message String,
    event_json String,
    raw String,
    raw_encoding LowCardinality(String),
    inserted_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "events" "inserted_ms"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, class_uid, time, event_uid)
SETTINGS index_granularity = 8192;

{{distributed "events" "cityHash64(tenant_uid, event_uid)"}}

-- Alerts in the shape of an OCSF Detection Finding (class 2004).
CREATE TABLE IF NOT EXISTS {{table "alerts"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    alert_id String,
    time DateTime('UTC'),
    time_ms Int64,
    class_uid UInt32,
    rule_id LowCardinality(String),
    rule_version LowCardinality(String),
    title String,
    severity_id UInt8,
    stage LowCardinality(String),
    tactics Array(String),
    techniques Array(String),
    account_uid LowCardinality(String),
    region LowCardinality(String),
    source LowCardinality(String),
    entities Array(String),
    observables_json String,
    event_ids Array(String),
    correlated UInt8,
    summary String,
    inserted_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "alerts" "inserted_ms"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, time, alert_id)
SETTINGS index_granularity = 8192;

{{distributed "alerts" "cityHash64(tenant_uid, alert_id)"}}

-- Incidents as the correlator writes them; the highest version wins.
CREATE TABLE IF NOT EXISTS {{table "incidents"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    version UInt64,
    last_seen DateTime('UTC'),
    title String,
    severity_id UInt8,
    risk_score UInt8,
    status LowCardinality(String),
    first_seen_ms Int64,
    last_seen_ms Int64,
    stages Array(String),
    tactics Array(String),
    techniques Array(String),
    accounts Array(String),
    rule_ids Array(String),
    alert_ids Array(String),
    entities Array(String),
    node_count UInt32,
    edge_count UInt32,
    timeline_json String,
    merged_into String,
    updated_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "incidents" "version"}}
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id)
SETTINGS index_granularity = 1024;

{{distributed "incidents" "cityHash64(tenant_uid, incident_id)"}}

-- Incident graph vertices, named as Grafana's Node Graph panel reads them.
CREATE TABLE IF NOT EXISTS {{table "incident_nodes"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    version UInt64,
    last_seen DateTime('UTC'),
    id String,
    title String,
    subtitle String,
    mainstat String,
    secondarystat String,
    color LowCardinality(String),
    detail__kind LowCardinality(String),
    detail__entity LowCardinality(String),
    detail__value String,
    detail__severity_id UInt8,
    detail__first_seen_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "incident_nodes" "version"}}
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id, id)
SETTINGS index_granularity = 1024;

{{distributed "incident_nodes" "cityHash64(tenant_uid, incident_id)"}}

-- Incident graph edges, named as Grafana's Node Graph panel reads them.
CREATE TABLE IF NOT EXISTS {{table "incident_edges"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    version UInt64,
    last_seen DateTime('UTC'),
    id String,
    source String,
    target String,
    mainstat String,
    secondarystat String,
    detail__rule_id LowCardinality(String),
    detail__rule_version LowCardinality(String),
    detail__join_key String,
    detail__gap_ms Int64,
    detail__time_ms Int64,
    event_ids Array(String)
) ENGINE = {{engine "ReplacingMergeTree" "incident_edges" "version"}}
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id, id)
SETTINGS index_granularity = 1024;

{{distributed "incident_edges" "cityHash64(tenant_uid, incident_id)"}}

-- Which alerts an incident holds (the alert -> event link is alerts.event_ids).
CREATE TABLE IF NOT EXISTS {{table "incident_alerts"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    alert_id String,
    version UInt64,
    last_seen DateTime('UTC'),
    alert_time_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "incident_alerts" "version"}}
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id, alert_id)
SETTINGS index_granularity = 1024;

{{distributed "incident_alerts" "cityHash64(tenant_uid, incident_id)"}}

-- Analyst-owned workflow state, versioned apart from the correlator's rows.
CREATE TABLE IF NOT EXISTS {{table "incident_workflow"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    version UInt64,
    updated DateTime('UTC'),
    updated_ms Int64,
    updated_by String,
    status LowCardinality(String),
    assignee String,
    verdict LowCardinality(String),
    reason String,
    tags Array(String),
    severity_override UInt8,
    merged_into String
) ENGINE = {{engine "ReplacingMergeTree" "incident_workflow" "version"}}
PARTITION BY toYYYYMM(updated)
ORDER BY (tenant_uid, incident_id)
SETTINGS index_granularity = 1024;

{{distributed "incident_workflow" "cityHash64(tenant_uid, incident_id)"}}

-- Analyst comments on incidents.
CREATE TABLE IF NOT EXISTS {{table "incident_comments"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    comment_id String,
    time DateTime('UTC'),
    time_ms Int64,
    author String,
    body String
) ENGINE = {{engine "ReplacingMergeTree" "incident_comments" ""}}
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_uid, incident_id, time_ms, comment_id)
SETTINGS index_granularity = 1024;

{{distributed "incident_comments" "cityHash64(tenant_uid, incident_id)"}}

-- Append-only audit log of analyst and system actions.
CREATE TABLE IF NOT EXISTS {{table "audit_log"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    action_id String,
    time DateTime('UTC'),
    time_ms Int64,
    actor String,
    action LowCardinality(String),
    incident_id String,
    details String
) ENGINE = {{engine "ReplacingMergeTree" "audit_log" ""}}
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_uid, time_ms, action_id)
SETTINGS index_granularity = 1024;

{{distributed "audit_log" "cityHash64(tenant_uid, action_id)"}}

-- Records that could not be processed, with their raw bytes and the reason.
CREATE TABLE IF NOT EXISTS {{table "dead_letters"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    source LowCardinality(String),
    topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    record Int32,
    time DateTime('UTC'),
    time_ms Int64,
    reason LowCardinality(String),
    error String,
    raw String,
    raw_encoding LowCardinality(String)
) ENGINE = {{engine "ReplacingMergeTree" "dead_letters" ""}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, source, topic, kafka_partition, kafka_offset, record)
SETTINGS index_granularity = 8192;

{{distributed "dead_letters" "cityHash64(topic, kafka_partition, kafka_offset)"}}
