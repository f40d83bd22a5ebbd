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
			fits := act.fits(r.reads)
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
			if c := det.ActualCost(); fits && c != nil && *c > r.strict {
				t.Errorf("rule %s on %s: tracked cost %d above the strict estimate %d", r.ID, ev.Metadata.UID, *c, r.strict)
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

// TestUnboundedRulesStayTracked checks that a rule whose strict estimate is
// above the cost limit or unbounded gets no untracked program.
func TestUnboundedRulesStayTracked(t *testing.T) {
	for _, cond := range []string{
		`'event.observables.exists(o, o.value.matches("(needle|pin|thread|button)[0-9a-f]{8,17}"))'`,
		`'json_text(request).contains("needle")'`,
	} {
		s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.big", cond)})
		if s.Rules()[0].fast != nil {
			t.Errorf("%s: got an untracked program, want none", cond)
		}
	}
}

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
			if got := eventFits(ev); got != tt.want {
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
			if got := jsonFits([]byte(tt.body)); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkEventFits measures the once-per-event check of the untracked
// path on the events of the pack's tests and fixtures.
func BenchmarkEventFits(b *testing.B) {
	s, err := Load("../detections")
	if err != nil {
		b.Fatal(err)
	}
	evs := packEvents(&testing.T{}, s)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := evs[i%len(evs)]
		eventFits(ev)
		jsonFits(ev.API.Request.Data)
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
