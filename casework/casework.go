package casework

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Errors a store answers with; callers branch on them with errors.Is.
var (
	// ErrNotFound: the id does not exist in any of the caller's tenants.
	ErrNotFound = errors.New("not found")
	// ErrConflict: an optimistic update carried a stale version.
	ErrConflict = errors.New("version conflict")
	// ErrInvalidArgument: the caller's input (a query parameter, a cursor)
	// is not acceptable; the API answers 400.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNoTarget: the incident a change names as its target (an alert's
	// move) does not exist in the tenant it must be in; the API answers 422.
	ErrNoTarget = errors.New("no such target incident")
)

// ClosedStatuses are the workflow statuses that mean an analyst is done
// with an incident. The correlator does not restore incidents in these
// states.
var ClosedStatuses = []string{"closed", "resolved", "merged"}

// Workflow is the analyst-owned state of an incident, versioned apart from
// the correlator's incident rows. Version 0 means no analyst has touched it.
type Workflow struct {
	Status   string `json:"status"`
	Assignee string `json:"assignee,omitempty"`
	Verdict  string `json:"verdict,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Classification is the reason for the verdict (as Sentinel's
	// classification reason): suspicious_activity, suspicious_but_expected,
	// incorrect_alert_logic, inaccurate_data or other.
	Classification string `json:"classification,omitempty"`
	// Impact is the analyst's assessment of the damage: none, low,
	// medium, high or critical.
	Impact string `json:"impact,omitempty"`
	// Team is the team the incident is assigned to.
	Team             string    `json:"team,omitempty"`
	Tags             []string  `json:"tags"`
	SeverityOverride int       `json:"severity_override,omitempty"`
	MergedInto       string    `json:"merged_into,omitempty"`
	Version          uint64    `json:"workflow_version"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
	UpdatedBy        string    `json:"updated_by,omitempty"`
	// AcknowledgedAt is when an analyst first took the incident (assigned
	// it or moved it off new); ResolvedAt and ClosedAt when it was
	// resolved and closed (zero while it is not: reopening clears them).
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	ClosedAt       time.Time `json:"closed_at,omitzero"`
}

// Incident is one row of the queue: the latest version of the correlator's
// incident with the analyst's workflow state. In lists, Nodes, Edges and
// Timeline are left empty.
//
// As read from a store, the embedded incident's Status and Severity are the
// correlator's; EffectiveStatus and EffectiveSeverity are what the analyst
// sees (Workflow.Status when an analyst set one, the severity override when
// there is one). Effective puts those in place for display.
type Incident struct {
	incident.Incident
	// Number is the short human number of the incident (MSB-1042),
	// unique per tenant and assigned once when the incident is first
	// stored; empty until it is assigned.
	Number   string   `json:"number,omitempty"`
	Workflow Workflow `json:"workflow"`
	// Timing is the case clock; the API computes it.
	Timing *Timing `json:"timing,omitempty"`

	EffectiveStatus   string `json:"-"`
	EffectiveSeverity int    `json:"-"`
	// UpdatedAt is the later of the last incident and workflow writes.
	UpdatedAt time.Time `json:"-"`
}

// Effective returns in as an analyst sees it: Status, Severity and
// Workflow.Status are the effective ones, Workflow.MergedInto names the
// incident it was merged into whoever merged it, and Tags is never nil.
func (in Incident) Effective() Incident {
	if in.EffectiveStatus != "" {
		in.Status, in.Workflow.Status = in.EffectiveStatus, in.EffectiveStatus
	}
	if in.EffectiveSeverity != 0 {
		in.Severity = in.EffectiveSeverity
	}
	if in.Workflow.MergedInto == "" {
		in.Workflow.MergedInto = in.MergedInto
	}
	if in.Workflow.Tags == nil {
		in.Workflow.Tags = []string{}
	}
	return in
}

// Timing is what the queue shows of an incident's clock.
type Timing struct {
	// CreatedAt is the incident's first_seen.
	CreatedAt time.Time `json:"created_at"`
	// TimeToAcknowledge and TimeToResolve are in seconds from CreatedAt,
	// absent until the incident is acknowledged, resolved or closed.
	TimeToAcknowledge *int64 `json:"time_to_acknowledge_seconds,omitempty"`
	TimeToResolve     *int64 `json:"time_to_resolve_seconds,omitempty"`
	// SLADue is when the incident must be resolved by, from its effective
	// severity; absent when its severity has no SLA.
	SLADue time.Time `json:"sla_due,omitzero"`
	// SLABreached: it was resolved or closed after SLADue, or is still
	// open after it.
	SLABreached bool `json:"sla_breached"`
}

