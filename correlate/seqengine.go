package correlate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

// item is one input that satisfied a stage: an alert, an event, or a
// threshold reached by several of them.
type item struct {
	id      string
	alertID string
	tenant  string
	t       int64
	on, key []string
	events  []string
	ents    []ocsf.Observable
	members []*item // of a threshold
	// version counts in-place updates of a threshold item whose window
	// gained an input that arrived out of order.
	version int
	// one holds the event id of an item of one event: events is then a
	// slice of it, not an allocation of its own.
	one [1]string
}

func itemLess(a, b *item) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

type stageState struct {
	byOn  map[tval][]*item // by tenant and value of on
	byKey map[tval][]*item // by tenant and value of key
	ids   map[string]*item
	raw   map[tval][]*item // threshold inputs by tenant and group
}

// timer waits for the absent last stage of a chain.
type timer struct {
	deadline int64
	chain    []*item
}

type ruleState struct {
	r      *SequenceRule
	stages []*stageState
	fired  map[string]fired // by anchor (first input) id
	timers map[string]*timer
}

// fired remembers the chain raised for an anchor.
type fired struct {
	t     int64
	chain []*item
	sig   string
}

// seqStep explains one stage of a match.
type seqStep struct {
	alertID  string
	key      string
	eventIDs []string
}

// seqMatch is one completed sequence: the correlated alert and the steps
// that made it.
type seqMatch struct {
	rule  *SequenceRule
	alert alert.Alert
	steps []seqStep
}

// seqEngine runs the sequence rules. It keeps every stage input of the
// span indexed by its hand-off values and, on each input, walks back to the
// anchors it may follow and searches each anchor's smallest chain, so the
// same inputs complete the same chains in any arrival order.
type seqEngine struct {
	rules  []*ruleState
	cfg    Config
	m      *metrics
	lateMS int64
	// adapter is the stage conditions' environment's, for the events'
	// activations.
	adapter types.Adapter
	// kept are the plain events stages kept since the last takeKept, as
	// storage keeps them (Result.Stages).
	kept []StageInput
	// alertReads are the fields of `alert` any stage condition reads
	// (alertAll: every field), the only ones an alert's activation holds.
	alertReads []string
	alertAll   bool
	// names interns the attribute names of kept observables (at most
	// maxNames of them; others are copied).
	names map[string]string
}

// maxNames bounds the interned attribute names.
const maxNames = 1024

// name returns a copy of the attribute name n that does not keep its
// event alive: the interned one when n is known.
func (s *seqEngine) name(n string) string {
	if in, ok := s.names[n]; ok {
		return in
	}
	n = strings.Clone(n)
	if len(s.names) < maxNames {
		if s.names == nil {
			s.names = make(map[string]string)
		}
		s.names[n] = n
	}
	return n
}

// StageInput is a plain event that a sequence rule's stage kept, reduced to
// what the stage keeps of it: what Result.Stages reports and State.Stages
// restores. Alerts that feed stages are stored anyway and replayed by
// RestoreState; a plain event is not, so without these a chain whose stage
// an event matched would start over after a restart or a rebalance.
type StageInput struct {
	TenantUID string
	// RuleID and RuleSum name the rule and its document's content hash: a
	// restore puts the input back only into the same rule unchanged.
	RuleID, RuleSum string
	Stage           int
	// UID is the event's own uid, so a replay rewrites the same row.
	UID         string
	Time        int64
	Observables []ocsf.Observable
}

// takeKept returns the stage inputs kept since the last call.
func (s *seqEngine) takeKept() []StageInput {
	if s == nil {
		return nil
	}
	k := s.kept
	s.kept = nil
	return k
}

