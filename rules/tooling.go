package rules

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/rules/attack"
)

// TestResult is the outcome of one inline test.
type TestResult struct {
	Name   string `json:"name"`
	Line   int    `json:"line"`
	Source string `json:"source,omitempty"` // the source of a raw record; "" for an OCSF event
	// Rule is the rule an exception's test ran; Want and Got then say
	// whether the exception suppressed its match.
	Rule string `json:"rule,omitempty"`
	Want bool   `json:"want_match"`
	Got  bool   `json:"got_match"`
	// ExceptedBy names the exception that suppressed the match, if any.
	ExceptedBy string `json:"excepted_by,omitempty"`
	Error      string `json:"error,omitempty"`
	Pass       bool   `json:"pass"`
}

// RunTests runs the rule's inline tests, without exceptions (see
// Set.RunTests). A test event must also pass the rule's sources, since the
// engine never shows it to the rule otherwise.
func (r *Rule) RunTests() []TestResult { return r.runTests(r.Tests, nil, time.Now()) }

// RunTests runs the inline tests of rule r of the set as the engine would
// see them at now, honouring the set's exceptions: a match that an active
// exception covers raises no alert, so it counts as no match, and a test
// with excepted: true passes only when the condition matches and an
// exception covers it.
func (s *Set) RunTests(r *Rule, now time.Time) []TestResult {
	return r.runTests(r.Tests, s.ExceptionsFor(r), now)
}

func (r *Rule) runTests(tests []RuleTest, excepts []*Exception, now time.Time) []TestResult {
	e := NewEngine(nil, nil)
	e.Now = func() time.Time { return now }
	refs := make([]exceptionRef, len(excepts))
	for i, x := range excepts {
		refs[i] = exceptionRef{x: x}
	}
	env, _ := Env()
	var out []TestResult
	for i := range tests {
		t := &tests[i]
		res := TestResult{Name: t.Name, Line: t.Line, Source: t.Source, Want: t.Match}
		ev := t.Event
		if r.accepts(&ev) {
			act := newActivation(&ev, env.CELTypeAdapter())
			got, _, err := e.eval(r, act, nil)
			res.Got = got
			switch {
			case err != nil:
				res.Error = err.Error()
			case got && !r.pre.Admits(&ev):
				// The engine checks the prerequisites first and would
				// never have run the condition.
				res.Error = "the condition's prefilter rejects an event the condition matches"
			case got:
				if x := e.exceptedBy(r, &ev, act, refs); x != nil {
					res.Got, res.ExceptedBy = false, x.ID
				}
			}
			if t.Excepted && res.ExceptedBy == "" && res.Error == "" {
				res.Error = "the test expects an exception to cover the match, but "
				if got {
					res.Error += "no active exception does"
				} else {
					res.Error += "the condition does not match"
				}
			}
		} else if t.Match || t.Excepted {
			res.Error = "the event does not pass the rule's sources (log_names, classes, operations)"
		}
		res.Pass = res.Got == res.Want && res.Error == ""
		out = append(out, res)
	}
	return out
}

// RuleTestReport is the test outcome of one rule.
type RuleTestReport struct {
	RuleID string       `json:"rule_id"`
	File   string       `json:"file"`
	Tests  []TestResult `json:"tests"`
}

// ExceptionTestReport is the test outcome of one exception; in its
// results Want and Got say whether the exception suppressed the match.
type ExceptionTestReport struct {
	ExceptionID string       `json:"exception_id"`
	File        string       `json:"file"`
	Tests       []TestResult `json:"tests"`
}

// TestReport is what Test returns.
type TestReport struct {
	Dir        string                `json:"dir"`
	Rules      []RuleTestReport      `json:"rules"`
	Exceptions []ExceptionTestReport `json:"exceptions,omitempty"`
	Passed     int                   `json:"passed"`
	Failed     int                   `json:"failed"`
	Problems   []*Problem            `json:"problems,omitempty"`
	OK         bool                  `json:"ok"`
}

// Test loads dir and runs every rule's inline tests. Load problems are
// reported in Problems; OK is true when everything loaded and passed.
func Test(dir string) *TestReport {
	rep := &TestReport{Dir: dir}
	now := time.Now()
	s, err := Load(dir)
	if err != nil {
		rep.Problems = Problems(err)
		return rep
	}
	for _, r := range s.Rules() {
		rr := RuleTestReport{RuleID: r.ID, File: r.File, Tests: s.RunTests(r, now)}
		for _, t := range rr.Tests {
			if t.Pass {
				rep.Passed++
			} else {
				rep.Failed++
			}
		}
		rep.Rules = append(rep.Rules, rr)
	}
	for _, x := range s.Exceptions() {
		if len(x.Tests) == 0 {
			continue
		}
		xr := ExceptionTestReport{ExceptionID: x.ID, File: x.File, Tests: s.RunExceptionTests(x, now)}
		for _, t := range xr.Tests {
			if t.Pass {
				rep.Passed++
			} else {
				rep.Failed++
			}
		}
		rep.Exceptions = append(rep.Exceptions, xr)
	}
	rep.OK = rep.Failed == 0
	return rep
}

