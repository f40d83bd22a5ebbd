package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// DefaultEvalTimeout is the deadline of one tracked rule evaluation that
// iterates (a condition with comprehensions). Conditions without
// comprehensions are bounded by the cost limit alone: their work is linear
// in their size; untracked evaluations by their strict cost estimate (see
// untracked.go).
const DefaultEvalTimeout = 20 * time.Millisecond

// maxSuppressed bounds the suppression memory; see Engine.suppressed.
const maxSuppressed = 1 << 16

// Error reasons counted in musubi_rules_errors_total.
const (
	ReasonCostLimit = "cost_limit"
	ReasonTimeout   = "timeout"
	ReasonEval      = "eval"
	ReasonNotBool   = "not_bool"
	ReasonPanic     = "panic"
	ReasonBadJSON   = "bad_json"
)

// Engine evaluates the current rule set against events. The set is swapped
// atomically, so a reload never blocks evaluation. It is safe for concurrent
// use.
type Engine struct {
	set     atomic.Pointer[engineSet]
	logger  *slog.Logger
	metrics *metrics
	// EvalTimeout is the deadline of one iterating evaluation; set it before
	// the first Evaluate.
	EvalTimeout time.Duration
	// Now is the clock exceptions expire by (wall-clock time, not event
	// time: an expired exception stops suppressing replays too); nil means
	// time.Now. Set it before the first Evaluate.
	Now func() time.Time

	mu         sync.Mutex
	suppressed map[string]int64 // alert id → end of its window, event time ms
	lastErrLog atomic.Int64     // unix ns of the last evaluation error logged
}

// engineSet is a rule set with the metric children of its rules resolved
// once, so the hot path does no label lookups.
type engineSet struct {
	set   *Set
	rules map[*Rule]*ruleMetrics
}

type ruleMetrics struct {
	evals, matches, cost, suppressed prometheus.Counter
	// untracked counts the evaluations run without cost tracking.
	untracked prometheus.Counter
	// shadow counts the matches of an experimental rule (nil otherwise).
	shadow prometheus.Counter
	// excepts are the exceptions naming the rule, each with its counter.
	excepts []exceptionRef
}

type exceptionRef struct {
	x        *Exception
	excepted prometheus.Counter
}

