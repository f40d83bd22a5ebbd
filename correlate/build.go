package correlate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// KillChain is the stage order incidents are scored against: the ATT&CK
// enterprise tactics as snake_case names. Alert.Stage values outside it
// still count as stages, after the known ones.
var KillChain = []string{
	"reconnaissance", "resource_development", "initial_access", "execution",
	"persistence", "privilege_escalation", "defense_evasion", "credential_access",
	"discovery", "lateral_movement", "collection", "command_and_control",
	"exfiltration", "impact",
}

// Edge relations.
const (
	RelObserved = "observed" // alert → entity it carries
	RelShared   = "shared"   // alert → alert through an identical entity
	RelLineage  = "lineage"  // alert → alert through linked entities
	RelLinked   = "linked"   // entity → entity seen together in an event
	RelSequence = "sequence" // stage alert → correlated alert of a sequence rule
	RelGrouped  = "grouped"  // alert → alert kept together after its link expired
)

func hashID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:12])
}

// IncidentID is the deterministic id of the incident whose earliest alert
// is alertID.
func IncidentID(tenant, alertID string) string { return hashID("inc-", tenant, alertID) }

func entityNodeID(kind ocsf.Entity, value string) string { return string(kind) + ":" + value }

func alertNodeID(id string) string { return "alert:" + id }

// builder renders one incident.
type builder struct {
	c      *Correlator
	in     *openIncident
	out    incident.Incident
	nodes  map[string]int
	edges  map[string]int
	capped bool
}

func (b *builder) node(n incident.Node) bool {
	if i, ok := b.nodes[n.ID]; ok {
		if n.FirstSeen < b.out.Nodes[i].FirstSeen {
			b.out.Nodes[i].FirstSeen = n.FirstSeen
		}
		return true
	}
	if len(b.out.Nodes) >= b.c.cfg.MaxNodesPerIncident {
		b.capped = true
		return false
	}
	b.nodes[n.ID] = len(b.out.Nodes)
	b.out.Nodes = append(b.out.Nodes, n)
	return true
}

func (b *builder) edge(e incident.Edge) {
	if _, ok := b.nodes[e.Source]; !ok {
		return
	}
	if _, ok := b.nodes[e.Target]; !ok {
		return
	}
	e.ID = hashID("edge-", e.Source, e.Target, e.Relation, e.RuleID)
	if i, ok := b.edges[e.ID]; ok {
		old := &b.out.Edges[i]
		for _, id := range e.EventIDs {
			if !slices.Contains(old.EventIDs, id) && len(old.EventIDs) < 16 {
				old.EventIDs = append(old.EventIDs, id)
			}
		}
		return
	}
	b.edges[e.ID] = len(b.out.Edges)
	b.out.Edges = append(b.out.Edges, e)
}

func (b *builder) entityNode(kind ocsf.Entity, value string, t int64) string {
	id := entityNodeID(kind, value)
	sub := string(kind)
	if b.c.isHub(b.in.tenant, kind, value) {
		sub += " (hub)"
	}
	if !b.node(incident.Node{ID: id, Kind: incident.NodeEntity, Entity: kind, Value: value, Title: value, Subtitle: sub, FirstSeen: t}) {
		return ""
	}
	return id
}

// isHub reports whether the entity never glues incidents.
func (c *Correlator) isHub(tenant uint32, kind ocsf.Entity, value string) bool {
	if i, ok := c.g.index[ekey{tenant: tenant, kind: kindIndex[kind], value: value}]; ok {
		return c.g.ent(i).hub
	}
	return c.hubs.isHub(kind, value)
}

// cand is a way alert k joins an earlier alert j.
type cand struct {
	j      int
	key    string
	depth  int
	strong bool     // through strong kinds only (see join.go)
	path   []uint32 // entity slots from alert k's entity to j's entity
}

// stageAlert is the alert a sequence stage stands on in incidents: the
// folded alert its match went into, if any.
func (c *Correlator) stageAlert(id string) string {
	if f, ok := c.foldOf[id]; ok {
		return f
	}
	return id
}

// hold records alert k of alerts as the latest holder of its joinable
// entities, of weak kinds only when it may join on them (see join.go).
func (c *Correlator) hold(holder map[ekey]int, tenant uint32, a *alert.Alert, k int) {
	for _, o := range a.Entities {
		ki := kindIndex[o.Entity]
		if c.joinable[ki] && o.Value != "" && joinsOn(ki, joinSeverity(a)) && !c.isHub(tenant, o.Entity, o.Value) {
			holder[ekey{tenant: tenant, kind: ki, value: o.Value}] = k
		}
	}
}

