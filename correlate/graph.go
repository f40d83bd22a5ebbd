package correlate

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/ocsf"
)

// kindIndex maps an entity kind to a small integer (its position in
// ocsf.Entities); 0 means unknown.
var kindIndex = func() map[ocsf.Entity]uint8 {
	m := make(map[ocsf.Entity]uint8, len(ocsf.Entities))
	for i, k := range ocsf.Entities {
		m[k] = uint8(i + 1)
	}
	return m
}()

const numKinds = 32

func kindOf(i uint8) ocsf.Entity {
	if i == 0 || int(i) > len(ocsf.Entities) {
		return ""
	}
	return ocsf.Entities[i-1]
}

// ekey identifies an entity: tenant (interned), kind and value. Entities of
// different tenants never meet.
type ekey struct {
	tenant uint32
	kind   uint8
	value  string
}

// link is one side of an undirected lineage link. first is the earliest
// event time the link was seen at and ev the id of that event (the smallest
// id on ties), so the evidence is the same whatever the arrival order. ev
// is the event id's slot in the graph's evidence table (0: no id): the two
// halves of a link, and every link an event made, share one copy of the
// id, and a link is 24 bytes instead of the 40 it took with the id's
// string header in it (links are most of the correlator's memory).
type link struct {
	to          uint32
	ev          uint32
	first, last int64
}

// membership says that an entity was carried by alerts of an open incident
// between first and last (event time), and whether one of them may join on
// weak kinds (weakOK): only then does a weak path reach the membership.
type membership struct {
	inc         uint32
	weak        bool // in the padding after inc: the size stays 24 bytes
	first, last int64
}

// entity is one tracked entity. Its size is what the memory target of
// 512 bytes per tracked entity is measured against (see the benchmark).
// Its incident memberships are in the graph's members, for the few
// entities that have any (member says whether it has): a list in every
// entity was a quarter of its 96 bytes (72 now).
type entity struct {
	key         ekey
	first, last int64
	links       []link
	hub, member bool
}

// graph is the entity-link graph: interned entities and lineage links.
// Entities live in pages of entPage slots that never move: a graph that
// grows allocates one page per entPage entities instead of copying a
// growing slice (most of a stream's correlation allocation before, see
// bench/stage BenchmarkCorrelate).
type graph struct {
	index map[ekey]uint32
	pages [][]entity // slot 0 is unused so that 0 means "none"
	n     uint32     // slots in use or freed, slot 0 included
	free  []uint32
	evs   evidence
	// members are the incident memberships of the entities that have
	// any, by slot.
	members map[uint32][]membership
}

// evidence holds the event ids links keep as their evidence, each once,
// with the number of link halves that name it: an id is forgotten with
// the last link that names it. Slot 0 is the empty id.
type evidence struct {
	ids  []string
	refs []uint32
	free []uint32
}

// keep returns the slot of s for one more link half. kept is the slot made
// for the event s is the id of, 0 until a half first stores it: every link
// of the event shares it. s may be a slice of the event's decoded record,
// which a link must not keep alive: the slot holds a copy.
func (v *evidence) keep(s string, kept *uint32) uint32 {
	if s == "" {
		return 0
	}
	// A slot whose halves were all dropped since (an entity of the
	// event's turned hub) is free, and may be another id's by now.
	if k := *kept; k != 0 && v.refs[k] > 0 && v.ids[k] == s {
		v.refs[k]++
		return k
	}
	var k uint32
	if n := len(v.free); n > 0 {
		k, v.free = v.free[n-1], v.free[:n-1]
		v.ids[k], v.refs[k] = strings.Clone(s), 1
	} else {
		k = uint32(len(v.ids))
		v.ids, v.refs = append(v.ids, strings.Clone(s)), append(v.refs, 1)
	}
	*kept = k
	return k
}

// id returns the event id in slot k.
func (v *evidence) id(k uint32) string {
	if k == 0 {
		return ""
	}
	return v.ids[k]
}

// drop releases one link half's hold on slot k.
func (v *evidence) drop(k uint32) {
	if k == 0 {
		return
	}
	if v.refs[k]--; v.refs[k] == 0 {
		v.ids[k] = ""
		v.free = append(v.free, k)
	}
}

// entPage is the number of entities of one page (a power of two).
const entPage = 1 << 10

func newGraph() graph {
	return graph{index: make(map[ekey]uint32), n: 1, pages: [][]entity{make([]entity, entPage)},
		evs: evidence{ids: make([]string, 1, 1024), refs: make([]uint32, 1, 1024)}, members: make(map[uint32][]membership)}
}

func (g *graph) len() int { return len(g.index) }

// ent returns the entity in slot i.
func (g *graph) ent(i uint32) *entity { return &g.pages[i/entPage][i%entPage] }

// memberships returns the incident memberships of entity i.
func (g *graph) memberships(i uint32) []membership {
	if !g.ent(i).member {
		return nil
	}
	return g.members[i]
}

// setMemberships replaces the incident memberships of entity i.
func (g *graph) setMemberships(i uint32, ms []membership) {
	e := g.ent(i)
	e.member = len(ms) > 0
	if e.member {
		g.members[i] = ms
	} else {
		delete(g.members, i)
	}
}

// maxMembers bounds the incidents one entity remembers; the one seen
// longest ago goes first.
const maxMembers = 8

