package correlate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// slotOf is the graph slot of an entity of tenantA.
func slotOf(t *testing.T, c *Correlator, kind ocsf.Entity, value string) uint32 {
	t.Helper()
	i, ok := c.g.index[ekey{tenant: c.tenant(tenantA), kind: kindIndex[kind], value: value}]
	if !ok {
		t.Fatalf("%s %q is not tracked", kind, value)
	}
	return i
}

// A walk through a neighbourhood larger than its stack-held queue reuses
// the queue and the visit marks of the walks before it: once warm, it
// allocates at most the incidents it returns.
func TestWalkAllocatesNothingOnceWarm(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	host := ob(ocsf.EntityHost, "web-9")
	var events []ocsf.Event
	for i := range 60 { // below the hub limit of 64 partners
		events = append(events, mkEvent(fmt.Sprintf("e%d", i), "agent", time.Duration(i)*time.Second, host, ob(ocsf.EntityInstance, fmt.Sprintf("i-%04d", i))))
	}
	c.Process(events, []alert.Alert{mkAlert("a1", "r1", "execution", ocsf.SeverityHigh, events[0])})

	s := seeker{t: at(time.Minute), sev: ocsf.SeverityHigh, link: true}
	start := []uint32{slotOf(t, c, ocsf.EntityInstance, "i-0059")}
	if hits := c.reach(s, start); len(hits) != 1 {
		t.Fatalf("the walk found %d incidents, want the one of a1", len(hits))
	}
	if n := cap(c.walk); n <= 32 {
		t.Fatalf("the walk's queue holds %d entities: the neighbourhood is too small to test its reuse", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { c.reach(s, start) }); allocs > 1 {
		t.Errorf("a warm walk allocated %.0f times, want at most 1 (its hits)", allocs)
	}
}

// The visit marks are generations: when the generation wraps, marks left
// by walks before the wrap must not read as visited by the walk after it.
func TestWalkMarksAfterWrap(t *testing.T) {
	host := ob(ocsf.EntityHost, "web-9")
	inst := ob(ocsf.EntityInstance, "i-0abc")
	sess := ob(ocsf.EntitySession, "arn:aws:sts::1:assumed-role/web/i-0abc")
	e1 := mkEvent("e1", "agent", 0, host, inst)
	e2 := mkEvent("e2", "cloudtrail", time.Minute, inst, sess)
	e3 := mkEvent("e3", "cloudtrail", 2*time.Minute, sess, ob(ocsf.EntityAccessKey, "ASIAEXAMPLE0001"))
	alerts := []alert.Alert{
		mkAlert("a1", "r1", "execution", ocsf.SeverityHigh, e1),
		mkAlert("a2", "r2", "exfiltration", ocsf.SeverityHigh, e3),
	}
	for _, wrap := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrap=%v", wrap), func(t *testing.T) {
			c, _ := newTest(t, testConfig(), nil)
			if wrap {
				// Every slot marked as the first walk after the wrap
				// would mark it, were the marks not cleared.
				c.visit = ^uint32(0)
				c.visited = make([]uint32, 4*entPage)
				for i := range c.visited {
					c.visited[i] = 1
				}
			}
			f := final{}
			f.add(t, c.Process([]ocsf.Event{e1, e2, e3}, alerts))
			if !together(f.open(), "a1", "a2") {
				t.Error("the alerts linked through the instance and the session were not joined")
			}
			if wrap && c.visit == ^uint32(0) {
				t.Error("no walk ran: the wrap was not tested")
			}
		})
	}
}

// Only entities some lineage rule links in the event are interned for its
// links: a process or a hash never (no rule links their kinds), a host only
// once an event links it, until an alert carries it. An entity's seen range
// is that of the links and alerts that name it.
func TestOnlyLinkedEntitiesAreInterned(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	host := ob(ocsf.EntityHost, "web-9")
	proc := ob(ocsf.EntityProcess, "web-9:4242")
	e1 := mkEvent("e1", "agent", 0, host, proc, ob(ocsf.EntityHash, "9f86d081884c7d659a2feaa0c55ad015"))
	c.Process([]ocsf.Event{e1}, nil)
	if n := c.g.len(); n != 0 {
		t.Fatalf("an event of a host, a process and a hash, which no rule links, interned %d entities, want 0", n)
	}

	e2 := mkEvent("e2", "agent", time.Minute, host, proc, ob(ocsf.EntityInstance, "i-0abc"))
	c.Process([]ocsf.Event{e2}, nil)
	if n := c.g.len(); n != 2 {
		t.Fatalf("an event linking a host and an instance interned %d entities, want 2", n)
	}
	h := c.g.ent(slotOf(t, c, ocsf.EntityHost, "web-9"))
	if len(h.links) != 1 || h.first != e2.Time || h.last != e2.Time {
		t.Errorf("the host has %d links, seen %d..%d; want 1 link, seen at the linking event's time %d", len(h.links), h.first, h.last, e2.Time)
	}

	e3 := mkEvent("e3", "agent", 2*time.Minute, host, proc)
	c.Process([]ocsf.Event{e3}, []alert.Alert{mkAlert("a1", "r1", "execution", ocsf.SeverityHigh, e3)})
	if n := len(c.g.memberships(slotOf(t, c, ocsf.EntityProcess, "web-9:4242"))); n != 1 {
		t.Errorf("the alerted process is a member of %d incidents, want 1", n)
	}
	if h := c.g.ent(slotOf(t, c, ocsf.EntityHost, "web-9")); h.last != e3.Time {
		t.Errorf("the alerted host was last seen at %d, want the alert's time %d", h.last, e3.Time)
	}
}

