package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// TableMoves holds the analysts' moves of alerts between incidents.
//
// The correlator owns the incident rows: it rewrites an incident's
// alert_ids and incident_alerts links with every new version, from its own
// state, and knows nothing of analysts. A move is therefore not a change of
// the correlator's rows (its next version would undo it) but a row of its
// own, applied on every read: an alert's incident is the target of its
// latest move when it was moved, else the correlator's.
//
// What follows a move: an incident's alerts, evidence and alert_ids (GET
// one, the queue rows, a PATCH's answer, the entity pivot, the export),
// the alert queue (an alert moved into a low incident is in it, one moved
// into a high incident is not), and merges (they move the merged
// incident's alerts as they are). What keeps the correlator's view: the
// graph and timeline (they explain why the correlator linked the alert),
// the incident's severity, risk, stages, rule ids, accounts and entities,
// and so the queue filters on them (rule, entity, account, search through
// alerts). The correlator does not read moves: it may still link a new
// alert to the source incident through the moved alert's entities; the
// analyst then moves that one too.
const TableMoves = "alert_moves"

// TableMovesIndex finds the moves of an incident: a row (incident, alert)
// for the target and for the source of every move. alert_moves is keyed
// by alert, so without it the moves of one incident were found by reading
// every move of its tenant (each PATCH did).
const TableMovesIndex = "alert_moves_by_incident"

// maxMoves bounds the moves read for the incidents of one read.
const maxMoves = 100_000

// alertMove is the latest move of one alert: where it is now.
type alertMove struct {
	to      string
	timeMS  int64
	version uint64
}

