package correlate

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

// Result is what one Process or Advance call changed.
//
// A Result shares no memory that later calls change: the consumer writes
// one batch's Result while the next batch is correlated.
type Result struct {
	// Incidents holds every incident changed by the call, at its latest
	// version, sorted by id. An incident merged into another (or re-keyed
	// because an earlier alert arrived late) is included with MergedInto
	// set.
	Incidents []incident.Incident
	// Alerts are the alerts to store: every folded detection alert the call
	// created or updated (at its latest count) and the correlated alerts
	// raised by sequence rules (Correlated is set). All of them have
	// already joined their incidents.
	Alerts []alert.Alert
	// Links are the plain events of the call that taught the correlator a
	// lineage link or the address an instance session called from,
	// reduced to what it read. They are what storage must keep, beside
	// the alerts and incidents, for a restart or a new owner of the scope
	// to rebuild the link graph and the session sources (State.Links);
	// their uids are the events' own, so a replay rewrites the same rows.
	Links []Link
	// Stages are the plain events of the call that a sequence rule's stage
	// kept, reduced to what it keeps: what storage must keep for a restart
	// or a new owner of the scope to resume the rule's chains
	// (State.Stages); their uids are the events' own.
	Stages []StageInput
	// Late counts the events of the call that arrived later than the
	// allowed lateness behind their source's watermark.
	Late int
}

// Correlator groups alerts into incidents. It is not safe for concurrent
// use: the pipeline runner owns it and calls it from one goroutine.
type Correlator struct {
	cfg    Config
	logger *slog.Logger
	m      *metrics

	tracked  [numKinds]bool
	joinable [numKinds]bool
	// linked are the kinds some lineage rule links: only their entities
	// are interned for an event's links. An entity of another kind (a
	// process, a hash, a finding) can never be linked, and interning it
	// for every event that names it filled the graph with entities that
	// have neither links nor incidents (most of a long stream's graph).
	linked [numKinds]bool
	// links holds the lineage rules per kind pair, oriented so that
	// NamesA applies to the first kind.
	links  [numKinds][numKinds][]LinkRule
	window [numKinds]int64
	maxWin int64
	lateMS int64
	idleMS int64
	hubs   hubRules

	tenants     map[string]uint32
	tenantNames []string

	g        graph
	incs     map[uint32]*openIncident
	nextInc  uint32
	alertInc map[string]uint32
	// versions is the last emitted version of every incident id still in
	// memory, including ids that were merged away, so versions stay
	// monotonic per id.
	versions map[string]uint64
	// corr explains correlated alerts: which alerts and keys made them.
	corr map[string]*seqMatch
	// folds holds the folded alerts by id; foldOf maps every folded match
	// to its folded alert (see fold.go).
	folds  map[string]*fold
	foldOf map[string]string
	// foldGone holds what an evicted folded alert had counted, so a late
	// match that re-creates it counts on (see forgetFold).
	foldGone map[string]foldTomb
	// theft is the earliest host-side credential-access alert per
	// instance (see expected.go).
	theft map[ekey]int64
	pairs map[sourcePair]pairSeen
	// held are the alerts judged expected sources, kept for re-checking.
	held        map[string]alert.Alert
	firstSource map[sourcePair]firstSource
	// own are the addresses reported as an instance's own (see
	// noteOwnAddress).
	own map[ownAddress]pairSeen

	srcMax    map[string]int64
	floor     int64 // watermark floor set by Advance
	wm        int64
	lastSweep int64

	seq *seqEngine
	// latest is the sequence rule set most recently given (New, SetRules),
	// read and written from any goroutine; seqRules is the one seq runs,
	// owned by the correlator's goroutine. They differ while a reload
	// waits for the next Process or Advance.
	latest    atomic.Pointer[[]*SequenceRule]
	seqRules  *[]*SequenceRule
	clock     func() time.Time // wall clock, for versions only
	restoring bool
	// walk and visited are reach's scratch, kept between walks: a walk
	// that outgrew the stack would otherwise allocate its queue again
	// every time, and on a long stream's dense graph those queues were
	// most of the correlator's allocation (4 GB over the 326,000 events
	// of make bench's 300-rule run). visited[i] == visit marks entity
	// slot i as met by the current walk, so a walk starts without
	// clearing anything.
	walk    []walkItem
	visited []uint32
	visit   uint32
	met     []uint32 // scratch for bridge
	// steps and stepQueue are joinCandidates' scratch.
	steps     map[uint32]step
	stepQueue []uint32
	// splitCheck holds incidents an entity was part of when it became a
	// hub; emit re-checks that they still hold together.
	splitCheck map[uint32]struct{}
	dirty      map[uint32]struct{}
	tombs      []tomb
	// redirect maps a merged slot to the slot it went into, until emit.
	redirect map[uint32]uint32
}

// tomb is an emitted incident that was merged away and must be emitted
// once more with MergedInto set.
type tomb struct {
	id     string
	tenant uint32
	into   uint32
}

// incident is the in-memory state of an open incident.
type openIncident struct {
	slot        uint32
	tenant      uint32
	id          string // last emitted id, "" before the first emit
	status      string
	alerts      []*alert.Alert
	first, last int64
	// ids are the deployments, sessions and keys its alerts name: a weak
	// link never joins an alert that names others (see join.go).
	ids identities
}

