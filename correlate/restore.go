package correlate

import (
	"cmp"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// State is what storage kept of the correlator's work, for Restore.
type State struct {
	// Incidents are the open incidents, each at its latest version.
	Incidents []incident.Incident
	// Alerts are the alerts of the longest window, as stored.
	Alerts []alert.Alert
	// Folds are folded alerts stored before the window whose fold window
	// may still receive a late match: only their ids, counts and first and
	// last seen times are read.
	Folds []alert.Alert
	// Links are the link signals of the window (Result.Links): the plain
	// events that taught the correlator lineage links and the addresses
	// instance sessions called from.
	Links []Link
	// Stages are the stage inputs of the window (Result.Stages): the plain
	// events sequence rules' stages kept.
	Stages []StageInput
}

// Restore rebuilds the state after a restart from the open incidents and
// the alerts of the longest window: RestoreState without link signals and
// fold counts.
func (c *Correlator) Restore(incidents []incident.Incident, alerts []alert.Alert) {
	c.RestoreState(State{Incidents: incidents, Alerts: alerts})
}

// RestoreState rebuilds the state after a restart, or for the scopes a new
// assignment brought, from what storage kept. The link signals come first,
// in event-time order, through the very code that learned them: the
// lineage links of plain events and the addresses instance sessions were
// used from (no incident is open yet, so they merge nothing). Incidents
// keep their ids, versions and status; their lineage links come back from
// their "linked" edges too; in-flight sequence state is rebuilt by
// replaying the alerts through the sequence rules (a sequence completed
// before the restart is not raised again: its alert id is already known).
// The credential reads of the window's alerts are noted again, and an
// alert stored as an expected source is held again instead of joining an
// incident. Folded alerts count on from their stored counts, also those
// evicted from memory before the restart (State.Folds). The plain events
// that sequence stages kept come back from State.Stages, interleaved with
// the alerts in event-time order, into the same rule if its document is
// unchanged.
func (c *Correlator) RestoreState(st State) {
	incidents, alerts := st.Incidents, st.Alerts
	links := make([]*Link, len(st.Links))
	for i := range st.Links {
		links[i] = &st.Links[i]
	}
	slices.SortStableFunc(links, func(a, b *Link) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.UID, b.UID))
	})
	var ev ocsf.Event
	for _, l := range links {
		l.event(&ev)
		c.link(&ev)
		c.noteSource(&ev)
		c.noteOwnAddress(&ev)
	}
	for i := range alerts {
		if !alerts[i].Shadow {
			c.noteTheft(&alerts[i])
		}
	}
	for i := range st.Folds {
		a := &st.Folds[i]
		if !strings.HasPrefix(a.ID, "fold-") || a.Count <= 0 {
			continue
		}
		if t, ok := c.foldGone[a.ID]; !ok || a.Count > t.count {
			c.foldGone[a.ID] = foldTomb{count: a.Count, first: a.FirstSeen, last: a.LastSeen, origins: a.Origins, stored: a.Origins}
		}
	}
	byID := make(map[string]*alert.Alert, len(alerts))
	for i := range alerts {
		byID[alerts[i].ID] = &alerts[i]
	}
	for _, inc := range incidents {
		if inc.MergedInto != "" {
			continue
		}
		c.versions[inc.ID] = max(c.versions[inc.ID], inc.Version)
		tenant := c.tenant(inc.TenantUID)
		for _, e := range inc.Edges {
			if e.Relation != RelLinked {
				continue
			}
			a, okA := c.restoreEntity(tenant, e.Source, e.Time)
			b, okB := c.restoreEntity(tenant, e.Target, e.Time)
			if okA && okB && a != b {
				ev := ""
				if len(e.EventIDs) > 0 {
					ev = e.EventIDs[0]
				}
				var kept uint32
				c.g.addLink(a, b, e.Time, ev, &kept)
			}
		}
		var in *openIncident
		ghosts := ghostAlerts(inc)
		for _, id := range inc.AlertIDs {
			a := byID[id]
			if a == nil {
				// Older than the restored window: rebuild it from the
				// incident's own graph so the incident keeps every alert
				// (and its id, which derives from the earliest).
				if a = ghosts[id]; a == nil {
					continue
				}
			}
			if _, dup := c.alertInc[id]; dup {
				continue
			}
			if in == nil {
				in = c.incs[c.open(tenant)]
				in.id = inc.ID
				if inc.Status != "" {
					in.status = inc.Status
				}
			}
			cp := *a
			var arr [16]uint32
			c.attach(in, &cp, c.trackedIDs(tenant, cp.Entities, cp.Time, arr[:0]))
			c.restoreFold(&cp)
		}
	}
	// The restored incidents are already stored: nothing to emit for them.
	clear(c.dirty)
	c.restoring = true
	defer func() { c.restoring = false }()
	ordered := make([]*alert.Alert, 0, len(alerts))
	for i := range alerts {
		if !alerts[i].Shadow { // stored, never correlated
			ordered = append(ordered, &alerts[i])
		}
	}
	slices.SortFunc(ordered, alertCmp)
	stages := make([]*StageInput, len(st.Stages))
	for i := range st.Stages {
		stages[i] = &st.Stages[i]
	}
	slices.SortFunc(stages, func(a, b *StageInput) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.UID, b.UID), strings.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Stage, b.Stage))
	})
	next := 0
	restoreStages := func(before int64, all bool) {
		for ; next < len(stages) && (all || stages[next].Time < before); next++ {
			c.raise(c.seq.restoreInput(stages[next]))
		}
	}
	for _, a := range ordered {
		restoreStages(a.Time, false)
		if _, known := c.alertInc[a.ID]; !known {
			if _, expected := c.expectedSource(a); expected && a.Severity == ocsf.SeverityInformational {
				// Stored as informational: held again, as before the
				// restart, so that a theft seen later releases it with
				// the severity and summary its rule gave it.
				h := *a
				if u := h.Unheld; u != nil {
					h.Severity, h.Summary, h.Unheld = u.Severity, u.Summary, nil
				}
				c.holdExpected(h)
				continue
			}
			c.addAlert(a) // an alert stored without its incident
			c.restoreFold(a)
		}
		if !a.Correlated {
			c.raise(c.seq.observeAlert(a))
		}
		src := a.Source
		if src == "" {
			src = "unknown"
		}
		c.srcMax[src] = max(c.srcMax[src], a.Time)
	}
	restoreStages(0, true)
	c.updateWatermark()
	c.m.trackedEntities.Set(float64(c.g.len()))
	c.m.openIncidents.Set(float64(len(c.incs)))
}

