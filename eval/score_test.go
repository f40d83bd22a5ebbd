package eval

import (
	"slices"
	"strings"
	"testing"
)

func truth() Truth {
	return Truth{
		Attack: &Attack{MinSeverity: 4, Entities: []string{"host:web-1", "access_key:ASIAX", "deployment:d-BAD000001"},
			EventUIDs: []string{"a1", "a2", "a3", "a4"}},
		Unrelated: []Unrelated{{Name: "scan", MinSeverity: 3, Entities: []string{"ip:198.18.0.9"}}},
		Benign:    Benign{Entities: []string{"deployment:d-GOOD00001", "host:bastion"}},
	}
}

func attackIncident(extra ...string) Incident {
	return Incident{ID: "inc-a", Severity: 5, Entities: append([]string{"host:web-1", "access_key:ASIAX", "deployment:d-BAD000001"}, extra...), AlertIDs: []string{"al1", "al2"}}
}

var evidence = map[string][]string{"al1": {"a1", "a2"}, "al2": {"a3"}, "al3": {"b1"}, "al4": {"a4", "b2"}, "al5": {"s1"}}

func TestScore(t *testing.T) {
	scan := Incident{ID: "inc-s", Severity: 3, Entities: []string{"ip:198.18.0.9", "instance:i-0123456789abcdef0"}, AlertIDs: []string{"al5"}}
	for _, tc := range []struct {
		name      string
		incidents []Incident
		found     bool
		missing   []string
		benign    []string
		purity    float64
		alerts    int
		unrelated bool
		reason    string
	}{
		{name: "clean", incidents: []Incident{attackIncident(), scan}, found: true, purity: 1, alerts: 2, unrelated: true},
		{name: "benign deployment glued into the attack incident",
			incidents: []Incident{func() Incident {
				in := attackIncident("deployment:d-GOOD00001")
				in.AlertIDs = append(in.AlertIDs, "al3")
				return in
			}(), scan},
			found: true, benign: []string{"deployment:d-GOOD00001"}, purity: 2.0 / 3, alerts: 3, unrelated: true},
		{name: "impure alert mixing attack and benign evidence",
			incidents: []Incident{func() Incident { in := attackIncident(); in.AlertIDs = append(in.AlertIDs, "al4"); return in }(), scan},
			found:     true, purity: 2.0 / 3, alerts: 3, unrelated: true},
		{name: "benign entity in a high incident of its own",
			incidents: []Incident{attackIncident(), scan, {ID: "inc-b", Severity: 4, Entities: []string{"host:bastion"}}},
			found:     true, benign: []string{"host:bastion"}, purity: 1, alerts: 2, unrelated: true},
		{name: "benign entity in a medium incident is fine",
			incidents: []Incident{attackIncident(), scan, {ID: "inc-b", Severity: 3, Entities: []string{"host:bastion"}}},
			found:     true, purity: 1, alerts: 2, unrelated: true},
		{name: "unrelated attack merged into the attack incident",
			incidents: []Incident{func() Incident {
				in := attackIncident("ip:198.18.0.9")
				in.AlertIDs = append(in.AlertIDs, "al5")
				return in
			}()},
			found: true, purity: 2.0 / 3, alerts: 3, reason: "together with the attack's host:web-1"},
		{name: "unrelated attack below its severity",
			incidents: []Incident{attackIncident(), {ID: "inc-s", Severity: 2, Entities: []string{"ip:198.18.0.9"}}},
			found:     true, purity: 1, alerts: 2, reason: "below 3"},
		{name: "attack split in two",
			incidents: []Incident{
				{ID: "inc-1", Severity: 5, Entities: []string{"host:web-1", "access_key:ASIAX"}, AlertIDs: []string{"al1"}},
				{ID: "inc-2", Severity: 5, Entities: []string{"deployment:d-BAD000001"}, AlertIDs: []string{"al2"}}, scan},
			missing: []string{"deployment:d-BAD000001"}, purity: 1, alerts: 1, unrelated: true},
		{name: "attack incident too low",
			incidents: []Incident{func() Incident { in := attackIncident(); in.Severity = 3; return in }(), scan},
			purity:    1, alerts: 2, unrelated: true},
		{name: "no attack incident", incidents: []Incident{scan},
			missing: []string{"host:web-1", "access_key:ASIAX", "deployment:d-BAD000001"}, unrelated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Score(tc.name, truth(), []Run{{Incidents: tc.incidents, Evidence: evidence}})
			if s.AttackFound != tc.found {
				t.Errorf("attack found %v, want %v", s.AttackFound, tc.found)
			}
			if !slices.Equal(s.MissingEntities, tc.missing) {
				t.Errorf("missing %v, want %v", s.MissingEntities, tc.missing)
			}
			if !slices.Equal(s.BenignInHigh, tc.benign) {
				t.Errorf("benign in high %v, want %v", s.BenignInHigh, tc.benign)
			}
			if diff := s.Purity - tc.purity; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("purity %.3f, want %.3f", s.Purity, tc.purity)
			}
			if s.AttackAlerts != tc.alerts {
				t.Errorf("attack alerts %d, want %d", s.AttackAlerts, tc.alerts)
			}
			if got := s.Unrelated[0]; got.Found != tc.unrelated || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("unrelated %+v, want found %v with reason containing %q", got, tc.unrelated, tc.reason)
			}
		})
	}
}