// minAlert returns the earliest alert by (time, id): the incident's id
// derives from it, so the id does not depend on arrival order.
func (in *openIncident) minAlert() *alert.Alert {
	var m *alert.Alert
	for _, a := range in.alerts {
		if m == nil || alertLess(a, m) {
			m = a
		}
	}
	return m
}

func alertCmp(a, b *alert.Alert) int {
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func alertLess(a, b *alert.Alert) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	return a.ID < b.ID
}

// New returns a correlator. seq may be empty; logger and reg may be nil.
func New(cfg Config, seq []*SequenceRule, logger *slog.Logger, reg prometheus.Registerer) (*Correlator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("correlate: invalid config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Correlator{
		cfg:      cfg,
		logger:   logger.With("component", "correlate"),
		m:        newMetrics(reg),
		maxWin:   cfg.maxWindow(),
		lateMS:   cfg.AllowedLateness.Milliseconds(),
		idleMS:   max(cfg.AllowedLateness, 15*time.Minute).Milliseconds(),
		hubs:     newHubRules(cfg),
		clock:    time.Now,
		seqRules: &seq,
	}
	c.latest.Store(&seq)
	for _, k := range cfg.JoinKinds {
		c.joinable[kindIndex[k]] = true
		c.tracked[kindIndex[k]] = true
	}
	for _, l := range cfg.Lineage {
		a, b := kindIndex[l.A], kindIndex[l.B]
		c.links[a][b] = append(c.links[a][b], l)
		if a != b {
			r := l
			r.A, r.B, r.NamesA, r.NamesB = l.B, l.A, l.NamesB, l.NamesA
			c.links[b][a] = append(c.links[b][a], r)
		} else {
			r := l
			r.NamesA, r.NamesB = l.NamesB, l.NamesA
			c.links[a][a] = append(c.links[a][a], r)
		}
		c.tracked[a], c.tracked[b] = true, true
		c.linked[a], c.linked[b] = true, true
	}
	c.tracked[0], c.linked[0] = false, false
	for i := range c.window {
		c.window[i] = cfg.window(kindOf(uint8(i)))
	}
	if err := c.Reset(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reset forgets all state — entities, links, incidents, sequences in
// flight, watermarks — keeping the configuration and the rules, so that a
// Restore can rebuild it from storage. The engine does so when its consumer
// group hands it a new assignment: the state of the scopes it now owns
// follows them from the engine that owned them before.
func (c *Correlator) Reset() error {
	seq, err := newSeqEngine(*c.seqRules, c.cfg, c.m)
	if err != nil {
		return err
	}
	c.seq = seq
	c.tenants, c.tenantNames = make(map[string]uint32), nil
	c.g = newGraph()
	c.incs, c.nextInc = make(map[uint32]*openIncident), 0
	c.alertInc = make(map[string]uint32)
	c.versions = make(map[string]uint64)
	c.corr = make(map[string]*seqMatch)
	c.folds = make(map[string]*fold)
	c.foldOf = make(map[string]string)
	c.foldGone = make(map[string]foldTomb)
	c.theft = make(map[ekey]int64)
	c.pairs = make(map[sourcePair]pairSeen)
	c.held = make(map[string]alert.Alert)
	c.firstSource = make(map[sourcePair]firstSource)
	c.own = make(map[ownAddress]pairSeen)
	c.srcMax = make(map[string]int64)
	c.floor, c.wm, c.lastSweep = -1<<62, -1<<62, 0
	c.walk, c.visited, c.visit = nil, nil, 0
	c.steps, c.stepQueue = make(map[uint32]step), nil
	c.splitCheck = make(map[uint32]struct{})
	c.dirty = make(map[uint32]struct{})
	c.tombs = nil
	c.redirect = make(map[uint32]uint32)
	c.m.trackedEntities.Set(0)
	c.m.openIncidents.Set(0)
	c.m.sequenceInputs.Set(0)
	return nil
}

func (c *Correlator) tenant(name string) uint32 {
	if t, ok := c.tenants[name]; ok {
		return t
	}
	t := uint32(len(c.tenantNames))
	c.tenants[name] = t
	c.tenantNames = append(c.tenantNames, name)
	return t
}

// Process correlates one batch: events feed the entity-link graph and the
// sequence rules, alerts join or open incidents. It advances the
// watermarks from the events' times and fires the sequence timers they pass.
func (c *Correlator) Process(events []ocsf.Event, alerts []alert.Alert) Result {
	return c.ProcessInput(Input{Events: events, Alerts: alerts})
}

// ProcessInput correlates one batch as Process does, with the parts a
// detect process publishes as signals (see Input) apart.
func (c *Correlator) ProcessInput(in Input) Result {
	c.applyRules()
	var res Result
	for _, st := range in.Sources {
		if c.observeTime(st.LogName, st.Time) {
			res.Late++
		}
	}
	for i := range in.Links {
		ev := &in.Links[i]
		if c.observeTime(ev.Metadata.LogName, ev.Time) {
			res.Late++
		}
		linked := c.link(ev)
		if c.noteSource(ev) || c.noteOwnAddress(ev) || linked {
			res.Links = append(res.Links, linkOf(ev, ev.Observables))
		}
	}
	events, alerts := in.Events, in.Alerts
	var obs []ocsf.Observable // chunk the links' observables are carved from
	for i := range events {
		ev := &events[i]
		if c.observeTime(ev.Metadata.LogName, ev.Time) {
			res.Late++
		}
		linked := c.linkEvent(ev)
		if c.noteSource(ev) || c.noteOwnAddress(ev) || linked {
			res.Links = append(res.Links, linkOf(ev, c.linkObservables(ev, &obs)))
		}
	}
	// Alerts in event-time order, so a batch gives the same result however
	// its alerts were ordered. Shadow alerts (of experimental rules) are
	// only passed through to be stored: they never join or open an
	// incident, never fold and never feed a sequence rule.
	ordered := make([]*alert.Alert, 0, len(alerts))
	var shadows []alert.Alert
	for i := range alerts {
		if alerts[i].Shadow {
			shadows = append(shadows, alerts[i])
			c.m.dropped.WithLabelValues("shadow").Inc()
			continue
		}
		ordered = append(ordered, &alerts[i])
	}
	slices.SortStableFunc(ordered, alertCmp)
	for _, a := range ordered {
		c.noteTheft(a)
	}
	// Alerts held as expected sources come back when what arrived since
	// (a theft on their instance, an earlier call from the instance's own
	// address) says otherwise.
	if released := c.release(); len(released) > 0 {
		ordered = append(ordered, released...)
		slices.SortStableFunc(ordered, alertCmp)
	}
	var changed []*alert.Alert
	var expected []alert.Alert
	for _, a := range ordered {
		cp := *a
		if why, ok := c.expectedSource(&cp); ok {
			if _, held := c.held[cp.ID]; !held {
				c.holdExpected(cp)
				// Stored under the id it would fold into, so that the
				// alert is one row whichever way it is judged (and is
				// rewritten in place if it is released).
				if c.cfg.FoldWindow > 0 && !cp.Keyed {
					cp.ID = c.foldID(&cp)
				}
				cp.Count, cp.FirstSeen, cp.LastSeen = 1, cp.Time, cp.Time
				cp.Unheld = &alert.Unheld{Severity: cp.Severity, Summary: cp.Summary}
				cp.Severity, cp.Summary = ocsf.SeverityInformational, why
				expected = append(expected, cp)
				c.m.dropped.WithLabelValues("expected_source").Inc()
			}
			continue
		}
		fa, isNew := c.foldAlert(&cp)
		switch {
		case fa == nil: // a match folded before: replayed input
		case isNew:
			c.addAlert(fa)
			changed = append(changed, fa)
		default:
			c.refold(fa, &cp)
			if !slices.Contains(changed, fa) {
				changed = append(changed, fa)
			}
		}
		res.Alerts = append(res.Alerts, c.raise(c.seq.observeAlert(&cp))...)
	}
	folded := make([]alert.Alert, 0, len(changed)+len(res.Alerts))
	for _, fa := range changed {
		// A Result is written while the next batch is correlated, so it
		// shares nothing that later matches change: their origins move
		// on in place (mergeOrigins). The evidence sample is replaced,
		// never written into, and entities only grow past this copy's
		// length.
		a := *fa
		a.Origins = slices.Clone(fa.Origins)
		folded = append(folded, a)
	}
	res.Alerts = append(append(append(folded, expected...), shadows...), res.Alerts...)
	// Sequence rules see events in event-time order too (ties by uid): a
	// threshold window is named after the event that completes it, which
	// must not depend on the order records arrived in.
	evOrder := make([]*ocsf.Event, len(events))
	for i := range events {
		evOrder[i] = &events[i]
	}
	slices.SortStableFunc(evOrder, func(a, b *ocsf.Event) int {
		if a.Time != b.Time {
			return cmp.Compare(a.Time, b.Time)
		}
		return strings.Compare(a.Metadata.UID, b.Metadata.UID)
	})
	for _, ev := range evOrder {
		res.Alerts = append(res.Alerts, c.raise(c.seq.observeEvent(ev))...)
	}
	res.Stages = c.seq.takeKept()
	c.updateWatermark()
	res.Alerts = append(res.Alerts, c.raise(c.seq.fire(c.wm))...)
	res.Incidents = c.emit()
	c.sweep()
	c.m.lateEvents.Add(float64(res.Late))
	return res
}

// Advance moves the watermark as if every source had reached now, fires the
// sequence timers (absence rules) it passes and evicts closed windows. The
// pipeline calls it when input is idle.
func (c *Correlator) Advance(now time.Time) Result {
	c.applyRules()
	c.floor = max(c.floor, now.UnixMilli()-c.lateMS)
	c.updateWatermark()
	var res Result
	res.Alerts = c.raise(c.seq.fire(c.wm))
	c.sweep()
	res.Incidents = c.emit()
	return res
}

// raise lets correlated alerts join or open incidents. A correlated alert
// raised again under the same id (a smaller chain completed out of order)
// replaces the earlier one.
func (c *Correlator) raise(ms []*seqMatch) []alert.Alert {
	var out []alert.Alert
	for _, m := range ms {
		a := m.alert
		if a.Shadow {
			// An experimental correlation rule: the correlated alert is
			// handed back to be stored and counted, and joins nothing. A
			// restore replays chains raised before the restart: nothing
			// to emit again.
			if !c.restoring {
				c.m.shadowMatches.WithLabelValues(m.rule.ID).Inc()
				out = append(out, a)
			}
			continue
		}
		slot, known := c.alertInc[a.ID]
		if known && c.restoring {
			// Replayed stage alerts completed a chain raised before the
			// restart: keep its explanation, emit nothing.
			c.corr[a.ID] = m
			continue
		}
		if known {
			in := c.incs[slot]
			if in == nil {
				continue
			}
			for i, old := range in.alerts {
				if old.ID == a.ID {
					in.alerts[i] = &a
				}
			}
			c.corr[a.ID] = m
			var arr [16]uint32
			ids := c.trackedIDs(in.tenant, a.Entities, a.Time, arr[:0])
			for _, i := range ids {
				if e := c.g.ent(i); !e.hub && c.joinable[e.key.kind] {
					c.g.addMember(i, slot, a.Time, a.Time, weakOK(joinSeverity(&a)))
				}
			}
			in.first, in.last = min(in.first, a.Time), max(in.last, a.Time)
			c.dirty[slot] = struct{}{}
			out = append(out, a)
			continue
		}
		c.corr[a.ID] = m
		c.addAlert(&a)
		c.m.sequenceMatches.WithLabelValues(m.rule.ID).Inc()
		out = append(out, a)
	}
	return out
}

// observeTime advances the source's high-water mark and reports whether t
// is later than the allowed lateness behind it.
func (c *Correlator) observeTime(src string, t int64) bool {
	if src == "" {
		src = "unknown"
	}
	prev, seen := c.srcMax[src]
	late := (seen && t < prev-c.lateMS) || t < c.floor
	if !seen || t > prev {
		c.srcMax[src] = t
	}
	return late
}

// updateWatermark sets the global watermark: the slowest active source's
// high-water mark minus the allowed lateness. A source far behind the
// freshest one is idle and does not hold the watermark back.
func (c *Correlator) updateWatermark() {
	fresh := int64(-1 << 62)
	for _, t := range c.srcMax {
		fresh = max(fresh, t)
	}
	wm := fresh
	for _, t := range c.srcMax {
		if t >= fresh-c.idleMS {
			wm = min(wm, t)
		}
	}
	if len(c.srcMax) > 0 {
		wm -= c.lateMS
	}
	c.wm = max(c.wm, wm, c.floor)
}

// Watermark returns the current global watermark (event time).
func (c *Correlator) Watermark() time.Time { return time.UnixMilli(c.wm) }

// trackedIDs interns the tracked observables of obs at time t.
func (c *Correlator) trackedIDs(tenant uint32, obs []ocsf.Observable, t int64, buf []uint32) []uint32 {
	for _, o := range obs {
		ki := kindIndex[o.Entity]
		if !c.tracked[ki] || o.Value == "" {
			continue
		}
		k := ekey{tenant: tenant, kind: ki, value: o.Value}
		i, isNew := c.g.touch(k, t)
		if isNew && c.hubs.isHub(o.Entity, o.Value) {
			c.g.ent(i).hub = true
		}
		if !slices.Contains(buf, i) {
			buf = append(buf, i)
		}
	}
	return buf
}

// linkEvent adds the lineage links of one event to the graph and reports
// whether the event carried one (new or seen before). A new link that
// bridges two open incidents merges them.
func (c *Correlator) linkEvent(ev *ocsf.Event) bool {
	if len(ev.Observables) < 2 {
		return false
	}
	return c.link(ev)
}

// link is linkEvent on an event of at least two observables, or on the
// link signal of one (see LinkSignal), which keeps only the tracked ones.
func (c *Correlator) link(ev *ocsf.Event) bool {
	tenant := c.tenant(ev.Metadata.TenantUID)
	type ref struct {
		slot uint32 // 0 until interned
		kind uint8
		obs  *ocsf.Observable
	}
	var arr [16]ref
	refs := arr[:0]
	for i := range ev.Observables {
		o := &ev.Observables[i]
		if ki := kindIndex[o.Entity]; c.linked[ki] && o.Value != "" {
			refs = append(refs, ref{kind: ki, obs: o})
		}
	}
	// An entity is interned when a lineage rule first links it with
	// another of the event's, not for being named: most of an event's
	// linkable entities are linked by no rule for that event (a VPC flow's
	// addresses, a read-only call's key), and interning each of them
	// filled a long stream's graph with entities that had neither links
	// nor incidents (two in five of the benchmark's). The graph's entities
	// are thus those of links and alerts, and their seen range is that of
	// the links and alerts that name them.
	slot := func(r *ref) uint32 {
		if r.slot == 0 {
			i, isNew := c.g.touch(ekey{tenant: tenant, kind: r.kind, value: r.obs.Value}, ev.Time)
			if isNew && c.hubs.isHub(r.obs.Entity, r.obs.Value) {
				c.g.ent(i).hub = true
			}
			r.slot = i
		}
		return r.slot
	}
	n := 0
	// Links keep the event's uid past the event: one copy for all of
	// them, made only if one stores it (see addLink).
	var uid uint32
	for x := 0; x < len(refs) && n < c.cfg.MaxLinksPerEvent; x++ {
		ra := &refs[x]
		for y := x + 1; y < len(refs) && n < c.cfg.MaxLinksPerEvent; y++ {
			rb := &refs[y]
			if ra.kind == rb.kind && ra.obs.Value == rb.obs.Value || !c.linkAllowed(ev, ra.kind, ra.obs.Name, rb.kind, rb.obs.Name) {
				continue
			}
			a, b := slot(ra), slot(rb)
			if c.g.ent(a).hub || c.g.ent(b).hub {
				continue
			}
			n++
			if !c.g.addLink(a, b, ev.Time, ev.Metadata.UID, &uid) {
				continue
			}
			c.checkHub(a, ev.Time)
			c.checkHub(b, ev.Time)
			if !c.g.ent(a).hub && !c.g.ent(b).hub {
				c.bridge([]uint32{a, b}, ev.Time)
			}
		}
	}
	c.m.trackedEntities.Set(float64(c.g.len()))
	return n > 0
}

// linkAllowed reports whether a lineage rule links observable a (kind ka,
// attribute na) with b in event ev.
func (c *Correlator) linkAllowed(ev *ocsf.Event, ka uint8, na string, kb uint8, nb string) bool {
	for _, r := range c.links[ka][kb] {
		if (len(r.Operations) == 0 || slices.Contains(r.Operations, ev.API.Operation)) &&
			(len(r.Classes) == 0 || slices.Contains(r.Classes, ev.ClassUID)) &&
			nameMatch(r.NamesA, na) && nameMatch(r.NamesB, nb) {
			return true
		}
	}
	return false
}

func nameMatch(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if rules.Glob(name, g) {
			return true
		}
	}
	return false
}

func (c *Correlator) checkHub(i uint32, t int64) {
	e := c.g.ent(i)
	if e.hub || len(e.links) <= c.cfg.HubPartnerLimit {
		return
	}
	// Only the partners linked within the window at t count: a partner
	// seen longer ago may already have been evicted or not, depending on
	// how far the watermark moved, that is on how the input was cut into
	// batches. Counted this way, whether an entity becomes a hub, and
	// when, depends on event times only.
	w := c.window[e.key.kind]
	live := 0
	for _, l := range e.links {
		if l.last >= t-min(w, c.window[c.g.ent(l.to).key.kind]) {
			live++
		}
	}
	if live > c.cfg.HubPartnerLimit {
		c.markSplit(i)
		c.g.makeHub(i)
		c.m.dropped.WithLabelValues("hub").Inc()
	}
}

// markSplit records the incidents that entity i, about to become a hub,
// may have glued: those it is a member of and those of its partners.
func (c *Correlator) markSplit(i uint32) {
	for _, m := range c.g.memberships(i) {
		c.splitCheck[m.inc] = struct{}{}
	}
	for _, l := range c.g.ent(i).links {
		for _, m := range c.g.memberships(l.to) {
			c.splitCheck[m.inc] = struct{}{}
		}
	}
}

// bridge merges the open incidents that a new link, seen at time t
// between the entities of start, connects. The link only finds the
// candidates; what joins is decided as if the link had been known when
// their alerts were placed: each alert of a candidate looks for incidents
// again, by the rules an arriving alert joins by (addAlert). So whether a
// link arrives before an alert or after it — in the same batch or in a
// later one — does not change the incidents.
func (c *Correlator) bridge(start []uint32, t int64) {
	met := c.met[:0]
	hits := c.reach(seeker{t: t, sev: WeakJoinSeverity, link: true, met: &met}, start)
	c.met = met
	if len(hits) < 2 {
		return
	}
	// Only an alert that carries an entity the link's walk met within
	// MaxDepth-1 links can reach through the link (to its far end and on):
	// the others would find what they found when they were placed, so
	// they do not look again. On a long stream most of the entities a walk
	// meets are at its last depth; re-walking their alerts too made the
	// merges of new links most of the correlator's time (bench/stage
	// BenchmarkCorrelateLong).
	slices.Sort(met)
	var alerts []*alert.Alert
	for _, h := range hits {
		if in := c.incs[h.slot]; in != nil {
			alerts = append(alerts, in.alerts...)
		}
	}
	slices.SortFunc(alerts, alertCmp)
	for _, a := range alerts {
		slot, ok := c.alertInc[a.ID]
		in := c.incs[slot]
		if !ok || in == nil {
			continue
		}
		var arr [16]uint32
		ids := c.trackedIDs(in.tenant, a.Entities, a.Time, arr[:0])
		if !slices.ContainsFunc(ids, func(i uint32) bool { _, ok := slices.BinarySearch(met, i); return ok }) {
			continue
		}
		if again := c.reach(seeker{t: a.Time, sev: joinSeverity(a), ids: alertIdentities(a)}, ids); len(again) >= 2 {
			c.mergeHits(again)
		}
	}
}

// mergeHits merges the incidents hit into the best of them; an incident
// reached only weakly stays apart when it names identities the target does
// not.
func (c *Correlator) mergeHits(hits []hit) uint32 {
	slots := make([]uint32, len(hits))
	for i, h := range hits {
		slots[i] = h.slot
	}
	target := c.best(slots)
	for _, h := range hits {
		if h.slot == target {
			continue
		}
		if w, l := c.incs[target], c.incs[h.slot]; !h.strong && w != nil && l != nil && w.ids.conflicts(l.ids) {
			continue
		}
		c.merge(target, h.slot)
	}
	return target
}

// maxVisit bounds the entities one lineage walk visits, so a dense
// neighbourhood below the hub limit cannot make a join expensive.
const maxVisit = 512

// seeker is what looks for incidents to join: an alert (its time,
// severity and identities) or a new link seen at time t.
type seeker struct {
	t    int64
	sev  int
	ids  identities
	link bool // a new lineage link, not an alert
	// met, if set, receives every entity the walk met fewer than MaxDepth
	// links from start: from the others, no walk of MaxDepth links reaches
	// past start.
	met *[]uint32
}

// hit is an open incident a seeker reaches, and whether through a strong
// path (see join.go).
type hit struct {
	slot   uint32
	strong bool
}

// walkItem is one entity in reach's queue, 32 bytes (fields ordered to
// pack).
type walkItem struct {
	ent    uint32
	depth  uint8
	strong bool // every entity so far is of a strong kind
	nvia   uint8
	arrive int64 // last time of the link that led here
	// via are the identity entities (deployments, sessions, keys) the
	// path passed through: they must not conflict with the incident's. A
	// fixed array: walks must not allocate.
	via [4]uint32
}

// startVisit begins a walk's marks: the slots marked by earlier walks
// hold older generations. It reports the mark of this walk.
func (c *Correlator) startVisit() uint32 {
	if n := c.g.slots(); len(c.visited) < n {
		c.visited = append(c.visited, make([]uint32, n-len(c.visited)+entPage)...)
	}
	c.visit++
	if c.visit == 0 { // wrapped: no slot may keep a mark that compares equal
		clear(c.visited)
		c.visit = 1
	}
	return c.visit
}

// reach walks the link graph from start (up to MaxDepth links usable at
// s.t) and returns the open incidents whose members it meets within their
// windows, by the causal rules of join.go, in a deterministic order.
func (c *Correlator) reach(s seeker, start []uint32) []hit {
	if len(c.incs) == 0 {
		return nil
	}
	queue := c.walk[:0]
	mark := c.startVisit()
	visited := c.visited
	for _, x := range start {
		if c.g.ent(x).hub || !s.link && !joinsOn(c.g.ent(x).key.kind, s.sev) {
			continue
		}
		if visited[x] != mark {
			visited[x] = mark
			queue = append(queue, walkItem{ent: x, strong: strongKinds[c.g.ent(x).key.kind], arrive: s.t})
		}
	}
	var hits []hit
	for q := 0; q < len(queue); q++ {
		it := queue[q]
		e := c.g.ent(it.ent)
		w := c.window[e.key.kind]
		if c.joinable[e.key.kind] {
			for _, m := range c.g.memberships(it.ent) {
				in, open := c.incs[m.inc]
				if !open || s.t < m.first-w || s.t > m.last+w {
					continue
				}
				// A link to a place (a host, an address, an object) seen
				// before the incident touched it is earlier context, not
				// its consequence; for an object it describes an earlier
				// version.
				if e.key.kind == objectKind && (it.depth > 0 || s.link) && it.arrive < m.first-causalSlack {
					continue
				}
				// A weak path joins alerts of at least WeakJoinSeverity on
				// both sides, the seeker and one that holds the member: a
				// host alert does not reach an informational deployment
				// alert's incident through the host, as that alert, placed
				// later, would not reach the host's. A new link only finds
				// candidates (see bridge): their alerts' own walks decide.
				if !it.strong && (!weakOK(s.sev) || !m.weak && !s.link || s.ids.conflicts(in.ids) || c.viaConflicts(it.via[:it.nvia], in.ids)) {
					continue
				}
				if i := slices.IndexFunc(hits, func(h hit) bool { return h.slot == m.inc }); i >= 0 {
					hits[i].strong = hits[i].strong || it.strong
				} else {
					hits = append(hits, hit{m.inc, it.strong})
				}
			}
		}
		if int(it.depth) >= c.cfg.MaxDepth || len(queue) >= maxVisit {
			continue
		}
		for _, l := range e.links {
			if visited[l.to] == mark {
				continue
			}
			o := c.g.ent(l.to)
			lw := min(w, c.window[o.key.kind])
			if o.hub || s.t < l.first-lw || s.t > l.last+lw {
				continue
			}
			// A link of an object the seeker touched must not be older
			// than the touch.
			if it.depth == 0 && !s.link && e.key.kind == objectKind && l.last < s.t-causalSlack {
				continue
			}
			visited[l.to] = mark
			next := walkItem{ent: l.to, depth: it.depth + 1, strong: it.strong && strongKinds[o.key.kind], arrive: l.last, via: it.via, nvia: it.nvia}
			if it.depth > 0 && identityKind[e.key.kind] && int(next.nvia) < len(next.via) {
				next.via[next.nvia] = it.ent
				next.nvia++
			}
			queue = append(queue, next)
		}
	}
	if s.met != nil {
		for _, it := range queue {
			if int(it.depth) < c.cfg.MaxDepth {
				*s.met = append(*s.met, it.ent)
			}
		}
	}
	c.walk = queue[:0]
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(a.slot, b.slot) })
	return hits
}

