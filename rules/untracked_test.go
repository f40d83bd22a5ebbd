package rules

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
)

// packEvents is every event the pack's tests know: the inline tests of the
// rules and the public fixtures of testdata (Stratus Red Team CloudTrail
// detonations, Panther's GuardDuty findings, the attack chain's records),
// decoded as the pipeline decodes them.
func packEvents(t *testing.T, s *Set) []*ocsf.Event {
	t.Helper()
	var evs []*ocsf.Event
	for _, r := range s.Rules() {
		for i := range r.Tests {
			evs = append(evs, &r.Tests[i].Event)
		}
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	decode := func(src ingest.Source, data []byte) {
		events, errs := dec.Decode(src, data)
		if len(errs) > 0 {
			t.Fatalf("decode: %v", errs[0])
		}
		for i := range events {
			evs = append(evs, &events[i])
		}
	}
	for _, dir := range []string{"stratus-red-team", "chain"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if len(files) == 0 {
			t.Fatalf("no fixtures in testdata/%s", dir)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src := ingest.SourceAuto
			if dir == "stratus-red-team" {
				src = ingest.SourceCloudTrail
			}
			decode(src, data)
		}
	}
	data, err := os.ReadFile("testdata/panther-guardduty/AWS_GuardDuty.tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec struct {
			Log json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if events, errs := dec.Decode(ingest.SourceGuardDuty, rec.Log); len(errs) == 0 {
			for i := range events {
				evs = append(evs, &events[i])
			}
		}
	}
	return evs
}

// TestUntrackedAgreesWithTracked runs every rule of the shipped pack that
// has an untracked program on every known event its sources accept (the
// events the engine would hand it), through both programs: the
// results (value or error reason) must be the same, and on events within
// the strict size hints the tracked program's actual cost must stay within
// the strict estimate that admitted the untracked one.
func TestUntrackedAgreesWithTracked(t *testing.T) {
	s, err := Load("../detections")
	if err != nil {
		t.Fatal(err)
	}
	evs := packEvents(t, s)
	fast, fitting, compared := 0, 0, 0
	for _, r := range s.Rules() {
		if r.fast == nil {
			continue
		}
		fast++
		for _, ev := range evs {
			if !r.accepts(ev) {
				continue
			}
			act := newActivation(ev, s.adapter)
			fits := act.fits(r.reads, r.fastTier)
			if fits {
				fitting++
			}
			want, det, werr := evalProgram(r.prg, r.iterates, act, 0)
			got, _, gerr := evalProgram(r.fast, r.iterates, newActivation(ev, s.adapter), 0)
			compared++
			switch {
			case (werr == nil) != (gerr == nil):
				t.Errorf("rule %s on %s: got error %v untracked, want %v", r.ID, ev.Metadata.UID, gerr, werr)
			case werr != nil:
				if errorReason(werr) != errorReason(gerr) {
					t.Errorf("rule %s on %s: got error reason %s untracked, want %s", r.ID, ev.Metadata.UID, errorReason(gerr), errorReason(werr))
				}
			case want.Equal(got) != types.True:
				t.Errorf("rule %s on %s: got %v untracked, want %v", r.ID, ev.Metadata.UID, got, want)
			}
			if c := det.ActualCost(); fits && c != nil && *c > r.fastBound {
				t.Errorf("rule %s on %s: tracked cost %d above the strict estimate %d of tier %d", r.ID, ev.Metadata.UID, *c, r.fastBound, r.fastTier)
			}
		}
	}
	t.Logf("%d of %d rules have an untracked program; %d evaluations compared, %d within the size hints", fast, s.Len(), compared, fitting)
	if fast < s.Len()/2 || fitting < compared/2 {
		t.Errorf("got %d of %d rules untracked and %d of %d evaluations within the hints, want at least half of each", fast, s.Len(), fitting, compared)
	}
}

// TestUntrackedPathTaken checks that the engine runs a bounded rule without
// cost tracking on a normal event, and tracked on an event with a field
// above the size hints, counting each in its metric.
func TestUntrackedPathTaken(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"r.yaml": ruleYAML("t.bounded", `'event.api.operation == "X" && event.message.contains("needle")'`),
	})
	reg := prometheus.NewRegistry()
	e := NewEngine(reg, nil)
	e.Swap(s)
	if s.Rules()[0].fast == nil {
		t.Fatal("got no untracked program for a bounded rule")
	}
	ev := ctEvent("X", "")
	ev.Message = "a needle"
	if got := e.Evaluate(ev); len(got) != 1 {
		t.Fatalf("got %d alerts, want 1", len(got))
	}
	untracked := e.metrics.untracked.WithLabelValues("t.bounded")
	cost := e.metrics.cost.WithLabelValues("t.bounded")
	if got, c := counterValue(t, untracked), counterValue(t, cost); got != 1 || c != 0 {
		t.Errorf("normal event: got %v untracked evaluations and cost %v, want 1 and 0", got, c)
	}
	big := ctEvent("X", "")
	big.Metadata.UID = "uid-big"
	big.Message = strings.Repeat("x", untrackedMaxString) + " needle"
	if got := e.Evaluate(big); len(got) != 1 {
		t.Fatalf("got %d alerts, want 1", len(got))
	}
	if got, c := counterValue(t, untracked), counterValue(t, cost); got != 1 || c == 0 {
		t.Errorf("oversized event: got %v untracked evaluations and cost %v, want 1 and a tracked cost", got, c)
	}
}