func TestScoreOrders(t *testing.T) {
	base := []Incident{attackIncident(), {ID: "inc-s", Severity: 3, Entities: []string{"ip:198.18.0.9"}, AlertIDs: []string{"al5"}}}
	reordered := []Incident{base[1], func() Incident { in := attackIncident(); in.AlertIDs = []string{"al2", "al1"}; return in }()}
	for _, tc := range []struct {
		name  string
		other []Incident
		same  bool
	}{
		{"same incidents in another order", reordered, true},
		{"another severity", []Incident{base[0], {ID: "inc-s", Severity: 4, Entities: base[1].Entities, AlertIDs: base[1].AlertIDs}}, false},
		{"another alert", []Incident{base[0], {ID: "inc-s", Severity: 3, Entities: base[1].Entities, AlertIDs: []string{"al6"}}}, false},
		{"an incident split off", []Incident{base[0], base[1], {ID: "inc-x", Severity: 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Score("x", truth(), []Run{{Incidents: base, Evidence: evidence}, {Incidents: base, Evidence: evidence}, {Incidents: tc.other, Evidence: evidence}})
			if s.Invariant != tc.same {
				t.Errorf("invariant %v, want %v (%s)", s.Invariant, tc.same, s.OrderDiff)
			}
			if !tc.same && !strings.HasPrefix(s.OrderDiff, "order 2:") {
				t.Errorf("order diff %q, want it to name order 2", s.OrderDiff)
			}
		})
	}
}

func TestScorecardThresholds(t *testing.T) {
	good := Score("good", truth(), []Run{{Incidents: []Incident{attackIncident(), {ID: "inc-s", Severity: 3, Entities: []string{"ip:198.18.0.9"}}}, Evidence: evidence}})
	benignDay := Score("benign", Truth{Benign: Benign{Entities: []string{"host:bastion"}}}, []Run{{}})
	card := NewScorecard([]ScenarioScore{good, benignDay}, DefaultThresholds())
	if !card.Pass || len(card.Missed) != 0 {
		t.Fatalf("got %v, want a pass", card.Missed)
	}
	if card.Total.AttackScenarios != 1 || card.Total.Recall != 1 || card.Total.MedianAlerts != 2 {
		t.Errorf("total %+v", card.Total)
	}
	bad := Score("bad", truth(), []Run{{Incidents: []Incident{func() Incident {
		in := attackIncident("ip:198.18.0.9", "host:bastion")
		in.AlertIDs = append(in.AlertIDs, "al3", "al5")
		return in
	}()}, Evidence: evidence}})
	card = NewScorecard([]ScenarioScore{good, bad, benignDay}, DefaultThresholds())
	if card.Pass {
		t.Fatal("got a pass, want misses")
	}
	want := []string{"benign entities in high incidents 1 > 0", "purity 0.667 < 0.950", "unrelated attacks found separately 0.500 < 0.950 (1 of 2)"}
	if !slices.Equal(card.Missed, want) {
		t.Errorf("missed\n%q\nwant\n%q", card.Missed, want)
	}
	if card.Total.MedianAlerts != 3 {
		t.Errorf("median alerts %.1f, want 3", card.Total.MedianAlerts)
	}
	var text strings.Builder
	if err := card.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"bad: benign in high incidents: host:bastion", "FAIL:", "purity 0.667 < 0.950"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
}

func TestLoadTruthHandWritten(t *testing.T) {
	tr, err := LoadTruth("../testdata/scenarios/attack-chain/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Attack == nil || len(tr.Attack.Entities) != 9 || tr.Attack.MinSeverity != 4 || len(tr.HubIPs) != 1 {
		t.Errorf("got %+v", tr)
	}
	if err := (Truth{}).Validate(); err == nil {
		t.Error("an empty truth validated")
	}
}