// best picks the incident others merge into: the one whose earliest alert
// is earliest.
func (c *Correlator) best(hits []uint32) uint32 {
	var b uint32
	var bm *alert.Alert
	for _, h := range hits {
		m := c.incs[h].minAlert()
		if bm == nil || (m != nil && alertLess(m, bm)) {
			b, bm = h, m
		}
	}
	return b
}

// addAlert joins a to the incident it shares entities with (directly or
// through lineage), merging incidents it bridges, or opens a new one.
func (c *Correlator) addAlert(a *alert.Alert) {
	if _, dup := c.alertInc[a.ID]; dup {
		return
	}
	tenant := c.tenant(a.TenantUID)
	var arr [16]uint32
	ids := c.trackedIDs(tenant, a.Entities, a.Time, arr[:0])
	hits := c.reach(seeker{t: a.Time, sev: joinSeverity(a), ids: alertIdentities(a)}, ids)
	var target uint32
	if len(hits) > 0 {
		target = c.mergeHits(hits)
		if len(c.incs[target].alerts) >= c.cfg.MaxAlertsPerIncident {
			// Full: continue in the best incident that still has room (an
			// earlier overflow), else open one.
			c.m.dropped.WithLabelValues("incident_alert_cap").Inc()
			full := target
			target = 0
			var room []uint32
			for _, h := range hits {
				if in := c.incs[h.slot]; h.slot != full && in != nil && len(in.alerts) < c.cfg.MaxAlertsPerIncident {
					room = append(room, h.slot)
				}
			}
			if len(room) > 0 {
				target = c.best(room)
			}
		}
	}
	if target == 0 {
		target = c.open(tenant)
	}
	c.attach(c.incs[target], a, ids)
	c.m.trackedEntities.Set(float64(c.g.len()))
}