// build renders in as an Incident (without Version). Everything in it
// derives from the set of alerts and the link graph, sorted by event time,
// so arrival order does not change the result.
func (c *Correlator) build(in *openIncident) incident.Incident {
	alerts := slices.Clone(in.alerts)
	slices.SortFunc(alerts, alertCmp)
	tenant := c.tenantNames[in.tenant]
	b := &builder{c: c, in: in, nodes: map[string]int{}, edges: map[string]int{}}
	b.out = incident.Incident{
		ID: IncidentID(tenant, alerts[0].ID), TenantUID: tenant, Status: in.status,
		FirstSeen: alerts[0].Time, LastSeen: alerts[len(alerts)-1].Time,
		Stages: []string{}, Tactics: []string{}, Techniques: []string{}, Accounts: []string{},
		RuleIDs: []string{}, AlertIDs: []string{}, Nodes: []incident.Node{}, Edges: []incident.Edge{}, Timeline: []incident.TimelineEntry{},
	}
	for _, a := range alerts {
		b.out.LastSeen = max(b.out.LastSeen, a.LastSeen)
	}
	index := make(map[string]int, len(alerts))
	for k, a := range alerts {
		index[a.ID] = k
		b.node(incident.Node{ID: alertNodeID(a.ID), Kind: incident.NodeAlert, Value: a.ID, Title: foldedTitle(a), Subtitle: a.RuleID,
			MainStat: a.Stage, Severity: a.Severity, FirstSeen: a.Time})
	}
	// Union-find over alerts: every join edge connects two components.
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
	holder := make(map[ekey]int)
	why := make([][]incident.Reason, len(alerts))
	var confSum float64
	var joins int
	for k, a := range alerts {
		b.out.AlertIDs = append(b.out.AlertIDs, a.ID)
		b.out.Timeline = append(b.out.Timeline, incident.TimelineEntry{Time: a.Time, AlertID: a.ID, RuleID: a.RuleID, Title: a.Title,
			Stage: a.Stage, Severity: a.Severity, RuleVersion: a.RuleVersion, Source: a.Source, Tactics: a.Tactics,
			Techniques: a.Techniques, Correlated: a.Correlated, Count: max(a.Count, 1), LastSeen: max(a.LastSeen, a.Time)})
		addUnique(&b.out.RuleIDs, a.RuleID)
		addUnique(&b.out.Accounts, a.AccountUID)
		if !a.Correlated {
			addUnique(&b.out.Stages, a.Stage)
			for _, t := range a.Tactics {
				addUnique(&b.out.Tactics, t)
			}
			for _, t := range a.Techniques {
				addUnique(&b.out.Techniques, t)
			}
		}
		an := alertNodeID(a.ID)
		for _, o := range a.Entities {
			if o.Value == "" || !o.Entity.Valid() {
				continue
			}
			if id := b.entityNode(o.Entity, o.Value, a.Time); id != "" {
				b.edge(incident.Edge{Source: an, Target: id, Relation: RelObserved, RuleID: a.RuleID, RuleVersion: a.RuleVersion,
					JoinKey: o.Name, Time: a.Time, EventIDs: a.EventIDs})
			}
		}
		// Sequence edges: the stage alerts that made a correlated alert.
		if m := c.corr[a.ID]; m != nil {
			for _, st := range m.steps {
				stage := c.stageAlert(st.alertID)
				j, ok := index[stage]
				if !ok || st.alertID == "" {
					continue
				}
				b.edge(incident.Edge{Source: alertNodeID(stage), Target: an, Relation: RelSequence, RuleID: m.rule.ID,
					RuleVersion: m.rule.Version, JoinKey: st.key, GapMS: a.Time - alerts[j].Time, Time: a.Time, EventIDs: st.eventIDs})
				why[k] = append(why[k], incident.Reason{Relation: RelSequence, Via: stage, Strength: "strong", RuleID: m.rule.ID,
					JoinKey: st.key, GapMS: a.Time - alerts[j].Time, EventIDs: st.eventIDs})
				if rj, rk := find(j), find(k); rj != rk {
					parent[rj] = rk
					confSum++
					joins++
				}
			}
		}
		best := map[int]cand{}
		for _, cd := range c.joinCandidates(in.tenant, a, alerts, holder) {
			r := find(cd.j)
			if old, ok := best[r]; !ok || cd.better(old) {
				best[r] = cd
			}
		}
		roots := make([]int, 0, len(best))
		for r := range best {
			roots = append(roots, r)
		}
		slices.Sort(roots)
		for _, r := range roots {
			cd := best[r]
			rj, rk := find(cd.j), find(k)
			if rj == rk {
				continue
			}
			parent[rj] = rk
			prev := alerts[cd.j]
			rel, conf := RelShared, 1.0
			evs := slices.Clone(a.EventIDs)
			if cd.depth > 0 {
				rel = RelLineage
				conf = 1.0
				for range cd.depth {
					conf *= 0.85
				}
				evs = append(evs, b.lineagePath(cd.path)...)
			}
			confSum += conf
			joins++
			b.edge(incident.Edge{Source: alertNodeID(prev.ID), Target: an, Relation: rel, RuleID: a.RuleID, RuleVersion: a.RuleVersion,
				JoinKey: cd.key, GapMS: a.Time - prev.Time, Time: a.Time, EventIDs: evs})
			r := incident.Reason{Relation: rel, Via: prev.ID, Strength: "weak", JoinKey: cd.key, GapMS: a.Time - prev.Time,
				Path: c.pathSteps(cd.path, a.Time), EventIDs: evs}
			if cd.strong {
				r.Strength = "strong"
			}
			why[k] = append(why[k], r)
			// The earlier alert of a group that this one brought in is
			// there through the same link.
			if cd.j != 0 && len(why[cd.j]) == 0 {
				back := r
				back.Via, back.GapMS = a.ID, prev.Time-a.Time
				why[cd.j] = append(why[cd.j], back)
			}
		}
		c.hold(holder, in.tenant, a, k)
	}
	// Correlated alerts summarise the others: their stages and tactics count
	// after those of the detections they stand on.
	for _, a := range alerts {
		if a.Correlated {
			addUnique(&b.out.Stages, a.Stage)
			for _, t := range a.Tactics {
				addUnique(&b.out.Tactics, t)
			}
			for _, t := range a.Techniques {
				addUnique(&b.out.Techniques, t)
			}
		}
	}
	// Alerts whose links were evicted (or restored without them) stay
	// grouped; say so rather than draw nothing.
	for k := 1; k < len(alerts); k++ {
		if r0, rk := find(0), find(k); r0 != rk {
			parent[rk] = r0
			confSum += 0.5
			joins++
			b.edge(incident.Edge{Source: alertNodeID(alerts[0].ID), Target: alertNodeID(alerts[k].ID), Relation: RelGrouped,
				GapMS: alerts[k].Time - alerts[0].Time, Time: alerts[k].Time})
			why[k] = append(why[k], incident.Reason{Relation: RelGrouped, Via: alerts[0].ID, GapMS: alerts[k].Time - alerts[0].Time})
		}
	}
	for k := range why {
		b.out.Timeline[k].Why = why[k]
	}
	conf := 1.0
	if joins > 0 {
		conf = confSum / float64(joins)
	}
	if b.capped {
		c.m.dropped.WithLabelValues("incident_node_cap").Inc()
	}
	b.out.Severity, b.out.RiskScore = score(alerts, b.out.Stages, b.out.Tactics, conf)
	b.out.Title = title(alerts, b.out.Stages)
	return b.out
}

