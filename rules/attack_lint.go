package rules

import (
	"fmt"
	"strings"

	"github.com/musubi-xdr/musubi/rules/attack"
)

// checkAttack validates a rule's ATT&CK mapping against the bundled
// Enterprise matrix (package attack): every technique must exist (not
// revoked or deprecated), every technique must belong to at least one of
// the rule's tactics, and every tactic must hold at least one of its
// techniques, so the Navigator shows each technique in a column where
// MITRE puts it.
func (r *Rule) checkAttack() []*Problem {
	var out []*Problem
	bad := func(format string, args ...any) {
		out = append(out, &Problem{File: r.File, Line: r.Line, Col: 1, RuleID: r.ID, Msg: "attack: " + fmt.Sprintf(format, args...)})
	}
	var known []string
	for _, te := range r.Techniques {
		if _, ok := attack.LookupTechnique(te); !ok {
			bad("technique %s is not in ATT&CK Enterprise %s (revoked, deprecated or mistyped)", te, attack.Version)
			continue
		}
		known = append(known, te)
	}
	for _, te := range known {
		in := false
		for _, ta := range r.Tactics {
			in = in || attack.InTactic(te, ta)
		}
		if !in && len(r.Tactics) > 0 {
			t, _ := attack.LookupTechnique(te)
			bad("technique %s (%s) belongs to %s, none of the rule's tactics %s", te, t.Name, strings.Join(t.Tactics, ", "), strings.Join(r.Tactics, ", "))
		}
	}
	for _, ta := range r.Tactics {
		in := false
		for _, te := range known {
			in = in || attack.InTactic(te, ta)
		}
		if !in && len(known) > 0 {
			t, _ := attack.LookupTactic(ta)
			bad("tactic %s (%s) holds none of the rule's techniques %s", ta, t.ShortName, strings.Join(known, ", "))
		}
	}
	return out
}