// refold records that a repeat folded into fa, already in an incident:
// the incident reaches the repeat's entities at the repeat's time.
func (c *Correlator) refold(fa, repeat *alert.Alert) {
	slot, ok := c.alertInc[fa.ID]
	in := c.incs[slot]
	if !ok || in == nil {
		return
	}
	var arr [16]uint32
	c.addMembers(slot, fa, repeat.Time, c.trackedIDs(in.tenant, repeat.Entities, repeat.Time, arr[:0]))
	in.first, in.last = min(in.first, repeat.Time), max(in.last, repeat.Time)
	c.dirty[slot] = struct{}{}
}

func (c *Correlator) open(tenant uint32) uint32 {
	c.nextInc++
	in := &openIncident{slot: c.nextInc, tenant: tenant, status: "new", first: 1<<63 - 1, last: -1 << 63}
	c.incs[in.slot] = in
	c.m.openIncidents.Set(float64(len(c.incs)))
	return in.slot
}

// attach adds a to in and records the memberships of its joinable
// entities: of weak kinds only for alerts that may join on them.
func (c *Correlator) attach(in *openIncident, a *alert.Alert, ids []uint32) {
	in.alerts = append(in.alerts, a)
	in.first, in.last = min(in.first, a.Time), max(in.last, a.Time)
	in.ids = in.ids.add(a)
	c.alertInc[a.ID] = in.slot
	c.addMembers(in.slot, a, a.Time, ids)
	c.dirty[in.slot] = struct{}{}
}

