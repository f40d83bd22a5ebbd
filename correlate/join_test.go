package correlate

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// incidentsOf runs the alerts (each with its event) through a fresh
// correlator in one batch and returns the open incidents.
func incidentsOf(t *testing.T, events []ocsf.Event, alerts []alert.Alert) []incident.Incident {
	t.Helper()
	c, _ := newTest(t, testConfig(), nil)
	f := final{}
	f.add(t, c.Process(events, alerts))
	return f.open()
}

// together reports whether one incident holds all the alert ids.
func together(ins []incident.Incident, ids ...string) bool {
	for _, in := range ins {
		n := 0
		for _, id := range ids {
			if slices.Contains(in.AlertIDs, id) {
				n++
			}
		}
		if n == len(ids) {
			return true
		}
	}
	return false
}

func TestWeakLinksJoinOnlyMediumAlerts(t *testing.T) {
	host := ob(ocsf.EntityHost, "web-9")
	for _, tc := range []struct {
		name     string
		sev1     int
		sev2     int
		together bool
	}{
		{"both medium", ocsf.SeverityMedium, ocsf.SeverityHigh, true},
		{"one low", ocsf.SeverityLow, ocsf.SeverityHigh, false},
		{"one informational", ocsf.SeverityInformational, ocsf.SeverityCritical, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e1 := mkEvent("e1", "agent", 0, host, ob(ocsf.EntityProcess, "web-9:1"))
			e2 := mkEvent("e2", "agent", 10*time.Minute, host, ob(ocsf.EntityProcess, "web-9:2"))
			ins := incidentsOf(t, []ocsf.Event{e1, e2}, []alert.Alert{
				mkAlert("a1", "r1", "execution", tc.sev1, e1), mkAlert("a2", "r2", "impact", tc.sev2, e2)})
			if got := together(ins, "a1", "a2"); got != tc.together {
				t.Errorf("got together=%v, want %v", got, tc.together)
			}
		})
	}
}

// Two activities naming different deployments on the same host stay
// apart; the same deployment joins whatever the host.
func TestDifferentDeploymentsStayApart(t *testing.T) {
	host := ob(ocsf.EntityHost, "app-9")
	e1 := mkEvent("e1", "agent", 0, host, ob(ocsf.EntityDeployment, "d-BENIGN001"))
	e2 := mkEvent("e2", "agent", 20*time.Minute, host, ob(ocsf.EntityDeployment, "d-ATTACK001"))
	e3 := mkEvent("e3", "agent", 21*time.Minute, ob(ocsf.EntityHost, "app-8"), ob(ocsf.EntityDeployment, "d-ATTACK001"))
	ins := incidentsOf(t, []ocsf.Event{e1, e2, e3}, []alert.Alert{
		mkAlert("benign", "r1", "execution", ocsf.SeverityHigh, e1),
		mkAlert("attack", "r2", "execution", ocsf.SeverityHigh, e2),
		mkAlert("attack-2", "r2", "execution", ocsf.SeverityHigh, e3)})
	if together(ins, "benign", "attack") {
		t.Error("alerts of two deployments on one host were joined by the host")
	}
	if !together(ins, "attack", "attack-2") {
		t.Error("alerts of one deployment on two hosts were not joined")
	}
}

// A deployment that shipped a bundle before the attacker overwrote it is
// not part of the attack: an object's links count only forward in time.
func TestObjectLinksCountForward(t *testing.T) {
	obj := ob(ocsf.EntityObject, "rel/app.zip")
	put := func(uid string, d time.Duration, who ...ocsf.Observable) ocsf.Event {
		e := mkEvent(uid, "cloudtrail", d, append([]ocsf.Observable{obj}, who...)...)
		e.API.Operation = "PutObject"
		return e
	}
	deploy := func(uid string, d time.Duration, dep string) ocsf.Event {
		e := mkEvent(uid, "cloudtrail", d, obj, ob(ocsf.EntityDeployment, dep))
		e.API.Operation = "CreateDeployment"
		return e
	}
	ciPut := put("ci-put", 0, ob(ocsf.EntityPrincipal, "arn:aws:iam::1:user/ci"))
	ciDeploy := deploy("ci-deploy", time.Minute, "d-CI0000001")
	ciHook := mkEvent("ci-hook", "agent", 2*time.Minute, ob(ocsf.EntityHost, "app-1"), ob(ocsf.EntityDeployment, "d-CI0000001"))
	badPut := put("bad-put", 90*time.Minute, ob(ocsf.EntitySession, "arn:aws:sts::1:assumed-role/web/i-0abc"))
	badDeploy := deploy("bad-deploy", 95*time.Minute, "d-BAD000001")
	badHook := mkEvent("bad-hook", "agent", 97*time.Minute, ob(ocsf.EntityHost, "app-1"), ob(ocsf.EntityDeployment, "d-BAD000001"))
	events := []ocsf.Event{ciPut, ciDeploy, ciHook, badPut, badDeploy, badHook}
	alerts := []alert.Alert{
		mkAlert("ci-hook", "hook", "execution", ocsf.SeverityMedium, ciHook),
		mkAlert("bad-put", "bundle", "execution", ocsf.SeverityHigh, badPut),
		mkAlert("bad-hook", "hook", "execution", ocsf.SeverityHigh, badHook),
	}
	ins := incidentsOf(t, events, alerts)
	if !together(ins, "bad-put", "bad-hook") {
		t.Error("the attacker's upload and the deployment of it were not joined")
	}
	if together(ins, "bad-put", "ci-hook") {
		t.Error("the earlier legitimate deployment of the same object joined the attack")
	}
}

