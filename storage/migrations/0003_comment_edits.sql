-- Comments can be edited and deleted by their author: each change is a new
-- row of the comment (same comment_id and time_ms, so merges fold it into
-- the original) with the next version; a deletion is a row with deleted = 1
-- and an empty body. Reads take the highest version of each comment.
-- 18.16 has no ADD COLUMN IF NOT EXISTS; Migrate tolerates a column that
-- an interrupted run already added.
{{range tables "incident_comments"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN version UInt64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN edited_ms Int64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN deleted UInt8 DEFAULT 0;
{{end}}