// better prefers a strong join, then a direct one, then a shorter path,
// then the latest earlier alert, then the smaller key.
func (x cand) better(y cand) bool {
	if x.strong != y.strong {
		return x.strong
	}
	if x.depth != y.depth {
		return x.depth < y.depth
	}
	if x.j != y.j {
		return x.j > y.j
	}
	return x.key < y.key
}

// step is how joinCandidates' walk reached an entity: from which entity,
// after how many links, whether through strong kinds only, and the last
// time of the link that led there.
type step struct {
	from   uint32
	depth  int
	strong bool
	arrive int64
}

// joinCandidates finds how alert a joins the alerts before it: through an
// identical joinable entity within its window, or through lineage links
// usable at a's time.
func (c *Correlator) joinCandidates(tenant uint32, a *alert.Alert, alerts []*alert.Alert, holder map[ekey]int) []cand {
	var out []cand
	ids := alertIdentities(a)
	// A weak join needs both alerts to be allowed one and to name no
	// different identities.
	weakJoins := func(cd cand) bool {
		other := alertIdentities(alerts[cd.j])
		if !weakOK(joinSeverity(a)) || !weakOK(joinSeverity(alerts[cd.j])) || ids.conflicts(other) {
			return false
		}
		// The identities the path passed between the two alerts, as reach
		// checks them.
		if len(cd.path) < 3 {
			return true
		}
		return !c.viaConflicts(cd.path[1:len(cd.path)-1], other)
	}
	offer := func(cd cand) {
		if cd.strong || weakJoins(cd) {
			out = append(out, cd)
		}
	}
	var start []uint32
	for _, o := range a.Entities {
		ki := kindIndex[o.Entity]
		if o.Value == "" || !c.tracked[ki] || !joinsOn(ki, joinSeverity(a)) {
			continue
		}
		k := ekey{tenant: tenant, kind: ki, value: o.Value}
		if c.isHub(tenant, o.Entity, o.Value) {
			continue
		}
		if j, ok := holder[k]; ok && c.joinable[ki] && a.Time-alerts[j].Time <= c.window[ki] {
			offer(cand{j: j, key: entityNodeID(o.Entity, o.Value), strong: strongKinds[ki]})
		}
		if i, ok := c.g.index[k]; ok && !slices.Contains(start, i) {
			start = append(start, i)
		}
	}
	if c.cfg.MaxDepth == 0 {
		return out
	}
	// Breadth-first through lineage, remembering the way back. One map of
	// the walk's steps, kept between calls (four maps made anew for each
	// alert were most of incident building's allocation).
	steps := c.steps
	clear(steps)
	queue := append(c.stepQueue[:0], start...)
	for _, s := range start {
		steps[s] = step{strong: strongKinds[c.g.ent(s).key.kind]}
	}
	for q := 0; q < len(queue); q++ {
		cur := queue[q]
		st := steps[cur]
		e := c.g.ent(cur)
		if d := st.depth; d > 0 {
			j, ok := holder[e.key]
			// An object's link must come after the holder touched it.
			if ok && e.key.kind == objectKind && st.arrive < alerts[j].Time-causalSlack {
				ok = false
			}
			if ok && a.Time-alerts[j].Time <= c.window[e.key.kind]+c.window[c.g.ent(queue[0]).key.kind] {
				var path []uint32
				for x := cur; x != 0; x = steps[x].from {
					path = append(path, x)
				}
				slices.Reverse(path)
				offer(cand{j: j, key: c.pathKey(path), depth: d, path: path, strong: st.strong})
				continue
			}
		}
		if st.depth >= c.cfg.MaxDepth || len(queue) >= maxVisit {
			continue
		}
		n0 := len(queue)
		for _, l := range e.links {
			if _, ok := steps[l.to]; ok {
				continue
			}
			o := c.g.ent(l.to)
			lw := min(c.window[e.key.kind], c.window[o.key.kind])
			if o.hub || a.Time < l.first-lw || a.Time > l.last+lw {
				continue
			}
			if st.depth == 0 && e.key.kind == objectKind && l.last < a.Time-causalSlack {
				continue
			}
			steps[l.to] = step{from: cur, depth: st.depth + 1, strong: st.strong && strongKinds[o.key.kind], arrive: l.last}
			queue = append(queue, l.to)
		}
		// The entities found from cur in the order of their keys, not of
		// when their links were learned (which eviction and re-learning
		// change with the batches): of several equally short paths, the
		// one through the smallest keys explains the join.
		slices.SortFunc(queue[n0:], c.entityCmp)
	}
	c.stepQueue = queue[:0]
	return out
}

