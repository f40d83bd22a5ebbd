package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// storeAdapter serves the API's Store interface from the ClickHouse store.
type storeAdapter struct{ s *storage.Store }

var _ api.Store = storeAdapter{}

func (a storeAdapter) ListIncidents(ctx context.Context, q api.IncidentQuery) (api.IncidentPage, error) {
	page, err := a.s.ListIncidents(ctx, storage.IncidentQuery{
		Tenants: q.Tenants, Status: q.Status, MinSeverity: q.MinSeverity, Assignee: q.Assignee,
		Tag: q.Tag, RuleID: q.RuleID, EntityType: q.EntityType, EntityValue: q.EntityValue,
		Account: q.Account, From: q.From, To: q.To, Text: q.Text, Sort: q.Sort, Desc: q.Desc,
		Limit: q.Limit, Cursor: q.Cursor, SLA: q.SLA, SLAMillis: q.SLAMillis, NowMillis: q.NowMillis,
	})
	if err != nil {
		return api.IncidentPage{}, storeErr(err)
	}
	out := api.IncidentPage{NextCursor: page.NextCursor, CountsByStatus: page.CountsByStatus, Items: make([]api.Incident, 0, len(page.Items))}
	for _, in := range page.Items {
		out.Items = append(out.Items, apiIncident(in))
	}
	return out, nil
}

func (a storeAdapter) GetIncident(ctx context.Context, tenants []string, id, cursor string) (api.IncidentDetail, error) {
	d, err := a.s.GetIncident(ctx, tenants, id, cursor)
	if err != nil {
		return api.IncidentDetail{}, storeErr(err)
	}
	out := api.IncidentDetail{Incident: apiIncident(d.Incident), Alerts: d.Alerts, NextEvidenceCursor: d.NextEvidenceCursor,
		Evidence: apiEvidence(d.Evidence), MergedFrom: d.MergedFrom}
	return out, nil
}

func apiEvidence(es []storage.Evidence) []api.Evidence {
	out := make([]api.Evidence, 0, len(es))
	for _, e := range es {
		out = append(out, api.Evidence{
			ID: e.ID, Time: e.Time, Source: e.Source, ClassUID: e.ClassUID, Operation: e.Operation,
			Normalized: e.Normalized, Raw: string(e.Raw),
		})
	}
	return out
}

// apiIncident shows the analyst's view: the effective status and severity.
func apiIncident(in storage.Incident) api.Incident {
	out := api.Incident{Incident: in.Incident, Workflow: apiWorkflow(in.Workflow)}
	out.Workflow.Status = in.EffectiveStatus
	if out.Workflow.MergedInto == "" {
		out.Workflow.MergedInto = in.MergedInto
	}
	out.Severity = in.EffectiveSeverity
	out.Status = in.EffectiveStatus
	return out
}

