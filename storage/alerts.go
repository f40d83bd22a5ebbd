package storage

import (
	"context"
	"fmt"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
)

// alertCursor is the position after the last alert of a page.
type alertCursor struct {
	Time int64  `json:"t"`
	ID   string `json:"i"`
}

// ListAlerts returns one page of the alert queue: the tenants' alerts in
// [q.From, q.To] linked to no incident whose severity (its highest
// version's) is q.HighSeverity or more, newest first. Shadow alerts (of
// experimental rules) are not in the queue: see ShadowMatches.
func (s *Store) ListAlerts(ctx context.Context, q casework.AlertQuery) (casework.AlertPage, error) {
	if err := checkTenants(q.Tenants); err != nil {
		return casework.AlertPage{}, err
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	tenants := anySlice(q.Tenants)
	b := &builder{}
	b.add("tenant_uid IN "+placeholders(len(q.Tenants)), tenants...)
	b.add("time >= toStartOfHour(toDateTime(?)) AND time <= toDateTime(?)", q.From.Unix(), q.To.Unix())
	b.add("time_ms >= ? AND time_ms <= ?", q.From.UnixMilli(), q.To.UnixMilli())
	b.add("shadow = 0")
	if q.MinSeverity > 0 {
		b.add("severity_id >= ?", q.MinSeverity)
	}
	if q.MaxSeverity > 0 {
		b.add("severity_id <= ?", q.MaxSeverity)
	}
	if q.RuleID != "" {
		b.add("rule_id = ?", q.RuleID)
	}
	if q.Account != "" {
		b.add("account_uid = ?", q.Account)
	}
	if q.Cursor != "" {
		var c alertCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return casework.AlertPage{}, err
		}
		b.add("(time_ms < ? OR (time_ms = ? AND alert_id < ?))", c.Time, c.Time, c.ID)
	}
	// The subqueries' IN is the dialect's (globalIn). An incident's
	// severity only grows with its versions, so max(severity_id) is the
	// latest one's.
	in, notIn := s.dialect.globalIn(), s.dialect.globalNotIn()
	high := "SELECT incident_id FROM " + s.t(TableIncidents) + " WHERE tenant_uid IN " + placeholders(len(q.Tenants)) +
		" GROUP BY incident_id HAVING max(severity_id) >= ?"
	// An alert an analyst moved is where its latest move put it
	// (moves.go), whatever the correlator's links say.
	moved := "SELECT alert_id FROM " + s.t(TableMoves) + " WHERE tenant_uid IN " + placeholders(len(q.Tenants))
	b.add("alert_id "+notIn+" (SELECT alert_id FROM "+s.t(TableLinks)+" WHERE tenant_uid IN "+placeholders(len(q.Tenants))+
		" AND incident_id "+in+" ("+high+") AND alert_id "+notIn+" ("+moved+"))",
		append(append(append(append([]any{}, tenants...), tenants...), q.HighSeverity), tenants...)...)
	b.add("alert_id "+notIn+" (SELECT alert_id FROM (SELECT alert_id, argMax(incident_id, version) AS inc FROM "+s.t(TableMoves)+
		" WHERE tenant_uid IN "+placeholders(len(q.Tenants))+" GROUP BY alert_id) WHERE inc "+in+" ("+high+"))",
		append(append(append([]any{}, tenants...), tenants...), q.HighSeverity)...)
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT "+alertColumnsSQL+" FROM "+s.t(TableAlerts)+b.where()+
		fmt.Sprintf(" ORDER BY time_ms DESC, alert_id DESC, inserted_ms DESC LIMIT 1 BY alert_id LIMIT %d", limit+1), b.args...)
	if err != nil {
		return casework.AlertPage{}, fmt.Errorf("alert queue: %w", err)
	}
	defer rows.Close()
	page := casework.AlertPage{Items: []alert.Alert{}}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return casework.AlertPage{}, err
		}
		if len(page.Items) == limit {
			last := page.Items[limit-1]
			page.NextCursor = encodeCursor(alertCursor{Time: last.Time, ID: last.ID})
			break
		}
		page.Items = append(page.Items, a)
	}
	return page, rows.Err()
}

// ShadowMatches counts, per rule, the shadow alerts of q.Tenants in
// [q.From, q.To]: how often each experimental rule would have fired. A
// rewritten alert row counts once. Rules are ordered by id.
func (s *Store) ShadowMatches(ctx context.Context, q casework.ShadowQuery) ([]casework.ShadowCount, error) {
	if err := checkTenants(q.Tenants); err != nil {
		return nil, err
	}
	b := &builder{}
	b.add("tenant_uid IN "+placeholders(len(q.Tenants)), anySlice(q.Tenants)...)
	b.add("time >= toStartOfHour(toDateTime(?)) AND time <= toDateTime(?)", q.From.Unix(), q.To.Unix())
	b.add("time_ms >= ? AND time_ms <= ?", q.From.UnixMilli(), q.To.UnixMilli())
	b.add("shadow = 1")
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT rule_id, argMax(title, time_ms), uniqExact(tenant_uid, alert_id), max(time_ms) FROM "+
		s.t(TableAlerts)+b.where()+" GROUP BY rule_id ORDER BY rule_id LIMIT 10000", b.args...)
	if err != nil {
		return nil, fmt.Errorf("shadow matches: %w", err)
	}
	defer rows.Close()
	out := []casework.ShadowCount{}
	for rows.Next() {
		var c casework.ShadowCount
		if err := rows.Scan(&c.RuleID, &c.Title, &c.Alerts, &c.LastSeen); err != nil {
			return nil, fmt.Errorf("shadow matches: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
