package correlate

import (
	"slices"

	"github.com/musubi-xdr/musubi/alert"
)

// components partitions in's alerts into the groups that still join each
// other by the rules build draws edges with (shared joinable non-hub
// entities within windows, lineage, sequence steps), each group in event
// order, groups ordered by their earliest alert.
func (c *Correlator) components(in *openIncident) [][]*alert.Alert {
	alerts := slices.Clone(in.alerts)
	slices.SortFunc(alerts, alertCmp)
	parent := make([]int, len(alerts))
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	union := func(a, b int) {
		if ra, rb := find(a), find(b); ra != rb {
			parent[max(ra, rb)] = min(ra, rb)
		}
	}
	index := make(map[string]int, len(alerts))
	for k, a := range alerts {
		index[a.ID] = k
	}
	holder := make(map[ekey]int)
	for k, a := range alerts {
		if m := c.corr[a.ID]; m != nil {
			for _, st := range m.steps {
				if j, ok := index[c.stageAlert(st.alertID)]; ok && st.alertID != "" {
					union(j, k)
				}
			}
		}
		for _, cd := range c.joinCandidates(in.tenant, a, alerts, holder) {
			union(cd.j, k)
		}
		c.hold(holder, in.tenant, a, k)
	}
	groups := map[int][]*alert.Alert{}
	var roots []int
	for k, a := range alerts {
		r := find(k)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], a)
	}
	out := make([][]*alert.Alert, 0, len(roots))
	for _, r := range roots {
		out = append(out, groups[r])
	}
	return out
}

// splitHubbed re-checks the incidents that an entity which just became a
// hub was part of: alerts that were together only through it go back to
// incidents of their own, so a hub never glues, whichever order the input
// came in. The group with the earliest alert keeps the incident.
func (c *Correlator) splitHubbed() {
	slots := make([]uint32, 0, len(c.splitCheck))
	for s := range c.splitCheck {
		slots = append(slots, s)
	}
	clear(c.splitCheck)
	slices.Sort(slots)
	for _, s := range slots {
		in := c.incs[s]
		if in == nil || len(in.alerts) < 2 {
			continue
		}
		groups := c.components(in)
		if len(groups) < 2 {
			continue
		}
		// Forget the incident's memberships, then re-attach every group.
		var arr [16]uint32
		for _, a := range in.alerts {
			for _, i := range c.trackedIDs(in.tenant, a.Entities, a.Time, arr[:0]) {
				c.g.setMemberships(i, slices.DeleteFunc(c.g.memberships(i), func(m membership) bool { return m.inc == s }))
			}
		}
		in.alerts, in.ids = nil, nil
		in.first, in.last = 1<<63-1, -1<<63
		for gi, g := range groups {
			target := in
			if gi > 0 {
				target = c.incs[c.open(in.tenant)]
				target.status = in.status
				c.m.dropped.WithLabelValues("hub_split").Inc()
			}
			for _, a := range g {
				c.attach(target, a, c.trackedIDs(in.tenant, a.Entities, a.Time, arr[:0]))
			}
		}
	}
}
