package api

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
)

// ErrNotFound is returned by a Store when an id does not exist in the
// caller's tenants.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a Store when an update's expected version is
// stale.
var ErrConflict = errors.New("version conflict")

// ErrInvalidArgument is returned by a Store when the caller's input (a
// cursor, say) is not acceptable; the API answers 400.
var ErrInvalidArgument = errors.New("invalid argument")

// Store is what the API needs from storage. Every method takes the caller's
// tenants and answers ErrNotFound for an id outside them.
type Store interface {
	ListIncidents(ctx context.Context, q IncidentQuery) (IncidentPage, error)
	GetIncident(ctx context.Context, tenants []string, id, evidenceCursor string) (IncidentDetail, error)
	// IncidentRow returns one incident as a queue row (no graph, timeline,
	// alerts or evidence): what a change needs to read.
	IncidentRow(ctx context.Context, tenants []string, id string) (Incident, error)
	// UpdateWorkflow applies u if the incident's workflow is still at
	// u.ExpectedVersion and the incident at u.ExpectedIncidentVersion, else
	// it fails with ErrConflict (and returns the current row when it knows
	// it). It returns the incident's queue row with the new workflow.
	UpdateWorkflow(ctx context.Context, u WorkflowUpdate) (Incident, error)
	// Merge marks incident from as merged into incident into.
	Merge(ctx context.Context, tenants []string, from, into, actor, reason string) (Workflow, error)
	AddComment(ctx context.Context, tenants []string, c Comment) (Comment, error)
	// ListComments returns a page of an incident's comments, oldest first,
	// after the store's cursor, and the cursor of the next page.
	ListComments(ctx context.Context, tenants []string, incidentID, cursor string, limit int) ([]Comment, string, error)
	// ChangeComment edits or deletes a comment (see CommentChange).
	ChangeComment(ctx context.Context, ch CommentChange) (Comment, error)
	AppendAudit(ctx context.Context, entries ...AuditEntry) error
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	EntityPivot(ctx context.Context, q EntityQuery) (EntityActivity, error)
}

// WorkflowUpdate changes an incident's workflow; nil fields stay as they are.
type WorkflowUpdate struct {
	Tenants         []string
	IncidentID      string
	ExpectedVersion uint64
	// ExpectedIncidentVersion is the correlator's incident version the
	// analyst saw (the first half of the ETag).
	ExpectedIncidentVersion uint64
	Status                  *string
	Assignee                *string
	Verdict                 *string
	Reason                  *string
	Tags                    *[]string
	SeverityOverride        *int
	Actor                   string
	// Decide, when set, replaces the version check: the store calls it
	// under the incident's lock with the incident's current row; it
	// returns the changes to apply, or an error that refuses the update
	// and is returned as it is. It may be called twice (first with the row
	// the store last wrote, then with the row it read).
	Decide func(cur Incident) (WorkflowUpdate, error)
	// Audit, when set, returns the request's audit entry, written together
	// with the store's own entry for the change, before the change.
	Audit func(after Workflow) AuditEntry
}

// Comment is an analyst's note on an incident.
type Comment struct {
	ID         string    `json:"id"`
	IncidentID string    `json:"incident_id"`
	TenantUID  string    `json:"tenant_uid"`
	Author     string    `json:"author"`
	Body       string    `json:"body"`
	Time       time.Time `json:"time"`
	// EditedAt is when the author last edited it; Version counts the
	// changes (0: as written).
	EditedAt time.Time `json:"edited_at,omitzero"`
	Version  uint64    `json:"version"`
	Deleted  bool      `json:"deleted,omitempty"`
}

