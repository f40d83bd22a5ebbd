package main

import (
	"context"
	"errors"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// storeAdapter serves the API's Store interface from the ClickHouse store.
type storeAdapter struct{ s *storage.Store }

func (a storeAdapter) ListIncidents(ctx context.Context, q api.IncidentQuery) (api.IncidentPage, error) {
	page, err := a.s.ListIncidents(ctx, storage.IncidentQuery{
		Tenants: q.Tenants, Status: q.Status, MinSeverity: q.MinSeverity, Assignee: q.Assignee,
		Tag: q.Tag, RuleID: q.RuleID, EntityType: q.EntityType, EntityValue: q.EntityValue,
		Account: q.Account, From: q.From, To: q.To, Text: q.Text, Sort: q.Sort, Desc: q.Desc,
		Limit: q.Limit, Cursor: q.Cursor,
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
	out := api.IncidentDetail{Incident: apiIncident(d.Incident), Alerts: d.Alerts, NextEvidenceCursor: d.NextEvidenceCursor}
	for _, e := range d.Evidence {
		out.Evidence = append(out.Evidence, api.Evidence{
			ID: e.ID, Time: e.Time, Source: e.Source, ClassUID: e.ClassUID, Operation: e.Operation,
			Normalized: e.Normalized, Raw: string(e.Raw),
		})
	}
	return out, nil
}

// apiIncident shows the analyst's view: the effective status and severity.
func apiIncident(in storage.Incident) api.Incident {
	w := in.Workflow
	out := api.Incident{Incident: in.Incident, Workflow: api.Workflow{
		Status: in.EffectiveStatus, Assignee: w.Assignee, Verdict: w.Verdict, Reason: w.Reason,
		Tags: w.Tags, SeverityOverride: w.SeverityOverride, Version: w.Version,
		UpdatedAt: w.UpdatedAt, UpdatedBy: w.UpdatedBy,
	}}
	if out.Workflow.Tags == nil {
		out.Workflow.Tags = []string{}
	}
	out.Severity = in.EffectiveSeverity
	out.Status = in.EffectiveStatus
	return out
}

func storeErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errors.Join(api.ErrNotFound, err)
	case errors.Is(err, storage.ErrConflict):
		return errors.Join(api.ErrConflict, err)
	}
	return err
}

// rulesAdapter serves the API's RuleSource from the rule engine.
type rulesAdapter struct {
	engine  *rules.Engine
	manager *rules.Manager
}

func (a rulesAdapter) Rules() []api.RuleInfo {
	set := a.engine.Set()
	if set == nil {
		return nil
	}
	var out []api.RuleInfo
	for _, r := range set.Rules() {
		out = append(out, api.RuleInfo{
			ID: r.ID, Kind: rules.KindDetection, Title: r.Title, Version: r.Version, Severity: r.Severity,
			Stage: r.Stage, Tactics: r.Tactics, Techniques: r.Techniques,
		})
	}
	return out
}

func (a rulesAdapter) Reload() error { return a.manager.Reload() }