// IncidentQuery selects incidents for the queue. Tenants is required.
type IncidentQuery struct {
	Tenants     []string
	Status      []string // effective status, any of
	MinSeverity int      // effective severity
	// Assignee: "" any, "none" unassigned, otherwise exactly this one.
	Assignee string
	// Team: "" any, "none" no team, otherwise exactly this one.
	Team string
	// Verdict: any of these verdicts.
	Verdict []string
	// MaxSeverity, when not 0, is the highest effective severity.
	MaxSeverity int
	// ClosedFrom and ClosedTo select incidents closed (or resolved) in
	// [ClosedFrom, ClosedTo] by the workflow's clock.
	ClosedFrom, ClosedTo time.Time
	Tag                  string
	RuleID               string
	EntityType           string
	EntityValue          string
	Account              string
	// From and To select incidents active in [From, To] (event time).
	From, To time.Time
	// Text matches the title (case-insensitive substring), the exact id
	// or number, and with FullText also the incident's entity values, its
	// comments and its alerts' titles and evidence fields.
	Text     string
	FullText bool
	// Sort is one of last_seen (default), first_seen, severity,
	// risk_score, updated.
	Sort   string
	Desc   bool
	Limit  int
	Cursor string
	// SLA is "breached" (resolved or closed after first_seen plus the SLA
	// of its effective severity, or still open after it) or "ok" (has an
	// SLA, not breached); SLAMillis is the time to resolve per severity id
	// (0 or absent: none) and NowMillis the clock.
	SLA       string
	SLAMillis map[int]int64
	NowMillis int64
}