// An informational alert joins on the activity it names, never on a
// shared actor such as a pipeline's role session.
func TestInformationalAlertsJoinOnlyOnActivity(t *testing.T) {
	role := ob(ocsf.EntitySession, "arn:aws:sts::1:assumed-role/pipeline/run")
	e1 := mkEvent("e1", "cloudtrail", 0, role, ob(ocsf.EntityDeployment, "d-ONE000001"))
	e2 := mkEvent("e2", "cloudtrail", 5*time.Minute, role, ob(ocsf.EntityDeployment, "d-TWO000001"))
	e3 := mkEvent("e3", "agent", 7*time.Minute, ob(ocsf.EntityHost, "app-1"), ob(ocsf.EntityDeployment, "d-TWO000001"))
	ins := incidentsOf(t, []ocsf.Event{e1, e2, e3}, []alert.Alert{
		mkAlert("info-1", "deploy", "execution", ocsf.SeverityInformational, e1),
		mkAlert("info-2", "deploy", "execution", ocsf.SeverityInformational, e2),
		mkAlert("hook", "hook", "execution", ocsf.SeverityHigh, e3)})
	if together(ins, "info-1", "info-2") {
		t.Error("two informational alerts were joined by the role session they share")
	}
	if !together(ins, "info-2", "hook") {
		t.Error("an informational alert was not joined by the deployment it names")
	}
}

// A high host alert and an informational deployment alert are joined by a
// weak path (host → deployment) only if both were at least medium: in
// whichever order the alerts and the link that connects them arrive, they
// stay apart. The host alert is the earlier one: in one batch it is placed
// before the deployment alert exists, and the deployment alert, too low for
// a weak path, does not reach the host; in batches cut after each event the
// link arrives last and both alerts look again through it.
func TestWeakPathNeedsMediumOnBothSides(t *testing.T) {
	host := ob(ocsf.EntityHost, "app-1")
	dep := ob(ocsf.EntityDeployment, "d-BENIGN001")
	hostEv := mkEvent("host", "agent", 0, host, ob(ocsf.EntityProcess, "app-1:42"))
	depEv := mkEvent("deploy", "cloudtrail", 90*time.Minute, dep, ob(ocsf.EntitySession, "arn:aws:sts::1:assumed-role/pipeline/run"))
	hook := mkEvent("hook", "agent", 91*time.Minute, host, dep)
	hostAlert := mkAlert("host", "dpkg", "execution", ocsf.SeverityHigh, hostEv)
	depAlert := mkAlert("deploy", "deploy", "execution", ocsf.SeverityInformational, depEv)
	for _, tc := range []struct {
		name    string
		batches [][]ocsf.Event
		alerts  [][]alert.Alert
	}{
		{"one batch", [][]ocsf.Event{{hostEv, depEv, hook}}, [][]alert.Alert{{hostAlert, depAlert}}},
		{"link last", [][]ocsf.Event{{hostEv}, {depEv}, {hook}}, [][]alert.Alert{{hostAlert}, {depAlert}, nil}},
		{"link first", [][]ocsf.Event{{hook}, {hostEv}, {depEv}}, [][]alert.Alert{nil, {hostAlert}, {depAlert}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTest(t, testConfig(), nil)
			f := final{}
			for i := range tc.batches {
				f.add(t, c.Process(tc.batches[i], tc.alerts[i]))
			}
			if together(f.open(), "host", "deploy") {
				t.Error("got the host alert joined with the informational deployment alert through the host, want them apart")
			}
		})
	}
}