// TestOversizedInputsStayTracked checks that a rule with an untracked
// program runs tracked on an event with an input above the estimate's size
// hints — a long string, a long list, a long string or a long array in the
// request body — and, where that input makes it expensive, is stopped by
// the cost limit.
func TestOversizedInputsStayTracked(t *testing.T) {
	// The pattern is long enough that a scan of 2 MiB costs above
	// CostLimit, while the strict estimate over 16 KiB stays under it. Its
	// literal prefix lets the regexp package skip through the haystack
	// quickly (the cost limit stops a call only once it returns).
	const pattern = `needle[0-9a-f]{8,17}x(pin|thread|button|thimble)`
	huge := strings.Repeat("haystack ", 1<<18)
	body, _ := json.Marshal(map[string]any{"policy": huge})
	value := strings.Repeat("v", 50_000)
	tests := []struct {
		name, cond string
		ev         func() *ocsf.Event
		limit      bool // the cost limit must stop it
	}{
		{"long string", `'event.message.matches("` + pattern + `")'`, func() *ocsf.Event {
			ev := ctEvent("X", "")
			ev.Message = huge
			return ev
		}, true},
		{"long list", `'event.observables.exists(o, o.value.contains("needle"))'`, func() *ocsf.Event {
			ev := ctEvent("X", "")
			for range 1500 {
				ev.Observables = append(ev.Observables, ocsf.Observable{Value: value})
			}
			return ev
		}, true},
		{"long body string", `'string(request.?policy.orValue("")).matches("` + pattern + `")'`, func() *ocsf.Event {
			return ctEvent("X", string(body))
		}, true},
		{"long body array", `'request.?items.orValue([]).exists(i, i == 3)'`, func() *ocsf.Event {
			return ctEvent("X", `{"items":[`+strings.Repeat("1,", untrackedMaxList)+`2]}`)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.huge", tt.cond)})
			if s.Rules()[0].fast == nil {
				t.Fatalf("got no untracked program, want one (bound on small events)")
			}
			e := NewEngine(prometheus.NewRegistry(), nil)
			e.EvalTimeout = time.Minute // the cost limit, not the deadline, must stop it
			e.Swap(s)
			e.Evaluate(tt.ev())
			untracked := counterValue(t, e.metrics.untracked.WithLabelValues("t.huge"))
			cost := counterValue(t, e.metrics.cost.WithLabelValues("t.huge"))
			if untracked != 0 || cost == 0 {
				t.Errorf("got %v untracked evaluations and cost %v, want 0 and a tracked cost", untracked, cost)
			}
			limited := counterValue(t, e.metrics.errors.WithLabelValues("t.huge", ReasonCostLimit))
			if want := map[bool]float64{true: 1}[tt.limit]; limited != want {
				t.Errorf("got %v cost-limit errors, want %v", limited, want)
			}
		})
	}
}

