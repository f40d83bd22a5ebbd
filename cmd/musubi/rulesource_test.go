package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRuleStats reads the per-rule counters of the rule engine and the
// correlator from a registry.
func TestRuleStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	evals := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "musubi_rules_evaluations_total"}, []string{"rule"})
	matches := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "musubi_rules_matches_total"}, []string{"rule"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "musubi_rules_errors_total"}, []string{"rule", "reason"})
	seq := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "musubi_correlate_sequence_matches_total"}, []string{"rule"})
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "musubi_other_total"}, []string{"rule"})
	reg.MustRegister(evals, matches, errs, seq, other)
	evals.WithLabelValues("r1").Add(10)
	matches.WithLabelValues("r1").Add(3)
	errs.WithLabelValues("r1", "timeout").Add(1)
	errs.WithLabelValues("r1", "cost_limit").Add(2)
	seq.WithLabelValues("chain").Add(4)
	other.WithLabelValues("r1").Add(100)

	got := ruleStats(reg)
	want := map[string]ruleCounters{"r1": {evaluations: 10, matches: 3, errors: 3}, "chain": {sequenceMatches: 4}}
	if len(got) != len(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("rule %s: got %+v, want %+v", id, got[id], w)
		}
	}
	if len(ruleStats(nil)) != 0 {
		t.Errorf("a nil gatherer gives stats")
	}
}
