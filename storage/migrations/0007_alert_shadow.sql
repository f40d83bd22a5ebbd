-- Shadow alerts: alerts of experimental rules (status: experimental) are
-- stored and counted as "would have fired", but never enter incidents, the
-- alert queue or webhooks. 18.16 has no ADD COLUMN IF NOT EXISTS; Migrate
-- tolerates a column that an interrupted run already added.
{{range tables "alerts"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN shadow UInt8 DEFAULT 0;
{{end}}