type metrics struct {
	evals, matches, cost, suppressed, errors *prometheus.CounterVec
	excepted, shadow, untracked              *prometheus.CounterVec
	loaded                                   prometheus.Gauge
	reloads                                  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		evals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_evaluations_total", Help: "Rule evaluations, by rule.",
		}, []string{"rule"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_matches_total", Help: "Rule matches (before suppression), by rule.",
		}, []string{"rule"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_errors_total", Help: "Rule evaluations that failed, by rule and reason (cost_limit, timeout, eval, not_bool, panic, bad_json).",
		}, []string{"rule", "reason"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_cost_total", Help: "CEL evaluation cost units spent by evaluations run under the cost limit, by rule.",
		}, []string{"rule"}),
		untracked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_untracked_evaluations_total", Help: "Rule evaluations run without cost tracking, because the rule's worst-case cost on an event within the estimate's size hints is under the cost limit, by rule.",
		}, []string{"rule"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_suppressed_total", Help: "Matches folded into an earlier alert by suppression, by rule.",
		}, []string{"rule"}),
		excepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_excepted_total", Help: "Rule matches that raised no alert because a tuning exception covers them, by rule and exception.",
		}, []string{"rule", "exception"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_shadow_matches_total", Help: "Matches of experimental rules, which run in shadow mode (alerts stored, never in incidents or webhooks), by rule.",
		}, []string{"rule"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "musubi_rules_loaded", Help: "Detection rules in the running set.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_rules_reloads_total", Help: "Rule set reloads, by outcome (success, failure).",
		}, []string{"outcome"}),
	}
	if reg != nil {
		m.evals = register(reg, m.evals)
		m.matches = register(reg, m.matches)
		m.errors = register(reg, m.errors)
		m.cost = register(reg, m.cost)
		m.untracked = register(reg, m.untracked)
		m.suppressed = register(reg, m.suppressed)
		m.excepted = register(reg, m.excepted)
		m.shadow = register(reg, m.shadow)
		m.loaded = register(reg, m.loaded)
		m.reloads = register(reg, m.reloads)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same name (two engines on one registry share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// NewEngine returns an engine with no rules. Metrics are registered with reg
// (nil: not registered); logger may be nil.
func NewEngine(reg prometheus.Registerer, logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		logger:      logger.With("component", "rules"),
		metrics:     newMetrics(reg),
		EvalTimeout: DefaultEvalTimeout,
		suppressed:  map[string]int64{},
	}
}

// Swap replaces the running rule set. Series of rules that are gone are
// removed from the metrics.
func (e *Engine) Swap(s *Set) {
	es := &engineSet{set: s, rules: map[*Rule]*ruleMetrics{}}
	ids, exIDs := map[string]bool{}, map[string]bool{}
	for _, x := range s.Exceptions() {
		exIDs[x.ID] = true
	}
	for _, r := range s.Rules() {
		ids[r.ID] = true
		m := &ruleMetrics{
			evals:      e.metrics.evals.WithLabelValues(r.ID),
			matches:    e.metrics.matches.WithLabelValues(r.ID),
			cost:       e.metrics.cost.WithLabelValues(r.ID),
			suppressed: e.metrics.suppressed.WithLabelValues(r.ID),
			untracked:  e.metrics.untracked.WithLabelValues(r.ID),
		}
		if r.Shadow() {
			m.shadow = e.metrics.shadow.WithLabelValues(r.ID)
		}
		for _, x := range s.ExceptionsFor(r) {
			m.excepts = append(m.excepts, exceptionRef{x: x, excepted: e.metrics.excepted.WithLabelValues(r.ID, x.ID)})
		}
		es.rules[r] = m
	}
	old := e.set.Swap(es)
	if old != nil {
		for _, r := range old.set.Rules() {
			if !ids[r.ID] {
				e.metrics.evals.DeleteLabelValues(r.ID)
				e.metrics.matches.DeleteLabelValues(r.ID)
				e.metrics.cost.DeleteLabelValues(r.ID)
				e.metrics.untracked.DeleteLabelValues(r.ID)
				e.metrics.suppressed.DeleteLabelValues(r.ID)
				e.metrics.shadow.DeleteLabelValues(r.ID)
				e.metrics.errors.DeletePartialMatch(prometheus.Labels{"rule": r.ID})
				e.metrics.excepted.DeletePartialMatch(prometheus.Labels{"rule": r.ID})
			} else if !r.Shadow() {
				e.metrics.shadow.DeleteLabelValues(r.ID)
			}
		}
		for _, x := range old.set.Exceptions() {
			if !exIDs[x.ID] {
				e.metrics.excepted.DeletePartialMatch(prometheus.Labels{"exception": x.ID})
			}
		}
	}
	e.metrics.loaded.Set(float64(s.Len()))
}

// Set returns the running rule set (nil before the first Swap).
func (e *Engine) Set() *Set {
	if es := e.set.Load(); es != nil {
		return es.set
	}
	return nil
}

// Evaluate runs every candidate rule of the running set on ev and returns
// the alerts raised. Rule errors (cost limit, deadline, evaluation errors)
// are counted in musubi_rules_errors_total and never returned; a failing
// rule does not affect the others. Evaluate never panics.
func (e *Engine) Evaluate(ev *ocsf.Event) (alerts []alert.Alert) {
	e.matchEach(ev, func(r *Rule, act *activation, m *ruleMetrics) {
		if a, suppressed := e.alert(r, ev, act, m); !suppressed {
			alerts = append(alerts, a)
		}
	})
	return alerts
}

// matchEach runs every candidate rule of the running set on ev and calls
// matched for each rule whose condition is true: the loop Evaluate and
// Match share. A panic outside a rule's evaluation (in matched) is counted
// and ends the loop, keeping what matched has done so far.
func (e *Engine) matchEach(ev *ocsf.Event, matched func(r *Rule, act *activation, m *ruleMetrics)) {
	es := e.set.Load()
	if es == nil || es.set == nil || ev == nil {
		return
	}
	defer func() {
		// Rule evaluation recovers on its own; this guards the rest (alert
		// building).
		if p := recover(); p != nil {
			e.metrics.errors.WithLabelValues("", ReasonPanic).Inc()
			e.logger.Error("rule engine panic", "panic", p)
		}
	}()
	// The activation is made for the first rule that runs: most events meet
	// no rule whose prerequisites they carry, and then cost nothing more.
	var act *activation
	es.set.index.candidates(ev, func(r *Rule) {
		if !r.pre.Admits(ev) {
			return // a literal conjunct is false: the condition is false
		}
		if act == nil {
			act = newActivation(ev, es.set.adapter)
		}
		m := es.rules[r]
		ok, reason, err := e.eval(r, act, m)
		if err != nil {
			e.ruleError(r, reason, err)
			return
		}
		if !ok {
			return
		}
		m.matches.Inc()
		if x := e.exceptedBy(r, ev, act, m.excepts); x != nil {
			return
		}
		if m.shadow != nil {
			m.shadow.Inc()
		}
		matched(r, act, m)
	})
	if act != nil && act.badJSON {
		e.metrics.errors.WithLabelValues("", ReasonBadJSON).Inc()
	}
}

// exceptedBy returns the first active exception of excepts whose condition
// holds on ev, counting the excepted match, or nil. An exception that fails
// to evaluate is counted as an error of the rule (reason "exception_" and
// the error's reason) and suppresses nothing: the alert is raised.
func (e *Engine) exceptedBy(r *Rule, ev *ocsf.Event, act *activation, excepts []exceptionRef) *Exception {
	if len(excepts) == 0 {
		return nil
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	t := now()
	for _, xr := range excepts {
		if !xr.x.Active(t) {
			continue
		}
		ok, err := xr.x.matches(ev, act, e.EvalTimeout)
		if err != nil {
			e.ruleError(r, "exception_"+errorReason(err), err)
			continue
		}
		if ok {
			if xr.excepted != nil {
				xr.excepted.Inc()
			}
			return xr.x
		}
	}
	return nil
}

// eval evaluates one rule's condition under the cost limit and, when it
// iterates, a deadline. A rule whose worst-case cost on this event is
// provably under the cost limit runs its untracked program instead (see
// untracked.go), without either: its strict estimate bounds its work as
// the cost limit would.
func (e *Engine) eval(r *Rule, act *activation, m *ruleMetrics) (matched bool, reason string, err error) {
	defer func() {
		if p := recover(); p != nil {
			matched, reason, err = false, ReasonPanic, fmt.Errorf("panic: %v", p)
		}
	}()
	if m != nil {
		m.evals.Inc()
	}
	var (
		out ref.Val
		det *cel.EvalDetails
	)
	if r.fast != nil && act.fits(r.reads, r.fastTier) {
		// Bounded by its strict estimate, as the cost limit would bound it:
		// no tracking and no deadline, so no context and no timer (the
		// deadline's context.WithTimeout was about a seventh of Evaluate).
		if m != nil {
			m.untracked.Inc()
		}
		out, det, err = r.fast.Eval(act)
	} else {
		out, det, err = e.run(r.prg, r.iterates, act)
	}
	if m != nil {
		if c := det.ActualCost(); c != nil {
			m.cost.Add(float64(*c))
		}
	}
	if err != nil {
		return false, errorReason(err), err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, ReasonNotBool, fmt.Errorf("condition returned %s, not bool", out.Type().TypeName())
	}
	return bool(b), "", nil
}

func (e *Engine) run(prg cel.Program, iterates bool, act *activation) (ref.Val, *cel.EvalDetails, error) {
	return evalProgram(prg, iterates, act, e.EvalTimeout)
}

func errorReason(err error) string {
	var ce interpreter.EvalCancelledError
	switch {
	case errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded:
		return ReasonCostLimit
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ce), errors.Is(err, interpreter.InterruptError{}):
		return ReasonTimeout
	}
	return ReasonEval
}

// ruleError counts a failed evaluation and logs at most one per second.
func (e *Engine) ruleError(r *Rule, reason string, err error) {
	e.metrics.errors.WithLabelValues(r.ID, reason).Inc()
	now := time.Now().UnixNano()
	last := e.lastErrLog.Load()
	if now-last > int64(time.Second) && e.lastErrLog.CompareAndSwap(last, now) {
		e.logger.Warn("rule evaluation failed (further errors this second are only counted)", "rule", r.ID, "reason", reason, "err", err)
	}
}

// alert builds the alert of a match and applies suppression: a match whose
// rule and suppression key value fall in the same window as an earlier alert
// gets the same id and is not returned again.
func (e *Engine) alert(r *Rule, ev *ocsf.Event, act *activation, m *ruleMetrics) (alert.Alert, bool) {
	a, end := e.keyedAlert(r, ev, act)
	if end == 0 {
		return a, false
	}
	return a, e.suppress(a.ID, end, ev.Time, m)
}

// keyedAlert builds the alert of a match; for a rule with suppression it
// carries the id of its suppression window and the window's end (event
// time ms; 0 without suppression).
func (e *Engine) keyedAlert(r *Rule, ev *ocsf.Event, act *activation) (alert.Alert, int64) {
	a := NewAlert(r, ev)
	if r.suppress == nil {
		return a, 0
	}
	out, _, err := e.run(r.suppress, false, act)
	key, ok := out.(types.String)
	if err != nil || !ok || key == "" {
		if err != nil {
			e.ruleError(r, "suppression_"+errorReason(err), err)
		}
		return a, 0
	}
	winMS := r.SuppressionWindow.Milliseconds()
	bucket := ev.Time / winMS
	a.ID = alertID(r.ID, "key", string(key), strconv.FormatInt(bucket, 10))
	a.Keyed = true
	return a, (bucket + 1) * winMS
}

// suppress reports whether the window of alert id already raised an alert,
// and remembers it otherwise.
func (e *Engine) suppress(id string, end, now int64, m *ruleMetrics) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.suppressed[id]; dup {
		if m != nil {
			m.suppressed.Inc()
		}
		return true
	}
	if len(e.suppressed) >= maxSuppressed {
		// Forget windows that ended before this event; if none did, forget
		// everything (replays then re-emit the same deterministic ids,
		// which storage folds).
		for sid, until := range e.suppressed {
			if until <= now {
				delete(e.suppressed, sid)
			}
		}
		if len(e.suppressed) >= maxSuppressed {
			clear(e.suppressed)
		}
	}
	e.suppressed[id] = end
	return false
}

