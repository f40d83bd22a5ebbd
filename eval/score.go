package eval

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// HighSeverity is the OCSF severity id from which an incident is high.
const HighSeverity = 4

// Incident is what the scorecard needs of an open (not merged-away)
// incident: its id, severity, entity node ids ("kind:value") and alerts.
type Incident struct {
	ID       string
	Severity int
	Entities []string
	AlertIDs []string
}

// Run is the outcome of one replay order: the open incidents and the
// evidence event ids (metadata.uid) of every alert by alert id.
type Run struct {
	Incidents []Incident
	Evidence  map[string][]string
	// DeadLetters counts records that did not decode.
	DeadLetters int
}

// ScenarioScore is one scenario's line of the scorecard.
type ScenarioScore struct {
	Name    string `json:"name"`
	Variant string `json:"variant,omitempty"`
	Orders  int    `json:"orders"`
	// HasAttack is false on benign-only days.
	HasAttack bool `json:"has_attack"`
	// AttackFound: one incident of at least the minimum severity holds
	// every attack entity.
	AttackFound     bool     `json:"attack_found"`
	AttackIncident  string   `json:"attack_incident,omitempty"`
	AttackSeverity  int      `json:"attack_severity,omitempty"`
	MissingEntities []string `json:"missing_entities,omitempty"`
	// AttackAlerts is the number of alerts of the attack incident;
	// PureAlerts and MeasuredAlerts give its purity (alerts without
	// evidence ids are not measured).
	AttackAlerts   int     `json:"attack_alerts"`
	PureAlerts     int     `json:"pure_alerts"`
	MeasuredAlerts int     `json:"measured_alerts"`
	Purity         float64 `json:"purity"`
	PurityMeasured bool    `json:"purity_measured"`
	// BenignInHigh are benign entities found in high incidents.
	BenignInHigh  []string         `json:"benign_in_high,omitempty"`
	HighIncidents int              `json:"high_incidents"`
	Unrelated     []UnrelatedScore `json:"unrelated,omitempty"`
	// Invariant: every order gave the same incidents.
	Invariant   bool   `json:"invariant"`
	OrderDiff   string `json:"order_diff,omitempty"`
	DeadLetters int    `json:"dead_letters"`
	Error       string `json:"error,omitempty"`
}

// UnrelatedScore says whether an unrelated attack was found on its own.
type UnrelatedScore struct {
	Name   string `json:"name"`
	Found  bool   `json:"found"`
	Reason string `json:"reason,omitempty"`
}

// Score measures one scenario's runs (the first is the reference order)
// against its truth.
func Score(name string, t Truth, runs []Run) ScenarioScore {
	s := ScenarioScore{Name: name, Variant: t.Variant, Orders: len(runs), HasAttack: t.Attack != nil, Invariant: true}
	if len(runs) == 0 {
		s.Error = "no runs"
		return s
	}
	run := runs[0]
	for _, r := range runs {
		s.DeadLetters += r.DeadLetters
	}
	for _, in := range run.Incidents {
		if in.Severity >= HighSeverity {
			s.HighIncidents++
		}
	}
	var attackEntities []string
	if t.Attack != nil {
		attackEntities = t.Attack.Entities
		scoreAttack(&s, *t.Attack, run)
	}
	// Benign entities in high incidents.
	for _, e := range t.Benign.Entities {
		for _, in := range run.Incidents {
			if in.Severity >= HighSeverity && slices.Contains(in.Entities, e) {
				s.BenignInHigh = append(s.BenignInHigh, e)
				break
			}
		}
	}
	for _, u := range t.Unrelated {
		s.Unrelated = append(s.Unrelated, scoreUnrelated(u, attackEntities, run))
	}
	ref := signature(run)
	for i, r := range runs[1:] {
		if sig := signature(r); sig != ref {
			s.Invariant = false
			s.OrderDiff = fmt.Sprintf("order %d: %s", i+1, firstDiff(ref, sig))
			break
		}
	}
	return s
}

// scoreAttack finds the attack incident — the one holding most attack
// entities, then the most severe, then the smallest id — and measures it.
func scoreAttack(s *ScenarioScore, a Attack, run Run) {
	best, bestN := -1, 0
	for i, in := range run.Incidents {
		n := 0
		for _, e := range a.Entities {
			if slices.Contains(in.Entities, e) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		if best < 0 || n > bestN || n == bestN && (in.Severity > run.Incidents[best].Severity ||
			in.Severity == run.Incidents[best].Severity && in.ID < run.Incidents[best].ID) {
			best, bestN = i, n
		}
	}
	if best < 0 {
		s.MissingEntities = slices.Clone(a.Entities)
		return
	}
	in := run.Incidents[best]
	s.AttackIncident, s.AttackSeverity, s.AttackAlerts = in.ID, in.Severity, len(in.AlertIDs)
	for _, e := range a.Entities {
		if !slices.Contains(in.Entities, e) {
			s.MissingEntities = append(s.MissingEntities, e)
		}
	}
	s.AttackFound = len(s.MissingEntities) == 0 && in.Severity >= a.MinSeverity
	if len(a.EventUIDs) == 0 {
		return
	}
	attack := make(map[string]bool, len(a.EventUIDs))
	for _, u := range a.EventUIDs {
		attack[u] = true
	}
	for _, id := range in.AlertIDs {
		ev := run.Evidence[id]
		if len(ev) == 0 {
			continue
		}
		s.MeasuredAlerts++
		pure := true
		for _, u := range ev {
			pure = pure && attack[u]
		}
		if pure {
			s.PureAlerts++
		}
	}
	if s.MeasuredAlerts > 0 {
		s.PurityMeasured = true
		s.Purity = float64(s.PureAlerts) / float64(s.MeasuredAlerts)
	}
}

// scoreUnrelated looks for an incident of at least u's severity that holds
// all its entities and none of the main attack's.
func scoreUnrelated(u Unrelated, attack []string, run Run) UnrelatedScore {
	out := UnrelatedScore{Name: u.Name, Reason: "no incident holds " + strings.Join(u.Entities, ", ")}
	for _, in := range run.Incidents {
		all := true
		for _, e := range u.Entities {
			all = all && slices.Contains(in.Entities, e)
		}
		if !all {
			continue
		}
		if in.Severity < u.MinSeverity {
			out.Reason = fmt.Sprintf("incident %s holds it at severity %d, below %d", in.ID, in.Severity, u.MinSeverity)
			continue
		}
		if i := slices.IndexFunc(attack, func(e string) bool { return slices.Contains(in.Entities, e) }); i >= 0 {
			out.Reason = fmt.Sprintf("incident %s holds it together with the attack's %s", in.ID, attack[i])
			continue
		}
		return UnrelatedScore{Name: u.Name, Found: true}
	}
	return out
}

// signature describes a run's incidents: ids, severities and alert ids,
// in a canonical order.
func signature(r Run) string {
	lines := make([]string, 0, len(r.Incidents))
	for _, in := range r.Incidents {
		alerts := slices.Clone(in.AlertIDs)
		sort.Strings(alerts)
		lines = append(lines, fmt.Sprintf("%s sev=%d alerts=%s", in.ID, in.Severity, strings.Join(alerts, ",")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < min(len(al), len(bl)); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("%.120q vs %.120q", al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d vs %d incidents", len(al), len(bl))
}
