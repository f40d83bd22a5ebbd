-- Case timing: each workflow version carries when the incident was first
-- acknowledged (an analyst took it: assigned it or moved it off new), and
-- when it was resolved and closed (0 while it is not; reopening clears
-- them), so time to acknowledge and to resolve need no history query.
{{range tables "incident_workflow"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN acknowledged_ms Int64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN resolved_ms Int64 DEFAULT 0;
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN closed_ms Int64 DEFAULT 0;
{{end}}