// lineageScans scans process lineages with long regular expressions: its
// strict estimate is above the cost limit over every tier of size hints,
// its load-time estimate within MaxEstimatedCost.
const lineageScans = `event.actor.process.lineage.exists(p, p.matches("(needle|pin|thread|button|thimble|spool|bobbin|shuttle|yarn|wool|silk|linen|cotton|hemp|jute)[0-9a-f]{8,17}(x|y|z)+[a-z]{2,9}(stitch|seam)")) || event.process.lineage.exists(p, p.matches("(needle|pin|thread|button|thimble|spool|bobbin|shuttle|yarn|wool|silk|linen|cotton|hemp|jute)[0-9a-f]{8,17}(x|y|z)+[a-z]{2,9}(hem|knot)")) || event.actor.process.lineage.exists(p, p.matches("(needle|pin|thread|button|thimble|spool|bobbin|shuttle|yarn|wool|silk|linen|cotton|hemp|jute)[0-9a-f]{8,17}(x|y|z)+[a-z]{2,9}(weft|warp)"))`

// TestUnboundedRulesStayTracked checks that a rule whose strict estimate is
// above the cost limit over every tier of size hints, or unbounded, gets no
// untracked program.
func TestUnboundedRulesStayTracked(t *testing.T) {
	for _, cond := range []string{
		`'` + lineageScans + `'`,
		`'json_text(request).contains("needle")'`,
	} {
		s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.big", cond)})
		if s.Rules()[0].fast != nil {
			t.Errorf("%s: got an untracked program, want none", cond)
		}
	}
}

// TestNarrowTierRunsUntracked checks a rule whose strict estimate is above
// the cost limit over the widest size hints and within it over the narrow
// ones: it runs untracked on events within the narrow hints (up to their
// very limits) and tracked on an event between the two, with the same
// result, and the cost report says so.
func TestNarrowTierRunsUntracked(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"r.yaml": ruleYAML("t.narrow", `'event.observables.exists(o, o.value.matches("(needle|pin|thread|button)[0-9a-f]{8,17}x"))'`),
	})
	r := s.Rules()[0]
	if r.fast == nil || r.fastTier != 1 {
		t.Fatalf("got untracked program %v in tier %d, want one in the narrow tier 1", r.fast != nil, r.fastTier)
	}
	if r.strict <= CostLimit || r.fastBound > CostLimit {
		t.Fatalf("got strict estimates %d (widest) and %d (narrow), want above and within the cost limit %d", r.strict, r.fastBound, CostLimit)
	}
	e := NewEngine(prometheus.NewRegistry(), nil)
	e.Swap(s)
	untracked := e.metrics.untracked.WithLabelValues("t.narrow")
	cost := e.metrics.cost.WithLabelValues("t.narrow")
	withObservables := func(uid string, values ...string) *ocsf.Event {
		ev := ctEvent("X", "")
		ev.Metadata.UID = uid
		for _, v := range values {
			ev.Observables = append(ev.Observables, ocsf.Observable{Value: v})
		}
		return ev
	}
	atLimit := make([]string, narrowMaxList)
	atLimit[0] = strings.Repeat("y", narrowMaxString)
	atLimit[narrowMaxList-1] = "pin0123abcdx"
	tests := []struct {
		name      string
		ev        *ocsf.Event
		alerts    int
		untracked bool
	}{
		{"small event", withObservables("uid-small", "needle0123abcd89x"), 1, true},
		{"at the narrow limits", withObservables("uid-at", atLimit...), 1, true},
		{"string above the narrow limit", withObservables("uid-string", strings.Repeat("y", narrowMaxString+1), "pin0123abcdx"), 1, false},
		{"list above the narrow limit", withObservables("uid-list", append(atLimit, "z")...), 1, false},
		{"no match above the narrow limit", withObservables("uid-none", strings.Repeat("y", narrowMaxString+1)), 0, false},
	}
	for _, tt := range tests {
		u0, c0 := counterValue(t, untracked), counterValue(t, cost)
		if got := e.Evaluate(tt.ev); len(got) != tt.alerts {
			t.Errorf("%s: got %d alerts, want %d", tt.name, len(got), tt.alerts)
		}
		du, dc := counterValue(t, untracked)-u0, counterValue(t, cost)-c0
		if tt.untracked && (du != 1 || dc != 0) || !tt.untracked && (du != 0 || dc == 0) {
			t.Errorf("%s: got %v untracked evaluations and cost %v, want untracked %v", tt.name, du, dc, tt.untracked)
		}
	}
	c := r.Cost()
	if !c.Untracked || c.UntrackedWithin == "" || c.UntrackedBound != r.fastBound || c.Strict != r.strict {
		t.Errorf("cost report: untracked %v within %q bound %d strict %d; want untracked within the narrow hints, bound %d, strict %d",
			c.Untracked, c.UntrackedWithin, c.UntrackedBound, c.Strict, r.fastBound, r.strict)
	}
}