// Match is an alert of Engine.Match before suppression.
type Match struct {
	alert.Alert
	// end is the end of the alert's suppression window (event time ms), 0
	// when its rule has none.
	end int64
	m   *ruleMetrics
}

// Match runs every candidate rule of the running set on ev, as Evaluate
// does, but leaves suppression to Suppressed. It is safe to call from many
// goroutines at once; an offline pipeline evaluates in parallel this way
// and then calls Suppressed in event-time order on one goroutine, so that a
// suppression window keeps its first event, as with Evaluate in order.
func (e *Engine) Match(ev *ocsf.Event) (matches []Match) {
	e.matchEach(ev, func(r *Rule, act *activation, m *ruleMetrics) {
		a, end := e.keyedAlert(r, ev, act)
		matches = append(matches, Match{Alert: a, end: end, m: m})
	})
	return matches
}

// Suppressed applies suppression to a match of Match: it reports whether
// the match's rule and key fall in the window of an earlier alert (the
// match is then dropped, as Evaluate drops it), and remembers the window
// otherwise. Call it in event-time order.
func (e *Engine) Suppressed(m Match) bool {
	return m.end != 0 && e.suppress(m.ID, m.end, m.Time, m.m)
}

// NewAlert returns the alert rule r raises for event ev, without suppression:
// its id is derived from the rule id and the event's metadata.uid.
func NewAlert(r *Rule, ev *ocsf.Event) alert.Alert {
	uid := ev.Metadata.UID
	if uid == "" {
		uid = fmt.Sprintf("%d/%d/%s/%s", ev.Time, ev.ClassUID, ev.API.Operation, ev.Device.UID)
	}
	a := alert.Alert{
		ID:          alertID(r.ID, "event", uid),
		TenantUID:   ev.Metadata.TenantUID,
		RuleID:      r.ID,
		RuleVersion: r.AlertVersion(),
		Title:       r.Title,
		Severity:    r.Severity,
		Stage:       r.Stage,
		Tactics:     r.Tactics,
		Techniques:  r.Techniques,
		Time:        ev.Time,
		AccountUID:  ev.Cloud.Account.UID,
		Region:      ev.Cloud.Region,
		Source:      ev.Metadata.LogName,
		EventIDs:    []string{ev.Metadata.UID},
		Summary:     summary(r, ev),
		Shadow:      r.Shadow(),
	}
	if len(ev.FindingInfo.Attacks) > 0 {
		a.Tactics, a.Techniques = mergeAttacks(r.Tactics, r.Techniques, ev.FindingInfo.Attacks)
	}
	if a.EventIDs[0] == "" {
		a.EventIDs = []string{}
	}
	n := 0
	for _, o := range ev.Observables {
		if len(r.Entities) == 0 || containsEntity(r.Entities, o.Entity) {
			n++
		}
	}
	if n > 0 {
		a.Entities = make([]ocsf.Observable, 0, n)
		for _, o := range ev.Observables {
			if len(r.Entities) == 0 || containsEntity(r.Entities, o.Entity) {
				a.Entities = append(a.Entities, o)
			}
		}
	}
	return a
}