// restoreInput puts a stored stage input back into its stage, as
// observeEvent put it there, and returns the matches it completes.
func (s *seqEngine) restoreInput(in *StageInput) []*seqMatch {
	if s == nil {
		return nil
	}
	for _, rs := range s.rules {
		if rs.r.ID != in.RuleID || rs.r.sum != in.RuleSum || in.Stage < 0 || in.Stage >= len(rs.r.Stages) {
			continue
		}
		x := &item{id: in.UID, tenant: in.TenantUID, t: in.Time, events: []string{in.UID}, ents: in.Observables}
		return s.observe(rs, in.Stage, x)
	}
	return nil
}

func newSeqEngine(rs []*SequenceRule, cfg Config, m *metrics) (*seqEngine, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("correlate: CEL environment: %w", err)
	}
	s := &seqEngine{cfg: cfg, m: m, lateMS: cfg.AllowedLateness.Milliseconds(), adapter: env.CELTypeAdapter()}
	for _, r := range rs {
		st := &ruleState{r: r, fired: map[string]fired{}, timers: map[string]*timer{}}
		for _, sg := range r.Stages {
			st.stages = append(st.stages, &stageState{byOn: map[tval][]*item{}, byKey: map[tval][]*item{}, ids: map[string]*item{}, raw: map[tval][]*item{}})
			if !sg.OnAlerts {
				continue
			}
			s.alertAll = s.alertAll || sg.alertAll
			for _, f := range sg.alertReads {
				if !slices.Contains(s.alertReads, f) {
					s.alertReads = append(s.alertReads, f)
				}
			}
		}
		s.rules = append(s.rules, st)
	}
	return s, nil
}

// replace puts rs into service: a rule whose document is unchanged keeps
// its in-flight state (partial chains, timers, what it fired), a changed or
// new rule starts empty, a removed rule's state goes.
func (s *seqEngine) replace(rs []*SequenceRule) {
	old := map[string]*ruleState{}
	for _, st := range s.rules {
		old[st.r.ID] = st
	}
	next, _ := newSeqEngine(rs, s.cfg, s.m)
	for i, st := range next.rules {
		if prev, ok := old[st.r.ID]; ok && prev.r.sum == st.r.sum && len(prev.stages) == len(st.stages) {
			prev.r = st.r
			next.rules[i] = prev
		}
	}
	s.rules = next.rules
	s.alertReads, s.alertAll = next.alertReads, next.alertAll
}

func (s *seqEngine) observeAlert(a *alert.Alert) []*seqMatch {
	if s == nil || a.Correlated {
		return nil
	}
	var act map[string]any
	var out []*seqMatch
	for _, rs := range s.rules {
		for k, st := range rs.r.Stages {
			if !st.OnAlerts || (len(st.LogNames) > 0 && !slices.Contains(st.LogNames, a.Source)) || !st.alertPre.admits(a) {
				continue
			}
			if act == nil {
				act = alertActivation(a, s.alertReads, s.alertAll)
			}
			if !s.eval(st, act) {
				continue
			}
			x := &item{id: a.ID, alertID: a.ID, tenant: a.TenantUID, t: a.Time, events: a.EventIDs, ents: a.Entities}
			out = append(out, s.observe(rs, k, x)...)
		}
	}
	return out
}