// addMember records that entity i belongs to incident inc between first
// and last.
func (g *graph) addMember(i, inc uint32, first, last int64, weak bool) {
	ms := g.memberships(i)
	for j := range ms {
		if m := &ms[j]; m.inc == inc {
			m.first, m.last = min(m.first, first), max(m.last, last)
			m.weak = m.weak || weak
			return
		}
	}
	if len(ms) >= maxMembers {
		oldest := 0
		for j := range ms {
			if ms[j].last < ms[oldest].last {
				oldest = j
			}
		}
		ms = slices.Delete(ms, oldest, oldest+1)
	}
	g.setMemberships(i, append(ms, membership{inc: inc, weak: weak, first: first, last: last}))
}

// slots is one past the highest slot ever used.
func (g *graph) slots() int { return int(g.n) }

// touch interns k and widens its seen range to t; it reports the slot and
// whether the entity is new.
func (g *graph) touch(k ekey, t int64) (uint32, bool) {
	if i, ok := g.index[k]; ok {
		e := g.ent(i)
		e.first, e.last = min(e.first, t), max(e.last, t)
		return i, false
	}
	var i uint32
	if n := len(g.free); n > 0 {
		i, g.free = g.free[n-1], g.free[:n-1]
	} else {
		if g.n%entPage == 0 {
			g.pages = append(g.pages, make([]entity, entPage))
		}
		i = g.n
		g.n++
	}
	// Keys outlive their event: keep a copy of the value, not a slice of
	// the event's decoded record (which it would keep alive whole).
	k.value = strings.Clone(k.value)
	*g.ent(i) = entity{key: k, first: t, last: t}
	g.index[k] = i
	return i, true
}

// addLink records a link between a and b seen at t in event ev and reports
// whether the link is new. kept is the event's evidence slot (see
// evidence.keep), zero before the event's first link: most links of an
// event are seen before, with evidence as early, and store nothing.
func (g *graph) addLink(a, b uint32, t int64, ev string, kept *uint32) bool {
	added := g.addHalf(a, b, t, ev, kept)
	g.addHalf(b, a, t, ev, kept)
	return added
}

func (g *graph) addHalf(a, b uint32, t int64, ev string, kept *uint32) bool {
	e := g.ent(a)
	for i := range e.links {
		l := &e.links[i]
		if l.to != b {
			continue
		}
		if t < l.first || (t == l.first && ev < g.evs.id(l.ev)) {
			old := l.ev
			l.first, l.ev = t, g.evs.keep(ev, kept)
			g.evs.drop(old)
		}
		l.last = max(l.last, t)
		return false
	}
	switch {
	case e.links == nil:
		// Most linked entities gain a few partners: room for them at
		// once, not a list grown one by one (see bench/stage
		// BenchmarkCorrelate).
		e.links = make([]link, 0, firstLinks)
	case len(e.links) == cap(e.links):
		// Grown by half, not doubled as append would: an entity's links
		// stop growing at some count, and the room a doubling leaves
		// unused was a third of the graph's link memory (bench/stage
		// BenchmarkCorrelateLong's stream: 26.9 MB of lists for 18.6 MB
		// of links).
		grown := make([]link, len(e.links), len(e.links)+len(e.links)/2)
		copy(grown, e.links)
		e.links = grown
	}
	e.links = append(e.links, link{to: b, first: t, last: t, ev: g.evs.keep(ev, kept)})
	return true
}

// firstLinks is the room an entity's first link makes for its links.
const firstLinks = 4

// makeHub turns e into a hub: it keeps no links from now on.
func (g *graph) makeHub(i uint32) {
	e := g.ent(i)
	e.hub = true
	for _, l := range e.links {
		g.dropHalf(l.to, i)
		g.evs.drop(l.ev)
	}
	e.links = nil
	g.setMemberships(i, nil)
}

func (g *graph) dropHalf(a, b uint32) {
	e := g.ent(a)
	e.links = slices.DeleteFunc(e.links, func(l link) bool {
		if l.to != b {
			return false
		}
		g.evs.drop(l.ev)
		return true
	})
}

// remove evicts entity i.
func (g *graph) remove(i uint32) {
	e := g.ent(i)
	for _, l := range e.links {
		g.dropHalf(l.to, i)
		g.evs.drop(l.ev)
	}
	delete(g.index, e.key)
	g.setMemberships(i, nil)
	*g.ent(i) = entity{}
	g.free = append(g.free, i)
}

// hubRules decides which entities are hubs by value alone.
type hubRules struct {
	nets     []netip.Prefix
	values   map[string]struct{}
	suffixes []string
}

func newHubRules(c Config) hubRules {
	h := hubRules{values: make(map[string]struct{}, len(c.HubValues))}
	for _, s := range c.HubIPs {
		if p, err := parsePrefix(s); err == nil {
			h.nets = append(h.nets, p)
		}
	}
	for _, v := range c.HubValues {
		h.values[v] = struct{}{}
	}
	h.suffixes = append(h.suffixes, c.HubSuffixes...)
	return h
}

func (h hubRules) isHub(kind ocsf.Entity, value string) bool {
	if _, ok := h.values[value]; ok {
		return true
	}
	for _, s := range h.suffixes {
		if strings.HasSuffix(value, s) {
			return true
		}
	}
	switch kind {
	case ocsf.EntityIP:
		a, err := netip.ParseAddr(value)
		if err != nil {
			return true // not an address (e.g. "AWS Internal"): never glue on it
		}
		a = a.Unmap()
		for _, p := range h.nets {
			if p.Contains(a) {
				return true
			}
		}
	case ocsf.EntityAccount, ocsf.EntityRegion:
		return true
	}
	return false
}