// TestEventTier checks which tier of size hints an event is measured in.
func TestEventTier(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ocsf.Event)
		want int8
	}{
		{"empty", func(*ocsf.Event) {}, 1},
		{"string at the narrow limit", func(e *ocsf.Event) { e.Message = strings.Repeat("a", narrowMaxString) }, 1},
		{"string above the narrow limit", func(e *ocsf.Event) { e.Message = strings.Repeat("a", narrowMaxString+1) }, 0},
		{"string in a list above the narrow limit", func(e *ocsf.Event) {
			e.Process.Lineage = []string{"/bin/sh", strings.Repeat("a", narrowMaxString+1)}
		}, 0},
		{"list at the narrow limit", func(e *ocsf.Event) { e.Observables = make([]ocsf.Observable, narrowMaxList) }, 1},
		{"list above the narrow limit", func(e *ocsf.Event) { e.Observables = make([]ocsf.Observable, narrowMaxList+1) }, 0},
		{"string list above the narrow limit", func(e *ocsf.Event) { e.Actor.Process.Lineage = make([]string, narrowMaxList+1) }, 0},
		{"a long list, then a longer string", func(e *ocsf.Event) {
			e.Resources = make([]ocsf.Resource, narrowMaxList+1)
			e.Resources[narrowMaxList].UID = strings.Repeat("a", untrackedMaxString+1)
		}, -1},
		{"above the widest", func(e *ocsf.Event) { e.Message = strings.Repeat("a", untrackedMaxString+1) }, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &ocsf.Event{}
			tt.edit(ev)
			if got := eventTier(ev); got != tt.want {
				t.Errorf("got tier %d, want %d", got, tt.want)
			}
		})
	}
}