// operationTest finds a condition that pins api.operation to a constant.
var operationTest = regexp.MustCompile(`event\.api\.operation\s*(==|in\s*\[)`)

// LintReport is what Lint returns.
type LintReport struct {
	Dir      string     `json:"dir"`
	Rules    int        `json:"rules"`
	Skipped  []string   `json:"skipped,omitempty"`
	Problems []*Problem `json:"problems"`
	// Warnings do not fail the lint: exceptions that expired (they no
	// longer suppress) or expire within ExpiryWarning.
	Warnings   []*Problem `json:"warnings,omitempty"`
	Exceptions int        `json:"exceptions"`
	OK         bool       `json:"ok"`

	files map[string]string // rule id → file, for LintCases
}

// Lint loads dir and checks what Load tolerates but a shipped rule must
// have: a description, status, stage, ATT&CK tactic and technique, sources,
// entities, and at least one matching and one non-matching inline test.
// It also rejects, at its position, every event attribute the condition or
// suppression key reads that none of the rule's classes defines (all of
// Musubi's classes when it declares none), and every top-level attribute of
// a test event that the event's class does not define: a network rule that
// reads event.process instead of event.actor.process would never match an
// event in the standard OCSF shape.
func Lint(dir string) *LintReport {
	rep := &LintReport{Dir: dir, Problems: []*Problem{}}
	s, err := Load(dir)
	if err != nil {
		rep.Problems = Problems(err)
		return rep
	}
	rep.Rules, rep.Skipped, rep.Exceptions = s.Len(), s.Skipped, len(s.Exceptions())
	// An exception naming no rule is stale or misspelled: an error here,
	// a warning at load (removing a rule must not stop a reload).
	rep.Problems = append(rep.Problems, s.unmatched...)
	rep.Warnings = slices.DeleteFunc(s.Warnings(), func(w *Problem) bool { return slices.Contains(s.unmatched, w) })
	for _, x := range s.Exceptions() {
		var sup, kept bool
		for _, t := range x.Tests {
			sup, kept = sup || t.Suppressed, kept || !t.Suppressed
		}
		if !sup || !kept {
			rep.Warnings = append(rep.Warnings, &Problem{File: x.File, Line: x.Line, Col: 1, RuleID: x.ID,
				Msg: "exception: tests: give at least one event the exception must suppress (suppressed: true) and one of the same rule it must not (suppressed: false)"})
		}
	}
	rep.files = make(map[string]string, s.Len())
	for _, r := range s.Rules() {
		rep.files[r.ID] = r.File
		bad := func(format string, args ...any) {
			rep.Problems = append(rep.Problems, &Problem{File: r.File, Line: r.Line, Col: 1, RuleID: r.ID, Msg: fmt.Sprintf(format, args...)})
		}
		if r.Description == "" {
			bad("description is missing")
		}
		if r.Status == "" {
			bad("status is missing")
		}
		if r.Stage == "" {
			bad("stage is missing")
		}
		switch {
		case len(r.Tactics) > 0 && len(r.Techniques) == 0 && r.Meta.SigmaID != "":
			// A Sigma rule may name a tactic and no technique (or only
			// techniques newer than the bundled matrix); its import keeps
			// the source's mapping rather than invent one.
			rep.Warnings = append(rep.Warnings, &Problem{File: r.File, Line: r.Line, Col: 1, RuleID: r.ID,
				Msg: fmt.Sprintf("attack: the Sigma rule names no technique of ATT&CK Enterprise %s, so it is in no technique of the coverage layer; add one if you know it", attack.Version)})
		case len(r.Tactics) == 0 || len(r.Techniques) == 0:
			bad("attack: at least one tactic and one technique are required")
		}
		if len(r.Sources.LogNames)+len(r.Sources.Classes)+len(r.Sources.Operations) == 0 {
			bad("sources: name the log names, classes or operations the rule can match, so the index can skip it")
		}
		if len(r.Sources.Operations) == 0 && operationTest.MatchString(r.Condition) {
			bad("sources: the condition tests event.api.operation; list the operations under sources.operations so other events skip the rule")
		}
		if len(r.Entities) == 0 {
			bad("entities: name the observables the alert carries")
		}
		var match, noMatch bool
		for _, t := range r.Tests {
			match = match || t.Match
			noMatch = noMatch || !t.Match
		}
		if !match || !noMatch {
			bad("tests: at least one matching and one non-matching test are required")
		}
		rep.Problems = append(rep.Problems, r.checkClassFields()...)
		rep.Problems = append(rep.Problems, r.checkAttack()...)
	}
	rep.OK = len(rep.Problems) == 0
	return rep
}

