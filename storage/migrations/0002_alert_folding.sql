-- Folded alerts: repeats of one detection on the same entities within the
-- correlator's fold window are one alert row, rewritten in place (same
-- alert_id, higher inserted_ms) with its count and first/last seen times.
-- 18.16 has no ADD COLUMN IF NOT EXISTS; Migrate tolerates a column that
-- an interrupted run already added.
{{range tables "alerts"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN fold_count UInt32 DEFAULT 1;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN first_seen_ms Int64 DEFAULT time_ms;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN last_seen_ms Int64 DEFAULT time_ms;
{{end}}
