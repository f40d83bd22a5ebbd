-- The incidents each alert move touches, keyed by incident: one row for
-- the target and one for the source of every move (storage/moves.go).
-- alert_moves is keyed by alert; reading one incident's moves through it
-- alone scanned every move of the tenant. This table finds the moved
-- alerts of one incident by its key, and alert_moves their latest move by
-- its key.
CREATE TABLE IF NOT EXISTS {{table "alert_moves_by_incident"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    alert_id String
) ENGINE = {{engine "ReplacingMergeTree" "alert_moves_by_incident" ""}}
ORDER BY (tenant_uid, incident_id, alert_id)
SETTINGS index_granularity = 1024;

{{distributed "alert_moves_by_incident" "cityHash64(tenant_uid, incident_id)"}}

-- The moves made before this table existed (once; a repeated run folds).
INSERT INTO {{all "alert_moves_by_incident"}} (tenant_uid, incident_id, alert_id)
SELECT tenant_uid, inc, alert_id FROM {{all "alert_moves"}}
ARRAY JOIN [incident_id, from_incident] AS inc
WHERE inc != '';