// TestJSONTier checks which tier of size hints a request body is measured
// in, on both sides of the narrow tier's limits and of its short cut for
// short bodies.
func TestJSONTier(t *testing.T) {
	list := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	tests := []struct {
		name, body string
		want       int8
	}{
		{"empty", ``, 1},
		{"short", `{"a":"b","c":[1,2]}`, 1},
		{"string at the narrow limit", `{"a":"` + strings.Repeat("a", narrowMaxString) + `"}`, 1},
		{"string above the narrow limit", `{"a":"` + strings.Repeat("a", narrowMaxString+1) + `"}`, 0},
		{"non-ASCII string above the narrow limit", `{"a":"` + strings.Repeat("é", narrowMaxString/6+1) + `"}`, 0},
		{"array at the narrow limit", `{"a":` + list(narrowMaxList) + `}`, 1},
		{"array above the narrow limit", `{"a":` + list(narrowMaxList+1) + `}`, 0},
		{"commas in a short string do not count", `{"a":"` + strings.Repeat(",", 4*narrowMaxList) + `"}`, 1},
		{"many small arrays", `{"a":[` + strings.TrimSuffix(strings.Repeat(list(narrowMaxList)+",", narrowMaxList), ",") + `]}`, 1},
		{"above the widest", `{"a":` + list(untrackedMaxList+1) + `}`, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsonTier([]byte(tt.body)); got != tt.want {
				t.Errorf("got tier %d, want %d", got, tt.want)
			}
		})
	}
}

// TestTiersNest checks that each tier of size hints is within the one
// before it: an event measured within a tier is then within every wider
// one, which activation.within and the tier checks rely on.
func TestTiersNest(t *testing.T) {
	for i := 1; i < len(untrackedTiers); i++ {
		if a, b := untrackedTiers[i], untrackedTiers[i-1]; a.maxString > b.maxString || a.maxList > b.maxList {
			t.Errorf("tier %d %+v is not within tier %d %+v", i, a, i-1, b)
		}
	}
}

// TestShadowedVariableCounts checks that a variable a comprehension
// shadows, still read through a leading dot, counts as read: the rule must
// then run tracked on an event above the hints.
func TestShadowedVariableCounts(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"r.yaml": ruleYAML("t.shadow", `'["x"].exists(event, .event.message.contains("needle"))'`),
	})
	r := s.Rules()[0]
	if r.fast == nil || r.reads&readsEvent == 0 {
		t.Fatalf("got untracked program %v, reads %b; want one reading the event", r.fast != nil, r.reads)
	}
	big := ctEvent("X", "")
	big.Message = strings.Repeat("x", untrackedMaxString) + " needle"
	if newActivation(big, s.adapter).fits(r.reads, r.fastTier) {
		t.Error("an event above the hints fits a rule that reads it through a shadowed name")
	}
}

