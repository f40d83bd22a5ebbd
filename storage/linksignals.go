package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TableLinkSignals holds the correlator's link signals: the plain events
// that taught it a lineage link or the address an instance session called
// from, reduced to what it reads (see Batch.Links and migration 0008).
const TableLinkSignals = "link_signals"

// LinkSignal is one row of TableLinkSignals: a plain event reduced to its
// uid, tenant, source, operation, class, time and the observables the
// correlator keeps (correlate.Link).
type LinkSignal struct {
	UID, TenantUID, LogName, Operation string
	ClassUID                           int
	Time                               int64
	Observables                        []ocsf.Observable
}

// linkSignalColumns encodes link signals; the event uid is the row's id.
func linkSignalColumns(evs []LinkSignal, now int64) *columns {
	n := len(evs)
	tenant, uid, logName, op := mk[string](n), mk[string](n), mk[string](n), mk[string](n)
	ts := mk[time.Time](n)
	tms, ins := mk[int64](n), mk[int64](n)
	class := mk[uint32](n)
	kinds, names, values := mk[[]string](n), mk[[]string](n), mk[[]string](n)
	for i := range evs {
		ev := &evs[i]
		tenant[i], uid[i], logName[i], op[i] = ev.TenantUID, ev.UID, ev.LogName, ev.Operation
		ts[i], tms[i], ins[i] = msTime(ev.Time), ev.Time, now
		class[i] = uint32(max(ev.ClassUID, 0))
		kinds[i], names[i], values[i] = observableColumns(ev.Observables)
	}
	return &columns{table: TableLinkSignals, rows: n,
		names:  []string{"tenant_uid", "event_uid", "time", "time_ms", "log_name", "class_uid", "operation", "obs_entity", "obs_name", "obs_value", "inserted_ms"},
		values: []any{tenant, uid, ts, tms, logName, class, op, kinds, names, values, ins},
	}
}

// loadLinkSignals reads the link signals since since, oldest first. The
// signals of one tenant, source, class, operation and set of observables
// teach the correlator the same links and session sources; of each such
// group only the earliest and the latest come back, which restore those
// links' and sources' first and last times exactly (and the first's event
// as evidence), so repeated activity costs the restore two rows, not one
// per event. A replayed batch's duplicate rows fold into their group.
func (s *Store) loadLinkSignals(ctx context.Context, since time.Time, tenantCond string, tenantArgs []any) ([]LinkSignal, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT tenant_uid, log_name, class_uid, operation, obs_entity, obs_name, obs_value,
    argMin(event_uid, time_ms), min(time_ms), argMax(event_uid, time_ms), max(time_ms)
FROM `+s.t(TableLinkSignals)+`
WHERE time >= toDateTime(?) AND time_ms >= ? AND `+tenantCond+`
GROUP BY tenant_uid, log_name, class_uid, operation, obs_entity, obs_name, obs_value`,
		append([]any{since.Unix(), since.UnixMilli()}, tenantArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("link signals: %w", err)
	}
	defer rows.Close()
	out := []LinkSignal{}
	for rows.Next() {
		var ev LinkSignal
		var class uint32
		var kinds, names, values []string
		var lastUID string
		var lastTime int64
		if err := rows.Scan(&ev.TenantUID, &ev.LogName, &class, &ev.Operation, &kinds, &names, &values,
			&ev.UID, &ev.Time, &lastUID, &lastTime); err != nil {
			return nil, err
		}
		ev.ClassUID = int(class)
		if ev.Observables, err = observablesOf(kinds, names, values); err != nil {
			return nil, fmt.Errorf("link signal %s: %w", ev.UID, err)
		}
		out = append(out, ev)
		if lastUID != ev.UID {
			last := ev
			last.UID, last.Time = lastUID, lastTime
			out = append(out, last)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b LinkSignal) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.TenantUID, b.TenantUID), strings.Compare(a.UID, b.UID))
	})
	return out, nil
}

// loadFoldCounts reads the latest count, first and last seen times and
// origins of every folded alert stored from from to to, newest first. The
// origins are those of the highest count: a folded alert's origins grow
// only with its count.
func (s *Store) loadFoldCounts(ctx context.Context, from, to time.Time, tenantCond string, tenantArgs []any) ([]alert.Alert, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT tenant_uid, alert_id, max(fold_count), min(first_seen_ms), max(last_seen_ms),
    argMax(origin_topics, fold_count), argMax(origin_partitions, fold_count), argMax(origin_offsets, fold_count)
FROM `+s.t(TableAlerts)+`
WHERE time >= toStartOfHour(toDateTime(?)) AND time_ms >= ? AND time_ms < ? AND alert_id LIKE 'fold-%' AND `+tenantCond+`
GROUP BY tenant_uid, alert_id ORDER BY max(last_seen_ms) DESC, tenant_uid, alert_id LIMIT ?`,
		append(append([]any{from.Unix(), from.UnixMilli(), to.UnixMilli()}, tenantArgs...), s.cfg.MaxResultRows)...)
	if err != nil {
		return nil, fmt.Errorf("folded alert counts: %w", err)
	}
	defer rows.Close()
	out := []alert.Alert{}
	for rows.Next() {
		var a alert.Alert
		var count uint32
		var oTopics []string
		var oParts []int32
		var oOffsets []int64
		if err := rows.Scan(&a.TenantUID, &a.ID, &count, &a.FirstSeen, &a.LastSeen, &oTopics, &oParts, &oOffsets); err != nil {
			return nil, err
		}
		a.Origins = origins(oTopics, oParts, oOffsets)
		a.Count, a.Time = int(count), a.FirstSeen
		out = append(out, a)
	}
	return out, rows.Err()
}

// observableColumns splits observables into the parallel arrays the
// obs_entity, obs_name and obs_value columns store them as.
func observableColumns(obs []ocsf.Observable) (kinds, names, values []string) {
	kinds, names, values = make([]string, len(obs)), make([]string, len(obs)), make([]string, len(obs))
	for j, o := range obs {
		kinds[j], names[j], values[j] = string(o.Entity), o.Name, o.Value
	}
	return kinds, names, values
}

// observablesOf joins the arrays observableColumns made back into
// observables.
func observablesOf(kinds, names, values []string) ([]ocsf.Observable, error) {
	if len(names) != len(kinds) || len(values) != len(kinds) {
		return nil, fmt.Errorf("observable arrays of different lengths (%d, %d, %d)", len(kinds), len(names), len(values))
	}
	obs := make([]ocsf.Observable, 0, len(kinds))
	for j := range kinds {
		obs = append(obs, ocsf.NewObservable(ocsf.Entity(kinds[j]), names[j], values[j]))
	}
	return obs, nil
}