func (s *seqEngine) observeEvent(ev *ocsf.Event) []*seqMatch {
	if s == nil {
		return nil
	}
	// One activation for every stage the event meets, made for the first:
	// the event is adapted once, and its bodies decoded only if a
	// condition reads them.
	var act interpreter.Activation
	var out []*seqMatch
	for _, rs := range s.rules {
		for k, st := range rs.r.Stages {
			if !st.mayMatchEvent(ev) {
				continue
			}
			if act == nil {
				act = rules.EventActivation(ev, s.adapter)
			}
			if !s.eval(st, act) {
				continue
			}
			// Keep only the observables the rule keys on: events are many.
			// Items outlive their event, so they keep copies of its
			// strings, not slices of its decoded record.
			// Attribute names are few: they are interned, not copied.
			keep := func(o *ocsf.Observable) bool {
				return matchesSpec(st.On, *o) || matchesSpec(st.Key, *o) || matchesSpec(st.Distinct, *o)
			}
			n := 0
			for i := range ev.Observables {
				if keep(&ev.Observables[i]) {
					n++
				}
			}
			var ents []ocsf.Observable
			if n > 0 {
				ents = make([]ocsf.Observable, 0, n)
			}
			for i := range ev.Observables {
				if o := ev.Observables[i]; keep(&o) {
					o.Name, o.Value = s.name(o.Name), strings.Clone(o.Value)
					ents = append(ents, o)
				}
			}
			id := strings.Clone(ev.Metadata.UID)
			x := &item{id: id, tenant: ev.Metadata.TenantUID, t: ev.Time, ents: ents}
			x.one[0] = id
			x.events = x.one[:]
			s.kept = append(s.kept, StageInput{TenantUID: x.tenant, RuleID: rs.r.ID, RuleSum: rs.r.sum, Stage: k, UID: id, Time: ev.Time, Observables: ents})
			out = append(out, s.observe(rs, k, x)...)
		}
	}
	return out
}

func matchesSpec(f *FieldSpec, o ocsf.Observable) bool {
	return f != nil && (f.Entity == "" || o.Entity == f.Entity) && (f.Name == "" || rules.Glob(o.Name, f.Name))
}

func (s *seqEngine) eval(st *SequenceStage, act any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ok, err := st.cond.Eval(act, 0)
	if err != nil {
		// cost limit, deadline or evaluation error, as for detection rules
		s.m.dropped.WithLabelValues("sequence_" + rules.ErrorReason(err)).Inc()
		return false
	}
	return ok
}

// tval is a value of a tenant: the key of a stage's inputs by value. It
// shares its strings with the item it indexes (the tenant's and the
// observable's); a key made of the two joined was a string of its own for
// every value of every input kept.
type tval struct{ tenant, value string }

// observe records x at stage k and returns the matches it completes.
func (s *seqEngine) observe(rs *ruleState, k int, x *item) []*seqMatch {
	st := rs.r.Stages[k]
	x.on = st.On.values(x.ents)
	x.key = st.Key.values(x.ents)
	if k == 0 && rs.r.Stages[0].On == nil {
		x.on = []string{""}
	}
	if len(x.on) == 0 || len(x.key) == 0 {
		return nil // the stage's key fields are missing: cannot chain
	}
	if st.Count > 1 {
		return s.threshold(rs, k, x)
	}
	return s.register(rs, k, x)
}

// threshold keeps x as an input of stage k's threshold and registers a
// threshold item when a group reaches it.
func (s *seqEngine) threshold(rs *ruleState, k int, x *item) []*seqMatch {
	st := rs.r.Stages[k]
	ss := rs.stages[k]
	groups := x.on
	if k == 0 {
		groups = x.key
	}
	var out []*seqMatch
	for _, g := range groups {
		gk := tval{x.tenant, g}
		list := ss.raw[gk]
		if slices.ContainsFunc(list, func(o *item) bool { return o.id == x.id }) {
			continue
		}
		list = append(list, x)
		slices.SortFunc(list, itemLess)
		if over := len(list) - 4*s.cfg.MaxPartialsPerKey; over > 0 {
			list = list[over:]
			s.m.dropped.WithLabelValues("sequence_cap").Inc()
		}
		ss.raw[gk] = list
		// The earliest window [i, j] that holds the threshold.
		w := st.Within.Milliseconds()
		for j := range list {
			i := j
			for i > 0 && list[j].t-list[i-1].t <= w {
				i--
			}
			win := list[i : j+1]
			n := len(win)
			if st.Distinct != nil {
				var vals []string
				for _, it := range win {
					for _, v := range st.Distinct.values(it.ents) {
						if !slices.Contains(vals, v) {
							vals = append(vals, v)
						}
					}
				}
				n = len(vals)
			}
			if n < st.Count {
				continue
			}
			// Named by the input that completed it: a late input inside the
			// window updates the same threshold item.
			v := &item{id: "threshold:" + list[j].id + ":" + g, tenant: x.tenant, t: list[j].t, members: slices.Clone(win)}
			for _, it := range win {
				v.events = append(v.events, it.events...)
				v.ents = appendObs(v.ents, it.ents)
				for _, kv := range it.key {
					if !slices.Contains(v.key, kv) {
						v.key = append(v.key, kv)
					}
				}
			}
			v.on = []string{g}
			if k == 0 {
				v.key = []string{g}
			}
			if old := ss.ids[v.id]; old != nil {
				if !sameMembers(old.members, v.members) {
					old.members, old.events, old.ents, old.key, old.t = v.members, v.events, v.ents, v.key, v.t
					old.version++
					out = append(out, s.search(rs, k, old)...)
				}
				break
			}
			out = append(out, s.register(rs, k, v)...)
			break
		}
	}
	return out
}

