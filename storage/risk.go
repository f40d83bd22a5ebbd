package storage

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/musubi-xdr/musubi/incident"
)

// RiskExplanations returns the explanation of the latest version's risk
// score (incident.RiskExplanation) of each of ids in tenants that has
// one: incidents written before their assets were scored, or without a
// scorer, have none. The queue's list and detail read it apart from the
// incident rows, one query per page.
func (s *Store) RiskExplanations(ctx context.Context, tenants, ids []string) (map[string]incident.RiskExplanation, error) {
	if err := checkTenants(tenants); err != nil {
		return nil, err
	}
	out := map[string]incident.RiskExplanation{}
	if len(ids) == 0 {
		return out, nil
	}
	q := `SELECT incident_id, argMax(risk_json, version) AS r
FROM ` + s.t(TableIncidents) + `
WHERE tenant_uid IN ` + placeholders(len(tenants)) + ` AND incident_id IN ` + placeholders(len(ids)) + `
GROUP BY tenant_uid, incident_id`
	rows, err := s.conn.Query(s.readCtx(ctx), q, append(anySlice(tenants), anySlice(ids)...)...)
	if err != nil {
		return nil, fmt.Errorf("read risk explanations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("read risk explanations: %w", err)
		}
		if raw == "" {
			continue
		}
		var ex incident.RiskExplanation
		if err := json.Unmarshal([]byte(raw), &ex); err != nil {
			return nil, fmt.Errorf("decode the risk explanation of incident %s: %w", id, err)
		}
		out[id] = ex
	}
	return out, rows.Err()
}
