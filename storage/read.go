package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest/vpcflow"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Read limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	// maxGraphRows bounds the nodes, edges and alerts read for one incident.
	maxGraphRows = 10_000
)

// sortColumns maps the API's sort names to the expressions of the queue
// query: the allow-list that keeps user input out of SQL.
var sortColumns = map[string]string{
	"last_seen":  "i_last",
	"first_seen": "i_first",
	"severity":   "eff_sev",
	"risk_score": "i_risk",
	"updated":    "eff_updated",
}

// SortKeys lists the accepted IncidentQuery.Sort values.
func SortKeys() []string {
	return []string{"last_seen", "first_seen", "severity", "risk_score", "updated"}
}

// builder accumulates a WHERE clause and its bound arguments.
type builder struct {
	conds []string
	args  []any
}

func (b *builder) add(cond string, args ...any) {
	b.conds = append(b.conds, cond)
	b.args = append(b.args, args...)
}

func (b *builder) where() string {
	if len(b.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(b.conds, " AND ")
}

// placeholders returns "(?, ?, ?)" for n values.
func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func checkTenants(tenants []string) error {
	if len(tenants) == 0 {
		return fmt.Errorf("%w: no tenants", casework.ErrInvalidArgument)
	}
	return nil
}

// latestIncidents renders the query of the latest version of every
// incident of the tenants, joined with its latest workflow state; inner
// narrows the incident rows before aggregation (only conditions that
// cannot drop the latest version of an incident belong there).
func (s *Store) latestIncidents(tenants []string, inner *builder, withTimeline bool) (string, []any) {
	return s.latestIncidentsOf(tenants, inner, withTimeline, "")
}

// latestIncidentsOf is latestIncidents, narrowed to incident id on both
// sides of the join when id is set: reading one incident then reads only
// its own workflow rows, not every workflow row of its tenants.
func (s *Store) latestIncidentsOf(tenants []string, inner *builder, withTimeline bool, id string) (string, []any) {
	timeline := "''"
	if withTimeline {
		timeline = "argMax(timeline_json, version)"
	}
	// The entities serve the queue's filters; one incident's row (a
	// PATCH's, a merge's) does not read them.
	entities := "argMax(entities, version)"
	if id != "" {
		entities = "emptyArrayString()"
	}
	// nil tenants (only the correlator's restore) means every tenant.
	tenantCond, args := "1 = 1", []any{}
	if tenants != nil {
		tenantCond, args = "tenant_uid IN "+placeholders(len(tenants)), anySlice(tenants)
	}
	innerWhere := ""
	if inner != nil {
		for _, c := range inner.conds {
			innerWhere += " AND " + c
		}
		args = append(args, inner.args...)
	}
	args = append(args, anySlice(tenants)...)
	wfWhere := ""
	if id != "" {
		wfWhere = " AND incident_id = ?"
		args = append(args, id)
	}
	const cols = `tenant_uid, incident_id, v, i_title, i_sev, i_risk, i_status, i_first, i_last,
    i_stages, i_tactics, i_techniques, i_accounts, i_rule_ids, i_alert_ids, i_entities, i_merged, i_updated, i_timeline,
    w_version, w_status, w_assignee, w_verdict, w_reason, w_tags, w_sev, w_merged, w_updated, w_by,
    eff_status, eff_sev, eff_updated, w_ack, w_resolved, w_closed, w_class, w_impact, w_team`
	q := `SELECT tenant_uid, incident_id, v, i_title, i_sev, i_risk, i_status, i_first, i_last,
    i_stages, i_tactics, i_techniques, i_accounts, i_rule_ids, i_alert_ids, i_entities, i_merged, i_updated, i_timeline,
    w_version, w_status, w_assignee, w_verdict, w_reason, w_tags, w_sev, w_merged, w_updated, w_by,
    if(w_status != '', w_status, i_status) AS eff_status,
    if(w_sev > 0, w_sev, i_sev) AS eff_sev,
    greatest(i_updated, w_updated) AS eff_updated,
    w_ack, w_resolved, w_closed, w_class, w_impact, w_team
FROM (
    SELECT tenant_uid, incident_id, max(version) AS v,
        argMax(title, version) AS i_title, argMax(severity_id, version) AS i_sev,
        argMax(risk_score, version) AS i_risk, argMax(status, version) AS i_status,
        argMax(first_seen_ms, version) AS i_first, argMax(last_seen_ms, version) AS i_last,
        argMax(stages, version) AS i_stages, argMax(tactics, version) AS i_tactics,
        argMax(techniques, version) AS i_techniques, argMax(accounts, version) AS i_accounts,
        argMax(rule_ids, version) AS i_rule_ids, argMax(alert_ids, version) AS i_alert_ids,
        ` + entities + ` AS i_entities, argMax(merged_into, version) AS i_merged,
        argMax(updated_ms, version) AS i_updated, ` + timeline + ` AS i_timeline
    FROM ` + s.t(TableIncidents) + `
    WHERE ` + tenantCond + innerWhere + `
    GROUP BY tenant_uid, incident_id
) ANY LEFT JOIN (
    SELECT tenant_uid, incident_id, max(version) AS w_version,
        argMax(status, version) AS w_status, argMax(assignee, version) AS w_assignee,
        argMax(verdict, version) AS w_verdict, argMax(reason, version) AS w_reason,
        argMax(tags, version) AS w_tags, argMax(severity_override, version) AS w_sev,
        argMax(merged_into, version) AS w_merged, argMax(updated_ms, version) AS w_updated,
        argMax(updated_by, version) AS w_by, argMax(acknowledged_ms, version) AS w_ack,
        argMax(resolved_ms, version) AS w_resolved, argMax(closed_ms, version) AS w_closed,
        argMax(classification, version) AS w_class, argMax(impact, version) AS w_impact,
        argMax(team, version) AS w_team
    FROM ` + s.t(TableWorkflow) + `
    WHERE ` + tenantCond + wfWhere + `
    GROUP BY tenant_uid, incident_id
) USING (tenant_uid, incident_id)`
	// 18.16 joins two tables per SELECT: the incident numbers join the
	// joined rows one level up.
	args = append(args, anySlice(tenants)...)
	if id != "" {
		args = append(args, id)
	}
	q = `SELECT ` + cols + `, i_number FROM (` + q + `) ANY LEFT JOIN (
    SELECT tenant_uid, incident_id, toUInt32(4294967296 - max(rank)) AS i_number
    FROM ` + s.t(TableNumbers) + `
    WHERE ` + tenantCond + wfWhere + `
    GROUP BY tenant_uid, incident_id
) USING (tenant_uid, incident_id)`
	return q, args
}

// scanner is the part of driver.Rows and driver.Row that scanning needs.
type scanner interface{ Scan(dest ...any) error }

func scanIncident(r scanner) (casework.Incident, int64, error) {
	var (
		in                                    casework.Incident
		sev, risk, wSev, effSev               uint8
		timeline                              string
		iUpdated, wUpdated, effUpdated        int64
		ack, resolved, closed                 int64
		number                                uint32
		stages, tactics, techs, accts, ruleID []string
	)
	err := r.Scan(&in.TenantUID, &in.ID, &in.Version, &in.Title, &sev, &risk, &in.Status, &in.FirstSeen, &in.LastSeen,
		&stages, &tactics, &techs, &accts, &ruleID, &in.AlertIDs, new([]string), &in.MergedInto, &iUpdated, &timeline,
		&in.Workflow.Version, &in.Workflow.Status, &in.Workflow.Assignee, &in.Workflow.Verdict, &in.Workflow.Reason,
		&in.Workflow.Tags, &wSev, &in.Workflow.MergedInto, &wUpdated, &in.Workflow.UpdatedBy,
		&in.EffectiveStatus, &effSev, &effUpdated, &ack, &resolved, &closed,
		&in.Workflow.Classification, &in.Workflow.Impact, &in.Workflow.Team, &number)
	if err != nil {
		return in, 0, err
	}
	if number > 0 {
		in.Number = casework.FormatNumber(number)
	}
	in.Workflow.AcknowledgedAt, in.Workflow.ResolvedAt, in.Workflow.ClosedAt = msOrZero(ack), msOrZero(resolved), msOrZero(closed)
	in.Severity, in.RiskScore = int(sev), int(risk)
	in.Stages, in.Tactics, in.Techniques, in.Accounts, in.RuleIDs = stages, tactics, techs, accts, ruleID
	in.Workflow.SeverityOverride, in.EffectiveSeverity = int(wSev), int(effSev)
	if in.Workflow.Version > 0 {
		in.Workflow.UpdatedAt = time.UnixMilli(wUpdated).UTC()
	}
	in.UpdatedAt = time.UnixMilli(effUpdated).UTC()
	if timeline != "" {
		if err := json.Unmarshal([]byte(timeline), &in.Timeline); err != nil {
			return in, 0, fmt.Errorf("incident %s timeline: %w", in.ID, err)
		}
	}
	return in, effUpdated, nil
}

// msOrZero is the time of Unix milliseconds ms; zero for 0.
func msOrZero(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// cursor is the opaque keyset position of the queue.
type cursor struct {
	Sort   string `json:"s"`
	Desc   bool   `json:"d"`
	Value  int64  `json:"v"`
	Tenant string `json:"t"`
	ID     string `json:"i"`
}

func encodeCursor(c any) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, c any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, c)
	}
	if err != nil {
		return fmt.Errorf("%w: malformed cursor", casework.ErrInvalidArgument)
	}
	return nil
}

