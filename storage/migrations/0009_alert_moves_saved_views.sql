-- Analysts' moves of alerts between incidents. The correlator's rows
-- (incidents.alert_ids, incident_alerts) say where it put an alert; a move
-- overrides that for every read: an alert's incident is the target of its
-- latest move (highest version), whatever the correlator writes later
-- (storage/moves.go). One row per move; the history is in the audit log.
CREATE TABLE IF NOT EXISTS {{table "alert_moves"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    alert_id String,
    version UInt64,
    incident_id String,
    from_incident String,
    alert_time_ms Int64,
    moved_ms Int64,
    moved_by String,
    reason String
) ENGINE = {{engine "ReplacingMergeTree" "alert_moves" "version"}}
ORDER BY (tenant_uid, alert_id)
SETTINGS index_granularity = 1024;

{{distributed "alert_moves" "cityHash64(tenant_uid, alert_id)"}}

-- Saved views: named queue filters of one principal (a token name). Each
-- change is the view's next version; a deletion is a version with
-- deleted = 1 (storage/views.go).
CREATE TABLE IF NOT EXISTS {{table "saved_views"}} {{on_cluster}} (
    owner String,
    view_id String,
    version UInt64,
    name String,
    query String,
    created_ms Int64,
    deleted UInt8
) ENGINE = {{engine "ReplacingMergeTree" "saved_views" "version"}}
ORDER BY (owner, view_id)
SETTINGS index_granularity = 1024;

{{distributed "saved_views" "cityHash64(owner, view_id)"}}
