package rules

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// CostReport is what `musubi rules lint -cost` shows: for every detection
// rule (and every correlation stage condition the caller adds), its static
// cost, whether the engine evaluates it with or without cost tracking, and
// which literal prerequisites keep it from running on most events.
type CostReport struct {
	Rules []RuleCost `json:"rules"`
	// Untracked counts the rules with an untracked program; Prefiltered
	// those gated by more than their classes and log names.
	Untracked   int `json:"untracked"`
	Prefiltered int `json:"prefiltered"`
}

// RuleCost is the cost and gating of one condition.
type RuleCost struct {
	RuleID string `json:"rule_id"`
	// Kind is KindDetection or KindCorrelation; Stage names the stage of a
	// correlation rule.
	Kind  string `json:"kind"`
	Stage string `json:"stage,omitempty"`
	File  string `json:"file"`
	Line  int    `json:"line"`
	// Estimate is the load-time worst-case estimate, checked against
	// MaxEstimatedCost. Strict is the estimate under the widest strict
	// size hints of the untracked path (see untracked.go); Unbounded says
	// it has no bound (Strict is then 0).
	Estimate  uint64 `json:"estimate"`
	Strict    uint64 `json:"strict_estimate,omitempty"`
	Unbounded bool   `json:"unbounded,omitempty"`
	// Untracked: events within the size hints run the program without
	// cost tracking or deadline. Otherwise TrackedBecause says why every
	// evaluation runs tracked. UntrackedWithin, when set, names narrower
	// hints than the widest ("strings ≤ 2048 B, lists ≤ 64"): the strict
	// estimate is above the cost limit over the widest, and UntrackedBound
	// is the estimate over these, which events must be within to run
	// untracked (the others run tracked).
	Untracked       bool   `json:"untracked"`
	UntrackedWithin string `json:"untracked_within,omitempty"`
	UntrackedBound  uint64 `json:"untracked_bound,omitempty"`
	TrackedBecause  string `json:"tracked_because,omitempty"`
	// Deadline: tracked evaluations run under the evaluation deadline (the
	// condition iterates).
	Deadline bool `json:"deadline"`
	// Sources are the index's prerequisites (the rule's sources);
	// Prefilter the literal conjuncts of the condition checked before it
	// runs. Prefiltered is true when either rules out events of the
	// rule's own classes (an operation, or a check on another field);
	// Gate then lists them, else it says which events run the condition.
	Sources     []string `json:"sources,omitempty"`
	Prefilter   []string `json:"prefilter,omitempty"`
	Prefiltered bool     `json:"prefiltered"`
	Gate        string   `json:"gate"`
}

// Cost reports the cost and gating of every rule of the set, most
// expensive first.
func (s *Set) Cost() *CostReport {
	rep := &CostReport{Rules: []RuleCost{}}
	for _, r := range s.Rules() {
		rep.Add(r.Cost())
	}
	return rep
}

// Add adds c to the report, keeping it sorted and counted.
func (rep *CostReport) Add(c RuleCost) {
	rep.Rules = append(rep.Rules, c)
	if c.Untracked {
		rep.Untracked++
	}
	if c.Prefiltered {
		rep.Prefiltered++
	}
	slices.SortStableFunc(rep.Rules, func(a, b RuleCost) int {
		if a.Unbounded != b.Unbounded {
			if a.Unbounded {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Strict, a.Strict), cmp.Compare(b.Estimate, a.Estimate),
			cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Stage, b.Stage))
	})
}

// Cost reports the rule's cost and gating.
func (r *Rule) Cost() RuleCost {
	c := RuleCost{RuleID: r.ID, Kind: KindDetection, File: r.File, Line: r.Line,
		Estimate: r.estimate, Untracked: r.fast != nil, TrackedBecause: r.trackedWhy,
		Deadline: r.iterates, Prefilter: r.pre.Checks()}
	if r.strict == math.MaxUint64 {
		c.Unbounded = true
	} else {
		c.Strict = r.strict
	}
	if r.fast != nil && r.fastTier > 0 {
		h := untrackedTiers[r.fastTier]
		c.UntrackedWithin = fmt.Sprintf("strings ≤ %d B, lists ≤ %d", h.maxString, h.maxList)
		c.UntrackedBound = r.fastBound
	}
	if len(r.Sources.Operations) > 0 {
		c.Sources = append(c.Sources, listCheck("event.api.operation", r.Sources.Operations))
	}
	if len(r.Sources.Classes) > 0 {
		classes := make([]string, len(r.Sources.Classes))
		for i, cl := range r.Sources.Classes {
			classes[i] = strconv.Itoa(cl)
		}
		c.Sources = append(c.Sources, listOf("event.class_uid", classes))
	}
	if len(r.Sources.LogNames) > 0 {
		c.Sources = append(c.Sources, listCheck("event.metadata.log_name", r.Sources.LogNames))
	}
	c.Prefiltered = len(r.Sources.Operations) > 0 || r.pre.Narrows()
	switch {
	case r.Status == "deprecated":
		c.Gate = "never (deprecated)"
	case c.Prefiltered:
		c.Gate = gate(c.Sources, c.Prefilter)
	default:
		c.Gate = everyEvent(r.Sources.Classes, r.Sources.LogNames)
	}
	return c
}

// Cost reports the cost and gating of a correlation stage's condition:
// stage conditions always run tracked. logNames and operations are the
// stage's own filters.
func (c *Condition) Cost(ruleID, stage, file string, line int, logNames, operations []string) RuleCost {
	rc := RuleCost{RuleID: ruleID, Kind: KindCorrelation, Stage: stage, File: file, Line: line,
		Estimate: c.estimate, TrackedBecause: "correlation stage conditions run tracked",
		Deadline: c.iterates, Prefilter: c.pre.Checks()}
	if c.strict == math.MaxUint64 {
		rc.Unbounded = true
	} else {
		rc.Strict = c.strict
	}
	if len(operations) > 0 {
		rc.Sources = append(rc.Sources, listCheck("event.api.operation", operations))
	}
	if len(logNames) > 0 {
		rc.Sources = append(rc.Sources, listCheck("event.metadata.log_name", logNames))
	}
	rc.Prefiltered = len(operations) > 0 || c.pre.Narrows()
	if rc.Prefiltered {
		rc.Gate = gate(rc.Sources, rc.Prefilter)
	} else {
		rc.Gate = everyEvent(nil, logNames)
	}
	return rc
}

// gate joins the prerequisites of the index and the prefilter, each once.
func gate(sources, prefilter []string) string {
	all := slices.Clone(sources)
	for _, p := range prefilter {
		if !slices.Contains(all, p) {
			all = append(all, p)
		}
	}
	return strings.Join(all, " && ")
}

// listCheck is `path == "v"` or `path in ["v", …]`.
func listCheck(path string, vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return listOf(path, q)
}

func listOf(path string, lits []string) string {
	if len(lits) == 1 {
		return path + " == " + lits[0]
	}
	return path + " in [" + strings.Join(lits, ", ") + "]"
}

// everyEvent says which events run a condition that nothing but its
// classes and log names gates.
func everyEvent(classes []int, logNames []string) string {
	var of []string
	if len(classes) > 0 {
		cs := make([]string, len(classes))
		for i, c := range classes {
			cs[i] = strconv.Itoa(c)
		}
		of = append(of, "class "+strings.Join(cs, "/"))
	}
	if len(logNames) > 0 {
		of = append(of, "log "+strings.Join(logNames, "/"))
	}
	if len(of) == 0 {
		return "evaluated for every event"
	}
	return fmt.Sprintf("evaluated for every event of %s", strings.Join(of, ", "))
}
