-- Case work: the verdict's classification reason, the impact and the team
-- on each workflow version.
{{range tables "incident_workflow"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN classification LowCardinality(String) DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN impact LowCardinality(String) DEFAULT '';
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN team String DEFAULT '';
{{end}}
-- Short human incident numbers (MSB-1042), one claim row per incident.
-- The writer that first stores an incident claims the next number of its
-- tenant (storage/numbers.go). rank is 2^32 minus the number, so the
-- ReplacingMergeTree keeps an incident's first (lowest) claim and reads
-- take max(rank): a replay that claimed again never renumbers it.
CREATE TABLE IF NOT EXISTS {{table "incident_numbers"}} {{on_cluster}} (
    tenant_uid LowCardinality(String),
    incident_id String,
    number UInt32,
    rank UInt64,
    assigned_ms Int64
) ENGINE = {{engine "ReplacingMergeTree" "incident_numbers" "rank"}}
ORDER BY (tenant_uid, incident_id)
SETTINGS index_granularity = 1024;

{{distributed "incident_numbers" "cityHash64(tenant_uid, incident_id)"}}