// IncidentPage is one page of the queue.
type IncidentPage struct {
	Items      []Incident `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
	// CountsByStatus counts every incident matching the query's filters
	// other than Status, by effective status.
	CountsByStatus map[string]int `json:"counts_by_status"`
}

// IncidentDetail is one incident with its graph, alerts and a page of the
// evidence events behind them.
type IncidentDetail struct {
	Incident
	// MergedFrom lists the incidents merged into this one (directly or
	// through another merged one); their alerts and evidence are served
	// with this incident's.
	MergedFrom         []string      `json:"merged_from,omitempty"`
	Alerts             []alert.Alert `json:"alerts"`
	Evidence           []Evidence    `json:"evidence"`
	NextEvidenceCursor string        `json:"next_evidence_cursor,omitempty"`
}

// Evidence is one stored event: its id, time, source, the normalized OCSF
// JSON and, when stored, the raw record.
type Evidence struct {
	ID        string `json:"id"`
	TenantUID string `json:"tenant_uid"`
	Time      int64  `json:"time"`
	Source    string `json:"source"`
	ClassUID  int    `json:"class_uid"`
	Operation string `json:"operation,omitempty"`
	// Normalized is the event as OCSF JSON.
	Normalized json.RawMessage `json:"normalized,omitempty"`
	// Raw is the source record, when it was stored.
	Raw string `json:"raw,omitempty"`
}

// Event decodes the normalized event.
func (e Evidence) Event() (ocsf.Event, error) {
	var ev ocsf.Event
	err := json.Unmarshal(e.Normalized, &ev)
	if e.Raw != "" {
		ev.Raw = []byte(e.Raw)
	}
	return ev, err
}

// WorkflowUpdate changes an incident's workflow state. Nil fields keep
// their current value.
type WorkflowUpdate struct {
	Tenants    []string
	IncidentID string
	// ExpectedVersion is the workflow version the analyst last saw (0 when
	// no analyst has touched the incident). A stale one is ErrConflict.
	ExpectedVersion uint64
	// ExpectedIncidentVersion, when not 0, is the correlator's incident
	// version the analyst last saw (the first half of the ETag); a stale
	// one is ErrConflict too.
	ExpectedIncidentVersion uint64
	Status                  *string
	Assignee                *string
	Verdict                 *string
	Reason                  *string
	Classification          *string
	Impact                  *string
	Team                    *string
	Tags                    *[]string
	SeverityOverride        *int
	Actor                   string
	// Decide, when set, replaces the version check: it is called under the
	// incident's lock with the incident's current row and returns the
	// changes to apply (only Status, Assignee, Team, Verdict, Reason,
	// Classification, Impact, Tags and SeverityOverride of its result are
	// used). An error refuses the update and is returned as it is.
	Decide func(cur Incident) (WorkflowUpdate, error)
	// Stale, when set with Decide, lets a request queued behind another
	// write of the incident be refused without a read: it is called under
	// the lock with the row the store last wrote, and an error refuses the
	// update as it is. That row's workflow half is current (workflow
	// versions are written under the lock), but its incident version is
	// the one read before that write and may be behind: the correlator
	// writes new incident versions without the lock. So Stale may refuse
	// only what is stale whatever the correlator wrote since (an expected
	// incident or workflow version below the row's; both only grow);
	// anything else goes on to Decide with the row read.
	Stale func(last Incident) error
	// Audit, when set, returns one more audit entry (the request's) that is
	// written with the change's own entry, in one insert, before the change.
	Audit func(after Workflow) AuditEntry
}

// Comment is an analyst's note on an incident. Version 0 is the comment
// as written; every edit or deletion by its author is the next version.
type Comment struct {
	ID         string `json:"id"`
	IncidentID string `json:"incident_id"`
	TenantUID  string `json:"tenant_uid"`
	Author     string `json:"author"`
	Body       string `json:"body"`
	// Time is when the comment was written; EditedAt when it was last
	// edited (zero if never).
	Time     time.Time `json:"time"`
	EditedAt time.Time `json:"edited_at,omitzero"`
	Version  uint64    `json:"version"`
	Deleted  bool      `json:"deleted,omitempty"`
}

// CommentChange edits or deletes one comment.
type CommentChange struct {
	Tenants    []string
	IncidentID string
	CommentID  string
	// Body is the new text; ignored when Delete is set.
	Body   string
	Delete bool
	Actor  string
	// Check, when set, is called with the comment as it is (under the
	// incident's lock) and may refuse the change (the caller checks that
	// the actor wrote it); its error is returned as it is.
	Check func(cur Comment) error
	// Audit, when set, returns one more audit entry (the request's),
	// written with the change's own in one insert, before the change.
	Audit func(before, after Comment) AuditEntry
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

// AuditQuery selects audit entries, newest first; Tenants is required.
type AuditQuery struct {
	Tenants    []string
	IncidentID string
	Actor      string
	Action     string
	From, To   time.Time
	Limit      int
}

// EntityQuery selects what is known about one entity (Type:Value) within
// [From, To]; each list is at most Limit long.
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

// NumberPrefix starts every incident number.
const NumberPrefix = "MSB-"

// FormatNumber renders an incident number: MSB-1042.
func FormatNumber(n uint32) string { return NumberPrefix + strconv.FormatUint(uint64(n), 10) }

// ParseNumber reads an incident number (MSB-1042, case-insensitive).
func ParseNumber(s string) (uint32, bool) {
	if len(s) <= len(NumberPrefix) || !strings.EqualFold(s[:len(NumberPrefix)], NumberPrefix) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[len(NumberPrefix):], 10, 32)
	return uint32(n), err == nil && n > 0
}

// AlertQuery selects the alert queue: alerts of Tenants within [From, To]
// that are in no incident of severity HighSeverity or above, newest first.
type AlertQuery struct {
	Tenants      []string
	From, To     time.Time
	MinSeverity  int
	MaxSeverity  int
	RuleID       string
	Account      string
	HighSeverity int
	Limit        int
	// Cursor is the store's position after the previous page.
	Cursor string
}

// ShadowQuery selects the shadow alerts (of experimental rules) of Tenants
// within [From, To].
type ShadowQuery struct {
	Tenants  []string
	From, To time.Time
}

// ShadowCount is how often one experimental rule would have fired: its
// shadow alerts in a ShadowQuery's range and the time of the latest.
type ShadowCount struct {
	RuleID   string `json:"rule_id"`
	Title    string `json:"title"`
	Alerts   uint64 `json:"alerts"`
	LastSeen int64  `json:"last_seen"`
}

// AlertPage is one page of the alert queue.
type AlertPage struct {
	Items      []alert.Alert `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// AlertMove moves one alert to another incident of its tenant.
type AlertMove struct {
	Tenants []string
	AlertID string
	// To is the incident the alert moves to.
	To     string
	Reason string
	Actor  string
	// Check, when set, is called under the locks with the incident that
	// holds the alert now (nil when it is in none) and the target, as the
	// store read them; its error refuses the move and is returned as it is.
	Check func(from *Incident, to Incident) error
	// Audit, when set, returns one more audit entry (the request's),
	// written with the move's own, before the move.
	Audit func(res AlertMoved) AuditEntry
}

// AlertMoved is the result of a move: both incidents' queue rows with
// their new workflow versions and alerts.
type AlertMoved struct {
	AlertID   string `json:"alert_id"`
	TenantUID string `json:"tenant_uid"`
	// From is the incident the alert left; nil when it was in none.
	From *Incident `json:"from"`
	To   Incident  `json:"to"`
}

// SavedView is a named set of queue filters of one principal: Query is
// the query string of GET /v1/incidents it stands for.
type SavedView struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Name      string    `json:"name"`
	Query     string    `json:"query"`
	CreatedAt time.Time `json:"created_at"`
}
