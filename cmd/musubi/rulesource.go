package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/rules"
)

// rulesAdapter serves the API's RuleSource from the rule engine: the
// detection rules of the running set and the correlation (sequence) rules
// in service, with per-rule counters read from the metrics registry.
type rulesAdapter struct {
	engine  *rules.Engine
	manager *rules.Manager
	// sequences returns the correlation rules in service (the correlator's
	// after a reload; those loaded at start where no correlator runs).
	sequences func() []*correlate.SequenceRule
	gatherer  prometheus.Gatherer
}

func (a rulesAdapter) Rules() []api.RuleInfo {
	stats := ruleStats(a.gatherer)
	var out []api.RuleInfo
	if set := a.engine.Set(); set != nil {
		for _, r := range set.Rules() {
			s := stats[r.ID]
			out = append(out, api.RuleInfo{
				ID: r.ID, Kind: rules.KindDetection, Title: r.Title, Version: r.Version, Severity: r.Severity,
				Stage: r.Stage, Tactics: r.Tactics, Techniques: r.Techniques,
				Evaluations: s.evaluations, Matches: s.matches, Errors: s.errors,
			})
		}
	}
	for _, r := range a.sequences() {
		s := stats[r.ID]
		out = append(out, api.RuleInfo{
			ID: r.ID, Kind: rules.KindCorrelation, Title: r.Title, Version: r.Version, Severity: r.Severity,
			Stage: r.Stage, Tactics: r.Tactics, Techniques: r.Techniques, Matches: s.sequenceMatches,
		})
	}
	return out
}

func (a rulesAdapter) Reload() error { return a.manager.Reload() }

type ruleCounters struct{ evaluations, matches, errors, sequenceMatches uint64 }

// ruleStats sums the per-rule counters of the rule engine and the
// correlator by rule id.
func ruleStats(g prometheus.Gatherer) map[string]ruleCounters {
	out := map[string]ruleCounters{}
	if g == nil {
		return out
	}
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return out
	}
	for _, mf := range mfs {
		var field func(*ruleCounters) *uint64
		switch mf.GetName() {
		case "musubi_rules_evaluations_total":
			field = func(c *ruleCounters) *uint64 { return &c.evaluations }
		case "musubi_rules_matches_total":
			field = func(c *ruleCounters) *uint64 { return &c.matches }
		case "musubi_rules_errors_total":
			field = func(c *ruleCounters) *uint64 { return &c.errors }
		case "musubi_correlate_sequence_matches_total":
			field = func(c *ruleCounters) *uint64 { return &c.sequenceMatches }
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			rule := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "rule" {
					rule = l.GetValue()
				}
			}
			if rule == "" || m.GetCounter() == nil {
				continue
			}
			c := out[rule]
			*field(&c) += uint64(m.GetCounter().GetValue())
			out[rule] = c
		}
	}
	return out
}
