package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// wfLock serializes workflow updates of one incident in this process.
type wfLock struct {
	mu   sync.Mutex
	refs int
	// last is the row this process last wrote while the lock was in use
	// (guarded by mu). Updates queued behind a write that expect an older
	// workflow version fail at once instead of reading again: versions only
	// grow. The lock, and with it last, is dropped when nobody waits.
	last *casework.Incident
}

// lockIncident takes the in-process lock of one incident and returns its
// release function.
func (s *Store) lockIncident(tenant, id string) (*wfLock, func()) {
	key := tenant + "\x00" + id
	s.wfMu.Lock()
	l := s.wfLocks[key]
	if l == nil {
		l = &wfLock{}
		s.wfLocks[key] = l
	}
	l.refs++
	s.wfMu.Unlock()
	l.mu.Lock()
	return l, func() {
		l.mu.Unlock()
		s.wfMu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.wfLocks, key)
		}
		s.wfMu.Unlock()
	}
}

// UpdateIncidentWorkflow applies u with compare-and-set semantics: it reads
// the incident's latest version and workflow version (one query), fails
// with ErrConflict unless the workflow is at u.ExpectedVersion and, when
// u.ExpectedIncidentVersion is set, the incident at that version; then it
// inserts workflow version+1 together with an audit entry. It returns the
// incident's queue row (no graph, no timeline) with the new workflow, so a
// caller need not read the incident again.
//
// With u.Decide the caller checks the current row itself (an ETag, a status
// transition) under the lock. With exactly one tenant in u.Tenants the
// incident's lock is taken before anything is read, so an update costs one
// read and two inserts (the audit entries, then the workflow row).
//
// Race window: the read and the insert are two statements, and ClickHouse
// has no transactions. Updates through one Store are serialized per
// incident by an in-process lock, so they never race. Two API processes
// updating the same incident within the few milliseconds between read and
// insert can both succeed with the same new version; the row that survives
// the merge is then either one. Deployments with several API replicas that
// need strict CAS should route workflow writes for an incident to one
// replica. The correlator does not take the lock: a new incident version
// written between the read and the insert is not detected (the next
// update's If-Match is).
func (s *Store) UpdateIncidentWorkflow(ctx context.Context, u casework.WorkflowUpdate) (casework.Incident, error) {
	if err := checkTenants(u.Tenants); err != nil {
		return casework.Incident{}, err
	}
	if u.SeverityOverride != nil && (*u.SeverityOverride < 0 || *u.SeverityOverride > 6) {
		return casework.Incident{}, fmt.Errorf("%w: severity override %d out of range 0..6", casework.ErrInvalidArgument, *u.SeverityOverride)
	}
	tenants := u.Tenants
	if len(tenants) > 1 {
		// Find the incident's tenant first: the lock is per tenant and id.
		in, err := s.getIncident(ctx, tenants, u.IncidentID, false)
		if err != nil {
			return casework.Incident{}, err
		}
		tenants = []string{in.TenantUID}
	}
	l, unlock := s.lockIncident(tenants[0], u.IncidentID)
	defer unlock()
	if l.last != nil {
		// Versions only grow: what expects less than this process just
		// wrote is stale without asking the database.
		if u.Decide != nil {
			if _, err := u.Decide(*l.last); err != nil {
				return *l.last, err
			}
		} else if u.ExpectedVersion < l.last.Workflow.Version {
			return *l.last, fmt.Errorf("incident %s workflow is at version %d or later, not %d: %w", u.IncidentID, l.last.Workflow.Version, u.ExpectedVersion, casework.ErrConflict)
		}
	}
	in, err := s.getIncident(ctx, tenants, u.IncidentID, false)
	if err != nil {
		return casework.Incident{}, err
	}
	cur := in.Workflow
	if u.Decide != nil {
		d, err := u.Decide(in)
		if err != nil {
			return in, err
		}
		u.Status, u.Assignee, u.Verdict, u.Reason, u.Tags, u.SeverityOverride = d.Status, d.Assignee, d.Verdict, d.Reason, d.Tags, d.SeverityOverride
		u.Classification, u.Impact, u.Team = d.Classification, d.Impact, d.Team
		if u.SeverityOverride != nil && (*u.SeverityOverride < 0 || *u.SeverityOverride > 6) {
			return in, fmt.Errorf("%w: severity override %d out of range 0..6", casework.ErrInvalidArgument, *u.SeverityOverride)
		}
	} else {
		if cur.Version != u.ExpectedVersion {
			return in, fmt.Errorf("incident %s workflow is at version %d, not %d: %w", in.ID, cur.Version, u.ExpectedVersion, casework.ErrConflict)
		}
		if u.ExpectedIncidentVersion != 0 && in.Version != u.ExpectedIncidentVersion {
			return in, fmt.Errorf("incident %s is at version %d, not %d: %w", in.ID, in.Version, u.ExpectedIncidentVersion, casework.ErrConflict)
		}
	}
	next := cur
	if next.Status == "" {
		next.Status = in.Status
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&next.Status, u.Status)
	set(&next.Assignee, u.Assignee)
	set(&next.Verdict, u.Verdict)
	set(&next.Reason, u.Reason)
	set(&next.Classification, u.Classification)
	set(&next.Impact, u.Impact)
	set(&next.Team, u.Team)
	if u.Tags != nil {
		next.Tags = slices.Clone(*u.Tags)
	}
	if u.SeverityOverride != nil {
		next.SeverityOverride = *u.SeverityOverride
	}
	next.Version = cur.Version + 1
	next.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	next.UpdatedBy = u.Actor
	stampTimes(&next, in.EffectiveStatus)
	details, _ := json.Marshal(map[string]any{"from": cur, "to": next})
	audits := []casework.AuditEntry{{
		ID:   deterministicID("workflow", in.TenantUID, in.ID, fmt.Sprint(next.Version)),
		Time: next.UpdatedAt, TenantUID: in.TenantUID, Actor: u.Actor,
		Action: "incident.workflow", IncidentID: in.ID, Details: details,
	}}
	if u.Audit != nil {
		audits = append(audits, u.Audit(next))
	}
	if err := s.writeWorkflow(ctx, in.TenantUID, in.ID, next, audits...); err != nil {
		return casework.Incident{}, err
	}
	in.Workflow = next
	in.EffectiveStatus = next.Status
	in.EffectiveSeverity = in.Severity
	if next.SeverityOverride > 0 {
		in.EffectiveSeverity = next.SeverityOverride
	}
	if next.UpdatedAt.After(in.UpdatedAt) {
		in.UpdatedAt = next.UpdatedAt
	}
	last := in
	last.Workflow.Tags = slices.Clone(next.Tags)
	l.last = &last
	return in, nil
}