// NavigatorLayer is an ATT&CK Navigator layer (format version 4.5).
type NavigatorLayer struct {
	Name         string               `json:"name"`
	Versions     map[string]string    `json:"versions"`
	Domain       string               `json:"domain"`
	Description  string               `json:"description"`
	Techniques   []NavigatorTechnique `json:"techniques"`
	Gradient     map[string]any       `json:"gradient"`
	LegendItems  []any                `json:"legendItems"`
	Metadata     []map[string]string  `json:"metadata"`
	HideDisabled bool                 `json:"hideDisabled"`
}

// NavigatorTechnique is one scored technique of a layer.
type NavigatorTechnique struct {
	TechniqueID string `json:"techniqueID"`
	Tactic      string `json:"tactic,omitempty"`
	Score       int    `json:"score"`
	Comment     string `json:"comment"`
	Enabled     bool   `json:"enabled"`
}

// CoverageReport is what Coverage returns.
type CoverageReport struct {
	Dir        string              `json:"dir"`
	Rules      int                 `json:"rules"`
	Techniques map[string][]string `json:"techniques"` // technique id → rule ids
	Tactics    map[string]int      `json:"tactics"`    // tactic id → rules
	Stages     map[string]int      `json:"stages"`     // stage → rules
	Sources    map[string]int      `json:"sources"`    // log name → rules
	Layer      NavigatorLayer      `json:"layer"`
	Problems   []*Problem          `json:"problems,omitempty"`
	OK         bool                `json:"ok"`
}

// Coverage loads dir and summarises its ATT&CK coverage, with a Navigator
// layer that scores each technique by the number of rules detecting it.
func Coverage(dir string) *CoverageReport {
	rep := &CoverageReport{Dir: dir, Techniques: map[string][]string{}, Tactics: map[string]int{}, Stages: map[string]int{}, Sources: map[string]int{}}
	s, err := Load(dir)
	if err != nil {
		rep.Problems = Problems(err)
		return rep
	}
	rep.Rules = s.Len()
	type key struct{ tech, tactic string }
	cells := map[key][]string{}
	for _, r := range s.Rules() {
		for _, t := range r.Techniques {
			rep.Techniques[t] = append(rep.Techniques[t], r.ID)
			placed := false
			for _, ta := range r.Tactics {
				// only the columns MITRE puts the technique in (checked by Lint)
				if attack.InTactic(t, ta) {
					cells[key{t, tacticNames[ta]}] = append(cells[key{t, tacticNames[ta]}], r.ID)
					placed = true
				}
			}
			if !placed {
				cells[key{t, ""}] = append(cells[key{t, ""}], r.ID)
			}
		}
		for _, ta := range r.Tactics {
			rep.Tactics[ta]++
		}
		if r.Stage != "" {
			rep.Stages[r.Stage]++
		}
		for _, l := range r.Sources.LogNames {
			rep.Sources[l]++
		}
	}
	maxScore := 1
	for k, ids := range cells {
		rep.Layer.Techniques = append(rep.Layer.Techniques, NavigatorTechnique{
			TechniqueID: k.tech, Tactic: k.tactic, Score: len(ids), Enabled: true,
			Comment: strings.Join(ids, ", "),
		})
		maxScore = max(maxScore, len(ids))
	}
	sort.Slice(rep.Layer.Techniques, func(i, j int) bool {
		a, b := rep.Layer.Techniques[i], rep.Layer.Techniques[j]
		if a.TechniqueID != b.TechniqueID {
			return a.TechniqueID < b.TechniqueID
		}
		return a.Tactic < b.Tactic
	})
	rep.Layer.Name = "Musubi detections"
	rep.Layer.Versions = map[string]string{"attack": strings.SplitN(attack.Version, ".", 2)[0], "navigator": "4.9.5", "layer": "4.5"}
	rep.Layer.Domain = "enterprise-attack"
	rep.Layer.Description = fmt.Sprintf("%d Musubi detection rules; score = rules per technique", rep.Rules)
	rep.Layer.Gradient = map[string]any{"colors": []string{"#ffffff", "#66b1ff", "#0b5394"}, "minValue": 0, "maxValue": maxScore}
	rep.Layer.LegendItems = []any{}
	rep.Layer.Metadata = []map[string]string{{"name": "source", "value": dir}}
	if s.Commit != "" {
		rep.Layer.Metadata = append(rep.Layer.Metadata, map[string]string{"name": "commit", "value": s.Commit})
	}
	rep.OK = true
	return rep
}
