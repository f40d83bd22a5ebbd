package rules

import "github.com/musubi-xdr/musubi/ocsf"

// index finds the candidate rules of an event. Each rule sits in exactly one
// bucket, chosen by its most selective source constraint: its operations,
// else its classes, else its log names, else the catch-all list. An event
// looks up its own operation, class and log name, so the work per event
// grows with the number of rules that could match it, not with the size of
// the rule set.
type index struct {
	byOp    map[string][]*Rule
	byClass map[int][]*Rule
	byLog   map[string][]*Rule
	any     []*Rule
}

func buildIndex(rules []*Rule) index {
	ix := index{byOp: map[string][]*Rule{}, byClass: map[int][]*Rule{}, byLog: map[string][]*Rule{}}
	for _, r := range rules {
		if r.Status == "deprecated" {
			continue // kept in the set for lint and tests, never evaluated
		}
		switch {
		case len(r.operations) > 0:
			for _, op := range uniq(r.operations) {
				ix.byOp[op] = append(ix.byOp[op], r)
			}
		case len(r.classUIDs) > 0:
			for _, c := range uniq(r.classUIDs) {
				ix.byClass[c] = append(ix.byClass[c], r)
			}
		case len(r.logNames) > 0:
			for _, l := range uniq(r.logNames) {
				ix.byLog[l] = append(ix.byLog[l], r)
			}
		default:
			ix.any = append(ix.any, r)
		}
	}
	return ix
}

// candidates calls f for every rule whose sources accept ev.
func (ix *index) candidates(ev *ocsf.Event, f func(*Rule)) {
	visit := func(rs []*Rule) {
		for _, r := range rs {
			if r.accepts(ev) {
				f(r)
			}
		}
	}
	if ev.API.Operation != "" {
		visit(ix.byOp[ev.API.Operation])
	}
	visit(ix.byClass[ev.ClassUID])
	visit(ix.byLog[ev.Metadata.LogName])
	visit(ix.any)
}

func uniq[T comparable](xs []T) []T {
	var out []T
	seen := map[T]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