// latestMoves returns the latest move of every alert of tenant that was
// ever moved into or out of one of incidents, by alert id.
func (s *Store) latestMoves(ctx context.Context, tenant string, incidents []string) (map[string]alertMove, error) {
	if len(incidents) == 0 {
		return nil, nil
	}
	// Both reads go by their table's key: the alerts moved into or out of
	// the incidents from the index, then those alerts' moves.
	args := append([]any{tenant, tenant}, anySlice(incidents)...)
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT alert_id, argMax(incident_id, version), argMax(alert_time_ms, version), max(version) FROM `+s.t(TableMoves)+`
WHERE tenant_uid = ? AND alert_id `+s.dialect.globalIn()+` (SELECT alert_id FROM `+s.t(TableMovesIndex)+`
    WHERE tenant_uid = ? AND incident_id IN `+placeholders(len(incidents))+`)
GROUP BY alert_id LIMIT `+fmt.Sprint(maxMoves), args...)
	if err != nil {
		return nil, fmt.Errorf("alert moves: %w", err)
	}
	defer rows.Close()
	out := map[string]alertMove{}
	for rows.Next() {
		var id string
		var m alertMove
		if err := rows.Scan(&id, &m.to, &m.timeMS, &m.version); err != nil {
			return nil, err
		}
		out[id] = m
	}
	return out, rows.Err()
}

// applyMoves returns the alert ids of in as the analysts' moves leave them,
// for an incident that serves the alerts of the incidents in set (itself
// and those merged into it): in's own minus the moved elsewhere, plus the
// moved into set. The time span widens to the moved-in alerts' times, so
// reads by partition find them; span false keeps it.
func applyMoves(in casework.Incident, set []string, moves map[string]alertMove, span bool) casework.Incident {
	if len(moves) == 0 {
		return in
	}
	out := in
	out.AlertIDs = make([]string, 0, len(in.AlertIDs))
	for _, id := range in.AlertIDs {
		if m, moved := moves[id]; !moved || slices.Contains(set, m.to) {
			out.AlertIDs = append(out.AlertIDs, id)
		}
	}
	var in2 []string
	for id, m := range moves {
		if slices.Contains(set, m.to) && !slices.Contains(out.AlertIDs, id) {
			in2 = append(in2, id)
			if span && m.timeMS > 0 {
				out.FirstSeen, out.LastSeen = min(out.FirstSeen, m.timeMS), max(out.LastSeen, m.timeMS)
			}
		}
	}
	slices.Sort(in2)
	out.AlertIDs = append(out.AlertIDs, in2...)
	return out
}

// withMoves applies the moves to queue rows (their alert ids), one query
// per tenant of the rows.
func (s *Store) withMoves(ctx context.Context, rows []casework.Incident) error {
	byTenant := map[string][]string{}
	for _, in := range rows {
		byTenant[in.TenantUID] = append(byTenant[in.TenantUID], in.ID)
	}
	for tenant, ids := range byTenant {
		moves, err := s.latestMoves(ctx, tenant, ids)
		if err != nil {
			return err
		}
		for i, in := range rows {
			if in.TenantUID == tenant {
				rows[i] = applyMoves(in, []string{in.ID}, moves, false)
			}
		}
	}
	return nil
}

// findAlert returns the tenant and event time of alert id in one of
// tenants (shadow alerts are in no incident and cannot be moved).
func (s *Store) findAlert(ctx context.Context, tenants []string, id string) (string, int64, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT tenant_uid, time_ms FROM "+s.t(TableAlerts)+" WHERE tenant_uid IN "+
		placeholders(len(tenants))+" AND alert_id = ? AND shadow = 0 ORDER BY tenant_uid LIMIT 1", append(anySlice(tenants), id)...)
	if err != nil {
		return "", 0, fmt.Errorf("find alert: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", 0, err
		}
		return "", 0, fmt.Errorf("alert %s: %w", id, casework.ErrNotFound)
	}
	var tenant string
	var t int64
	err = rows.Scan(&tenant, &t)
	return tenant, t, err
}

// alertIncident returns the incident that holds alert id of tenant now:
// the target of its latest move, else the correlator's incident (one not
// folded into another by the correlator; the first by id when there are
// several), else "" with version 0. version is the latest move's.
func (s *Store) alertIncident(ctx context.Context, tenant, id string) (string, uint64, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), "SELECT argMax(incident_id, version), max(version) FROM "+s.t(TableMoves)+
		" WHERE tenant_uid = ? AND alert_id = ? GROUP BY alert_id", tenant, id)
	if err != nil {
		return "", 0, fmt.Errorf("alert moves: %w", err)
	}
	var inc string
	var version uint64
	found := rows.Next()
	if found {
		err = rows.Scan(&inc, &version)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil || found {
		return inc, version, err
	}
	rows, err = s.conn.Query(s.readCtx(ctx), "SELECT incident_id FROM "+s.t(TableLinks)+" WHERE tenant_uid = ? AND alert_id = ?"+
		" AND incident_id "+s.dialect.globalNotIn()+" (SELECT incident_id FROM "+s.t(TableIncidents)+" WHERE tenant_uid = ? AND merged_into != '')"+
		" GROUP BY incident_id ORDER BY incident_id LIMIT 1", tenant, id, tenant)
	if err != nil {
		return "", 0, fmt.Errorf("alert links: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		err = rows.Scan(&inc)
	}
	if err == nil {
		err = rows.Err()
	}
	return inc, 0, err
}

// lockIncidents takes the in-process locks of incidents of one tenant in
// id order (every taker of several locks takes them in that order, so none
// waits for another in a cycle) and forgets what they last wrote: the
// caller writes their workflow itself. Empty ids are skipped.
func (s *Store) lockIncidents(tenant string, ids ...string) func() {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var unlocks []func()
	for _, id := range ids {
		if id == "" {
			continue
		}
		l, unlock := s.lockIncident(tenant, id)
		l.last = nil
		unlocks = append(unlocks, unlock)
	}
	return func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
}

// bump returns the next workflow version of in, unchanged but for who and
// when: what an analyst's change of the incident's alerts writes, so both
// halves of nobody's old ETag match any more.
func bump(in casework.Incident, actor string, now time.Time) casework.Workflow {
	next := in.Workflow
	next.Tags = slices.Clone(in.Workflow.Tags)
	next.Version++
	next.UpdatedAt, next.UpdatedBy = now, actor
	return next
}

// MoveAlert moves one alert of m.Tenants to incident m.To of the alert's
// tenant: the alert leaves the incident that holds it (if any) for m.To.
// Under the locks of the alert and of both incidents it reads where the
// alert is and both incidents' rows, lets m.Check refuse, then writes the
// audit entries (one on each incident, and m.Audit's), both incidents'
// next workflow versions (their ETags change) and the move. It answers
// ErrNotFound for an alert outside m.Tenants, ErrNoTarget for a target
// outside the alert's tenant and ErrConflict when a merge moved the alert
// while the move waited for the locks.
func (s *Store) MoveAlert(ctx context.Context, m casework.AlertMove) (casework.AlertMoved, error) {
	if err := checkTenants(m.Tenants); err != nil {
		return casework.AlertMoved{}, err
	}
	tenant, alertTime, err := s.findAlert(ctx, m.Tenants, m.AlertID)
	if err != nil {
		return casework.AlertMoved{}, err
	}
	// The alert's lock keeps two moves of it apart (an alert id cannot
	// contain the NUL that separates the key's parts). A move that finds
	// another move of the alert under way is refused at once rather than
	// queued: the one under way changes where the alert is and the
	// target's ETag, so the queued one would be refused anyway, after
	// reads that, twenty racing moves deep, outlast the request's deadline.
	unlockAlert, ok := s.tryLock(tenant+"\x00alert", m.AlertID)
	if !ok {
		return casework.AlertMoved{}, fmt.Errorf("alert %s is being moved by another request: %w", m.AlertID, casework.ErrConflict)
	}
	defer unlockAlert()
	from, _, err := s.alertIncident(ctx, tenant, m.AlertID)
	if err != nil {
		return casework.AlertMoved{}, err
	}
	unlock := s.lockIncidents(tenant, from, m.To)
	defer unlock()
	// A merge of the source (under its lock) may have moved the alert
	// between the first look and the locks.
	from2, version, err := s.alertIncident(ctx, tenant, m.AlertID)
	if err != nil {
		return casework.AlertMoved{}, err
	}
	if from2 != from {
		return casework.AlertMoved{}, fmt.Errorf("alert %s moved to incident %s meanwhile: %w", m.AlertID, from2, casework.ErrConflict)
	}
	dst, err := s.getIncident(ctx, []string{tenant}, m.To, false)
	if errors.Is(err, casework.ErrNotFound) {
		return casework.AlertMoved{}, fmt.Errorf("incident %s in tenant %s: %w", m.To, tenant, casework.ErrNoTarget)
	}
	if err != nil {
		return casework.AlertMoved{}, err
	}
	var src *casework.Incident
	if from != "" {
		in, err := s.getIncident(ctx, []string{tenant}, from, false)
		if err != nil {
			return casework.AlertMoved{}, err
		}
		src = &in
	}
	if m.Check != nil {
		if err := m.Check(src, dst); err != nil {
			return casework.AlertMoved{}, err
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	res := casework.AlertMoved{AlertID: m.AlertID, TenantUID: tenant, To: dst}
	res.To.Workflow = bump(dst, m.Actor, now)
	wfs := []casework.Incident{res.To}
	if src != nil {
		moved := *src
		moved.Workflow = bump(*src, m.Actor, now)
		res.From = &moved
		wfs = append(wfs, moved)
	}
	details, _ := json.Marshal(map[string]string{"alert_id": m.AlertID, "from": from, "to": m.To, "reason": m.Reason})
	var audits []casework.AuditEntry
	for _, in := range wfs {
		audits = append(audits, casework.AuditEntry{
			ID:   deterministicID("alert.move", tenant, m.AlertID, in.ID, fmt.Sprint(in.Workflow.Version)),
			Time: now, TenantUID: tenant, Actor: m.Actor, Action: "incident.alert.move", IncidentID: in.ID, Details: details,
		})
	}
	// The answer's alert ids, read before the writes (a failed read
	// refuses the move rather than answering an error for a move that
	// was made), with this move applied.
	ids := []string{m.To}
	if src != nil {
		ids = append(ids, src.ID)
	}
	moves, err := s.latestMoves(ctx, tenant, ids)
	if err != nil {
		return casework.AlertMoved{}, err
	}
	if moves == nil {
		moves = map[string]alertMove{}
	}
	moves[m.AlertID] = alertMove{to: m.To, timeMS: alertTime, version: version + 1}
	for i, in := range wfs {
		wfs[i] = applyMoves(in, []string{in.ID}, moves, false)
	}
	res.To = wfs[0]
	if src != nil {
		res.From = &wfs[1]
	}
	if m.Audit != nil {
		audits = append(audits, m.Audit(res))
	}
	if err := s.AppendAudit(ctx, audits...); err != nil {
		return casework.AlertMoved{}, err
	}
	// The versions first: a move whose write failed leaves both ETags
	// changed and nothing moved (a client reloads), never a move that old
	// ETags still match.
	if err := s.insert(ctx, workflowColumns(tenant, wfs)); err != nil {
		return casework.AlertMoved{}, err
	}
	err = s.insertMoves(ctx, tenant, m.Actor, m.Reason, now, m.To,
		[]string{m.AlertID}, []string{from}, []int64{alertTime}, []uint64{version})
	if err != nil {
		return casework.AlertMoved{}, err
	}
	return res, nil
}

// moveColumns are the move rows of alerts (each from its incident, of
// its time, whose latest move had the given version) to incident to; each
// row's version is above its alert's latest and not below now in
// milliseconds.
func moveColumns(tenant, actor, reason string, now time.Time, to string, alerts, from []string, times []int64, prev []uint64) *columns {
	n := len(alerts)
	tenants, versions, tos, actors, reasons, nows := mk[string](n), mk[uint64](n), mk[string](n), mk[string](n), mk[string](n), mk[int64](n)
	for i := range n {
		tenants[i], versions[i], tos[i], actors[i], reasons[i], nows[i] = tenant, max(prev[i]+1, uint64(now.UnixMilli())), to, actor, reason, now.UnixMilli()
	}
	return &columns{table: TableMoves, rows: n,
		names:  []string{"tenant_uid", "alert_id", "version", "incident_id", "from_incident", "alert_time_ms", "moved_ms", "moved_by", "reason"},
		values: []any{tenants, alerts, versions, tos, from, times, nows, actors, reasons},
	}
}

// insertMoves writes the move rows of alerts (as moveColumns takes them)
// and, first, their rows of the index by incident: an index row without
// its move (the second insert failed) only makes a read look at an alert
// whose latest move it then reads as it is; a move without its index row
// would be missed.
func (s *Store) insertMoves(ctx context.Context, tenant, actor, reason string, now time.Time, to string, alerts, from []string, times []int64, prev []uint64) error {
	var tenants, incs, ids []string
	for i, a := range alerts {
		for _, inc := range []string{to, from[i]} {
			if inc != "" {
				tenants, incs, ids = append(tenants, tenant), append(incs, inc), append(ids, a)
			}
		}
	}
	err := s.insert(ctx, &columns{table: TableMovesIndex, rows: len(ids),
		names: []string{"tenant_uid", "incident_id", "alert_id"}, values: []any{tenants, incs, ids}})
	if err != nil {
		return err
	}
	return s.insert(ctx, moveColumns(tenant, actor, reason, now, to, alerts, from, times, prev))
}