// addMembers records that incident slot holds the joinable entities ids of
// alert a at time t.
func (c *Correlator) addMembers(slot uint32, a *alert.Alert, t int64, ids []uint32) {
	for _, i := range ids {
		e := c.g.ent(i)
		if e.hub || !c.joinable[e.key.kind] || !joinsOn(e.key.kind, joinSeverity(a)) {
			continue
		}
		c.g.addMember(i, slot, t, t, weakOK(joinSeverity(a)))
	}
}

// merge moves loser's alerts into winner, unless the result would exceed
// the alert cap.
func (c *Correlator) merge(winner, loser uint32) {
	w, l := c.incs[winner], c.incs[loser]
	if w == nil || l == nil || w == l {
		return
	}
	if w.tenant != l.tenant {
		return // never: entities are per tenant
	}
	if len(w.alerts)+len(l.alerts) > c.cfg.MaxAlertsPerIncident {
		c.m.dropped.WithLabelValues("merge_alert_cap").Inc()
		return
	}
	var arr [16]uint32
	for _, a := range l.alerts {
		ids := c.trackedIDs(l.tenant, a.Entities, a.Time, arr[:0])
		for _, i := range ids {
			c.g.setMemberships(i, slices.DeleteFunc(c.g.memberships(i), func(m membership) bool { return m.inc == loser }))
		}
		c.attach(w, a, ids)
	}
	if w.status == "new" && l.status != "" && l.status != "new" {
		w.status = l.status
	}
	delete(c.incs, loser)
	delete(c.dirty, loser)
	c.redirect[loser] = winner
	if l.id != "" {
		c.tombs = append(c.tombs, tomb{id: l.id, tenant: l.tenant, into: winner})
	}
	c.m.merges.Inc()
	c.m.openIncidents.Set(float64(len(c.incs)))
	c.logger.Debug("incidents merged", "into", w.id, "merged", l.id, "alerts", len(w.alerts))
}