// ListIncidents returns one page of the incident queue.
func (s *Store) ListIncidents(ctx context.Context, q casework.IncidentQuery) (casework.IncidentPage, error) {
	if err := checkTenants(q.Tenants); err != nil {
		return casework.IncidentPage{}, err
	}
	if q.Sort == "" {
		q.Sort = "last_seen"
	}
	sortCol, ok := sortColumns[q.Sort]
	if !ok {
		return casework.IncidentPage{}, fmt.Errorf("%w: sort %q (want one of %s)", casework.ErrInvalidArgument, q.Sort, strings.Join(SortKeys(), ", "))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)

	inner := &builder{}
	if !q.From.IsZero() {
		// last_seen only grows, so this keeps every incident's latest version.
		inner.add("last_seen >= toDateTime(?)", q.From.Unix())
	}
	outer := &builder{}
	if !q.From.IsZero() {
		outer.add("i_last >= ?", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		outer.add("i_first <= ?", q.To.UnixMilli())
	}
	if q.MinSeverity > 0 {
		outer.add("eff_sev >= ?", q.MinSeverity)
	}
	switch q.Assignee {
	case "":
	case "none":
		outer.add("w_assignee = ''")
	default:
		outer.add("w_assignee = ?", q.Assignee)
	}
	if q.Tag != "" {
		outer.add("has(w_tags, ?)", q.Tag)
	}
	if q.RuleID != "" {
		outer.add("has(i_rule_ids, ?)", q.RuleID)
	}
	if q.Account != "" {
		outer.add("has(i_accounts, ?)", q.Account)
	}
	switch {
	case q.EntityType != "" && q.EntityValue != "":
		outer.add("has(i_entities, ?)", q.EntityType+":"+q.EntityValue)
	case q.EntityType != "":
		outer.add("arrayExists(x -> startsWith(x, ?), i_entities)", q.EntityType+":")
	case q.EntityValue != "":
		outer.add("arrayExists(x -> substring(x, position(x, ':') + 1) = ?, i_entities)", q.EntityValue)
	}
	switch q.Team {
	case "":
	case "none":
		outer.add("w_team = ''")
	default:
		outer.add("w_team = ?", q.Team)
	}
	if len(q.Verdict) > 0 {
		outer.add("w_verdict IN "+placeholders(len(q.Verdict)), anySlice(q.Verdict)...)
	}
	if q.MaxSeverity > 0 {
		outer.add("eff_sev <= ?", q.MaxSeverity)
	}
	if !q.ClosedFrom.IsZero() {
		outer.add("greatest(w_closed, w_resolved) >= ?", q.ClosedFrom.UnixMilli())
	}
	if !q.ClosedTo.IsZero() {
		outer.add("greatest(w_closed, w_resolved) > 0 AND greatest(w_closed, w_resolved) <= ?", q.ClosedTo.UnixMilli())
	}
	if q.Text != "" {
		num, _ := casework.ParseNumber(q.Text)
		cond := "positionCaseInsensitiveUTF8(i_title, ?) > 0 OR incident_id = ? OR (i_number > 0 AND i_number = ?)"
		args := []any{q.Text, q.Text, num}
		if q.FullText {
			tin := "tenant_uid IN " + placeholders(len(q.Tenants))
			tenants := anySlice(q.Tenants)
			evTime := ""
			var evArgs []any
			if !q.From.IsZero() {
				evTime += " AND time >= toDateTime(?)"
				evArgs = append(evArgs, q.From.Add(-s.cfg.EvidenceLookback).Unix())
			}
			if !q.To.IsZero() {
				evTime += " AND time <= toDateTime(?)"
				evArgs = append(evArgs, q.To.Unix())
			}
			// Entity values, the latest text of live comments, and alerts
			// whose title or summary holds the text or whose evidence
			// events do (the normalized event's fields). The subqueries'
			// IN is the dialect's (globalIn).
			in := s.dialect.globalIn()
			cond += ` OR arrayExists(x -> positionCaseInsensitiveUTF8(substring(x, position(x, ':') + 1), ?) > 0, i_entities)
    OR (tenant_uid, incident_id) ` + in + ` (SELECT tenant_uid, incident_id FROM (
        SELECT tenant_uid, incident_id, comment_id, argMax(body, version) AS b, argMax(deleted, version) AS d
        FROM ` + s.t(TableComments) + ` WHERE ` + tin + ` GROUP BY tenant_uid, incident_id, comment_id)
        WHERE d = 0 AND positionCaseInsensitiveUTF8(b, ?) > 0)
    OR (tenant_uid, incident_id) ` + in + ` (SELECT tenant_uid, incident_id FROM ` + s.t(TableLinks) + ` WHERE (tenant_uid, alert_id) ` + in + ` (
        SELECT tenant_uid, alert_id FROM ` + s.t(TableAlerts) + ` ARRAY JOIN if(empty(event_ids), [''], event_ids) AS ev WHERE ` + tin + `
        AND (positionCaseInsensitiveUTF8(title, ?) > 0 OR positionCaseInsensitiveUTF8(summary, ?) > 0
        OR (tenant_uid, ev) ` + in + ` (SELECT tenant_uid, event_uid FROM ` + s.t(TableEvents) + ` WHERE ` + tin + evTime + `
            AND positionCaseInsensitiveUTF8(` + eventTextSQL + `, ?) > 0))))`
			args = append(args, q.Text)
			args = append(append(args, tenants...), q.Text)
			args = append(append(args, tenants...), q.Text, q.Text)
			args = append(append(append(args, tenants...), evArgs...), q.Text)
		}
		outer.add("("+cond+")", args...)
	}
	if q.SLA != "" {
		// The time to resolve of the effective severity, and the end of
		// the clock: resolved, else closed, else now.
		slaMS := "multiIf(eff_sev = 6, toInt64(?), eff_sev = 5, toInt64(?), eff_sev = 4, toInt64(?), eff_sev = 3, toInt64(?), " +
			"eff_sev = 2, toInt64(?), eff_sev = 1, toInt64(?), toInt64(0))"
		slaArgs := func() []any {
			var out []any
			for sev := 6; sev >= 1; sev-- {
				out = append(out, q.SLAMillis[sev])
			}
			return out
		}
		breached := "(" + slaMS + " > 0 AND if(w_resolved > 0, w_resolved, if(w_closed > 0, w_closed, toInt64(?))) > i_first + " + slaMS + ")"
		breachedArgs := append(append(slaArgs(), q.NowMillis), slaArgs()...)
		switch q.SLA {
		case "breached":
			outer.add(breached, breachedArgs...)
		case "ok":
			outer.add("("+slaMS+" > 0 AND NOT "+breached+")", append(slaArgs(), breachedArgs...)...)
		default:
			return casework.IncidentPage{}, fmt.Errorf("%w: sla %q (want breached or ok)", casework.ErrInvalidArgument, q.SLA)
		}
	}
	base, baseArgs := s.latestIncidents(q.Tenants, inner, false)

	// Counts ignore the status filter and the cursor.
	countQ := "SELECT eff_status, count() FROM (" + base + ")" + outer.where() + " GROUP BY eff_status LIMIT 1000"
	counts := map[string]int{}
	rows, err := s.conn.Query(s.readCtx(ctx), countQ, append(append([]any{}, baseArgs...), outer.args...)...)
	if err != nil {
		return casework.IncidentPage{}, fmt.Errorf("count incidents: %w", err)
	}
	for rows.Next() {
		var st string
		var n uint64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return casework.IncidentPage{}, err
		}
		counts[st] = int(n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return casework.IncidentPage{}, err
	}

	if len(q.Status) > 0 {
		outer.add("eff_status IN "+placeholders(len(q.Status)), anySlice(q.Status)...)
	}
	if q.Cursor != "" {
		var c cursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return casework.IncidentPage{}, err
		}
		if c.Sort != q.Sort || c.Desc != q.Desc {
			return casework.IncidentPage{}, fmt.Errorf("%w: cursor was made for another sort order", casework.ErrInvalidArgument)
		}
		op := ">"
		if q.Desc {
			op = "<"
		}
		outer.add(fmt.Sprintf("(%[1]s %[2]s ? OR (%[1]s = ? AND (tenant_uid > ? OR (tenant_uid = ? AND incident_id > ?))))", sortCol, op),
			c.Value, c.Value, c.Tenant, c.Tenant, c.ID)
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	listQ := "SELECT * FROM (" + base + ")" + outer.where() +
		fmt.Sprintf(" ORDER BY %s %s, tenant_uid, incident_id LIMIT %d", sortCol, dir, limit+1)
	rows, err = s.conn.Query(s.readCtx(ctx), listQ, append(append([]any{}, baseArgs...), outer.args...)...)
	if err != nil {
		return casework.IncidentPage{}, fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	page := casework.IncidentPage{CountsByStatus: counts, Items: []casework.Incident{}}
	var last cursor
	for rows.Next() {
		in, _, err := scanIncident(rows)
		if err != nil {
			return casework.IncidentPage{}, err
		}
		if len(page.Items) == limit {
			page.NextCursor = encodeCursor(last)
			break
		}
		page.Items = append(page.Items, in)
		last = cursor{Sort: q.Sort, Desc: q.Desc, Value: sortValue(q.Sort, in), Tenant: in.TenantUID, ID: in.ID}
	}
	if err := rows.Err(); err != nil {
		return casework.IncidentPage{}, err
	}
	return page, s.withMoves(ctx, page.Items)
}

func sortValue(sort string, in casework.Incident) int64 {
	switch sort {
	case "first_seen":
		return in.FirstSeen
	case "severity":
		return int64(in.EffectiveSeverity)
	case "risk_score":
		return int64(in.RiskScore)
	case "updated":
		return in.UpdatedAt.UnixMilli()
	}
	return in.LastSeen
}

// getIncident reads the latest version of one incident with its workflow.
func (s *Store) getIncident(ctx context.Context, tenants []string, id string, withTimeline bool) (casework.Incident, error) {
	if err := checkTenants(tenants); err != nil {
		return casework.Incident{}, err
	}
	inner := &builder{}
	inner.add("incident_id = ?", id)
	q, args := s.latestIncidentsOf(tenants, inner, withTimeline, id)
	rows, err := s.conn.Query(s.readCtx(ctx), q+" LIMIT 2", args...)
	if err != nil {
		return casework.Incident{}, fmt.Errorf("get incident: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return casework.Incident{}, err
		}
		return casework.Incident{}, fmt.Errorf("incident %s: %w", id, casework.ErrNotFound)
	}
	in, _, err := scanIncident(rows)
	return in, err
}

// evidenceCursor is the opaque position in an incident's evidence.
type evidenceCursor struct {
	Time int64  `json:"t"`
	UID  string `json:"u"`
}

// GetIncident returns the latest version of incident id in one of tenants:
// its workflow state, graph, timeline, alerts and the first (or the
// cursor's) page of evidence events, oldest first.
//
// It makes two rounds of queries, each at once, so the answer waits for
// the slowest query of each round rather than for their sum (the console
// paints once it arrives; on a loaded server every round trip counts):
// the incident row with, for a single tenant, the tenant's merges and the
// incident's alert moves; then the graph, the alerts and the evidence of
// that version. Incidents with others merged into them take one more
// round (the merged incidents' alerts and their moves).
func (s *Store) GetIncident(ctx context.Context, tenants []string, id, evidenceCursor string) (casework.IncidentDetail, error) {
	var (
		in    casework.Incident
		into  map[string][]string
		moves map[string]alertMove
	)
	// With one tenant the merges and moves are the tenant's and can be
	// read before the incident row names its tenant.
	early := len(tenants) == 1
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		in, err = s.getIncident(gctx, tenants, id, true)
		return err
	})
	if early {
		g.Go(func() (err error) {
			into, err = s.mergesOf(gctx, tenants[0])
			return err
		})
		g.Go(func() (err error) {
			moves, err = s.latestMoves(gctx, tenants[0], []string{id})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return casework.IncidentDetail{}, err
	}
	if !early {
		g, gctx = errgroup.WithContext(ctx)
		g.Go(func() (err error) {
			into, err = s.mergesOf(gctx, in.TenantUID)
			return err
		})
		g.Go(func() (err error) {
			moves, err = s.latestMoves(gctx, in.TenantUID, []string{in.ID})
			return err
		})
		if err := g.Wait(); err != nil {
			return casework.IncidentDetail{}, err
		}
	}
	d := casework.IncidentDetail{Incident: in}
	// The alerts of merged incidents are served through the survivor.
	merged := mergedInto(into, in.ID)
	withMerged := in
	set := []string{in.ID}
	if len(merged) > 0 {
		set = append(set, merged...)
		g, gctx = errgroup.WithContext(ctx)
		g.Go(func() (err error) {
			withMerged, err = s.withMergedAlerts(gctx, in, merged)
			return err
		})
		g.Go(func() (err error) {
			moves, err = s.latestMoves(gctx, in.TenantUID, set)
			return err
		})
		if err := g.Wait(); err != nil {
			return casework.IncidentDetail{}, err
		}
	}
	d.MergedFrom = merged
	// Analysts' moves decide where an alert is (moves.go).
	d.AlertIDs = applyMoves(in, []string{in.ID}, moves, false).AlertIDs
	withMerged = applyMoves(withMerged, set, moves, true)

	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		d.Nodes, err = s.nodes(gctx, in.TenantUID, in.ID, in.Version)
		return err
	})
	g.Go(func() (err error) {
		d.Edges, err = s.edges(gctx, in.TenantUID, in.ID, in.Version)
		return err
	})
	g.Go(func() (err error) {
		d.Alerts, err = s.incidentAlerts(gctx, withMerged)
		return err
	})
	g.Go(func() (err error) {
		d.Evidence, d.NextEvidenceCursor, err = s.evidence(gctx, withMerged, evidenceCursor)
		return err
	})
	return d, g.Wait()
}

