package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Total pools the scores of many scenarios.
type Total struct {
	Scenarios       int `json:"scenarios"`
	AttackScenarios int `json:"attack_scenarios"`
	AttacksFound    int `json:"attacks_found"`
	// Recall is AttacksFound / AttackScenarios (1 without attacks).
	Recall float64 `json:"recall"`
	// BenignInHigh counts benign entities in high incidents, over all
	// scenarios.
	BenignInHigh int `json:"benign_in_high"`
	// Purity pools the measured alerts of every attack incident;
	// MinPurity is the worst scenario's.
	Purity    float64 `json:"purity"`
	MinPurity float64 `json:"min_purity"`
	// MedianAlerts is the median number of alerts per attack incident.
	MedianAlerts     float64 `json:"median_alerts_per_attack_incident"`
	UnrelatedAttacks int     `json:"unrelated_attacks"`
	UnrelatedFound   int     `json:"unrelated_found"`
	UnrelatedRate    float64 `json:"unrelated_rate"`
	// Invariant counts scenarios whose orders all gave the same incidents.
	Invariant   int `json:"invariant_scenarios"`
	DeadLetters int `json:"dead_letters"`
	Errors      int `json:"errors"`
}

// Summarize pools scenario scores.
func Summarize(scores []ScenarioScore) Total {
	t := Total{Scenarios: len(scores), MinPurity: 1}
	var pure, measured int
	var alerts []int
	for _, s := range scores {
		if s.Error != "" {
			t.Errors++
		}
		t.DeadLetters += s.DeadLetters
		t.BenignInHigh += len(s.BenignInHigh)
		if s.Invariant {
			t.Invariant++
		}
		for _, u := range s.Unrelated {
			t.UnrelatedAttacks++
			if u.Found {
				t.UnrelatedFound++
			}
		}
		if !s.HasAttack {
			continue
		}
		t.AttackScenarios++
		if s.AttackFound {
			t.AttacksFound++
		}
		if s.AttackIncident != "" {
			alerts = append(alerts, s.AttackAlerts)
		}
		if s.PurityMeasured {
			pure += s.PureAlerts
			measured += s.MeasuredAlerts
			t.MinPurity = min(t.MinPurity, s.Purity)
		}
	}
	t.Recall = ratio(t.AttacksFound, t.AttackScenarios)
	t.UnrelatedRate = ratio(t.UnrelatedFound, t.UnrelatedAttacks)
	t.Purity = ratio(pure, measured)
	if measured == 0 {
		t.MinPurity = 1
	}
	t.MedianAlerts = median(alerts)
	return t
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func median(xs []int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return float64(s[n/2])
	}
	return float64(s[n/2-1]+s[n/2]) / 2
}

// Thresholds are the gates of the scorecard.
type Thresholds struct {
	MinRecall        float64
	MaxBenignInHigh  int
	MinPurity        float64
	MaxMedianAlerts  float64
	MinUnrelatedRate float64
	// RequireInvariant: every scenario gives the same incidents in every
	// order.
	RequireInvariant bool
}

// DefaultThresholds are the numbers of issue 15.
func DefaultThresholds() Thresholds {
	return Thresholds{MinRecall: 1, MaxBenignInHigh: 0, MinPurity: 0.95, MaxMedianAlerts: 40, MinUnrelatedRate: 0.95, RequireInvariant: true}
}

// Check returns every gate the total misses; none means it passed.
func (th Thresholds) Check(t Total) []string {
	var miss []string
	if t.Recall < th.MinRecall {
		miss = append(miss, fmt.Sprintf("attack recall %.3f < %.3f (%d of %d attacks in one incident of their severity)", t.Recall, th.MinRecall, t.AttacksFound, t.AttackScenarios))
	}
	if t.BenignInHigh > th.MaxBenignInHigh {
		miss = append(miss, fmt.Sprintf("benign entities in high incidents %d > %d", t.BenignInHigh, th.MaxBenignInHigh))
	}
	if t.Purity < th.MinPurity {
		miss = append(miss, fmt.Sprintf("purity %.3f < %.3f", t.Purity, th.MinPurity))
	}
	if t.MedianAlerts > th.MaxMedianAlerts {
		miss = append(miss, fmt.Sprintf("median alerts per attack incident %.1f > %.1f", t.MedianAlerts, th.MaxMedianAlerts))
	}
	if t.UnrelatedRate < th.MinUnrelatedRate {
		miss = append(miss, fmt.Sprintf("unrelated attacks found separately %.3f < %.3f (%d of %d)", t.UnrelatedRate, th.MinUnrelatedRate, t.UnrelatedFound, t.UnrelatedAttacks))
	}
	if th.RequireInvariant && t.Invariant < t.Scenarios {
		miss = append(miss, fmt.Sprintf("%d of %d scenarios give different incidents in different orders", t.Scenarios-t.Invariant, t.Scenarios))
	}
	if t.DeadLetters > 0 {
		miss = append(miss, fmt.Sprintf("%d dead letters", t.DeadLetters))
	}
	if t.Errors > 0 {
		miss = append(miss, fmt.Sprintf("%d scenarios could not be scored", t.Errors))
	}
	return miss
}

