-- The explanation of an incident's risk score (incident.RiskExplanation as
-- JSON): the correlator's part and each asset factor's points and
-- evidence, written with the version it explains; empty when the
-- incident's assets were not scored (exposure.Scorer).
{{range tables "incidents"}}
ALTER TABLE {{.}} {{on_cluster}} ADD COLUMN risk_json String DEFAULT '';
{{end}}