// The entities a link's walk reports as met are those fewer than MaxDepth
// links from the link: an alert that carries only entities further away
// cannot reach through the link, so bridge does not make it look again.
func TestLinkWalkMeetsWithinMaxDepth(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	if c.cfg.MaxDepth != 3 {
		t.Fatalf("MaxDepth is %d; the chain below is built for 3", c.cfg.MaxDepth)
	}
	h := ob(ocsf.EntityHost, "web-9")
	i := ob(ocsf.EntityInstance, "i-0abc")
	s := ob(ocsf.EntitySession, "arn:aws:sts::1:assumed-role/web/i-0abc")
	k := ob(ocsf.EntityAccessKey, "ASIAEXAMPLE0001")
	h2 := ob(ocsf.EntityHost, "web-10")
	events := []ocsf.Event{
		mkEvent("e1", "agent", 0, h, i),
		mkEvent("e2", "cloudtrail", time.Minute, i, s),
		mkEvent("e3", "cloudtrail", 2*time.Minute, s, k),
		mkEvent("e4", "agent", 3*time.Minute, k, h2),
	}
	c.Process(events, []alert.Alert{mkAlert("a1", "r1", "execution", ocsf.SeverityHigh, events[3])})

	var met []uint32
	c.reach(seeker{t: at(4 * time.Minute), sev: WeakJoinSeverity, link: true, met: &met}, []uint32{slotOf(t, c, ocsf.EntityHost, "web-9")})
	got := map[string]bool{}
	for _, x := range met {
		got[c.g.ent(x).key.value] = true
	}
	for _, o := range []ocsf.Observable{h, i, s} {
		if !got[o.Value] {
			t.Errorf("%s, 2 links or fewer from the start, is not reported as met", o.Value)
		}
	}
	if got[k.Value] || got[h2.Value] {
		t.Errorf("met holds entities %d or more links from the start: %v", c.cfg.MaxDepth, got)
	}
}

// What a detect process ships of a plain event follows what link() reads:
// an event naming only kinds no lineage rule links is its time alone, and
// a link signal keeps only the linked kinds (and the session, instance and
// addresses the session sources read).
func TestLinkSignalCarriesLinkedKindsOnly(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	proc := ob(ocsf.EntityProcess, "web-9:4242")
	hash := ob(ocsf.EntityHash, "9f86d081884c7d659a2feaa0c55ad015")
	if got := c.Needs(new(mkEvent("e1", "agent", 0, proc, hash))); got != NeedTime {
		t.Errorf("an event of a process and a hash needs %v, want its time only", got)
	}
	ev := mkEvent("e2", "agent", 0, ob(ocsf.EntityHost, "web-9"), proc, hash, ob(ocsf.EntityInstance, "i-0abc"))
	if got := c.Needs(&ev); got != NeedLinks {
		t.Fatalf("an event of a host, an instance, a process and a hash needs %v, want its links", got)
	}
	var kinds []ocsf.Entity
	for _, o := range c.LinkSignal(&ev).Observables {
		kinds = append(kinds, o.Entity)
	}
	if want := []ocsf.Entity{ocsf.EntityHost, ocsf.EntityInstance}; !slices.Equal(kinds, want) {
		t.Errorf("the link signal carries %v, want %v", kinds, want)
	}
}