// Scorecard is the whole report.
type Scorecard struct {
	Scenarios []ScenarioScore `json:"scenarios"`
	Total     Total           `json:"total"`
	Missed    []string        `json:"missed"`
	Pass      bool            `json:"pass"`
}

// NewScorecard summarizes scores and checks them against th.
func NewScorecard(scores []ScenarioScore, th Thresholds) Scorecard {
	t := Summarize(scores)
	miss := th.Check(t)
	if miss == nil {
		miss = []string{}
	}
	return Scorecard{Scenarios: scores, Total: t, Missed: miss, Pass: len(miss) == 0}
}

// WriteJSON writes the scorecard as one JSON document.
func (c Scorecard) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// WriteText writes the scorecard as a table, the details of every miss,
// the totals and the verdict.
func (c Scorecard) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tattack\tseverity\talerts\tpurity\tbenign-in-high\tunrelated\thigh-incidents\torders")
	for _, s := range c.Scenarios {
		attack, sev, alerts, purity := "-", "-", "-", "-"
		if s.HasAttack {
			attack = "missed"
			if s.AttackFound {
				attack = "found"
			}
			if s.AttackIncident != "" {
				sev, alerts = fmt.Sprint(s.AttackSeverity), fmt.Sprint(s.AttackAlerts)
			}
			if s.PurityMeasured {
				purity = fmt.Sprintf("%.2f", s.Purity)
			}
		}
		found := 0
		for _, u := range s.Unrelated {
			if u.Found {
				found++
			}
		}
		unrel := "-"
		if len(s.Unrelated) > 0 {
			unrel = fmt.Sprintf("%d/%d", found, len(s.Unrelated))
		}
		orders := fmt.Sprintf("%d same", s.Orders)
		if !s.Invariant {
			orders = fmt.Sprintf("%d DIFFER", s.Orders)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", s.Name, attack, sev, alerts, purity, len(s.BenignInHigh), unrel, s.HighIncidents, orders)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var details []string
	for _, s := range c.Scenarios {
		var d []string
		if s.Error != "" {
			d = append(d, "error: "+s.Error)
		}
		if len(s.MissingEntities) > 0 {
			d = append(d, "attack incident lacks "+strings.Join(s.MissingEntities, ", "))
		}
		if s.HasAttack && s.AttackIncident != "" && !s.AttackFound && len(s.MissingEntities) == 0 {
			d = append(d, fmt.Sprintf("attack incident severity %d is below the attack's minimum", s.AttackSeverity))
		}
		if len(s.BenignInHigh) > 0 {
			d = append(d, "benign in high incidents: "+strings.Join(s.BenignInHigh, ", "))
		}
		for _, u := range s.Unrelated {
			if !u.Found {
				d = append(d, "unrelated "+u.Name+" not found on its own: "+u.Reason)
			}
		}
		if s.OrderDiff != "" {
			d = append(d, "orders differ: "+s.OrderDiff)
		}
		if s.DeadLetters > 0 {
			d = append(d, fmt.Sprintf("%d dead letters", s.DeadLetters))
		}
		for _, x := range d {
			details = append(details, s.Name+": "+x)
		}
	}
	if len(details) > 0 {
		fmt.Fprintln(w, "\nDetails:")
		for _, x := range details {
			fmt.Fprintln(w, "  "+x)
		}
	}
	t := c.Total
	fmt.Fprintf(w, "\nTotal over %d scenarios (%d with the attack chain):\n", t.Scenarios, t.AttackScenarios)
	fmt.Fprintf(w, "  attack recall                      %.3f (%d/%d)\n", t.Recall, t.AttacksFound, t.AttackScenarios)
	fmt.Fprintf(w, "  benign entities in high incidents  %d\n", t.BenignInHigh)
	fmt.Fprintf(w, "  purity                             %.3f (worst scenario %.3f)\n", t.Purity, t.MinPurity)
	fmt.Fprintf(w, "  median alerts per attack incident  %.1f\n", t.MedianAlerts)
	fmt.Fprintf(w, "  unrelated attacks found separately %.3f (%d/%d)\n", t.UnrelatedRate, t.UnrelatedFound, t.UnrelatedAttacks)
	fmt.Fprintf(w, "  same incidents in every order      %d/%d\n", t.Invariant, t.Scenarios)
	if c.Pass {
		_, err := fmt.Fprintln(w, "\nPASS: every threshold met")
		return err
	}
	fmt.Fprintln(w, "\nFAIL:")
	for _, m := range c.Missed {
		fmt.Fprintln(w, "  "+m)
	}
	return nil
}
