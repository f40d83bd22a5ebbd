package correlate

import (
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// ownAddressFinding is a GuardDuty finding on the instance's credentials
// at d, as the normalizer shapes it: the instance named once, as the
// session's name, with its device addresses, and the caller's address.
func ownAddressFinding(uid string, d time.Duration, public, caller string) ocsf.Event {
	e := mkEvent(uid, "guardduty", d,
		ocsf.NewObservable(ocsf.EntitySession, "actor.session.uid", "arn:aws:sts::1:assumed-role/web-role/i-0abc"),
		ocsf.NewObservable(ocsf.EntityInstance, sessionNameAttr, "i-0abc"),
		ocsf.NewObservable(ocsf.EntityIP, "device.ip", "10.0.1.15"),
		ocsf.NewObservable(ocsf.EntityIP, "device.public_ip", public),
		ocsf.NewObservable(ocsf.EntityIP, "src_endpoint.ip", caller))
	e.ClassUID = ocsf.ClassDetectionFinding
	return e
}

// After a theft, the instance's own calls from its public address are not
// uses outside the instance once a finding or inventory item reports that
// address as the instance's: they are held as expected sources and stay
// out of the attack's incident, which keeps the attacker's use. Without
// the report they join it (the session's first address after the theft is
// not known to be the instance's).
func TestOwnAddressReportedAfterTheft(t *testing.T) {
	const own, attacker = "203.0.113.10", "198.51.100.99"
	theftEv := mkEvent("theft", "agent", 0, ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0abc"))
	theft := mkAlert("theft", "host.imds_credentials_from_webserver", "credential_access", ocsf.SeverityCritical, theftEv)
	atkEv, atkUse := credentialUse("atk", time.Minute, attacker)
	finding := ownAddressFinding("gd", 5*time.Minute, own, attacker)
	ownEv, ownUse := credentialUse("own", 10*time.Minute, own)
	laterEv, laterUse := credentialUse("own-later", 3*time.Hour, own)

	for _, reported := range []bool{true, false} {
		events := []ocsf.Event{theftEv, atkEv, ownEv, laterEv}
		if reported {
			events = append(events, finding)
		}
		c, reg := newTest(t, testConfig(), nil)
		f := final{}
		r := c.Process(events, []alert.Alert{theft, atkUse, ownUse, laterUse})
		f.add(t, r)
		in := f.containing("theft")
		if in == nil || !slices.Contains(in.AlertIDs, "use-atk") {
			t.Fatalf("reported %v: the attacker's use is not in the theft's incident", reported)
		}
		for _, id := range []string{"use-own", "use-own-later"} {
			joined := slices.Contains(in.AlertIDs, id)
			if reported && joined {
				t.Errorf("%s joined the attack incident although %s was reported as the instance's own address", id, own)
			}
			if !reported && !joined {
				t.Errorf("%s stayed out of the attack incident with nothing saying %s is the instance's", id, own)
			}
		}
		if reported {
			for _, a := range r.Alerts {
				if (a.ID == "use-own" || a.ID == "use-own-later") && a.Severity != ocsf.SeverityInformational {
					t.Errorf("%s: severity %d, want informational", a.ID, a.Severity)
				}
			}
			if got := metricValue(t, reg, "musubi_correlate_dropped_total", "expected_source"); got != 2 {
				t.Errorf("got %v expected sources counted, want 2", got)
			}
		}
	}
}

// An address reported as the instance's own names exactly one instance:
// an event naming two instances with a device address reports nothing,
// and a CloudTrail call (its address the caller's) reports nothing.
func TestOwnAddressReports(t *testing.T) {
	two := mkEvent("two", "config", 0, ob(ocsf.EntityInstance, "i-0abc"), ob(ocsf.EntityInstance, "i-0def"),
		ocsf.NewObservable(ocsf.EntityIP, "device.public_ip", "203.0.113.10"))
	call, _ := credentialUse("call", 0, "203.0.113.10")
	one := ownAddressFinding("gd", 0, "203.0.113.10", "198.51.100.99")
	for _, tc := range []struct {
		ev   ocsf.Event
		want bool
	}{{two, false}, {call, false}, {one, true}} {
		if got := ownAddressReport(&tc.ev); got != tc.want {
			t.Errorf("%s: ownAddressReport = %v, want %v", tc.ev.Metadata.UID, got, tc.want)
		}
	}
}

// The reported address survives a restart through the stored link
// signals: the same stream with a restart between the report and the
// instance's own call gives the same incidents and severities.
func TestOwnAddressSurvivesRestart(t *testing.T) {
	const own, attacker = "203.0.113.10", "198.51.100.99"
	theftEv := mkEvent("theft", "agent", 0, ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0abc"))
	theft := mkAlert("theft", "host.imds_credentials_from_webserver", "credential_access", ocsf.SeverityCritical, theftEv)
	atkEv, atkUse := credentialUse("atk", time.Minute, attacker)
	finding := ownAddressFinding("gd", 5*time.Minute, own, attacker)
	ownEv, ownUse := credentialUse("own", 10*time.Minute, own)
	batches := []Input{
		{Events: []ocsf.Event{theftEv, atkEv, finding}, Alerts: []alert.Alert{theft, atkUse}},
		{Events: []ocsf.Event{ownEv}, Alerts: []alert.Alert{ownUse}},
	}
	wantIncs, wantSev := runBatches(t, testConfig(), batches, 0)
	gotIncs, gotSev := runBatches(t, testConfig(), batches, 1)
	if !slices.EqualFunc(gotIncs, wantIncs, slices.Equal) {
		t.Errorf("incidents with a restart %v, without %v", gotIncs, wantIncs)
	}
	if gotSev["use-own"] != ocsf.SeverityInformational || wantSev["use-own"] != ocsf.SeverityInformational {
		t.Errorf("the own call's severity: %d with a restart, %d without; want informational in both", gotSev["use-own"], wantSev["use-own"])
	}
}

// A report does not reach back: a call from the address before the first
// report is judged without it, in one batch as in two, so the incidents do
// not depend on where batches are cut.
func TestOwnAddressDoesNotReachBack(t *testing.T) {
	const own, attacker = "203.0.113.10", "198.51.100.99"
	theftEv := mkEvent("theft", "agent", 0, ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0abc"))
	theft := mkAlert("theft", "host.imds_credentials_from_webserver", "credential_access", ocsf.SeverityCritical, theftEv)
	atkEv, atkUse := credentialUse("atk", time.Minute, attacker)
	earlyEv, earlyUse := credentialUse("own-early", 2*time.Minute, own)
	finding := ownAddressFinding("gd", 5*time.Minute, own, attacker)
	one := []Input{{Events: []ocsf.Event{theftEv, atkEv, earlyEv, finding}, Alerts: []alert.Alert{theft, atkUse, earlyUse}}}
	two := []Input{
		{Events: []ocsf.Event{theftEv, atkEv, earlyEv}, Alerts: []alert.Alert{theft, atkUse, earlyUse}},
		{Events: []ocsf.Event{finding}},
	}
	incOne, sevOne := runBatches(t, testConfig(), one, 0)
	incTwo, sevTwo := runBatches(t, testConfig(), two, 0)
	if !slices.EqualFunc(incOne, incTwo, slices.Equal) || sevOne["use-own-early"] != sevTwo["use-own-early"] {
		t.Errorf("one batch: %v (severity %d); two batches: %v (severity %d)", incOne, sevOne["use-own-early"], incTwo, sevTwo["use-own-early"])
	}
	if sevOne["use-own-early"] == ocsf.SeverityInformational {
		t.Errorf("the call before the first report was held as an expected source by the later report")
	}
}