// An entity's link list grows by half when full, not doubled: the room a
// doubling leaves unused was a third of a long stream's link memory. The
// links kept are the same either way.
func TestLinkListsGrowByHalf(t *testing.T) {
	g := newGraph()
	hub, _ := g.touch(ekey{kind: 1, value: "host"}, 0)
	var kept uint32
	want := []int{firstLinks, firstLinks, firstLinks, firstLinks, 6, 6, 9, 9, 9, 13}
	for n := range want {
		p, _ := g.touch(ekey{kind: 2, value: fmt.Sprintf("i-%d", n)}, int64(n))
		if !g.addLink(hub, p, int64(n), fmt.Sprintf("e%d", n), &kept) {
			t.Fatalf("link %d: not new", n)
		}
		kept = 0
		links := g.ent(hub).links
		if len(links) != n+1 || cap(links) != want[n] {
			t.Fatalf("after %d links: %d kept in room for %d, want room for %d", n+1, len(links), cap(links), want[n])
		}
	}
	for i, l := range g.ent(hub).links {
		if l.first != int64(i) || g.evs.id(l.ev) != fmt.Sprintf("e%d", i) || g.ent(l.to).key.value != fmt.Sprintf("i-%d", i) {
			t.Errorf("link %d: got %+v to %q", i, l, g.ent(l.to).key.value)
		}
	}
}

// A link's evidence id lives in the graph's evidence table, once per event
// and held by the link halves that name it: whatever links are added,
// re-seen with earlier evidence, or dropped with an entity turned hub or
// evicted, each half reads the id of the earliest event it was seen in (the
// smallest on ties) and the table keeps exactly the ids some half names.
func TestEvidenceFollowsLinks(t *testing.T) {
	type half struct{ a, b string }
	type seen struct {
		first int64
		ev    string
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 50 {
		g := newGraph()
		model := map[half]seen{}
		keys := make([]string, 12)
		for i := range keys {
			keys[i] = fmt.Sprintf("host-%d", i)
		}
		slot := func(k string) uint32 {
			i, _ := g.touch(ekey{kind: 1, value: k}, 0)
			return i
		}
		forget := func(k string) {
			for h := range model {
				if h.a == k || h.b == k {
					delete(model, h)
				}
			}
		}
		for step := range 400 {
			switch op := rng.IntN(20); {
			case op == 0:
				k := keys[rng.IntN(len(keys))]
				if i, ok := g.index[ekey{kind: 1, value: k}]; ok {
					g.makeHub(i)
					g.remove(i) // a hub keeps no links; evict it so it links again
					forget(k)
				}
			case op == 1:
				k := keys[rng.IntN(len(keys))]
				if i, ok := g.index[ekey{kind: 1, value: k}]; ok {
					g.remove(i)
					forget(k)
				}
			default:
				// An event linking a few entities pairwise, at a time
				// that may be earlier than links already seen.
				ev := fmt.Sprintf("ev-%03d", rng.IntN(300))
				at := int64(rng.IntN(50))
				var kept uint32
				n := 2 + rng.IntN(3)
				for x := range n {
					for y := x + 1; y < n; y++ {
						ka, kb := keys[(step+x*5)%len(keys)], keys[(step+y*7+1)%len(keys)]
						if ka == kb {
							continue
						}
						g.addLink(slot(ka), slot(kb), at, ev, &kept)
						for _, h := range []half{{ka, kb}, {kb, ka}} {
							m, ok := model[h]
							if !ok || at < m.first || at == m.first && ev < m.ev {
								model[h] = seen{at, ev}
							}
						}
						if rng.IntN(30) == 0 {
							// An entity of the event turns hub in the
							// middle of its links.
							g.makeHub(slot(ka))
							g.remove(slot(ka))
							forget(ka)
						}
					}
				}
			}
			refs := map[uint32]uint32{}
			got := 0
			for k, i := range g.index {
				for _, l := range g.ent(i).links {
					other := g.ent(l.to).key.value
					m, ok := model[half{k.value, other}]
					if !ok || m.first != l.first || m.ev != g.evs.id(l.ev) {
						t.Fatalf("round %d step %d: half %s→%s reads %d %q, want %+v (known %v)", round, step, k.value, other, l.first, g.evs.id(l.ev), m, ok)
					}
					refs[l.ev]++
					got++
				}
			}
			if got != len(model) {
				t.Fatalf("round %d step %d: %d halves, want %d", round, step, got, len(model))
			}
			for k := 1; k < len(g.evs.ids); k++ {
				if g.evs.refs[k] != refs[uint32(k)] || (refs[uint32(k)] == 0) != (g.evs.ids[k] == "") {
					t.Fatalf("round %d step %d: slot %d holds %q for %d halves, %d name it", round, step, k, g.evs.ids[k], g.evs.refs[k], refs[uint32(k)])
				}
			}
			if live := len(g.evs.ids) - 1 - len(g.evs.free); live != len(refs) {
				t.Fatalf("round %d step %d: %d slots in use, %d named", round, step, live, len(refs))
			}
		}
	}
}
