package correlate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/notify"
	"github.com/musubi-xdr/musubi/ocsf"
)

func shadowAlert(id, rule, stage string, sev int, ev ocsf.Event) alert.Alert {
	a := mkAlert(id, rule, stage, sev, ev)
	a.Shadow = true
	return a
}

// TestShadowAlertsNeverEnterIncidents: an experimental rule's alert is
// passed through to be stored, unchanged, but opens no incident, joins none
// and bridges none — and so never reaches a webhook.
func TestShadowAlertsNeverEnterIncidents(t *testing.T) {
	c, reg := newTest(t, testConfig(), nil)
	ncfg := notify.Default()
	ncfg.Endpoints = []notify.Endpoint{{Name: "hook", URL: "http://127.0.0.1:1/hook", Format: notify.FormatGeneric, Secret: "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	n, err := notify.New(ncfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e1 := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIA1"))
	e2 := mkEvent("e2", "agent", time.Minute, ob(ocsf.EntityHost, "h1"))
	bridge := mkEvent("e3", "guardduty", 2*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"), ob(ocsf.EntityHost, "h1"))
	alone := mkEvent("e4", "agent", 3*time.Minute, ob(ocsf.EntityHost, "h-other"))

	// A shadow alert alone: stored, no incident, no webhook.
	r := c.Process([]ocsf.Event{alone}, []alert.Alert{shadowAlert("s-alone", "r-exp", "impact", 5, alone)})
	if len(r.Incidents) != 0 || len(r.Alerts) != 1 || r.Alerts[0].ID != "s-alone" || !r.Alerts[0].Shadow {
		t.Fatalf("shadow alert alone: got %d incidents and alerts %+v, want none and the alert unchanged", len(r.Incidents), r.Alerts)
	}
	n.Observe(r.Incidents)

	f := final{}
	for _, r := range []Result{
		c.Process([]ocsf.Event{e1}, []alert.Alert{mkAlert("x1", "r1", "discovery", 3, e1)}),
		c.Process([]ocsf.Event{e2}, []alert.Alert{mkAlert("x2", "r2", "execution", 3, e2)}),
	} {
		f.add(t, r)
		n.Observe(r.Incidents)
	}
	queued := n.Len()
	before := fingerprint(t, f)
	// A critical shadow alert that would bridge the two incidents (its
	// entities are in both; its event is left out, since an event with
	// both entities links them on its own): it neither merges them nor
	// raises their severity.
	r = c.Process(nil, []alert.Alert{shadowAlert("s-bridge", "r-exp", "impact", 5, bridge)})
	f.add(t, r)
	n.Observe(r.Incidents)
	if len(r.Incidents) != 0 {
		t.Errorf("the shadow bridge emitted %d incident versions, want 0", len(r.Incidents))
	}
	if got := fingerprint(t, f); len(f.open()) != 2 || got != before {
		t.Errorf("after the shadow bridge: %d open incidents\n%s\nwant the 2 incidents unchanged\n%s", len(f.open()), got, before)
	}
	for _, in := range f.open() {
		if slices.Contains(in.AlertIDs, "s-bridge") || slices.Contains(in.AlertIDs, "s-alone") {
			t.Errorf("incident %s holds a shadow alert: %v", in.ID, in.AlertIDs)
		}
	}
	if !slices.ContainsFunc(r.Alerts, func(a alert.Alert) bool { return a.ID == "s-bridge" && a.Shadow }) {
		t.Errorf("the shadow bridge alert is not passed through to be stored: %+v", r.Alerts)
	}
	if got := n.Len(); got != queued {
		t.Errorf("webhook deliveries queued by shadow alerts: got %d, want %d", got-queued, 0)
	}
	if got := metricValue(t, reg, "musubi_correlate_dropped_total", "reason", "shadow"); got != 2 {
		t.Errorf("got %v shadow alerts counted, want 2", got)
	}
	if got := metricValue(t, reg, "musubi_correlate_merges_total"); got != 0 {
		t.Errorf("got %v merges, want 0", got)
	}

	// A correlator restored from storage ignores stored shadow alerts too.
	c2, _ := newTest(t, testConfig(), nil)
	c2.Restore(nil, []alert.Alert{shadowAlert("s-alone", "r-exp", "impact", 5, alone)})
	if got := c2.OpenIncidents(); got != 0 {
		t.Errorf("restored %d incidents from a shadow alert, want 0", got)
	}
}

// shadowSeqRule is a two-stage correlation rule over alerts of r1 then r2
// on the same access key, with the given status.
func shadowSeqRule(t *testing.T, status string) []*SequenceRule {
	return parse(t, `kind: correlation
id: chain.key_reused
title: Key reused
severity: critical
status: `+status+`
stage: impact
span: 1h
stages:
  - name: first
    alert: alert.rule_id == "r1"
    key: {entity: access_key}
  - name: second
    alert: alert.rule_id == "r2"
    on: {entity: access_key}
`)
}

// TestShadowCorrelationRule: an experimental correlation rule runs in
// shadow mode like an experimental detection rule. Its correlated alert is
// handed back to be stored (Shadow set) and counted in
// musubi_correlate_shadow_matches_total{rule}, but joins no incident, so the
// incident its stages are in is left as it was and no webhook fires for it.
// The same rule with status test puts its alert in the incident.
func TestShadowCorrelationRule(t *testing.T) {
	e1 := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIA1"))
	e2 := mkEvent("e2", "cloudtrail", time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"))
	run := func(status string) (f final, raised []alert.Alert, c *Correlator, reg *prometheus.Registry) {
		var seq []*SequenceRule
		if status != "" {
			seq = shadowSeqRule(t, status)
		}
		c, reg = newTest(t, testConfig(), seq)
		f = final{}
		for _, r := range []Result{
			c.Process([]ocsf.Event{e1}, []alert.Alert{mkAlert("x1", "r1", "credential_access", 3, e1)}),
			c.Process([]ocsf.Event{e2}, []alert.Alert{mkAlert("x2", "r2", "impact", 3, e2)}),
		} {
			f.add(t, r)
			raised = append(raised, corrOnly(r)...)
		}
		return f, raised, c, reg
	}

	live, liveRaised, _, _ := run("test")
	if len(liveRaised) != 1 || liveRaised[0].Shadow || live.containing(liveRaised[0].ID) == nil {
		t.Fatalf("status test: got correlated alerts %+v, want one, live, in the incident", liveRaised)
	}

	f, raised, c, reg := run("experimental")
	if len(raised) != 1 || !raised[0].Shadow || raised[0].ID != liveRaised[0].ID {
		t.Fatalf("status experimental: got correlated alerts %+v, want the same alert with Shadow set", raised)
	}
	if in := f.containing(raised[0].ID); in != nil {
		t.Errorf("the shadow correlated alert is in incident %s", in.ID)
	}
	open := f.open()
	without, _, _, _ := run("") // no correlation rule at all
	if got, want := fingerprint(t, f), fingerprint(t, without); len(open) != 1 || got != want {
		t.Errorf("got incidents\n%s\nwant them as without the rule\n%s", got, want)
	}
	if open[0].Severity >= live.open()[0].Severity {
		t.Errorf("got severity %d with the shadow rule, want less than the live rule's %d", open[0].Severity, live.open()[0].Severity)
	}
	if got := metricValue(t, reg, "musubi_correlate_shadow_matches_total", "rule", "chain.key_reused"); got != 1 {
		t.Errorf("got %v shadow matches of chain.key_reused, want 1", got)
	}
	if got := metricValue(t, reg, "musubi_correlate_sequence_matches_total", "rule", "chain.key_reused"); got != 0 {
		t.Errorf("got %v live sequence matches, want 0", got)
	}
	ncfg := notify.Default()
	ncfg.Endpoints = []notify.Endpoint{{Name: "hook", URL: "http://127.0.0.1:1/hook", Format: notify.FormatGeneric, Secret: "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	n, err := notify.New(ncfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Observe(open)
	queued := n.Len()
	// More input after the shadow match changes nothing either.
	e3 := mkEvent("e3", "cloudtrail", 2*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"))
	r := c.Process([]ocsf.Event{e3}, []alert.Alert{mkAlert("x3", "r2", "impact", 3, e3)})
	n.Observe(r.Incidents)
	for _, in := range r.Incidents {
		if slices.Contains(in.AlertIDs, raised[0].ID) {
			t.Errorf("incident %s carries the shadow alert to notify: %v", in.ID, in.AlertIDs)
		}
	}
	if got := n.Len() - queued; got > len(r.Incidents) {
		t.Errorf("got %d webhook deliveries queued, want at most one per incident update", got)
	}

	// A restore replays the stored stage alerts through the rule: the
	// chain it completes again was stored before, so nothing is emitted or
	// counted twice.
	c2, reg2 := newTest(t, testConfig(), shadowSeqRule(t, "experimental"))
	c2.Restore(nil, []alert.Alert{mkAlert("x1", "r1", "credential_access", 3, e1), mkAlert("x2", "r2", "impact", 3, e2), raised[0]})
	if got := metricValue(t, reg2, "musubi_correlate_shadow_matches_total", "rule", "chain.key_reused"); got != 0 {
		t.Errorf("restore: got %v shadow matches counted, want 0", got)
	}
}

// TestCorrelationRuleStatus: a correlation rule's status is stable, test or
// experimental; deprecated and anything else are load errors at the key.
func TestCorrelationRuleStatus(t *testing.T) {
	for status, want := range map[string]string{
		"stable": "", "test": "", "experimental": "",
		"deprecated": "status deprecated is not supported for correlation rules",
		"beta":       `status "beta" must be stable, test or experimental`,
	} {
		src := strings.Replace(`kind: correlation
id: chain.key_reused
title: Key reused
severity: critical
status: STATUS
span: 1h
stages:
  - name: first
    alert: alert.rule_id == "r1"
`, "STATUS", status, 1)
		rs, err := ParseRules("c.yaml", []byte(src))
		switch {
		case want == "" && (err != nil || len(rs) != 1 || rs[0].Shadow() != (status == "experimental")):
			t.Errorf("status %s: got %v, %d rules, want it loaded (shadow only when experimental)", status, err, len(rs))
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "c.yaml:5:")):
			t.Errorf("status %s: got %v, want an error at c.yaml:5 containing %q", status, err, want)
		}
	}
}