// CommentChange edits (Body) or deletes (Delete) a comment. Check is
// called by the store with the comment as it is, under the incident's
// lock, and may refuse; Audit returns the request's audit entry, written
// with the store's own before the change.
type CommentChange struct {
	Tenants    []string
	IncidentID string
	CommentID  string
	Body       string
	Delete     bool
	Actor      string
	Check      func(cur Comment) error
	Audit      func(before, after Comment) AuditEntry
}

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	ID         string          `json:"id"`
	TenantUID  string          `json:"tenant_uid"`
	Time       time.Time       `json:"time"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	IncidentID string          `json:"incident_id,omitempty"`
	Details    json.RawMessage `json:"details,omitempty"`
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Tenants    []string
	IncidentID string
	Actor      string
	Action     string
	From, To   time.Time
	Limit      int
}

// EntityQuery selects what is known about one entity.
type EntityQuery struct {
	Tenants  []string
	Type     string
	Value    string
	From, To time.Time
	Limit    int
}

// EntityActivity is the incidents, alerts and events that name an entity,
// each list newest first.
type EntityActivity struct {
	Type      string        `json:"type"`
	Value     string        `json:"value"`
	Incidents []Incident    `json:"incidents"`
	Alerts    []alert.Alert `json:"alerts"`
	Events    []Evidence    `json:"events"`
}

// RuleSource is what the API needs from the rule engine.
type RuleSource interface {
	Rules() []RuleInfo
	Reload() error
}

// IncidentQuery selects incidents for the queue.
type IncidentQuery struct {
	Tenants     []string
	Status      []string
	MinSeverity int
	// Assignee: "" any, "none" unassigned, otherwise the exact assignee.
	Assignee    string
	Tag         string
	RuleID      string
	EntityType  string
	EntityValue string
	Account     string
	From, To    time.Time
	Text        string
	Sort        string
	Desc        bool
	Limit       int
	Cursor      string
	// SLA ("breached" or "ok") keeps the incidents whose SLA is breached,
	// or that have one that is not; SLAMillis is the time to resolve per
	// severity and NowMillis the clock it is judged at.
	SLA       string
	SLAMillis map[int]int64
	NowMillis int64
}

// Workflow is the analyst-owned state of an incident.
type Workflow struct {
	Status           string    `json:"status"`
	Assignee         string    `json:"assignee,omitempty"`
	Verdict          string    `json:"verdict,omitempty"`
	Reason           string    `json:"reason,omitempty"`
	Tags             []string  `json:"tags"`
	SeverityOverride int       `json:"severity_override,omitempty"`
	MergedInto       string    `json:"merged_into,omitempty"`
	Version          uint64    `json:"workflow_version"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
	UpdatedBy        string    `json:"updated_by,omitempty"`
	// AcknowledgedAt is when an analyst first took the incident (assigned
	// it or moved it off new); ResolvedAt and ClosedAt when it was
	// resolved and closed (absent while it is not).
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	ClosedAt       time.Time `json:"closed_at,omitzero"`
}

// Incident is one row of the queue: the correlator's incident with the
// analyst's workflow state.
type Incident struct {
	incident.Incident
	Workflow Workflow `json:"workflow"`
	// Timing is the case clock, computed by the API.
	Timing *CaseTiming `json:"timing,omitempty"`
}

// IncidentPage is one page of the queue.
type IncidentPage struct {
	Items          []Incident     `json:"items"`
	NextCursor     string         `json:"next_cursor,omitempty"`
	CountsByStatus map[string]int `json:"counts_by_status"`
}

// IncidentDetail is one incident with its alerts and a page of evidence.
type IncidentDetail struct {
	Incident
	// MergedFrom lists the incidents merged into this one; their alerts
	// and evidence are served with this incident's.
	MergedFrom         []string      `json:"merged_from,omitempty"`
	Alerts             []alert.Alert `json:"alerts"`
	Evidence           []Evidence    `json:"evidence"`
	NextEvidenceCursor string        `json:"next_evidence_cursor,omitempty"`
}

// Evidence is one evidence event: its id, time, source, the normalized OCSF
// JSON and, when stored, the raw record.
type Evidence struct {
	ID         string          `json:"id"`
	Time       int64           `json:"time"`
	Source     string          `json:"source"`
	ClassUID   int             `json:"class_uid"`
	Operation  string          `json:"operation,omitempty"`
	Normalized json.RawMessage `json:"normalized,omitempty"`
	Raw        string          `json:"raw,omitempty"`
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