// credentialUse is a CloudTrail call of an instance's role session from ip
// and the alert a detection raises on it.
func credentialUse(uid string, d time.Duration, ip string) (ocsf.Event, alert.Alert) {
	const session = "arn:aws:sts::1:assumed-role/web-role/i-0abc"
	e := mkEvent(uid, "cloudtrail", d, ocsf.NewObservable(ocsf.EntitySession, "actor.session.uid", session),
		ocsf.NewObservable(ocsf.EntityInstance, sessionNameAttr, "i-0abc"),
		ocsf.NewObservable(ocsf.EntityIP, "src_endpoint.ip", ip))
	e.ClassUID = ocsf.ClassAPIActivity
	return e, mkAlert("use-"+uid, "aws.instance_credentials_used_outside_instance", "credential_access", ocsf.SeverityMedium, e)
}

func TestExpectedSources(t *testing.T) {
	const own, attacker = "203.0.113.10", "198.51.100.99"
	theftEv := mkEvent("theft", "agent", 2*time.Hour, ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0abc"))
	theft := mkAlert("theft", "host.imds_credentials_from_webserver", "credential_access", ocsf.SeverityCritical, theftEv)
	ownEv, ownUse := credentialUse("own", 0, own)
	laterEv, laterOwn := credentialUse("own-later", 3*time.Hour, own)
	atkEv, atkUse := credentialUse("atk", 150*time.Minute, attacker)

	c, reg := newTest(t, testConfig(), nil)
	f := final{}
	r := c.Process([]ocsf.Event{ownEv, laterEv, atkEv, theftEv}, []alert.Alert{ownUse, laterOwn, theft, atkUse})
	f.add(t, r)
	for _, a := range r.Alerts {
		own := a.ID == "use-own" || a.ID == "use-own-later"
		if own && (a.Severity != ocsf.SeverityInformational || a.Summary == "") {
			t.Errorf("%s: got severity %d, summary %q; want informational with the reason", a.ID, a.Severity, a.Summary)
		}
		if own && f.containing(a.ID) != nil {
			t.Errorf("%s: the instance's own address is in an incident", a.ID)
		}
	}
	in := f.containing("use-atk")
	if in == nil || !slices.Contains(in.AlertIDs, "theft") {
		t.Errorf("the attacker's use after the theft is not in the theft's incident")
	}
	if got := metricValue(t, reg, "musubi_correlate_dropped_total", "expected_source"); got != 2 {
		t.Errorf("got %v expected sources counted, want 2", got)
	}
}

// An alert held as an expected source comes back when a theft on its
// instance that happened before it arrives late.
func TestExpectedSourceReleasedByLateTheft(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedLateness = 24 * time.Hour
	c, _ := newTest(t, cfg, nil)
	f := final{}
	// No calls of its own: the attacker's address is the session's first,
	// and nothing has read the credentials yet.
	atkEv, atkUse := credentialUse("atk", time.Hour, "198.51.100.99")
	f.add(t, c.Process([]ocsf.Event{atkEv}, []alert.Alert{atkUse}))
	if f.containing("use-atk") != nil {
		t.Fatal("the first use was correlated before any theft was known; the test expects it held")
	}
	theftEv := mkEvent("theft", "agent", 30*time.Minute, ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0abc"))
	theft := mkAlert("theft", "host.imds_credentials_from_webserver", "credential_access", ocsf.SeverityCritical, theftEv)
	f.add(t, c.Process([]ocsf.Event{theftEv}, []alert.Alert{theft}))
	in := f.containing("theft")
	if in == nil || !slices.Contains(in.AlertIDs, "use-atk") {
		t.Errorf("the held use did not come back into the theft's incident")
	}
}

// Every alert of the attack incident but the first says why it is there,
// naming another alert of the incident.
func TestEveryAlertSaysWhy(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	f := runInOrder(t, c, attackStory())
	in := f.containing("a-web-sh")
	if in == nil {
		t.Fatal("no attack incident")
	}
	for i, e := range in.Timeline {
		if i == 0 {
			continue
		}
		if len(e.Why) == 0 {
			t.Errorf("alert %s (%s) has no reason", e.AlertID, e.RuleID)
			continue
		}
		for _, r := range e.Why {
			if !slices.Contains(in.AlertIDs, r.Via) || r.Relation == "" || (r.Relation != RelGrouped && r.JoinKey == "" && r.RuleID == "") {
				t.Errorf("alert %s: reason %+v does not name a link to an alert of the incident", e.AlertID, r)
			}
			if r.Relation == RelLineage && len(r.Path) < 2 {
				t.Errorf("alert %s: lineage reason without its path: %+v", e.AlertID, r)
			}
		}
	}
}

// runBatches runs the batches through a fresh correlator; with restartAt >
// 0 it restarts before batch restartAt: a new correlator restored from what
// storage would hold (the open incidents, the latest version of every
// alert, every link signal). It returns each open incident's alert ids and
// every stored alert's severity.
func runBatches(t *testing.T, cfg Config, batches []Input, restartAt int) (incs [][]string, severity map[string]int) {
	t.Helper()
	c, _ := newTest(t, cfg, nil)
	var results []Result
	var links []Link
	for i, in := range batches {
		if i == restartAt && restartAt > 0 {
			openIncs, alerts := storedState(t, results)
			c, _ = newTest(t, cfg, nil)
			c.RestoreState(State{Incidents: openIncs, Alerts: alerts, Links: links})
		}
		r := c.ProcessInput(in)
		results = append(results, r)
		links = append(links, r.Links...)
	}
	openIncs, alerts := storedState(t, results)
	for _, in := range openIncs {
		ids := slices.Clone(in.AlertIDs)
		slices.Sort(ids)
		incs = append(incs, ids)
	}
	severity = map[string]int{}
	for _, a := range alerts {
		severity[a.ID] = a.Severity
	}
	return incs, severity
}

// TestExpectedSourcesSurviveRestart: the addresses an instance session
// was used from and the credential reads on its instance come back after a
// restart, from the stored link signals and alerts, so the same stream
// with a restart in the middle gives the same incidents and alerts as
// without: the instance's own address stays an expected source, the
// attacker's does not become one.
func TestExpectedSourcesSurviveRestart(t *testing.T) {
	const own, attacker = "203.0.113.10", "198.51.100.99"
	own0, _ := credentialUse("own-0", 0, own)
	own1, _ := credentialUse("own-1", 10*time.Minute, own)
	theftEv := mkEvent("theft", "agent", 35*time.Minute, ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0abc"))
	theft := mkAlert("theft", "host.imds_credentials_from_webserver", "credential_access", ocsf.SeverityCritical, theftEv)
	atkEv, atkUse := credentialUse("atk", 40*time.Minute, attacker)
	ownEv, ownUse := credentialUse("own-2", 50*time.Minute, own)
	batches := []Input{
		{Events: []ocsf.Event{own0, own1}},
		{Events: []ocsf.Event{theftEv}, Alerts: []alert.Alert{theft}},
		{Events: []ocsf.Event{atkEv, ownEv}, Alerts: []alert.Alert{atkUse, ownUse}},
	}
	wantIncs, wantSev := runBatches(t, testConfig(), batches, 0)
	if !slices.ContainsFunc(wantIncs, func(ids []string) bool { return slices.Equal(ids, []string{"theft", "use-atk"}) }) ||
		wantSev["use-own-2"] != ocsf.SeverityInformational {
		t.Fatalf("without a restart: incidents %v, severities %v; want the attacker's use with the theft and the own address informational", wantIncs, wantSev)
	}
	for _, at := range []int{1, 2} {
		incs, sev := runBatches(t, testConfig(), batches, at)
		if !slices.EqualFunc(incs, wantIncs, slices.Equal) || !maps.Equal(sev, wantSev) {
			t.Errorf("restart before batch %d: incidents %v, severities %v; want %v, %v as without a restart", at, incs, sev, wantIncs, wantSev)
		}
	}
}

// TestPlainEventLinksSurviveRestart: the lineage links of plain events
// that raised no alert come back after a restart from the stored link
// signals (Result.Links), so an alert after the restart that needs a link
// learned before it joins as without the restart: the host, its instance
// and the key the instance's session used are one incident.
func TestPlainEventLinksSurviveRestart(t *testing.T) {
	e1 := mkEvent("e1", "agent", 0, ob(ocsf.EntityHost, "h1"))
	link := mkEvent("e2", "agent", time.Minute, ob(ocsf.EntityHost, "h1"), ob(ocsf.EntityInstance, "i-1"))
	link2 := mkEvent("e3", "cloudtrail", 2*time.Minute, ob(ocsf.EntityInstance, "i-1"), ob(ocsf.EntityAccessKey, "ASIA1"))
	e4 := mkEvent("e4", "cloudtrail", 3*time.Minute, ob(ocsf.EntityAccessKey, "ASIA1"))
	batches := []Input{
		{Events: []ocsf.Event{e1}, Alerts: []alert.Alert{mkAlert("x1", "r1", "execution", 3, e1)}},
		{Events: []ocsf.Event{link}},
		{Events: []ocsf.Event{link2}},
		{Events: []ocsf.Event{e4}, Alerts: []alert.Alert{mkAlert("x2", "r2", "discovery", 3, e4)}},
	}
	want, _ := runBatches(t, testConfig(), batches, 0)
	if len(want) != 1 || len(want[0]) != 2 {
		t.Fatalf("without a restart: incidents %v, want one of both alerts", want)
	}
	for at := 1; at < len(batches); at++ {
		if got, _ := runBatches(t, testConfig(), batches, at); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("restart before batch %d: incidents %v, want %v", at, got, want)
		}
	}
}

// TestReleasedAlertTakesItsRuleSeverity: an alert held as an expected
// source is stored as informational; when a later credential theft on its
// instance releases it into the theft's incident, it takes back the
// severity and summary its rule gave it, and the incident's severity and
// risk count it — also when a restart falls between the hold and the
// theft, so the held alert comes back from its stored, informational row.
func TestReleasedAlertTakesItsRuleSeverity(t *testing.T) {
	cfg := testConfig()
	cfg.FoldWindow = time.Hour
	cfg.AllowedLateness = 24 * time.Hour
	atkEv, atkUse := credentialUse("atk", time.Hour, "198.51.100.99")
	atkUse.Severity, atkUse.Summary = ocsf.SeverityHigh, "instance credentials used from 198.51.100.99"
	theftEv := mkEvent("theft", "agent", 30*time.Minute, ob(ocsf.EntityHost, "web-1"), ob(ocsf.EntityInstance, "i-0abc"))
	theft := mkAlert("theft", "host.imds_credentials_from_webserver", "credential_access", ocsf.SeverityHigh, theftEv)
	// The theft's incident on its own, for comparison.
	alone, _ := newTest(t, cfg, nil)
	fa := final{}
	fa.add(t, alone.Process([]ocsf.Event{theftEv}, []alert.Alert{theft}))
	theftID := alone.foldID(&theft)
	lone := fa.containing(theftID)
	if lone == nil {
		t.Fatal("the theft alone opened no incident")
	}
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprint("restart=", restart), func(t *testing.T) {
			c, _ := newTest(t, cfg, nil)
			f := final{}
			r1 := c.Process([]ocsf.Event{atkEv}, []alert.Alert{atkUse})
			f.add(t, r1)
			if len(r1.Alerts) != 1 || r1.Alerts[0].Severity != ocsf.SeverityInformational || f.containing(r1.Alerts[0].ID) != nil {
				t.Fatalf("the first use: got %+v, want it held, stored as informational", r1.Alerts)
			}
			held := r1.Alerts[0]
			if restart {
				incs, alerts := storedState(t, []Result{r1})
				c, _ = newTest(t, cfg, nil)
				c.RestoreState(State{Incidents: incs, Alerts: alerts, Links: r1.Links})
			}
			r2 := c.Process([]ocsf.Event{theftEv}, []alert.Alert{theft})
			f.add(t, r2)
			in := f.containing(theftID)
			if in == nil || !slices.Contains(in.AlertIDs, held.ID) {
				t.Fatalf("the held use did not come back into the theft's incident: %v", in)
			}
			var released *alert.Alert
			for i := range r2.Alerts {
				if r2.Alerts[i].ID == held.ID {
					released = &r2.Alerts[i]
				}
			}
			if released == nil || released.Severity != ocsf.SeverityHigh || released.Summary != atkUse.Summary {
				t.Errorf("the released alert as stored: got %+v, want severity %d and the rule's summary %q", released, ocsf.SeverityHigh, atkUse.Summary)
			}
			for _, e := range in.Timeline {
				if e.AlertID == held.ID && e.Severity != ocsf.SeverityHigh {
					t.Errorf("the released alert in the timeline: got severity %d, want %d", e.Severity, ocsf.SeverityHigh)
				}
			}
			if in.RiskScore <= lone.RiskScore || in.Severity < lone.Severity {
				t.Errorf("incident severity %d, risk %d; want above the theft alone (%d, %d)", in.Severity, in.RiskScore, lone.Severity, lone.RiskScore)
			}
		})
	}
}