func sameMembers(a, b []*item) bool {
	return slices.EqualFunc(a, b, func(x, y *item) bool { return x.id == y.id })
}

func appendObs(dst, src []ocsf.Observable) []ocsf.Observable {
	for _, o := range src {
		if len(dst) >= 64 {
			break
		}
		if !slices.ContainsFunc(dst, func(d ocsf.Observable) bool { return d.Entity == o.Entity && d.Value == o.Value }) {
			dst = append(dst, o)
		}
	}
	return dst
}

// register indexes x at stage k and searches the chains through it.
func (s *seqEngine) register(rs *ruleState, k int, x *item) []*seqMatch {
	ss := rs.stages[k]
	if _, dup := ss.ids[x.id]; dup {
		return nil
	}
	ss.ids[x.id] = x
	add := func(m map[tval][]*item, vals []string) {
		for _, v := range vals {
			tk := tval{x.tenant, v}
			l := append(m[tk], x)
			if over := len(l) - s.cfg.MaxPartialsPerKey; over > 0 {
				slices.SortFunc(l, itemLess)
				for _, old := range l[:over] {
					delete(ss.ids, old.id)
				}
				l = l[over:]
				s.m.dropped.WithLabelValues("sequence_cap").Inc()
			}
			m[tk] = l
		}
	}
	add(ss.byOn, x.on)
	add(ss.byKey, x.key)
	if last := len(rs.r.Stages) - 1; k == last && rs.r.Stages[last].Absent {
		s.cancelTimers(rs, x)
		return nil
	}
	return s.search(rs, k, x)
}

