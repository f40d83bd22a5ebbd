CREATE DATABASE IF NOT EXISTS musubi ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.schema_migrations ON CLUSTER musubi_cluster (
    tenant_uid LowCardinality(String),
    version UInt32,
    name String,
    checksum String,
    applied DateTime('UTC'),
    applied_ms Int64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/musubi_cluster/musubi/schema_migrations', '{replica}', applied_ms)
ORDER BY version;

CREATE TABLE IF NOT EXISTS musubi.events_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/events_local', '{replica}', inserted_ms)
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, class_uid, time, event_uid)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS musubi.events ON CLUSTER musubi_cluster AS musubi.events_local
ENGINE = Distributed(musubi_cluster, musubi, events_local, cityHash64(tenant_uid, event_uid));

CREATE TABLE IF NOT EXISTS musubi.alerts_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/alerts_local', '{replica}', inserted_ms)
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, time, alert_id)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS musubi.alerts ON CLUSTER musubi_cluster AS musubi.alerts_local
ENGINE = Distributed(musubi_cluster, musubi, alerts_local, cityHash64(tenant_uid, alert_id));

CREATE TABLE IF NOT EXISTS musubi.incidents_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/incidents_local', '{replica}', version)
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.incidents ON CLUSTER musubi_cluster AS musubi.incidents_local
ENGINE = Distributed(musubi_cluster, musubi, incidents_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.incident_nodes_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/incident_nodes_local', '{replica}', version)
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id, id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.incident_nodes ON CLUSTER musubi_cluster AS musubi.incident_nodes_local
ENGINE = Distributed(musubi_cluster, musubi, incident_nodes_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.incident_edges_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/incident_edges_local', '{replica}', version)
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id, id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.incident_edges ON CLUSTER musubi_cluster AS musubi.incident_edges_local
ENGINE = Distributed(musubi_cluster, musubi, incident_edges_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.incident_alerts_local ON CLUSTER musubi_cluster (
    tenant_uid LowCardinality(String),
    incident_id String,
    alert_id String,
    version UInt64,
    last_seen DateTime('UTC'),
    alert_time_ms Int64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/incident_alerts_local', '{replica}', version)
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (tenant_uid, incident_id, alert_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.incident_alerts ON CLUSTER musubi_cluster AS musubi.incident_alerts_local
ENGINE = Distributed(musubi_cluster, musubi, incident_alerts_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.incident_workflow_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/incident_workflow_local', '{replica}', version)
PARTITION BY toYYYYMM(updated)
ORDER BY (tenant_uid, incident_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.incident_workflow ON CLUSTER musubi_cluster AS musubi.incident_workflow_local
ENGINE = Distributed(musubi_cluster, musubi, incident_workflow_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.incident_comments_local ON CLUSTER musubi_cluster (
    tenant_uid LowCardinality(String),
    incident_id String,
    comment_id String,
    time DateTime('UTC'),
    time_ms Int64,
    author String,
    body String
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/incident_comments_local', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_uid, incident_id, time_ms, comment_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.incident_comments ON CLUSTER musubi_cluster AS musubi.incident_comments_local
ENGINE = Distributed(musubi_cluster, musubi, incident_comments_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.audit_log_local ON CLUSTER musubi_cluster (
    tenant_uid LowCardinality(String),
    action_id String,
    time DateTime('UTC'),
    time_ms Int64,
    actor String,
    action LowCardinality(String),
    incident_id String,
    details String
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/audit_log_local', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_uid, time_ms, action_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.audit_log ON CLUSTER musubi_cluster AS musubi.audit_log_local
ENGINE = Distributed(musubi_cluster, musubi, audit_log_local, cityHash64(tenant_uid, action_id));

CREATE TABLE IF NOT EXISTS musubi.dead_letters_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/dead_letters_local', '{replica}')
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, source, topic, kafka_partition, kafka_offset, record)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS musubi.dead_letters ON CLUSTER musubi_cluster AS musubi.dead_letters_local
ENGINE = Distributed(musubi_cluster, musubi, dead_letters_local, cityHash64(topic, kafka_partition, kafka_offset));

ALTER TABLE musubi.alerts_local ADD COLUMN fold_count UInt32 DEFAULT 1;

ALTER TABLE musubi.alerts_local ADD COLUMN first_seen_ms Int64 DEFAULT time_ms;

ALTER TABLE musubi.alerts_local ADD COLUMN last_seen_ms Int64 DEFAULT time_ms;

DROP TABLE IF EXISTS musubi.alerts ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.alerts ON CLUSTER musubi_cluster AS musubi.alerts_local
ENGINE = Distributed(musubi_cluster, musubi, alerts_local, cityHash64(tenant_uid, alert_id));

ALTER TABLE musubi.incident_comments_local ADD COLUMN version UInt64 DEFAULT 0;

ALTER TABLE musubi.incident_comments_local ADD COLUMN edited_ms Int64 DEFAULT 0;

ALTER TABLE musubi.incident_comments_local ADD COLUMN deleted UInt8 DEFAULT 0;

DROP TABLE IF EXISTS musubi.incident_comments ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.incident_comments ON CLUSTER musubi_cluster AS musubi.incident_comments_local
ENGINE = Distributed(musubi_cluster, musubi, incident_comments_local, cityHash64(tenant_uid, incident_id));

ALTER TABLE musubi.incident_workflow_local ADD COLUMN acknowledged_ms Int64 DEFAULT 0;

ALTER TABLE musubi.incident_workflow_local ADD COLUMN resolved_ms Int64 DEFAULT 0;

ALTER TABLE musubi.incident_workflow_local ADD COLUMN closed_ms Int64 DEFAULT 0;

DROP TABLE IF EXISTS musubi.incident_workflow ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.incident_workflow ON CLUSTER musubi_cluster AS musubi.incident_workflow_local
ENGINE = Distributed(musubi_cluster, musubi, incident_workflow_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.asset_inventory_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/asset_inventory_local', '{replica}', inserted_ms)
PARTITION BY toYYYYMM(capture_time)
ORDER BY (tenant_uid, account_uid, resource_type, resource_id, capture_ms)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.asset_inventory ON CLUSTER musubi_cluster AS musubi.asset_inventory_local
ENGINE = Distributed(musubi_cluster, musubi, asset_inventory_local, cityHash64(tenant_uid, account_uid));

ALTER TABLE musubi.incident_workflow_local ADD COLUMN classification LowCardinality(String) DEFAULT '';

ALTER TABLE musubi.incident_workflow_local ADD COLUMN impact LowCardinality(String) DEFAULT '';

ALTER TABLE musubi.incident_workflow_local ADD COLUMN team String DEFAULT '';

CREATE TABLE IF NOT EXISTS musubi.incident_numbers_local ON CLUSTER musubi_cluster (
    tenant_uid LowCardinality(String),
    incident_id String,
    number UInt32,
    rank UInt64,
    assigned_ms Int64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/incident_numbers_local', '{replica}', rank)
ORDER BY (tenant_uid, incident_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.incident_numbers ON CLUSTER musubi_cluster AS musubi.incident_numbers_local
ENGINE = Distributed(musubi_cluster, musubi, incident_numbers_local, cityHash64(tenant_uid, incident_id));

DROP TABLE IF EXISTS musubi.incident_workflow ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.incident_workflow ON CLUSTER musubi_cluster AS musubi.incident_workflow_local
ENGINE = Distributed(musubi_cluster, musubi, incident_workflow_local, cityHash64(tenant_uid, incident_id));

ALTER TABLE musubi.alerts_local ADD COLUMN shadow UInt8 DEFAULT 0;

DROP TABLE IF EXISTS musubi.alerts ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.alerts ON CLUSTER musubi_cluster AS musubi.alerts_local
ENGINE = Distributed(musubi_cluster, musubi, alerts_local, cityHash64(tenant_uid, alert_id));

CREATE TABLE IF NOT EXISTS musubi.link_signals_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/link_signals_local', '{replica}', inserted_ms)
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, time, event_uid)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS musubi.link_signals ON CLUSTER musubi_cluster AS musubi.link_signals_local
ENGINE = Distributed(musubi_cluster, musubi, link_signals_local, cityHash64(tenant_uid, event_uid));

CREATE TABLE IF NOT EXISTS musubi.alert_moves_local ON CLUSTER musubi_cluster (
    tenant_uid LowCardinality(String),
    alert_id String,
    version UInt64,
    incident_id String,
    from_incident String,
    alert_time_ms Int64,
    moved_ms Int64,
    moved_by String,
    reason String
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/alert_moves_local', '{replica}', version)
ORDER BY (tenant_uid, alert_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.alert_moves ON CLUSTER musubi_cluster AS musubi.alert_moves_local
ENGINE = Distributed(musubi_cluster, musubi, alert_moves_local, cityHash64(tenant_uid, alert_id));

CREATE TABLE IF NOT EXISTS musubi.saved_views_local ON CLUSTER musubi_cluster (
    owner String,
    view_id String,
    version UInt64,
    name String,
    query String,
    created_ms Int64,
    deleted UInt8
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/saved_views_local', '{replica}', version)
ORDER BY (owner, view_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.saved_views ON CLUSTER musubi_cluster AS musubi.saved_views_local
ENGINE = Distributed(musubi_cluster, musubi, saved_views_local, cityHash64(owner, view_id));

ALTER TABLE musubi.alerts_local ADD COLUMN origin_topics Array(String);

ALTER TABLE musubi.alerts_local ADD COLUMN origin_partitions Array(Int32);

ALTER TABLE musubi.alerts_local ADD COLUMN origin_offsets Array(Int64);

ALTER TABLE musubi.alerts_local ADD COLUMN unheld_severity UInt8 DEFAULT 0;

ALTER TABLE musubi.alerts_local ADD COLUMN unheld_summary String DEFAULT '';

DROP TABLE IF EXISTS musubi.alerts ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.alerts ON CLUSTER musubi_cluster AS musubi.alerts_local
ENGINE = Distributed(musubi_cluster, musubi, alerts_local, cityHash64(tenant_uid, alert_id));

CREATE TABLE IF NOT EXISTS musubi.stage_inputs_local ON CLUSTER musubi_cluster (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/stage_inputs_local', '{replica}', inserted_ms)
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_uid, time, rule_id, stage, event_uid)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS musubi.stage_inputs ON CLUSTER musubi_cluster AS musubi.stage_inputs_local
ENGINE = Distributed(musubi_cluster, musubi, stage_inputs_local, cityHash64(tenant_uid, event_uid));

ALTER TABLE musubi.incidents_local ADD COLUMN risk_json String DEFAULT '';

DROP TABLE IF EXISTS musubi.incidents ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.incidents ON CLUSTER musubi_cluster AS musubi.incidents_local
ENGINE = Distributed(musubi_cluster, musubi, incidents_local, cityHash64(tenant_uid, incident_id));

CREATE TABLE IF NOT EXISTS musubi.alert_moves_by_incident_local ON CLUSTER musubi_cluster (
    tenant_uid LowCardinality(String),
    incident_id String,
    alert_id String
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/musubi/alert_moves_by_incident_local', '{replica}')
ORDER BY (tenant_uid, incident_id, alert_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS musubi.alert_moves_by_incident ON CLUSTER musubi_cluster AS musubi.alert_moves_by_incident_local
ENGINE = Distributed(musubi_cluster, musubi, alert_moves_by_incident_local, cityHash64(tenant_uid, incident_id));

INSERT INTO musubi.alert_moves_by_incident (tenant_uid, incident_id, alert_id)
SELECT tenant_uid, inc, alert_id FROM musubi.alert_moves
ARRAY JOIN [incident_id, from_incident] AS inc
WHERE inc != '';

ALTER TABLE musubi.events_local ADD COLUMN flow_version LowCardinality(String) DEFAULT '';

ALTER TABLE musubi.events_local ADD COLUMN flow_log_status LowCardinality(String) DEFAULT '';

ALTER TABLE musubi.events_local ADD COLUMN flow_action UInt8 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_direction UInt8 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_zone LowCardinality(String) DEFAULT '';

ALTER TABLE musubi.events_local ADD COLUMN flow_interface String DEFAULT '';

ALTER TABLE musubi.events_local ADD COLUMN flow_instance String DEFAULT '';

ALTER TABLE musubi.events_local ADD COLUMN flow_vpc String DEFAULT '';

ALTER TABLE musubi.events_local ADD COLUMN flow_subnet String DEFAULT '';

ALTER TABLE musubi.events_local ADD COLUMN flow_src_port UInt16 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_dst_port UInt16 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_protocol Int64 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_tcp_flags Int64 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_ip_version UInt8 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_packets Int64 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_bytes Int64 DEFAULT 0;

ALTER TABLE musubi.events_local ADD COLUMN flow_end_ms Int64 DEFAULT 0;

DROP TABLE IF EXISTS musubi.events ON CLUSTER musubi_cluster;

CREATE TABLE IF NOT EXISTS musubi.events ON CLUSTER musubi_cluster AS musubi.events_local
ENGINE = Distributed(musubi_cluster, musubi, events_local, cityHash64(tenant_uid, event_uid));