// TestNarrowRuleMeasuresEveryVariable checks that a narrow-tier rule
// reading the event and the request body runs tracked when the body is
// above the narrow hints though the event is within them, and untracked
// when both are within; a wide-tier rule on the same event, measured
// first, does not change that.
func TestNarrowRuleMeasuresEveryVariable(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"a.yaml": ruleYAML("t.wide", `'event.message.contains("needle")'`),
		"b.yaml": ruleYAML("t.narrow_body", `'event.observables.exists(o, o.value.matches("(needle|pin|thread|button)[0-9a-f]{8,17}x")) || string(request.?policy.orValue("")).contains("needle")'`),
	})
	var wide, narrow *Rule
	for _, r := range s.Rules() {
		switch r.ID {
		case "t.wide":
			wide = r
		case "t.narrow_body":
			narrow = r
		}
	}
	if wide.fast == nil || wide.fastTier != 0 || narrow.fast == nil || narrow.fastTier != 1 || narrow.reads != readsEvent|readsRequest {
		t.Fatalf("got tiers %d and %d, reads %b; want a wide rule and a narrow one reading event and request", wide.fastTier, narrow.fastTier, narrow.reads)
	}
	for _, tt := range []struct {
		name string
		body string
		want bool
	}{
		{"body within", `{"policy":"` + strings.Repeat("p", narrowMaxString) + `"}`, true},
		{"body above", `{"policy":"` + strings.Repeat("p", narrowMaxString+1) + `"}`, false},
	} {
		act := newActivation(ctEvent("X", tt.body), s.adapter)
		if !act.fits(wide.reads, wide.fastTier) {
			t.Errorf("%s: the wide rule does not fit a small event", tt.name)
		}
		if got := act.fits(narrow.reads, narrow.fastTier); got != tt.want {
			t.Errorf("%s: the narrow rule fits %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestNarrowBoundHoldsAtTheLimits runs the tracked program of a narrow-tier
// rule on the costliest event within the narrow hints (every list full,
// every string at the limit, no match): its actual cost must stay within
// the estimate that admitted the untracked program.
func TestNarrowBoundHoldsAtTheLimits(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"r.yaml": ruleYAML("t.narrow", `'event.observables.exists(o, o.value.matches("(needle|pin|thread|button)[0-9a-f]{8,17}x"))'`),
	})
	r := s.Rules()[0]
	ev := ctEvent("X", "")
	for range narrowMaxList {
		ev.Observables = append(ev.Observables, ocsf.Observable{Value: strings.Repeat("needle0123abcd", narrowMaxString/14)})
	}
	act := newActivation(ev, s.adapter)
	if !act.fits(r.reads, r.fastTier) {
		t.Fatal("the event at the narrow limits does not fit the narrow tier")
	}
	_, det, err := evalProgram(r.prg, r.iterates, act, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c := det.ActualCost(); c == nil || *c > r.fastBound {
		t.Errorf("got tracked cost %v, want at most the narrow estimate %d", c, r.fastBound)
	}
}

// TestEventFits checks the widest tier's limits.
func TestEventFits(t *testing.T) {
	if !eventPlan.ok {
		t.Fatal("the size plan of ocsf.Event cannot measure it: every event would run tracked")
	}
	tests := []struct {
		name string
		edit func(*ocsf.Event)
		want bool
	}{
		{"empty", func(*ocsf.Event) {}, true},
		{"string at the limit", func(e *ocsf.Event) { e.Actor.Process.CmdLine = strings.Repeat("a", untrackedMaxString) }, true},
		{"nested string above", func(e *ocsf.Event) { e.Actor.Process.CmdLine = strings.Repeat("a", untrackedMaxString+1) }, false},
		{"list at the limit", func(e *ocsf.Event) { e.Resources = make([]ocsf.Resource, untrackedMaxList) }, true},
		{"list above", func(e *ocsf.Event) { e.Resources = make([]ocsf.Resource, untrackedMaxList+1) }, false},
		{"string list above", func(e *ocsf.Event) { e.Process.Lineage = make([]string, untrackedMaxList+1) }, false},
		{"string in a list element", func(e *ocsf.Event) {
			e.Observables = []ocsf.Observable{{Value: strings.Repeat("a", untrackedMaxString+1)}}
		}, false},
		{"unreadable raw is not measured", func(e *ocsf.Event) { e.Raw = make([]byte, 1<<20) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &ocsf.Event{}
			tt.edit(ev)
			if got := eventTier(ev) >= 0; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJSONFits(t *testing.T) {
	long := strings.Repeat("a", untrackedMaxString)
	list := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	tests := []struct {
		name, body string
		want       bool
	}{
		{"empty", ``, true},
		{"small", `{"a":"b","c":[1,2]}`, true},
		{"string at the limit", `{"a":"` + long + `"}`, true},
		{"string above", `{"a":"` + long + `b"}`, false},
		{"key above", `{"` + long + `b":1}`, false},
		{"escapes count once", `{"a":"` + strings.Repeat(`\n`, untrackedMaxString) + `"}`, true},
		{"unicode escapes count 3", `{"a":"` + strings.Repeat(`\u00e9`, untrackedMaxString/3+1) + `"}`, false},
		{"non-ASCII bytes count 3", `{"a":"` + strings.Repeat("é", untrackedMaxString/6+1) + `"}`, false},
		{"commas in strings do not count", `{"a":"` + strings.Repeat(",", 1000) + `"}`, true},
		{"array at the limit", `{"a":` + list(untrackedMaxList) + `}`, true},
		{"array above", `{"a":` + list(untrackedMaxList+1) + `}`, false},
		{"nested array above", `{"a":[[` + list(untrackedMaxList+1) + `]]}`, false},
		{"object above", `{` + strings.TrimSuffix(strings.Repeat(`"k":1,`, untrackedMaxList+1), ",") + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsonTier([]byte(tt.body)) >= 0; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkEventTier measures the once-per-event measure of the untracked
// path on the events of the pack's tests and fixtures.
func BenchmarkEventTier(b *testing.B) {
	s, err := Load("../detections")
	if err != nil {
		b.Fatal(err)
	}
	evs := packEvents(&testing.T{}, s)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := evs[i%len(evs)]
		eventTier(ev)
		jsonTier(ev.API.Request.Data)
	}
}

// TestUntrackedPathHasNoDeadline checks that an iterating rule on an event
// within the size hints runs untracked without a deadline context: a
// deadline of 1ns does not stop it, and its evaluation allocates no more
// than its untracked program alone. The same rule on an event beyond the
// hints runs tracked and is stopped by its deadline.
func TestUntrackedPathHasNoDeadline(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"slow.yaml": ruleYAML("t.slow", `'event.observables.exists(a, event.observables.exists(b, a.type_id == b.type_id + 1000))'`),
	})
	r := s.Rules()[0]
	if r.fast == nil || !r.iterates {
		t.Fatalf("got untracked program %v, iterates %v; want an iterating rule with an untracked program", r.fast != nil, r.iterates)
	}
	e := NewEngine(prometheus.NewRegistry(), nil)
	e.EvalTimeout = time.Nanosecond
	e.Swap(s)
	withObservables := func(n int) *ocsf.Event {
		ev := ctEvent("X", "")
		for range n {
			ev.Observables = append(ev.Observables, ocsf.Observable{Value: "xxxxxxxx"})
		}
		return ev
	}

	small := withObservables(untrackedMaxList) // 65,536 inner iterations
	act := newActivation(small, s.adapter)
	m := e.set.Load().rules[r]
	matched, reason, err := e.eval(r, act, m)
	if err != nil || matched {
		t.Fatalf("within the hints: got matched %v, reason %q, err %v; want false and no error (no deadline)", matched, reason, err)
	}
	if got := counterValue(t, m.untracked); got != 1 {
		t.Fatalf("got %v untracked evaluations, want 1", got)
	}
	act = newActivation(withObservables(16), s.adapter) // a cheaper one to count allocations on
	// The program alone, the engine's untracked path, and the program under
	// a context with a timeout (what the path did before): the context and
	// its timer cost about ten allocations, the race detector's noise one or
	// two.
	direct := testing.AllocsPerRun(20, func() { _, _, _ = r.fast.Eval(act) })
	viaEngine := testing.AllocsPerRun(20, func() { _, _, _ = e.eval(r, act, nil) })
	withDeadline := testing.AllocsPerRun(20, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, _, _ = r.fast.ContextEval(ctx, act)
		cancel()
	})
	if withDeadline-direct < 4 {
		t.Fatalf("got %v allocations with a deadline context and %v without: the comparison cannot tell them apart", withDeadline, direct)
	}
	if viaEngine >= direct+(withDeadline-direct)/2 {
		t.Errorf("got %v allocations per untracked evaluation, want about the program's own %v, not the %v of a deadline context", viaEngine, direct, withDeadline)
	}

	big := withObservables(untrackedMaxList + 1)
	_, reason, err = e.eval(r, newActivation(big, s.adapter), m)
	if err == nil || reason != ReasonTimeout {
		t.Errorf("beyond the hints: got reason %q, err %v; want %q (tracked, under the deadline)", reason, err, ReasonTimeout)
	}
	if got := counterValue(t, m.untracked); got != 1 {
		t.Errorf("got %v untracked evaluations after the oversized event, want still 1", got)
	}
}
