package correlate

import (
	"fmt"
	"testing"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestAlertStageShortcuts checks that an alert stage's literal filter and
// its activation of only the fields it reads decide as the condition on
// the whole alert does, for the pack's rules and conditions that read
// `alert` in other ways.
func TestAlertStageShortcuts(t *testing.T) {
	seq, err := LoadRules(scenarioRules)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := ParseRules("extra.yaml", []byte(`kind: correlation
id: test.shortcuts
version: "1"
title: t
severity: high
span: 1h
stages:
  - name: a
    alert: alert.source != "cloudtrail" && alert["stage"] == "impact" && "T1" in alert.techniques
    key: {entity: instance}
  - name: b
    alert: size(alert) > 0 && alert.entities.exists(e, e.entity == "instance") && alert.rule_id in ["r1", "r2"]
    on: {entity: instance}
`))
	if err != nil {
		t.Fatal(err)
	}
	seq = append(seq, extra...)
	var alerts []alert.Alert
	for _, src := range []string{"agent", "falco", "guardduty", "cloudtrail", "vpcflow"} {
		for _, stage := range []string{"credential_access", "impact", "discovery"} {
			for _, sev := range []int{ocsf.SeverityLow, ocsf.SeverityMedium, ocsf.SeverityHigh} {
				for _, rule := range []string{"r1", "r3"} {
					alerts = append(alerts, alert.Alert{ID: fmt.Sprint(len(alerts)), Source: src, Stage: stage, Severity: sev, RuleID: rule,
						Techniques: []string{"T1"}, Entities: []ocsf.Observable{{Entity: ocsf.EntityInstance, Value: "i-1"}}})
				}
			}
		}
	}
	s := &seqEngine{m: newMetrics(nil)}
	stages := 0
	for _, r := range seq {
		for _, st := range r.Stages {
			if !st.OnAlerts {
				continue
			}
			stages++
			accepted := 0
			for i := range alerts {
				a := &alerts[i]
				want := s.eval(st, alertActivation(a, nil, true))
				got := st.alertPre.admits(a) && s.eval(st, alertActivation(a, st.alertReads, st.alertAll))
				if got != want {
					t.Errorf("%s %q on %+v: got %v, want %v", r.ID, st.Expr, a, got, want)
				}
				if want {
					accepted++
				}
			}
			if accepted == 0 || accepted == len(alerts) {
				t.Errorf("%s %q: accepts %d of %d alerts: the check cannot fail", r.ID, st.Expr, accepted, len(alerts))
			}
		}
	}
	if stages < 5 {
		t.Fatalf("%d alert stages, want the pack's and the test's", stages)
	}
}