// chainCompare orders chains by their inputs' (time, id), stage by stage.
func chainCompare(a, b []*item) int {
	for i := range min(len(a), len(b)) {
		if c := itemLess(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// chainSig names a chain with the versions of its inputs.
func chainSig(ch []*item) string {
	var b strings.Builder
	for _, it := range ch {
		fmt.Fprintf(&b, "%s#%d\x00", it.id, it.version)
	}
	return b.String()
}

// search raises (or upgrades) the matches whose chains may go through x at
// stage k: it finds the anchors (first-stage inputs) x can follow and, for
// each, the smallest complete chain by (time, id) in the current state. As
// state only grows until eviction, each anchor's chain only gets smaller,
// so the final match does not depend on arrival order.
func (s *seqEngine) search(rs *ruleState, k int, x *item) []*seqMatch {
	r := rs.r
	last := len(r.Stages) - 1
	absent := r.Stages[last].Absent
	end := last
	if absent {
		end = last - 1
	}
	var out []*seqMatch
	for _, a := range s.anchors(rs, k, x) {
		failed := map[*item]bool{}
		rest, ok := s.fwdMin(rs, 0, a, a.t+r.Span.Milliseconds(), end, []*item{a}, failed)
		if !ok {
			continue
		}
		ch := append([]*item{a}, rest...)
		anchor := a.id
		if prev, done := rs.fired[anchor]; done {
			// Raised already: a smaller chain, or the same one with a
			// threshold window that gained a late input, replaces it.
			c := chainCompare(ch, prev.chain)
			if !absent && (c < 0 || c == 0 && chainSig(ch) != prev.sig) {
				rs.fired[anchor] = fired{t: ch[len(ch)-1].t, chain: ch, sig: chainSig(ch)}
				out = append(out, s.match(r, ch, ch[len(ch)-1].t))
			}
			continue
		}
		if absent {
			dl := ch[len(ch)-1].t + r.Stages[last].Within.Milliseconds()
			if tm, waiting := rs.timers[anchor]; waiting && chainCompare(ch, tm.chain) >= 0 {
				continue
			}
			if s.followed(rs, ch, dl) {
				delete(rs.timers, anchor)
				continue
			}
			rs.timers[anchor] = &timer{deadline: dl, chain: ch}
			continue
		}
		rs.fired[anchor] = fired{t: ch[len(ch)-1].t, chain: ch, sig: chainSig(ch)}
		out = append(out, s.match(r, ch, ch[len(ch)-1].t))
	}
	return out
}

// anchors returns the first-stage inputs that x at stage k can follow,
// walking back stage by stage through the hand-off keys, in (time, id)
// order.
func (s *seqEngine) anchors(rs *ruleState, k int, x *item) []*item {
	level := []*item{x}
	for j := k; j > 0 && len(level) > 0; j-- {
		gap := rs.r.Stages[j].MaxGap.Milliseconds()
		seen := map[*item]bool{}
		var prev []*item
		for _, it := range level {
			for _, v := range it.on {
				for _, p := range rs.stages[j-1].byKey[tval{it.tenant, v}] {
					if !seen[p] && p.t <= it.t && it.t-p.t <= gap && p.id != it.id {
						seen[p] = true
						prev = append(prev, p)
					}
				}
			}
		}
		level = prev
	}
	slices.SortFunc(level, itemLess)
	return level
}

// fwdMin returns the smallest completion (by (time, id), stage by stage)
// of stages k+1..end after x, within the anchor's deadline.
func (s *seqEngine) fwdMin(rs *ruleState, k int, x *item, deadline int64, end int, used []*item, failed map[*item]bool) ([]*item, bool) {
	if k >= end {
		return nil, true
	}
	if failed[x] {
		return nil, false
	}
	gap := rs.r.Stages[k+1].MaxGap.Milliseconds()
	var cands []*item
	for _, v := range x.key {
		for _, q := range rs.stages[k+1].byOn[tval{x.tenant, v}] {
			if q.t < x.t || q.t-x.t > gap || q.t > deadline || slices.Contains(cands, q) ||
				slices.ContainsFunc(used, func(u *item) bool { return u.id == q.id }) {
				continue
			}
			cands = append(cands, q)
		}
	}
	slices.SortFunc(cands, itemLess)
	for _, q := range cands {
		if rest, ok := s.fwdMin(rs, k+1, q, deadline, end, append(used, q), failed); ok {
			return append([]*item{q}, rest...), true
		}
	}
	failed[x] = true
	return nil, false
}

// followed reports whether an input of the absent stage already follows
// the chain before the deadline.
func (s *seqEngine) followed(rs *ruleState, ch []*item, deadline int64) bool {
	last := ch[len(ch)-1]
	for _, v := range last.key {
		for _, q := range rs.stages[len(rs.stages)-1].byOn[tval{last.tenant, v}] {
			if q.t >= last.t && q.t <= deadline {
				return true
			}
		}
	}
	return false
}

func (s *seqEngine) cancelTimers(rs *ruleState, x *item) {
	for anchor, tm := range rs.timers {
		last := tm.chain[len(tm.chain)-1]
		if last.tenant != x.tenant || x.t < last.t || x.t > tm.deadline {
			continue
		}
		for _, v := range x.on {
			if slices.Contains(last.key, v) {
				delete(rs.timers, anchor)
				break
			}
		}
	}
}

// fire raises the absence matches whose deadline the watermark passed.
func (s *seqEngine) fire(wm int64) []*seqMatch {
	if s == nil {
		return nil
	}
	var out []*seqMatch
	for _, rs := range s.rules {
		var due []string
		for anchor, tm := range rs.timers {
			if tm.deadline <= wm {
				due = append(due, anchor)
			}
		}
		slices.Sort(due)
		for _, anchor := range due {
			tm := rs.timers[anchor]
			delete(rs.timers, anchor)
			rs.fired[anchor] = fired{t: tm.deadline, chain: tm.chain, sig: chainSig(tm.chain)}
			out = append(out, s.match(rs.r, tm.chain, tm.deadline))
		}
	}
	return out
}

// match builds the correlated alert of a chain. Its id derives from the
// rule and the chain's first input, so a replay raises the same alert.
func (s *seqEngine) match(r *SequenceRule, ch []*item, t int64) *seqMatch {
	first := ch[0]
	a := alert.Alert{
		ID:        hashID("corr-", r.ID, r.Version, first.tenant, first.id),
		TenantUID: first.tenant, RuleID: r.ID, RuleVersion: r.Version, Title: r.Title, Severity: r.Severity,
		Stage: r.Stage, Tactics: r.Tactics, Techniques: r.Techniques, Time: t, Source: "correlation",
		Correlated: true, EventIDs: []string{}, Shadow: r.Shadow(),
	}
	m := &seqMatch{rule: r}
	var summary []string
	for i, it := range ch {
		st := r.Stages[i]
		// Every step names its join key: a later stage the value it took
		// from the stage before; the first stage the value it handed on
		// (or, alone, the value it was counted by).
		key := ""
		switch {
		case i > 0:
			for _, v := range it.on {
				if slices.Contains(ch[i-1].key, v) {
					key = st.On.String() + "=" + v
					break
				}
			}
		case st.Key != nil && len(ch) > 1:
			for _, v := range ch[1].on {
				if slices.Contains(it.key, v) {
					key = st.Key.String() + "=" + v
					break
				}
			}
		case st.Key != nil && len(it.key) > 0:
			key = st.Key.String() + "=" + it.key[0]
		}
		for _, e := range it.events {
			if !slices.Contains(a.EventIDs, e) {
				a.EventIDs = append(a.EventIDs, e)
			}
		}
		a.Entities = appendObs(a.Entities, it.ents)
		members := it.members
		if len(members) == 0 {
			members = []*item{it}
		}
		for _, mb := range members {
			m.steps = append(m.steps, seqStep{alertID: mb.alertID, key: key, eventIDs: mb.events})
		}
		summary = append(summary, st.Name)
	}
	if r.Stages[len(r.Stages)-1].Absent {
		summary = append(summary, "no "+r.Stages[len(r.Stages)-1].Name)
	}
	a.Summary = strings.Join(summary, " → ")
	m.alert = a
	return m
}

// evict drops stage inputs and fired anchors older than the span.
func (s *seqEngine) evict(wm int64) {
	if s == nil {
		return
	}
	for _, rs := range s.rules {
		horizon := wm - rs.r.Span.Milliseconds() - s.lateMS
		for _, ss := range rs.stages {
			for _, m := range []map[tval][]*item{ss.byOn, ss.byKey, ss.raw} {
				for k, l := range m {
					l = slices.DeleteFunc(l, func(it *item) bool {
						if it.t < horizon {
							delete(ss.ids, it.id)
							return true
						}
						return false
					})
					if len(l) == 0 {
						delete(m, k)
					} else {
						m[k] = l
					}
				}
			}
		}
		for a, f := range rs.fired {
			if f.t < horizon {
				delete(rs.fired, a)
			}
		}
	}
}

// partials counts the stage inputs held, for tests and the gauge.
func (s *seqEngine) partials() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, rs := range s.rules {
		for _, ss := range rs.stages {
			n += len(ss.ids)
		}
	}
	return n
}