// mergeAttacks adds the ATT&CK tactics and techniques a finding names (a
// GuardDuty or Falco finding relayed by a rule) to the rule's own, as ids.
func mergeAttacks(tactics, techniques []string, attacks []ocsf.Attack) ([]string, []string) {
	tactics, techniques = slices.Clone(tactics), slices.Clone(techniques)
	for _, at := range attacks {
		if id := tacticID(at.Tactic); id != "" && !slices.Contains(tactics, id) {
			tactics = append(tactics, id)
		}
		if id := at.Technique.UID; techniquePattern.MatchString(id) && !slices.Contains(techniques, id) {
			techniques = append(techniques, id)
		}
	}
	return tactics, techniques
}

// tacticID returns the ATT&CK id of a tactic given by id or by name in any
// spelling ("CredentialAccess", "credential access", "credential-access").
func tacticID(t ocsf.AttackRef) string {
	if _, ok := tacticNames[t.UID]; ok {
		return t.UID
	}
	key := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '_' {
			return -1
		}
		return unicode.ToLower(r)
	}, t.Name)
	for id, name := range tacticNames {
		if strings.ReplaceAll(name, "-", "") == key {
			return id
		}
	}
	return ""
}

func containsEntity(kinds []ocsf.Entity, k ocsf.Entity) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// summary is a one-line description of what happened: the rule title with
// the actor and the action of the event.
func summary(r *Rule, ev *ocsf.Event) string {
	who := ev.Actor.User.Name
	if ev.Actor.Session.Name != "" && ev.Actor.User.Type == "AssumedRole" {
		who = ev.Actor.User.Name + "/" + ev.Actor.Session.Name
	}
	what := ev.API.Operation
	// The process the event is about: the launched one in Process Activity,
	// the acting one (actor.process) in every other class.
	proc := &ev.Actor.Process
	if ev.ClassUID == ocsf.ClassProcessActivity {
		proc = &ev.Process
	}
	switch {
	case proc.CmdLine != "":
		what = proc.CmdLine
		if ev.Device.Hostname != "" {
			who = ev.Device.Hostname
		}
	case ev.FindingInfo.Title != "":
		what = ev.FindingInfo.Title
	case ev.File.Path != "":
		what = ev.ActivityName + " " + ev.File.Path
		if ev.Device.Hostname != "" {
			who = ev.Device.Hostname
		}
	case ev.DstEndpoint.IP != "" && what == "":
		what = fmt.Sprintf("%s → %s:%d", ev.SrcEndpoint.IP, ev.DstEndpoint.IP, ev.DstEndpoint.Port)
	}
	if len(what) > 200 {
		what = what[:200] + "…"
	}
	var b strings.Builder
	b.Grow(len(r.Title) + len(who) + len(what) + 8)
	b.WriteString(r.Title)
	if who != "" {
		b.WriteString(" — ")
		b.WriteString(who)
	}
	if what != "" {
		b.WriteString(": ")
		b.WriteString(what)
	}
	return b.String()
}

// alertID is the deterministic alert id: a hash of the rule id and the parts
// that identify the evidence, as 32 hex digits.
func alertID(ruleID string, parts ...string) string {
	var stack [512]byte
	buf := append(stack[:0], ruleID...)
	for _, p := range parts {
		buf = append(buf, 0)
		buf = append(buf, p...)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:16])
}