// maxMerged bounds the incidents whose alerts one survivor serves.
const maxMerged = 1000

// mergesOf returns the merges of tenant: for each incident that others
// were merged into (at their latest workflow version), their ids.
func (s *Store) mergesOf(ctx context.Context, tenant string) (map[string][]string, error) {
	// Only incidents ever merged are aggregated: the inner IN (the
	// dialect's, globalIn) reads the one merged_into column, not every
	// incident's workflow history.
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT incident_id, m FROM (
    SELECT incident_id, argMax(merged_into, version) AS m, argMax(status, version) AS st FROM `+s.t(TableWorkflow)+`
    WHERE tenant_uid = ? AND incident_id `+s.dialect.globalIn()+` (SELECT incident_id FROM `+s.t(TableWorkflow)+` WHERE tenant_uid = ? AND merged_into != '')
    GROUP BY incident_id
) WHERE st = 'merged' AND m != '' ORDER BY incident_id LIMIT ?`, tenant, tenant, maxMerged*10)
	if err != nil {
		return nil, fmt.Errorf("merged incidents: %w", err)
	}
	defer rows.Close()
	into := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, err
		}
		into[to] = append(into[to], from)
	}
	return into, rows.Err()
}

// mergedInto returns the incidents merged into id, directly or through
// another merged incident, sorted.
func mergedInto(into map[string][]string, id string) []string {
	var merged []string
	seen := map[string]bool{id: true}
	for queue := []string{id}; len(queue) > 0 && len(merged) < maxMerged; queue = queue[1:] {
		for _, from := range into[queue[0]] {
			if !seen[from] {
				seen[from] = true
				merged = append(merged, from)
				queue = append(queue, from)
			}
		}
	}
	slices.Sort(merged)
	return merged
}

// withMergedAlerts returns a copy of in whose alert ids and time span
// include those of the incidents merged into it (for reading alerts and
// evidence; the graph stays in's own).
func (s *Store) withMergedAlerts(ctx context.Context, in casework.Incident, merged []string) (casework.Incident, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT argMax(alert_ids, version), min(first_seen_ms), max(last_seen_ms) FROM `+
		s.t(TableIncidents)+` WHERE tenant_uid = ? AND incident_id IN `+placeholders(len(merged))+` GROUP BY incident_id`,
		append([]any{in.TenantUID}, anySlice(merged)...)...)
	if err != nil {
		return in, fmt.Errorf("merged incidents' alerts: %w", err)
	}
	defer rows.Close()
	out := in
	out.AlertIDs = slices.Clone(in.AlertIDs)
	for rows.Next() {
		var ids []string
		var first, last int64
		if err := rows.Scan(&ids, &first, &last); err != nil {
			return in, err
		}
		for _, id := range ids {
			if !slices.Contains(out.AlertIDs, id) {
				out.AlertIDs = append(out.AlertIDs, id)
			}
		}
		out.FirstSeen, out.LastSeen = min(out.FirstSeen, first), max(out.LastSeen, last)
	}
	return out, rows.Err()
}