func apiWorkflow(w storage.Workflow) api.Workflow {
	out := api.Workflow{
		Status: w.Status, Assignee: w.Assignee, Verdict: w.Verdict, Reason: w.Reason,
		Tags: w.Tags, SeverityOverride: w.SeverityOverride, MergedInto: w.MergedInto, Version: w.Version,
		UpdatedAt: w.UpdatedAt, UpdatedBy: w.UpdatedBy,
		AcknowledgedAt: w.AcknowledgedAt, ResolvedAt: w.ResolvedAt, ClosedAt: w.ClosedAt,
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	return out
}

func (a storeAdapter) IncidentRow(ctx context.Context, tenants []string, id string) (api.Incident, error) {
	in, err := a.s.IncidentRow(ctx, tenants, id)
	if err != nil {
		return api.Incident{}, storeErr(err)
	}
	return apiIncident(in), nil
}

func (a storeAdapter) UpdateWorkflow(ctx context.Context, u api.WorkflowUpdate) (api.Incident, error) {
	su := storage.WorkflowUpdate{
		Tenants: u.Tenants, IncidentID: u.IncidentID, ExpectedVersion: u.ExpectedVersion,
		ExpectedIncidentVersion: u.ExpectedIncidentVersion,
		Status:                  u.Status, Assignee: u.Assignee, Verdict: u.Verdict, Reason: u.Reason, Tags: u.Tags,
		SeverityOverride: u.SeverityOverride, Actor: u.Actor,
	}
	if u.Decide != nil {
		su.Decide = func(cur storage.Incident) (storage.WorkflowUpdate, error) {
			d, err := u.Decide(apiIncident(cur))
			return storage.WorkflowUpdate{Status: d.Status, Assignee: d.Assignee, Verdict: d.Verdict, Reason: d.Reason,
				Tags: d.Tags, SeverityOverride: d.SeverityOverride}, err
		}
	}
	if u.Audit != nil {
		su.Audit = func(after storage.Workflow) storage.AuditEntry {
			return storageAudit(u.Audit(apiWorkflow(after)))
		}
	}
	in, err := a.s.UpdateIncidentWorkflow(ctx, su)
	if err != nil {
		if errors.Is(err, storage.ErrConflict) && in.ID != "" {
			// The current row, so the 412 can carry the current ETag.
			return apiIncident(in), storeErr(err)
		}
		return api.Incident{}, storeErr(err)
	}
	return apiIncident(in), nil
}

func (a storeAdapter) Merge(ctx context.Context, tenants []string, from, into, actor, reason string) (api.Workflow, error) {
	w, err := a.s.RecordMerge(ctx, tenants, from, into, actor, reason)
	if err != nil {
		return api.Workflow{}, storeErr(err)
	}
	return apiWorkflow(w), nil
}

func (a storeAdapter) AddComment(ctx context.Context, tenants []string, c api.Comment) (api.Comment, error) {
	sc, err := a.s.AddComment(ctx, tenants, storage.Comment{ID: c.ID, IncidentID: c.IncidentID, Author: c.Author, Body: c.Body, Time: c.Time})
	if err != nil {
		return api.Comment{}, storeErr(err)
	}
	return apiComment(sc), nil
}

func apiComment(c storage.Comment) api.Comment {
	return api.Comment{ID: c.ID, IncidentID: c.IncidentID, TenantUID: c.TenantUID, Author: c.Author, Body: c.Body, Time: c.Time,
		EditedAt: c.EditedAt, Version: c.Version, Deleted: c.Deleted}
}

func (a storeAdapter) ListComments(ctx context.Context, tenants []string, id, cursor string, limit int) ([]api.Comment, string, error) {
	cs, next, err := a.s.CommentPage(ctx, tenants, id, cursor, limit)
	if err != nil {
		return nil, "", storeErr(err)
	}
	out := make([]api.Comment, 0, len(cs))
	for _, c := range cs {
		out = append(out, apiComment(c))
	}
	return out, next, nil
}

func (a storeAdapter) ChangeComment(ctx context.Context, ch api.CommentChange) (api.Comment, error) {
	sc := storage.CommentChange{Tenants: ch.Tenants, IncidentID: ch.IncidentID, CommentID: ch.CommentID, Body: ch.Body,
		Delete: ch.Delete, Actor: ch.Actor}
	if ch.Check != nil {
		sc.Check = func(cur storage.Comment) error { return ch.Check(apiComment(cur)) }
	}
	if ch.Audit != nil {
		sc.Audit = func(before, after storage.Comment) storage.AuditEntry {
			return storageAudit(ch.Audit(apiComment(before), apiComment(after)))
		}
	}
	c, err := a.s.ChangeComment(ctx, sc)
	if err != nil {
		return api.Comment{}, storeErr(err)
	}
	return apiComment(c), nil
}

func (a storeAdapter) AppendAudit(ctx context.Context, entries ...api.AuditEntry) error {
	se := make([]storage.AuditEntry, 0, len(entries))
	for _, e := range entries {
		se = append(se, storageAudit(e))
	}
	return storeErr(a.s.AppendAudit(ctx, se...))
}

func storageAudit(e api.AuditEntry) storage.AuditEntry {
	return storage.AuditEntry{ID: e.ID, TenantUID: e.TenantUID, Time: e.Time, Actor: e.Actor, Action: e.Action,
		IncidentID: e.IncidentID, Details: e.Details}
}

func (a storeAdapter) ListAudit(ctx context.Context, q api.AuditQuery) ([]api.AuditEntry, error) {
	es, err := a.s.ListAudit(ctx, storage.AuditQuery{Tenants: q.Tenants, IncidentID: q.IncidentID, Actor: q.Actor,
		Action: q.Action, From: q.From, To: q.To, Limit: q.Limit})
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]api.AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, api.AuditEntry{ID: e.ID, TenantUID: e.TenantUID, Time: e.Time, Actor: e.Actor, Action: e.Action,
			IncidentID: e.IncidentID, Details: e.Details})
	}
	return out, nil
}