// emit renders every changed incident at a new version.
func (c *Correlator) emit() []incident.Incident {
	if len(c.splitCheck) > 0 {
		c.splitHubbed()
	}
	var out []incident.Incident
	ids := make(map[uint32]string)
	slots := make([]uint32, 0, len(c.dirty))
	for s := range c.dirty {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	for _, s := range slots {
		in := c.incs[s]
		if in == nil {
			continue
		}
		inc := c.build(in)
		if in.id != "" && in.id != inc.ID {
			// An earlier alert arrived late: the incident is re-keyed so
			// its id stays that of its earliest alert.
			out = append(out, c.tombstone(in.id, in.tenant, inc.ID))
		}
		in.id = inc.ID
		inc.Version = c.nextVersion(inc.ID)
		ids[s] = inc.ID
		out = append(out, inc)
	}
	for _, t := range c.tombs {
		slot := t.into
		for range len(c.redirect) {
			next, ok := c.redirect[slot]
			if !ok {
				break
			}
			slot = next
		}
		into := ids[slot]
		if into == "" {
			if in := c.incs[slot]; in != nil {
				into = in.id
			}
		}
		out = append(out, c.tombstone(t.id, t.tenant, into))
	}
	c.tombs = c.tombs[:0]
	clear(c.redirect)
	clear(c.dirty)
	slices.SortStableFunc(out, func(a, b incident.Incident) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// nextVersion returns the next version of incident id: one more than the
// last this process emitted and never below the wall clock in
// microseconds, so versions keep growing across restarts and after an
// incident was evicted and comes back (storage keeps the highest).
func (c *Correlator) nextVersion(id string) uint64 {
	v := max(c.versions[id]+1, uint64(max(c.clock().UnixMicro(), 0)))
	c.versions[id] = v
	return v
}

func (c *Correlator) tombstone(id string, tenant uint32, into string) incident.Incident {
	return incident.Incident{
		ID: id, Version: c.nextVersion(id), TenantUID: c.tenantNames[tenant],
		Status: "merged", MergedInto: into,
		Stages: []string{}, Tactics: []string{}, Techniques: []string{}, Accounts: []string{},
		RuleIDs: []string{}, AlertIDs: []string{}, Nodes: []incident.Node{}, Edges: []incident.Edge{}, Timeline: []incident.TimelineEntry{},
	}
}

// sweep evicts entities and incidents whose windows closed.
func (c *Correlator) sweep() {
	const every = int64(time.Minute / time.Millisecond)
	if c.wm-c.lastSweep < every && c.g.len() <= c.cfg.MaxEntities {
		return
	}
	c.lastSweep = c.wm
	for s, in := range c.incs {
		if _, changed := c.dirty[s]; changed {
			// Changed since the last emit: its new version (and the
			// target of any incident merged into it) must be emitted
			// before it is forgotten; the next sweep evicts it.
			continue
		}
		if in.last+c.maxWin+c.lateMS < c.wm {
			for _, a := range in.alerts {
				delete(c.alertInc, a.ID)
				delete(c.corr, a.ID)
				c.forgetFold(a.ID)
			}
			delete(c.versions, in.id)
			delete(c.incs, s)
		}
	}
	for i := 1; i < c.g.slots(); i++ {
		e := c.g.ent(uint32(i))
		if e.key.kind == 0 {
			continue // free slot
		}
		if e.last+c.window[e.key.kind]+c.lateMS < c.wm {
			c.g.remove(uint32(i))
			continue
		}
		if e.member {
			c.g.setMemberships(uint32(i), slices.DeleteFunc(c.g.memberships(uint32(i)), func(m membership) bool { _, ok := c.incs[m.inc]; return !ok }))
		}
	}
	if over := c.g.len() - c.cfg.MaxEntities; over > 0 {
		c.evictOldest(over)
	}
	for k, t := range c.theft {
		if t+c.maxWin+c.lateMS < c.wm {
			delete(c.theft, k)
		}
	}
	for id, a := range c.held {
		if a.Time+c.maxWin+c.lateMS < c.wm {
			delete(c.held, id)
		}
	}
	// A pair is forgotten the longest window after it was last seen.
	for k, p := range c.pairs {
		if p.last+c.maxWin+c.lateMS < c.wm {
			delete(c.pairs, k)
			delete(c.firstSource, sourcePair{k.tenant, k.session, ""})
		}
	}
	for k, p := range c.own {
		if p.last+c.maxWin+c.lateMS < c.wm {
			delete(c.own, k)
		}
	}
	c.seq.evict(c.wm)
	c.m.sequenceInputs.Set(float64(c.seq.partials()))
	c.m.trackedEntities.Set(float64(c.g.len()))
	c.m.openIncidents.Set(float64(len(c.incs)))
}

func (c *Correlator) evictOldest(n int) {
	type age struct {
		last int64
		slot uint32
	}
	all := make([]age, 0, c.g.len())
	for i := 1; i < c.g.slots(); i++ {
		if e := c.g.ent(uint32(i)); e.key.kind != 0 {
			all = append(all, age{e.last, uint32(i)})
		}
	}
	slices.SortFunc(all, func(a, b age) int { return cmp.Compare(a.last, b.last) })
	for _, a := range all[:min(n, len(all))] {
		c.g.remove(a.slot)
	}
	c.m.dropped.WithLabelValues("entity_cap").Add(float64(n))
}

// TrackedEntities returns how many entities the link graph holds.
func (c *Correlator) TrackedEntities() int { return c.g.len() }

// OpenIncidents returns how many incidents are open in memory.
func (c *Correlator) OpenIncidents() int { return len(c.incs) }