// entityCmp orders entities by their node id (kind, then value).
func (c *Correlator) entityCmp(a, b uint32) int {
	ka, kb := c.g.ent(a).key, c.g.ent(b).key
	if r := strings.Compare(string(kindOf(ka.kind)), string(kindOf(kb.kind))); r != 0 {
		return r
	}
	return strings.Compare(ka.value, kb.value)
}

// pathSteps describes a lineage path: each entity with the time and event
// of the link that reached it (the first entity is the alert's own, at t).
func (c *Correlator) pathSteps(path []uint32, t int64) []incident.PathStep {
	out := make([]incident.PathStep, 0, len(path))
	for i, p := range path {
		e := c.g.ent(p)
		st := incident.PathStep{Entity: entityNodeID(kindOf(e.key.kind), e.key.value), Time: t}
		if i > 0 {
			for _, l := range c.g.ent(path[i-1]).links {
				if l.to == p {
					st.Time, st.EventID = l.first, c.g.evs.id(l.ev)
				}
			}
		}
		out = append(out, st)
	}
	return out
}

func (c *Correlator) pathKey(path []uint32) string {
	parts := make([]string, len(path))
	for i, p := range path {
		e := c.g.ent(p)
		parts[i] = entityNodeID(kindOf(e.key.kind), e.key.value)
	}
	return strings.Join(parts, " ~ ")
}

