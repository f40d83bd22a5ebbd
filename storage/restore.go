package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// OpenState is what the correlator needs to resume: the open incidents with
// their graphs and timelines, every alert of the window, the counts of the
// folded alerts stored before it, and the link signals of the window.
type OpenState struct {
	Incidents []incident.Incident
	Alerts    []alert.Alert
	// Folds are the folded alerts (ids "fold-…") stored between
	// StateQuery.FoldsSince and Since, with only their ids, tenants,
	// counts and first and last seen times.
	Folds []alert.Alert
	// Links are the link signals stored since Since (see Batch.Links).
	Links []LinkSignal
	// Stages are the stage inputs stored since Since (see Batch.Stages).
	Stages []StageInput
}

// StateQuery says which state LoadState reads.
type StateQuery struct {
	// Since is the start of the correlator's longest window.
	Since time.Time
	// FoldsSince, when before Since, reads the counts of the folded
	// alerts stored from it to Since (OpenState.Folds).
	FoldsSince time.Time
	// Tenants limits the state to these tenants; nil reads every tenant,
	// an empty list none.
	Tenants []string
}

// LoadOpenState returns, over every tenant, the incidents active since
// since whose effective status is not closed (see ClosedStatuses) and that
// were not merged away, each at its latest version with nodes, edges and
// timeline, plus every alert with a time at or after since, oldest first.
// since should be the correlator's longest window. The result is bounded by
// Config.MaxResultRows per query; exceeding it is an error, not a silently
// partial state.
func (s *Store) LoadOpenState(ctx context.Context, since time.Time) (OpenState, error) {
	return s.LoadState(ctx, StateQuery{Since: since})
}

// LoadState is LoadOpenState for the tenants of q (every tenant when nil),
// with the counts of the folded alerts stored before the window and the
// link signals of the window.
func (s *Store) LoadState(ctx context.Context, q StateQuery) (OpenState, error) {
	since := q.Since
	out := OpenState{Incidents: []incident.Incident{}, Alerts: []alert.Alert{}, Folds: []alert.Alert{}, Links: []LinkSignal{}, Stages: []StageInput{}}
	if q.Tenants != nil && len(q.Tenants) == 0 {
		return out, nil
	}
	// tenantCond narrows a query of one table to q's tenants.
	tenantCond, tenantArgs := "1 = 1", []any{}
	if q.Tenants != nil {
		tenantCond, tenantArgs = "tenant_uid IN "+placeholders(len(q.Tenants)), anySlice(q.Tenants)
	}
	inner := &builder{}
	inner.add("last_seen >= toDateTime(?)", since.Unix())
	base, args := s.latestIncidents(q.Tenants, inner, true)
	closed := anySlice(casework.ClosedStatuses)
	query := "SELECT * FROM (" + base + ") WHERE i_last >= ? AND i_merged = '' AND w_merged = '' AND eff_status NOT IN " +
		placeholders(len(closed)) + " ORDER BY tenant_uid, i_first, incident_id"
	rows, err := s.conn.Query(s.readCtx(ctx), query, append(append(args, since.UnixMilli()), closed...)...)
	if err != nil {
		return out, fmt.Errorf("open incidents: %w", err)
	}
	type key struct{ tenant, id string }
	index := map[key]int{}
	for rows.Next() {
		in, _, err := scanIncident(rows)
		if err != nil {
			rows.Close()
			return out, err
		}
		in.Nodes, in.Edges = []incident.Node{}, []incident.Edge{}
		index[key{in.TenantUID, in.ID}] = len(out.Incidents)
		out.Incidents = append(out.Incidents, in.Incident)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}

	if len(out.Incidents) > 0 {
		// The graph rows of every incident's latest version, in one query
		// per table.
		latest := "(tenant_uid, incident_id, version) " + s.dialect.globalIn() + " (SELECT tenant_uid, incident_id, max(version) FROM " + s.t(TableIncidents) +
			" WHERE last_seen >= toDateTime(?) AND " + tenantCond + " GROUP BY tenant_uid, incident_id)"
		graphArgs := append(append([]any{since.Unix()}, tenantArgs...), since.Unix())
		graphArgs = append(graphArgs, tenantArgs...)
		rows, err := s.conn.Query(s.readCtx(ctx), `SELECT tenant_uid, incident_id, id, detail__kind, detail__entity, detail__value,
    title, subtitle, mainstat, detail__severity_id, detail__first_seen_ms FROM `+s.t(TableNodes)+` FINAL
WHERE last_seen >= toDateTime(?) AND `+tenantCond+` AND `+latest+` ORDER BY tenant_uid, incident_id, id`, graphArgs...)
		if err != nil {
			return out, fmt.Errorf("open incident nodes: %w", err)
		}
		for rows.Next() {
			var k key
			var n incident.Node
			var kind, entity string
			var sev uint8
			if err := rows.Scan(&k.tenant, &k.id, &n.ID, &kind, &entity, &n.Value, &n.Title, &n.Subtitle, &n.MainStat, &sev, &n.FirstSeen); err != nil {
				rows.Close()
				return out, err
			}
			n.Kind, n.Entity, n.Severity = incident.NodeKind(kind), ocsf.Entity(entity), int(sev)
			if i, ok := index[k]; ok {
				out.Incidents[i].Nodes = append(out.Incidents[i].Nodes, n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, err
		}
		rows, err = s.conn.Query(s.readCtx(ctx), `SELECT tenant_uid, incident_id, id, source, target, mainstat, detail__rule_id,
    detail__rule_version, detail__join_key, detail__gap_ms, detail__time_ms, event_ids FROM `+s.t(TableEdges)+` FINAL
WHERE last_seen >= toDateTime(?) AND `+tenantCond+` AND `+latest+` ORDER BY tenant_uid, incident_id, detail__time_ms, id`, graphArgs...)
		if err != nil {
			return out, fmt.Errorf("open incident edges: %w", err)
		}
		for rows.Next() {
			var k key
			var e incident.Edge
			if err := rows.Scan(&k.tenant, &k.id, &e.ID, &e.Source, &e.Target, &e.Relation, &e.RuleID, &e.RuleVersion, &e.JoinKey,
				&e.GapMS, &e.Time, &e.EventIDs); err != nil {
				rows.Close()
				return out, err
			}
			if len(e.EventIDs) == 0 {
				e.EventIDs = nil
			}
			if i, ok := index[k]; ok {
				out.Incidents[i].Edges = append(out.Incidents[i].Edges, e)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, err
		}
	}

	rows, err = s.conn.Query(s.readCtx(ctx), "SELECT "+alertColumnsSQL+" FROM "+s.t(TableAlerts)+
		" WHERE time >= toStartOfHour(toDateTime(?)) AND time_ms >= ? AND "+tenantCond+
		" ORDER BY time_ms, tenant_uid, alert_id, inserted_ms DESC LIMIT 1 BY tenant_uid, alert_id",
		append([]any{since.Unix(), since.UnixMilli()}, tenantArgs...)...)
	if err != nil {
		return out, fmt.Errorf("window alerts: %w", err)
	}
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
	if q.FoldsSince.Before(since) {
		if out.Folds, err = s.loadFoldCounts(ctx, q.FoldsSince, since, tenantCond, tenantArgs); err != nil {
			return out, err
		}
	}
	if out.Links, err = s.loadLinkSignals(ctx, since, tenantCond, tenantArgs); err != nil {
		return out, err
	}
	out.Stages, err = s.loadStageInputs(ctx, since, tenantCond, tenantArgs)
	return out, err
}
