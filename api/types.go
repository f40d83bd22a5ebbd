package api

import (
	"context"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
)

// Store is what the API needs from storage, in casework's types, which
// storage.Store reads and writes as they are. Every method takes the
// caller's tenants and answers casework.ErrNotFound for an id outside them,
// casework.ErrConflict for a stale version and casework.ErrInvalidArgument
// for input it refuses (a 400).
type Store interface {
	ListIncidents(ctx context.Context, q casework.IncidentQuery) (casework.IncidentPage, error)
	GetIncident(ctx context.Context, tenants []string, id, evidenceCursor string) (casework.IncidentDetail, error)
	// IncidentRow returns one incident as a queue row (no graph, timeline,
	// alerts or evidence): what a change needs to read.
	IncidentRow(ctx context.Context, tenants []string, id string) (casework.Incident, error)
	// UpdateIncidentWorkflow applies u if the incident's workflow is still
	// at u.ExpectedVersion and the incident at u.ExpectedIncidentVersion
	// (or as u.Decide decides), else it fails with ErrConflict and returns
	// the current row when it knows it. It returns the incident's queue row
	// with the new workflow.
	UpdateIncidentWorkflow(ctx context.Context, u casework.WorkflowUpdate) (casework.Incident, error)
	// RecordMerge marks incident from as merged into incident into.
	RecordMerge(ctx context.Context, tenants []string, from, into, actor, reason string) (casework.Workflow, error)
	AddComment(ctx context.Context, tenants []string, c casework.Comment) (casework.Comment, error)
	// CommentPage returns a page of an incident's comments, oldest first,
	// after the store's cursor, and the cursor of the next page.
	CommentPage(ctx context.Context, tenants []string, incidentID, cursor string, limit int) ([]casework.Comment, string, error)
	// ChangeComment edits or deletes a comment (see casework.CommentChange).
	ChangeComment(ctx context.Context, ch casework.CommentChange) (casework.Comment, error)
	AppendAudit(ctx context.Context, entries ...casework.AuditEntry) error
	ListAudit(ctx context.Context, q casework.AuditQuery) ([]casework.AuditEntry, error)
	EntityPivot(ctx context.Context, q casework.EntityQuery) (casework.EntityActivity, error)
	// ListAlerts returns a page of the alert queue: alerts in no incident
	// of severity q.HighSeverity or more.
	ListAlerts(ctx context.Context, q casework.AlertQuery) (casework.AlertPage, error)
	// MoveAlert moves an alert to another incident of its tenant (see
	// casework.AlertMove); a target outside the alert's tenant is
	// casework.ErrNoTarget.
	MoveAlert(ctx context.Context, m casework.AlertMove) (casework.AlertMoved, error)
	// ListViews, CreateView and DeleteView keep the saved views of one
	// principal (owner: the token's name); CreateView answers ErrConflict
	// for a name the owner uses already, DeleteView ErrNotFound for a view
	// that is not the owner's.
	ListViews(ctx context.Context, owner string) ([]casework.SavedView, error)
	CreateView(ctx context.Context, v casework.SavedView) (casework.SavedView, error)
	DeleteView(ctx context.Context, owner, id string) (casework.SavedView, error)
	// ShadowMatches counts the shadow alerts (of experimental rules) per
	// rule: how often each would have fired.
	ShadowMatches(ctx context.Context, q casework.ShadowQuery) ([]casework.ShadowCount, error)
	// InventoryAsOf returns a tenant's asset inventory as of a time (see
	// exposures.go); with casework.ErrInventoryTruncated when it is cut.
	InventoryAsOf(ctx context.Context, q casework.InventoryQuery) ([]casework.InventoryRow, error)
	// RiskExplanations returns, by incident id, how the latest version's
	// risk score of each of ids was made (absent: not scored).
	RiskExplanations(ctx context.Context, tenants, ids []string) (map[string]incident.RiskExplanation, error)
}

// RuleSource is what the API needs from the rule engine.
type RuleSource interface {
	Rules() []RuleInfo
	Reload() error
}

// RuleInfo describes one loaded rule.
type RuleInfo struct {
	ID         string   `json:"id"`
	Kind       string   `json:"kind"`
	Title      string   `json:"title"`
	Version    string   `json:"version"`
	Severity   int      `json:"severity_id"`
	Stage      string   `json:"stage,omitempty"`
	Tactics    []string `json:"tactics,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
	// The counters since start count every tenant's events, so only
	// tokens of every tenant see them.
	Evaluations uint64 `json:"evaluations,omitempty"`
	Matches     uint64 `json:"matches,omitempty"`
	Errors      uint64 `json:"errors,omitempty"`
}