// lineagePath adds the entities and links of a lineage path to the graph
// and returns their evidence events.
func (b *builder) lineagePath(path []uint32) []string {
	var evs []string
	g := &b.c.g
	prev := ""
	for i, p := range path {
		e := g.ent(p)
		id := b.entityNode(kindOf(e.key.kind), e.key.value, e.first)
		if i > 0 && id != "" && prev != "" {
			for _, l := range g.ent(path[i-1]).links {
				if l.to == p {
					ev := g.evs.id(l.ev)
					b.edge(incident.Edge{Source: prev, Target: id, Relation: RelLinked, JoinKey: "event", Time: l.first, EventIDs: []string{ev}})
					evs = append(evs, ev)
				}
			}
		}
		prev = id
	}
	return evs
}

func addUnique(s *[]string, v string) {
	if v != "" && !slices.Contains(*s, v) {
		*s = append(*s, v)
	}
}

// score derives severity and risk from what the incident covers: kill-chain
// stages, tactic diversity, sources and how confidently its alerts were
// joined. A single alert never makes an incident more severe than one step
// below its own severity; a correlated alert raises the incident to its own,
// and so does a GuardDuty finding (GuardDuty's own correlated verdict).
func score(alerts []*alert.Alert, stages, tactics []string, conf float64) (int, int) {
	maxSev, corrSev := 0, 0
	sources := map[string]struct{}{}
	for _, a := range alerts {
		if a.Correlated {
			corrSev = max(corrSev, a.Severity)
			continue
		}
		if a.Source == "guardduty" {
			corrSev = max(corrSev, a.Severity)
		}
		maxSev = max(maxSev, a.Severity)
		if a.Source != "" {
			sources[a.Source] = struct{}{}
		}
	}
	if maxSev == 0 {
		maxSev = corrSev
	}
	coverage := 9*max(len(stages)-1, 0) + 3*max(len(tactics)-1, 0) + 4*max(len(sources)-1, 0)
	risk := 8*min(maxSev, ocsf.SeverityCritical) + int(float64(coverage)*conf+0.5)
	if corrSev > 0 {
		risk = max(risk, 20*corrSev-10)
	}
	risk = min(max(risk, 0), 100)
	var sev int
	switch {
	case risk >= 85:
		sev = ocsf.SeverityCritical
	case risk >= 65:
		sev = ocsf.SeverityHigh
	case risk >= 40:
		sev = ocsf.SeverityMedium
	case risk >= 20:
		sev = ocsf.SeverityLow
	default:
		sev = ocsf.SeverityInformational
	}
	sev = max(sev, min(maxSev-1, ocsf.SeverityCritical), min(corrSev, ocsf.SeverityCritical))
	return max(sev, ocsf.SeverityInformational), risk
}

func title(alerts []*alert.Alert, stages []string) string {
	top := alerts[0]
	for _, a := range alerts {
		if a.Severity > top.Severity {
			top = a
		}
	}
	if len(alerts) == 1 {
		return top.Title
	}
	if len(stages) >= 2 {
		return fmt.Sprintf("%s → %s: %s (+%d alerts)", stageLabel(stages[0]), stageLabel(stages[len(stages)-1]), top.Title, len(alerts)-1)
	}
	return fmt.Sprintf("%s (+%d alerts)", top.Title, len(alerts)-1)
}

// foldedTitle is an alert's title with the count of the matches it folds.
func foldedTitle(a *alert.Alert) string {
	if a.Count > 1 {
		return fmt.Sprintf("%s (×%d)", a.Title, a.Count)
	}
	return a.Title
}

func stageLabel(s string) string { return strings.ReplaceAll(s, "_", " ") }