func (c *Correlator) restoreEntity(tenant uint32, nodeID string, t int64) (uint32, bool) {
	kind, value, ok := strings.Cut(nodeID, ":")
	ki := kindIndex[ocsf.Entity(kind)]
	if !ok || !c.tracked[ki] || value == "" {
		return 0, false
	}
	i, _ := c.g.touch(ekey{tenant: tenant, kind: ki, value: value}, t)
	return i, !c.g.ent(i).hub
}

// ghostAlerts rebuilds the alerts of a stored incident from its timeline
// and its "observed" edges.
func ghostAlerts(inc incident.Incident) map[string]*alert.Alert {
	nodes := make(map[string]*incident.Node, len(inc.Nodes))
	for i := range inc.Nodes {
		nodes[inc.Nodes[i].ID] = &inc.Nodes[i]
	}
	out := make(map[string]*alert.Alert, len(inc.Timeline))
	for _, t := range inc.Timeline {
		out[t.AlertID] = &alert.Alert{
			ID: t.AlertID, TenantUID: inc.TenantUID, RuleID: t.RuleID, RuleVersion: t.RuleVersion, Title: t.Title,
			Severity: t.Severity, Stage: t.Stage, Tactics: t.Tactics, Techniques: t.Techniques, Time: t.Time,
			Source: t.Source, Correlated: t.Correlated, EventIDs: []string{},
			// A folded alert counts on from what its incident shows.
			Count: t.Count, FirstSeen: t.Time, LastSeen: max(t.LastSeen, t.Time),
		}
	}
	for _, e := range inc.Edges {
		if e.Relation != RelObserved {
			continue
		}
		a := out[strings.TrimPrefix(e.Source, "alert:")]
		n := nodes[e.Target]
		if a == nil || n == nil || n.Kind != incident.NodeEntity {
			continue
		}
		a.Entities = append(a.Entities, ocsf.NewObservable(n.Entity, e.JoinKey, n.Value))
		for _, id := range e.EventIDs {
			if !slices.Contains(a.EventIDs, id) {
				a.EventIDs = append(a.EventIDs, id)
			}
		}
		if a.RuleVersion == "" {
			a.RuleVersion = e.RuleVersion
		}
	}
	return out
}
