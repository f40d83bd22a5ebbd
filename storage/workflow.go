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
	return l, func() { s.unlockIncident(key, l) }
}

// unlockIncident releases l, the lock of key, and drops it when nobody
// else holds or waits for it.
func (s *Store) unlockIncident(key string, l *wfLock) {
	l.mu.Unlock()
	s.wfMu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(s.wfLocks, key)
	}
	s.wfMu.Unlock()
}

// tryLock takes the in-process lock of key (tenant, id) if nobody holds
// it, and returns its release function; false when it is held.
func (s *Store) tryLock(tenant, id string) (func(), bool) {
	key := tenant + "\x00" + id
	s.wfMu.Lock()
	defer s.wfMu.Unlock()
	l := s.wfLocks[key]
	if l != nil {
		return nil, false
	}
	l = &wfLock{refs: 1}
	l.mu.Lock()
	s.wfLocks[key] = l
	return func() { s.unlockIncident(key, l) }, true
}

// updateSlot waits, until ctx ends, for one of the slots that bound the
// workflow updates using the connection pool at once (one per connection),
// and returns its release. A burst of updates of many incidents then
// queues here, within the request's deadline, instead of waiting in the
// pool, which gives up after Config.DialTimeout: 200 concurrent PATCHes
// answered 503 half of the time before (BenchmarkAPIPatchConcurrent).
func (s *Store) updateSlot(ctx context.Context) (func(), error) {
	if s.updateSlots == nil {
		return func() {}, nil
	}
	select {
	case s.updateSlots <- struct{}{}:
		return func() { <-s.updateSlots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a connection: %w", ctx.Err())
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
		// wrote is stale without asking the database. Only less: the
		// incident version of l.last was read before that write, and the
		// correlator may have written a newer one since (it does not take
		// the lock), which a request may rightly expect. Deciding on
		// l.last as if it were read answered 412 to a request carrying
		// the current ETag (TestWorkflowQueuedBehindWriteAfterCorrelator).
		switch {
		case u.Decide != nil:
			if u.Stale != nil {
				if err := u.Stale(*l.last); err != nil {
					return *l.last, err
				}
			}
		case u.ExpectedVersion < l.last.Workflow.Version:
			return *l.last, fmt.Errorf("incident %s workflow is at version %d or later, not %d: %w", u.IncidentID, l.last.Workflow.Version, u.ExpectedVersion, casework.ErrConflict)
		case u.ExpectedIncidentVersion != 0 && u.ExpectedIncidentVersion < l.last.Version:
			return *l.last, fmt.Errorf("incident %s is at version %d or later, not %d: %w", u.IncidentID, l.last.Version, u.ExpectedIncidentVersion, casework.ErrConflict)
		}
	}
	release, err := s.updateSlot(ctx)
	if err != nil {
		return casework.Incident{}, err
	}
	defer release()
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
	// The alert moves of the incident, for the answer's alert ids, are
	// read before the write, not after it: a read that fails then refuses
	// the update instead of answering an error for a change that was
	// made. Moves of this incident take its lock, which this update
	// holds, so they cannot change until the answer. One query on one
	// connection at a time: 200 concurrent updates must not exhaust the
	// pool (BenchmarkAPIPatchConcurrent).
	moves, err := s.latestMoves(ctx, in.TenantUID, []string{in.ID})
	if err != nil {
		return casework.Incident{}, err
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
	// The answer's alert ids as analysts' moves leave them.
	return applyMoves(in, []string{in.ID}, moves, false), nil
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
	in, err := s.getIncident(ctx, tenants, id, false)
	if err != nil {
		return in, err
	}
	rows := []casework.Incident{in}
	err = s.withMoves(ctx, rows)
	return rows[0], err
}

func (s *Store) writeWorkflow(ctx context.Context, tenant, id string, w casework.Workflow, audit ...casework.AuditEntry) error {
	var in casework.Incident
	in.ID, in.Workflow = id, w
	// The audit entry goes first: an audited change that failed to apply is
	// visible as such, an unaudited change is not possible.
	if err := s.AppendAudit(ctx, audit...); err != nil {
		return err
	}
	return s.insert(ctx, workflowColumns(tenant, []casework.Incident{in}))
}

// workflowColumns are the workflow rows of incidents of tenant (each
// in.Workflow under in.ID).
func workflowColumns(tenant string, ins []casework.Incident) *columns {
	n := len(ins)
	c := &columns{table: TableWorkflow, rows: n,
		names: []string{"tenant_uid", "incident_id", "version", "updated", "updated_ms", "updated_by", "status", "assignee",
			"verdict", "reason", "tags", "severity_override", "merged_into", "acknowledged_ms", "resolved_ms", "closed_ms",
			"classification", "impact", "team"},
	}
	tenants, ids, versions, updated, updatedMS := mk[string](n), mk[string](n), mk[uint64](n), mk[time.Time](n), mk[int64](n)
	by, status, assignee, verdict, reason, tags := mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[[]string](n)
	sev, merged, ack, resolved, closed := mk[uint8](n), mk[string](n), mk[int64](n), mk[int64](n), mk[int64](n)
	class, impact, team := mk[string](n), mk[string](n), mk[string](n)
	for i, in := range ins {
		w := in.Workflow
		tenants[i], ids[i], versions[i], updated[i], updatedMS[i] = tenant, in.ID, w.Version, w.UpdatedAt, w.UpdatedAt.UnixMilli()
		by[i], status[i], assignee[i], verdict[i], reason[i], tags[i] = w.UpdatedBy, w.Status, w.Assignee, w.Verdict, w.Reason, nonNil(w.Tags)
		sev[i], merged[i], ack[i], resolved[i], closed[i] = clampU8(w.SeverityOverride), w.MergedInto, zeroMS(w.AcknowledgedAt), zeroMS(w.ResolvedAt), zeroMS(w.ClosedAt)
		class[i], impact[i], team[i] = w.Classification, w.Impact, w.Team
	}
	c.values = []any{tenants, ids, versions, updated, updatedMS, by, status, assignee, verdict, reason, tags, sev, merged,
		ack, resolved, closed, class, impact, team}
	return c
}

// RecordMerge marks incident from as merged into incident into (both in the
// same tenant), as a new workflow version of from, and moves from's alerts
// (as analysts' moves left them) to into, which gets a new workflow version
// too (its alerts changed, so its ETag does). Each incident gets an audit
// entry naming the alerts.
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
	tenant := src.TenantUID
	unlock := s.lockIncidents(tenant, src.ID, dst.ID)
	defer unlock()
	if src, err = s.getIncident(ctx, []string{tenant}, src.ID, false); err != nil {
		return casework.Workflow{}, err
	}
	if dst, err = s.getIncident(ctx, []string{tenant}, dst.ID, false); err != nil {
		return casework.Workflow{}, err
	}
	moves, err := s.latestMoves(ctx, tenant, []string{src.ID})
	if err != nil {
		return casework.Workflow{}, err
	}
	alerts := applyMoves(src, []string{src.ID}, moves, false).AlertIDs
	times, err := s.linkTimes(ctx, tenant, src.ID)
	if err != nil {
		return casework.Workflow{}, err
	}
	prev, alertTimes, froms := make([]uint64, len(alerts)), make([]int64, len(alerts)), make([]string, len(alerts))
	for i, id := range alerts {
		froms[i], alertTimes[i] = src.ID, times[id]
		if m, ok := moves[id]; ok {
			prev[i], alertTimes[i] = m.version, m.timeMS
		}
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	next := src.Workflow
	next.Status, next.MergedInto, next.Reason = "merged", dst.ID, reason
	next.Version = src.Workflow.Version + 1
	next.UpdatedAt, next.UpdatedBy = now, actor
	stampTimes(&next, src.EffectiveStatus)
	merged, survivor := src, dst
	merged.Workflow, survivor.Workflow = next, bump(dst, actor, now)
	details, _ := json.Marshal(map[string]any{"from": src.ID, "into": dst.ID, "reason": reason, "alert_ids": nonNil(alerts)})
	err = s.AppendAudit(ctx, casework.AuditEntry{
		ID:   deterministicID("merge", tenant, src.ID, fmt.Sprint(next.Version)),
		Time: now, TenantUID: tenant, Actor: actor, Action: "incident.merge", IncidentID: src.ID, Details: details,
	}, casework.AuditEntry{
		ID:   deterministicID("merge.into", tenant, dst.ID, fmt.Sprint(survivor.Workflow.Version)),
		Time: now, TenantUID: tenant, Actor: actor, Action: "incident.merge", IncidentID: dst.ID, Details: details,
	})
	if err != nil {
		return casework.Workflow{}, err
	}
	if err := s.insert(ctx, workflowColumns(tenant, []casework.Incident{merged, survivor})); err != nil {
		return casework.Workflow{}, err
	}
	if len(alerts) > 0 {
		if err := s.insertMoves(ctx, tenant, actor, "merged into "+dst.ID+": "+reason, now, dst.ID, alerts, froms, alertTimes, prev); err != nil {
			return casework.Workflow{}, err
		}
	}
	return next, nil
}

// linkTimes returns the event time of every alert the correlator linked to
// incident id, by alert id.
func (s *Store) linkTimes(ctx context.Context, tenant, id string) (map[string]int64, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT alert_id, max(alert_time_ms) FROM "+s.t(TableLinks)+
		" WHERE tenant_uid = ? AND incident_id = ? GROUP BY alert_id LIMIT "+fmt.Sprint(maxGraphRows), tenant, id)
	if err != nil {
		return nil, fmt.Errorf("incident links: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var a string
		var t int64
		if err := rows.Scan(&a, &t); err != nil {
			return nil, err
		}
		out[a] = t
	}
	return out, rows.Err()
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
