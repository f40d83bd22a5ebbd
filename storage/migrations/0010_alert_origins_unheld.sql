-- Origins of folded alerts: per Kafka topic and partition, the highest
-- offset among the matches a folded alert counted (alert.Origins, three
-- parallel arrays). After a crash between the write and the offset commit
-- the batch is read again; a restored folded alert does not count a match
-- at or below its stored origin twice (correlate/fold.go, replayed).
-- Held alerts: an alert stored as informational because its source is
-- expected keeps the severity and summary its rule gave it (unheld_*;
-- severity 0: not held), which it takes back when a later theft releases
-- it, also after a restart (alert.Unheld).
-- 18.16 has no ADD COLUMN IF NOT EXISTS; Migrate tolerates a column that
-- an interrupted run already added.
{{range tables "alerts"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN origin_topics Array(String);
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN origin_partitions Array(Int32);
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN origin_offsets Array(Int64);
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN unheld_severity UInt8 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN unheld_summary String DEFAULT '';
{{end}}