func (s *Store) nodes(ctx context.Context, tenant, id string, version uint64) ([]incident.Node, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT id, detail__kind, detail__entity, detail__value, title, subtitle, mainstat,
    detail__severity_id, detail__first_seen_ms FROM `+s.t(TableNodes)+` FINAL
WHERE tenant_uid = ? AND incident_id = ? AND version = ? ORDER BY id LIMIT ?`, tenant, id, version, maxGraphRows)
	if err != nil {
		return nil, fmt.Errorf("incident nodes: %w", err)
	}
	defer rows.Close()
	out := []incident.Node{}
	for rows.Next() {
		var n incident.Node
		var kind, entity string
		var sev uint8
		if err := rows.Scan(&n.ID, &kind, &entity, &n.Value, &n.Title, &n.Subtitle, &n.MainStat, &sev, &n.FirstSeen); err != nil {
			return nil, err
		}
		n.Kind, n.Entity, n.Severity = incident.NodeKind(kind), ocsf.Entity(entity), int(sev)
		out = append(out, n)
	}
	return out, rows.Err()
}

func (s *Store) edges(ctx context.Context, tenant, id string, version uint64) ([]incident.Edge, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT id, source, target, mainstat, detail__rule_id, detail__rule_version,
    detail__join_key, detail__gap_ms, detail__time_ms, event_ids FROM `+s.t(TableEdges)+` FINAL
WHERE tenant_uid = ? AND incident_id = ? AND version = ? ORDER BY detail__time_ms, id LIMIT ?`, tenant, id, version, maxGraphRows)
	if err != nil {
		return nil, fmt.Errorf("incident edges: %w", err)
	}
	defer rows.Close()
	out := []incident.Edge{}
	for rows.Next() {
		var e incident.Edge
		if err := rows.Scan(&e.ID, &e.Source, &e.Target, &e.Relation, &e.RuleID, &e.RuleVersion, &e.JoinKey, &e.GapMS, &e.Time, &e.EventIDs); err != nil {
			return nil, err
		}
		if len(e.EventIDs) == 0 {
			e.EventIDs = nil
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const alertColumnsSQL = `tenant_uid, alert_id, time_ms, rule_id, rule_version, title, severity_id, stage, tactics, techniques,
    account_uid, region, source, observables_json, event_ids, correlated, summary, fold_count, first_seen_ms, last_seen_ms, shadow,
    origin_topics, origin_partitions, origin_offsets, unheld_severity, unheld_summary`

func scanAlert(r scanner) (alert.Alert, error) {
	var a alert.Alert
	var sev, corr, shadow uint8
	var obs string
	var count uint32
	var oTopics []string
	var oParts []int32
	var oOffsets []int64
	var unheldSev uint8
	var unheldSummary string
	err := r.Scan(&a.TenantUID, &a.ID, &a.Time, &a.RuleID, &a.RuleVersion, &a.Title, &sev, &a.Stage, &a.Tactics, &a.Techniques,
		&a.AccountUID, &a.Region, &a.Source, &obs, &a.EventIDs, &corr, &a.Summary, &count, &a.FirstSeen, &a.LastSeen, &shadow,
		&oTopics, &oParts, &oOffsets, &unheldSev, &unheldSummary)
	if err != nil {
		return a, err
	}
	if unheldSev > 0 {
		a.Unheld = &alert.Unheld{Severity: int(unheldSev), Summary: unheldSummary}
	}
	a.Origins = origins(oTopics, oParts, oOffsets)
	a.Count = int(count)
	a.Severity, a.Correlated, a.Shadow = int(sev), corr == 1, shadow == 1
	if obs != "" && obs != "null" {
		if err := json.Unmarshal([]byte(obs), &a.Entities); err != nil {
			return a, fmt.Errorf("alert %s observables: %w", a.ID, err)
		}
	}
	if len(a.Tactics) == 0 {
		a.Tactics = nil
	}
	if len(a.Techniques) == 0 {
		a.Techniques = nil
	}
	return a, nil
}

// origins reads alert.Origins back from its three columns.
func origins(topics []string, parts []int32, offsets []int64) []alert.Origin {
	n := min(len(topics), len(parts), len(offsets))
	if n == 0 {
		return nil
	}
	out := make([]alert.Origin, n)
	for i := range n {
		out[i] = alert.Origin{Topic: topics[i], Partition: parts[i], Offset: offsets[i]}
	}
	return out
}

// alertTimeSlack widens an incident's time span when its alerts are looked
// up by their partition column.
const alertTimeSlack = 24 * time.Hour

func (s *Store) incidentAlerts(ctx context.Context, in casework.Incident) ([]alert.Alert, error) {
	if len(in.AlertIDs) == 0 {
		return []alert.Alert{}, nil
	}
	from := time.UnixMilli(in.FirstSeen).Add(-alertTimeSlack).Unix()
	to := time.UnixMilli(in.LastSeen).Add(alertTimeSlack).Unix()
	args := append([]any{in.TenantUID, max(from, 0), to}, anySlice(in.AlertIDs)...)
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT `+alertColumnsSQL+` FROM `+s.t(TableAlerts)+`
WHERE tenant_uid = ? AND time >= toDateTime(?) AND time <= toDateTime(?) AND alert_id IN `+placeholders(len(in.AlertIDs))+`
ORDER BY time_ms, alert_id, inserted_ms DESC LIMIT 1 BY alert_id LIMIT `+fmt.Sprint(maxGraphRows), args...)
	if err != nil {
		return nil, fmt.Errorf("incident alerts: %w", err)
	}
	defer rows.Close()
	out := []alert.Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// eventTextSQL is the text a search looks for in an event: its document,
// or a flow row's uid, addresses, ids, ports, protocol number and log
// status (its document is not stored). 18.16's if() computes both
// branches, so the concat is built for every event of the window the
// search reads.
const eventTextSQL = "if(event_json != '', event_json, concat(event_uid, ' ', src_ip, ' ', dst_ip, ' ', account_uid, ' ', region, ' ', " +
	"flow_interface, ' ', flow_instance, ' ', flow_vpc, ' ', flow_subnet, ' ', flow_zone, ' ', " +
	"toString(flow_src_port), ' ', toString(flow_dst_port), ' ', toString(flow_protocol), ' ', flow_log_status))"

// evidenceColumnsSQL reads an event's document, or the typed columns of a
// flow row it is built back from (flowColumnsSQL, scanEvidence).
const evidenceColumnsSQL = "event_uid, tenant_uid, time_ms, log_name, class_uid, operation, event_json, raw, raw_encoding, " + flowColumnsSQL

// flowColumnsSQL are the columns of a flow row (vpcflow.Row) besides
// event_uid, time_ms and event_json, in the order scanEvidence reads them.
const flowColumnsSQL = "account_uid, region, src_ip, dst_ip, flow_version, flow_log_status, flow_action, flow_direction, flow_zone, " +
	"flow_interface, flow_instance, flow_vpc, flow_subnet, flow_src_port, flow_dst_port, " +
	"flow_protocol, flow_tcp_flags, flow_ip_version, flow_packets, flow_bytes, flow_end_ms"

func (s *Store) scanEvidence(r scanner) (casework.Evidence, error) {
	var e casework.Evidence
	var class uint32
	var js, raw, enc string
	var f vpcflow.Row
	if err := r.Scan(&e.ID, &e.TenantUID, &e.Time, &e.Source, &class, &e.Operation, &js, &raw, &enc,
		&f.Account, &f.Region, &f.SrcIP, &f.DstIP, &f.Version, &f.LogStatus, &f.Action, &f.Direction, &f.Zone,
		&f.Interface, &f.Instance, &f.VPC, &f.Subnet, &f.SrcPort, &f.DstPort,
		&f.Protocol, &f.TCPFlags, &f.IPVersion, &f.Packets, &f.Bytes, &f.End); err != nil {
		return e, err
	}
	e.ClassUID, e.Normalized = int(class), json.RawMessage(js)
	raws, err := s.decodeRaw(raw, enc)
	if err != nil {
		return e, fmt.Errorf("event %s raw: %w", e.ID, err)
	}
	e.Raw = string(raws)
	if js == "" && e.Source == vpcflow.LogName {
		// A flow row: its document is built back from its columns.
		f.UID, f.Start = e.ID, e.Time
		var ev ocsf.Event
		f.Event(&ev, nil)
		ev.Metadata.TenantUID = e.TenantUID
		b, err := ev.AppendJSON(nil)
		if err != nil {
			return e, fmt.Errorf("event %s: %w", e.ID, err)
		}
		e.Normalized = b
	}
	return e, nil
}

// evidencePageSize is the number of evidence events per GetIncident page.
const evidencePageSize = 100

// evidence reads one page of the events behind an incident's alerts.
func (s *Store) evidence(ctx context.Context, in casework.Incident, after string) ([]casework.Evidence, string, error) {
	if len(in.AlertIDs) == 0 {
		return []casework.Evidence{}, "", nil
	}
	// Alerts carry the time of their last evidence event; earlier evidence
	// is looked for up to EvidenceLookback before the first alert.
	from := time.UnixMilli(in.FirstSeen).Add(-s.cfg.EvidenceLookback - alertTimeSlack).Unix()
	to := time.UnixMilli(in.LastSeen).Add(alertTimeSlack).Unix()
	alertFrom := time.UnixMilli(in.FirstSeen).Add(-alertTimeSlack).Unix()
	// The IN is the dialect's (globalIn): on a cluster both tables are
	// Distributed and a plain IN subquery would be refused
	// (distributed_product_mode=deny). PREWHERE: the window holds every
	// event of the tenant for more than a week, and 18.16 does not move an
	// IN subquery to PREWHERE itself, so without it the server reads the
	// event JSON and raw bytes of all of them to keep the page's few
	// (measured: 20,000 events of 1 KB, 20 MB read for 2 without it, 0.3 MB
	// with it).
	prewhere := " PREWHERE event_uid " + s.dialect.globalIn() + " (SELECT arrayJoin(event_ids) FROM " + s.t(TableAlerts) +
		" WHERE tenant_uid = ? AND time >= toDateTime(?) AND time <= toDateTime(?) AND alert_id IN " + placeholders(len(in.AlertIDs)) + ")"
	b := &builder{args: append([]any{in.TenantUID, max(alertFrom, 0), to}, anySlice(in.AlertIDs)...)}
	b.add("tenant_uid = ?", in.TenantUID)
	b.add("time >= toDateTime(?) AND time <= toDateTime(?)", max(from, 0), to)
	if after != "" {
		var c evidenceCursor
		if err := decodeCursor(after, &c); err != nil {
			return nil, "", err
		}
		b.add("(time_ms > ? OR (time_ms = ? AND event_uid > ?))", c.Time, c.Time, c.UID)
	}
	q := "SELECT " + evidenceColumnsSQL + " FROM " + s.t(TableEvents) + prewhere + b.where() +
		fmt.Sprintf(" ORDER BY time_ms, event_uid LIMIT 1 BY event_uid LIMIT %d", evidencePageSize+1)
	rows, err := s.conn.Query(s.readCtx(ctx), q, b.args...)
	if err != nil {
		return nil, "", fmt.Errorf("incident evidence: %w", err)
	}
	defer rows.Close()
	out := []casework.Evidence{}
	next := ""
	for rows.Next() {
		e, err := s.scanEvidence(rows)
		if err != nil {
			return nil, "", err
		}
		if len(out) == evidencePageSize {
			last := out[len(out)-1]
			next = encodeCursor(evidenceCursor{Time: last.Time, UID: last.ID})
			break
		}
		out = append(out, e)
	}
	return out, next, rows.Err()
}

// EntityPivot returns the incidents, alerts and most recent events of the
// tenants that name entity q.Type:q.Value within [q.From, q.To], each list
// newest first and at most q.Limit long.
func (s *Store) EntityPivot(ctx context.Context, q casework.EntityQuery) (casework.EntityActivity, error) {
	tenants, entityType, value, from, to, limit := q.Tenants, q.Type, q.Value, q.From, q.To, q.Limit
	if err := checkTenants(tenants); err != nil {
		return casework.EntityActivity{}, err
	}
	if entityType == "" || value == "" {
		return casework.EntityActivity{}, fmt.Errorf("%w: entity type and value are required", casework.ErrInvalidArgument)
	}
	if to.IsZero() {
		to = time.Now()
	}
	if !from.Before(to) {
		return casework.EntityActivity{}, fmt.Errorf("%w: from must be before to", casework.ErrInvalidArgument)
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	key := entityType + ":" + value
	out := casework.EntityActivity{Type: entityType, Value: value}

	inner := &builder{}
	inner.add("last_seen >= toDateTime(?)", from.Unix())
	base, args := s.latestIncidents(tenants, inner, false)
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT * FROM ("+base+") WHERE has(i_entities, ?) AND i_last >= ? AND i_first <= ?"+
		fmt.Sprintf(" ORDER BY i_last DESC, tenant_uid, incident_id LIMIT %d", limit),
		append(args, key, from.UnixMilli(), to.UnixMilli())...)
	if err != nil {
		return out, fmt.Errorf("entity incidents: %w", err)
	}
	out.Incidents = []casework.Incident{}
	for rows.Next() {
		in, _, err := scanIncident(rows)
		if err != nil {
			rows.Close()
			return out, err
		}
		out.Incidents = append(out.Incidents, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	if err := s.withMoves(ctx, out.Incidents); err != nil {
		return out, err
	}

	b := &builder{}
	b.add("tenant_uid IN "+placeholders(len(tenants)), anySlice(tenants)...)
	b.add("time >= toStartOfHour(toDateTime(?)) AND time <= toDateTime(?)", from.Unix(), to.Unix())
	b.add("time_ms >= ? AND time_ms <= ?", from.UnixMilli(), to.UnixMilli())
	b.add("has(entities, ?)", key)
	rows, err = s.conn.Query(s.readCtx(ctx), "SELECT "+alertColumnsSQL+" FROM "+s.t(TableAlerts)+b.where()+
		fmt.Sprintf(" ORDER BY time_ms DESC, alert_id, inserted_ms DESC LIMIT 1 BY alert_id LIMIT %d", limit), b.args...)
	if err != nil {
		return out, fmt.Errorf("entity alerts: %w", err)
	}
	out.Alerts = []alert.Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			rows.Close()
			return out, err
		}
		out.Alerts = append(out.Alerts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}

	rows, err = s.conn.Query(s.readCtx(ctx), "SELECT "+evidenceColumnsSQL+" FROM "+s.t(TableEvents)+b.where()+
		fmt.Sprintf(" ORDER BY time_ms DESC, event_uid LIMIT 1 BY event_uid LIMIT %d", limit), b.args...)
	if err != nil {
		return out, fmt.Errorf("entity events: %w", err)
	}
	defer rows.Close()
	out.Events = []casework.Evidence{}
	for rows.Next() {
		e, err := s.scanEvidence(rows)
		if err != nil {
			return out, err
		}
		out.Events = append(out.Events, e)
	}
	return out, rows.Err()
}