// stampTimes sets the case times of the new workflow state w of an
// incident whose effective status was from: the first acknowledgement
// (assigned, or moved off new), and when it was resolved and closed (a
// merge closes it); reopening clears resolved and closed.
func stampTimes(w *casework.Workflow, from string) {
	now := w.UpdatedAt
	if from == "open" || from == "" {
		from = "new"
	}
	if w.AcknowledgedAt.IsZero() && (w.Assignee != "" || (w.Status != "new" && w.Status != "open" && w.Status != "")) {
		w.AcknowledgedAt = now
	}
	switch w.Status {
	case "resolved":
		if from != "resolved" || w.ResolvedAt.IsZero() {
			w.ResolvedAt = now
		}
		w.ClosedAt = time.Time{}
	case "closed", "merged":
		if (from != "closed" && from != "merged") || w.ClosedAt.IsZero() {
			w.ClosedAt = now
		}
	default:
		w.ResolvedAt, w.ClosedAt = time.Time{}, time.Time{}
	}
}

func zeroMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// IncidentRow returns the queue row of incident id in one of tenants: the
// latest incident version with its workflow, without graph, timeline,
// alerts or evidence. It is one query.
func (s *Store) IncidentRow(ctx context.Context, tenants []string, id string) (casework.Incident, error) {
	return s.getIncident(ctx, tenants, id, false)
}

func (s *Store) writeWorkflow(ctx context.Context, tenant, id string, w casework.Workflow, audit ...casework.AuditEntry) error {
	c := &columns{table: TableWorkflow, rows: 1,
		names: []string{"tenant_uid", "incident_id", "version", "updated", "updated_ms", "updated_by", "status", "assignee",
			"verdict", "reason", "tags", "severity_override", "merged_into", "acknowledged_ms", "resolved_ms", "closed_ms",
			"classification", "impact", "team"},
		values: []any{[]string{tenant}, []string{id}, []uint64{w.Version}, []time.Time{w.UpdatedAt}, []int64{w.UpdatedAt.UnixMilli()},
			[]string{w.UpdatedBy}, []string{w.Status}, []string{w.Assignee}, []string{w.Verdict}, []string{w.Reason},
			[][]string{nonNil(w.Tags)}, []uint8{clampU8(w.SeverityOverride)}, []string{w.MergedInto},
			[]int64{zeroMS(w.AcknowledgedAt)}, []int64{zeroMS(w.ResolvedAt)}, []int64{zeroMS(w.ClosedAt)},
			[]string{w.Classification}, []string{w.Impact}, []string{w.Team}},
	}
	// The audit entry goes first: an audited change that failed to apply is
	// visible as such, an unaudited change is not possible.
	if err := s.AppendAudit(ctx, audit...); err != nil {
		return err
	}
	return s.insert(ctx, c)
}

