-- Origins of folded alerts: per Kafka topic and partition, the highest
-- offset among the matches a folded alert counted (alert.Origins, three
-- parallel arrays). After a crash between the write and the offset commit
-- the batch is read again; a restored folded alert does not count a match
-- at or below its stored origin twice (correlate/fold.go, replayed).
-- 18.16 has no ADD COLUMN IF NOT EXISTS; Migrate tolerates a column that
-- an interrupted run already added.
{{range tables "alerts"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN origin_topics Array(String);
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN origin_partitions Array(Int32);
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN origin_offsets Array(Int64);
{{end}}