func (a storeAdapter) EntityPivot(ctx context.Context, q api.EntityQuery) (api.EntityActivity, error) {
	act, err := a.s.EntityPivot(ctx, q.Tenants, q.Type, q.Value, q.From, q.To, q.Limit)
	if err != nil {
		return api.EntityActivity{}, storeErr(err)
	}
	out := api.EntityActivity{Incidents: make([]api.Incident, 0, len(act.Incidents)), Alerts: act.Alerts, Events: apiEvidence(act.Events)}
	for _, in := range act.Incidents {
		out.Incidents = append(out.Incidents, apiIncident(in))
	}
	return out, nil
}

// storeErr translates storage's errors into the API's.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return errors.Join(api.ErrNotFound, err)
	case errors.Is(err, storage.ErrConflict):
		return errors.Join(api.ErrConflict, err)
	case errors.Is(err, storage.ErrInvalidArgument):
		// The caller sees storage's explanation without its prefix.
		msg := err.Error()
		if i := strings.LastIndex(msg, storage.ErrInvalidArgument.Error()+": "); i >= 0 {
			msg = msg[i+len(storage.ErrInvalidArgument.Error())+2:]
		}
		return fmt.Errorf("%w: %s", api.ErrInvalidArgument, msg)
	}
	return err
}

// rulesAdapter serves the API's RuleSource from the rule engine: the
// detection rules of the running set and the correlation (sequence) rules
// loaded at start, with per-rule counters read from the metrics registry.
type rulesAdapter struct {
	engine    *rules.Engine
	manager   *rules.Manager
	sequences []*correlate.SequenceRule
	gatherer  prometheus.Gatherer
}

func (a rulesAdapter) Rules() []api.RuleInfo {
	stats := ruleStats(a.gatherer)
	var out []api.RuleInfo
	if set := a.engine.Set(); set != nil {
		for _, r := range set.Rules() {
			s := stats[r.ID]
			out = append(out, api.RuleInfo{
				ID: r.ID, Kind: rules.KindDetection, Title: r.Title, Version: r.Version, Severity: r.Severity,
				Stage: r.Stage, Tactics: r.Tactics, Techniques: r.Techniques,
				Evaluations: s.evaluations, Matches: s.matches, Errors: s.errors,
			})
		}
	}
	for _, r := range a.sequences {
		s := stats[r.ID]
		out = append(out, api.RuleInfo{
			ID: r.ID, Kind: rules.KindCorrelation, Title: r.Title, Version: r.Version, Severity: r.Severity,
			Stage: r.Stage, Tactics: r.Tactics, Techniques: r.Techniques, Matches: s.sequenceMatches,
		})
	}
	return out
}

func (a rulesAdapter) Reload() error { return a.manager.Reload() }

type ruleCounters struct{ evaluations, matches, errors, sequenceMatches uint64 }

// ruleStats sums the per-rule counters of the rule engine and the
// correlator by rule id.
func ruleStats(g prometheus.Gatherer) map[string]ruleCounters {
	out := map[string]ruleCounters{}
	if g == nil {
		return out
	}
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return out
	}
	for _, mf := range mfs {
		var field func(*ruleCounters) *uint64
		switch mf.GetName() {
		case "musubi_rules_evaluations_total":
			field = func(c *ruleCounters) *uint64 { return &c.evaluations }
		case "musubi_rules_matches_total":
			field = func(c *ruleCounters) *uint64 { return &c.matches }
		case "musubi_rules_errors_total":
			field = func(c *ruleCounters) *uint64 { return &c.errors }
		case "musubi_correlate_sequence_matches_total":
			field = func(c *ruleCounters) *uint64 { return &c.sequenceMatches }
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			rule := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "rule" {
					rule = l.GetValue()
				}
			}
			if rule == "" || m.GetCounter() == nil {
				continue
			}
			c := out[rule]
			*field(&c) += uint64(m.GetCounter().GetValue())
			out[rule] = c
		}
	}
	return out
}