// RecordMerge marks incident from as merged into incident into (both in the
// same tenant), as a new workflow version of from, and audits it.
func (s *Store) RecordMerge(ctx context.Context, tenants []string, from, into, actor, reason string) (casework.Workflow, error) {
	src, err := s.getIncident(ctx, tenants, from, false)
	if err != nil {
		return casework.Workflow{}, err
	}
	dst, err := s.getIncident(ctx, []string{src.TenantUID}, into, false)
	if err != nil {
		return casework.Workflow{}, err
	}
	if src.ID == dst.ID {
		return casework.Workflow{}, fmt.Errorf("%w: an incident cannot be merged into itself", casework.ErrInvalidArgument)
	}
	l, unlock := s.lockIncident(src.TenantUID, src.ID)
	defer unlock()
	l.last = nil // this write does not go through UpdateIncidentWorkflow
	row, err := s.getIncident(ctx, []string{src.TenantUID}, src.ID, false)
	if err != nil {
		return casework.Workflow{}, err
	}
	cur := row.Workflow
	next := cur
	next.Status, next.MergedInto, next.Reason = "merged", dst.ID, reason
	next.Version = cur.Version + 1
	next.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	next.UpdatedBy = actor
	stampTimes(&next, row.EffectiveStatus)
	details, _ := json.Marshal(map[string]string{"from": src.ID, "into": dst.ID, "reason": reason})
	err = s.writeWorkflow(ctx, src.TenantUID, src.ID, next, casework.AuditEntry{
		ID:   deterministicID("merge", src.TenantUID, src.ID, fmt.Sprint(next.Version)),
		Time: next.UpdatedAt, TenantUID: src.TenantUID, Actor: actor, Action: "incident.merge", IncidentID: src.ID, Details: details,
	})
	return next, err
}

// AppendAudit stores audit entries. Entries without an ID get a random one,
// without a Time the current time.
func (s *Store) AppendAudit(ctx context.Context, entries ...casework.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	n := len(entries)
	tenant, id, actor, action, inc, details := mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n)
	ts, tms := mk[time.Time](n), mk[int64](n)
	for i, e := range entries {
		if e.ID == "" {
			e.ID = randomID()
		}
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		tenant[i], id[i], actor[i], action[i], inc[i], details[i] = e.TenantUID, e.ID, e.Actor, e.Action, e.IncidentID, string(e.Details)
		ts[i], tms[i] = e.Time.UTC().Truncate(time.Second), e.Time.UnixMilli()
	}
	return s.insert(ctx, &columns{table: TableAudit, rows: n,
		names:  []string{"tenant_uid", "action_id", "time", "time_ms", "actor", "action", "incident_id", "details"},
		values: []any{tenant, id, ts, tms, actor, action, inc, details},
	})
}

// ListAudit returns matching audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, q casework.AuditQuery) ([]casework.AuditEntry, error) {
	if err := checkTenants(q.Tenants); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	b := &builder{}
	b.add("tenant_uid IN "+placeholders(len(q.Tenants)), anySlice(q.Tenants)...)
	if q.IncidentID != "" {
		b.add("incident_id = ?", q.IncidentID)
	}
	if q.Actor != "" {
		b.add("actor = ?", q.Actor)
	}
	if q.Action != "" {
		b.add("action = ?", q.Action)
	}
	if !q.From.IsZero() {
		b.add("time >= toDateTime(?) AND time_ms >= ?", q.From.Unix(), q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		b.add("time <= toDateTime(?) AND time_ms <= ?", q.To.Unix(), q.To.UnixMilli())
	}
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT tenant_uid, action_id, time_ms, actor, action, incident_id, details FROM "+
		s.t(TableAudit)+b.where()+fmt.Sprintf(" ORDER BY time_ms DESC, action_id LIMIT 1 BY action_id LIMIT %d", limit), b.args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []casework.AuditEntry{}
	for rows.Next() {
		var e casework.AuditEntry
		var t int64
		var d string
		if err := rows.Scan(&e.TenantUID, &e.ID, &t, &e.Actor, &e.Action, &e.IncidentID, &d); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(t).UTC()
		if d != "" {
			e.Details = json.RawMessage(d)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deterministicID hashes parts into an id, so a retried write folds.
func deterministicID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
