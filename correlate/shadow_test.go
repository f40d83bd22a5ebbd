package correlate

import (
	"slices"
	"testing"
	"time"

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
