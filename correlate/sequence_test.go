package correlate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

const scenarioRules = "../detections"

func loadScenarioRules(t testing.TB) []*SequenceRule {
	t.Helper()
	rs, err := LoadRules(scenarioRules)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func parse(t testing.TB, src string) []*SequenceRule {
	t.Helper()
	rs, err := ParseRules("inline.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// corrOnly returns the correlated alerts of a result: what sequence rules
// raised, without the detection alerts it also carries.
func corrOnly(r Result) []alert.Alert {
	var out []alert.Alert
	for _, a := range r.Alerts {
		if a.Correlated {
			out = append(out, a)
		}
	}
	return out
}

func correlated(f final) []incident.Incident {
	var out []incident.Incident
	for _, in := range f.open() {
		for _, n := range in.Nodes {
			if n.Kind == incident.NodeAlert && strings.HasPrefix(n.Value, "corr-") {
				out = append(out, in)
				break
			}
		}
	}
	return out
}

func TestLoadScenarioRules(t *testing.T) {
	rs := loadScenarioRules(t)
	i := slices.IndexFunc(rs, func(r *SequenceRule) bool { return r.ID == "chain.instance_credentials_to_deployment" })
	if i < 0 {
		t.Fatalf("loaded %d rules, none of them chain.instance_credentials_to_deployment", len(rs))
	}
	r := rs[i]
	if r.ID != "chain.instance_credentials_to_deployment" || len(r.Stages) != 5 || r.Severity != ocsf.SeverityCritical {
		t.Errorf("rule = %s with %d stages, severity %d", r.ID, len(r.Stages), r.Severity)
	}
	if got := r.Stages[4].On.String(); got != "deployment" {
		t.Errorf("last stage on = %s, want deployment", got)
	}
}

func TestLoadRulesSkipsDetectionsAndReportsProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("detection.yaml", "id: some.detection\ncondition: event.class_uid == 1\n")
	write("bad.yaml", `kind: correlation
id: bad.rule
title: Bad
severity: loud
span: forever
stages:
  - name: one
    alert: alert.rule == "x"
  - name: two
    event: event.class_uid
    absent: true
  - name: three
    alert: alert.stage == "x"
    colour: red
`)
	write("good.yml", `kind: correlation
id: good.rule
title: Good
severity: high
span: 1h
stages:
  - alert: alert.stage == "discovery"
    key: {entity: access_key}
  - alert: alert.stage == "impact"
`)
	_, err := LoadRules(dir)
	if err == nil {
		t.Fatal("problems not reported")
	}
	if !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key not reported: %v", err)
	}
	// Fix the unknown key to see the other problems at once.
	write("bad.yaml", `kind: correlation
id: bad.rule
title: Bad
severity: loud
span: forever
stages:
  - name: one
    alert: alert.rule == "x"
  - name: two
    event: event.class_uid
    absent: true
  - name: three
    alert: alert.stage == "x"
`)
	rs, err := LoadRules(dir)
	for _, want := range []string{"severity", "span", `no field "rule"`, "must be of type bool", "bad.yaml:11:13:", "only the last stage"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if len(rs) != 1 || rs[0].ID != "good.rule" {
		t.Errorf("loaded %v, want the good rule only", rs)
	}
}

func TestSequenceChainsHandOffOnDifferentFields(t *testing.T) {
	c, reg := newTest(t, testConfig(), loadScenarioRules(t))
	s := attackStory()
	f := final{}
	var raised []alert.Alert
	evs := slices.Clone(s.events)
	slices.SortStableFunc(evs, func(a, b ocsf.Event) int { return int(a.Time - b.Time) })
	for _, ev := range evs {
		var as []alert.Alert
		for _, a := range s.alerts {
			if a.EventIDs[0] == ev.Metadata.UID {
				as = append(as, a)
			}
		}
		r := c.Process([]ocsf.Event{ev}, as)
		raised = append(raised, corrOnly(r)...)
		f.add(t, r)
	}
	var chain *alert.Alert
	byRule := map[string]int{}
	for i, a := range raised {
		byRule[a.RuleID]++
		if a.RuleID == "chain.instance_credentials_to_deployment" {
			chain = &raised[i]
		}
	}
	if chain == nil {
		t.Fatalf("chain rule did not match; raised %v", byRule)
	}
	if byRule["chain.instance_credentials_to_deployment"] != 1 || byRule["chain.deployment_runs_payload_on_many_hosts"] != 1 {
		t.Errorf("matches per rule = %v, want one each", byRule)
	}
	if !chain.Correlated || chain.Severity != ocsf.SeverityCritical || chain.ID != hashID("corr-", chain.RuleID, "1", tenantA, "a-web-imds") {
		t.Errorf("correlated alert = %+v", chain)
	}
	for _, ev := range []string{"web-imds", "gd-exfil", "ct-bundle", "ct-deploy", "tgt-drop-1"} {
		if !slices.Contains(chain.EventIDs, ev) {
			t.Errorf("evidence lacks %s: %v", ev, chain.EventIDs)
		}
	}
	attack := f.containing(chain.ID)
	if attack == nil || !slices.Contains(attack.AlertIDs, "a-web-sh") {
		t.Fatal("correlated alert did not join the attack incident")
	}
	var seqEdges []incident.Edge
	for _, e := range attack.Edges {
		if e.Relation == RelSequence && e.RuleID == chain.RuleID {
			seqEdges = append(seqEdges, e)
		}
	}
	keys := map[string]bool{}
	for _, e := range seqEdges {
		keys[e.JoinKey] = true
	}
	if keys[""] {
		t.Errorf("a sequence edge has no join key: %v", keys)
	}
	for _, want := range []string{"instance=i-0web1", "instance@actor.session.name=i-0web1", "deployment=d-ATTACK0001"} {
		if !keys[want] {
			t.Errorf("sequence edges lack join key %q: %v", want, keys)
		}
	}
	if got := metricValue(t, reg, "musubi_correlate_sequence_matches_total", "rule", chain.RuleID); got != 1 {
		t.Errorf("sequence matches metric = %v, want 1", got)
	}
	if ci := f.containing("a-ci-put"); ci == nil || ci.Severity >= ocsf.SeverityHigh || len(correlated(final{ci.ID: *ci})) > 0 {
		t.Error("the legitimate deployment was correlated or rated high")
	}
}

func TestSequenceShuffledSameIncidents(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedLateness = 24 * time.Hour
	rs := loadScenarioRules(t)
	c, _ := newTest(t, cfg, rs)
	want := fingerprint(t, runInOrder(t, c, attackStory()))
	if !strings.Contains(want, "chain.instance_credentials_to_deployment") {
		t.Fatal("in-order run did not match the chain rule")
	}
	for seed := range uint64(25) {
		c, _ := newTest(t, cfg, rs)
		got := fingerprint(t, runShuffled(t, c, attackStory(), rand.New(rand.NewPCG(seed, 3))))
		if got != want {
			t.Fatalf("seed %d: shuffled input gives other incidents\n got %s\nwant %s", seed, got, want)
		}
	}
}

const gapRule = `kind: correlation
id: t.gap
title: Discovery then impact with the same key
severity: high
span: 3h
stages:
  - alert: alert.stage == "discovery"
    key: {entity: access_key}
  - alert: alert.stage == "impact"
    on: {entity: access_key}
    max_gap: 1h
`

func TestSequenceMaxGap(t *testing.T) {
	for _, tc := range []struct {
		gap  time.Duration
		want int
	}{{30 * time.Minute, 1}, {90 * time.Minute, 0}} {
		c, _ := newTest(t, testConfig(), parse(t, gapRule))
		a := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIA1"))
		b := mkEvent("e2", "cloudtrail", tc.gap, ob(ocsf.EntityAccessKey, "AKIA1"))
		n := len(corrOnly(c.Process([]ocsf.Event{a}, []alert.Alert{mkAlert("x1", "r1", "discovery", 2, a)})))
		n += len(corrOnly(c.Process([]ocsf.Event{b}, []alert.Alert{mkAlert("x2", "r2", "impact", 2, b)})))
		if n != tc.want {
			t.Errorf("gap %v: %d matches, want %d", tc.gap, n, tc.want)
		}
	}
}

func TestSequenceOutOfOrderStages(t *testing.T) {
	c, _ := newTest(t, testConfig(), parse(t, gapRule))
	a := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIA1"))
	b := mkEvent("e2", "cloudtrail", 10*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"))
	// The later stage arrives first.
	n := len(corrOnly(c.Process([]ocsf.Event{b}, []alert.Alert{mkAlert("x2", "r2", "impact", 2, b)})))
	r := c.Process([]ocsf.Event{a}, []alert.Alert{mkAlert("x1", "r1", "discovery", 2, a)})
	n += len(corrOnly(r))
	if n != 1 {
		t.Fatalf("%d matches, want 1", n)
	}
	if corrOnly(r)[0].Time != b.Time {
		t.Errorf("correlated alert time = %d, want the last stage's %d", corrOnly(r)[0].Time, b.Time)
	}
	// A single medium alert is low; the correlated high alert lifts the
	// incident.
	var inc *incident.Incident
	for i := range r.Incidents {
		if slices.Contains(r.Incidents[i].AlertIDs, corrOnly(r)[0].ID) {
			inc = &r.Incidents[i]
		}
	}
	if inc == nil || inc.Severity < ocsf.SeverityHigh {
		t.Errorf("incident with the correlated alert: %+v, want high", inc)
	}
}

const thresholdRule = `kind: correlation
id: t.threshold
title: One key reading from three source addresses
severity: medium
stages:
  - event: event.api.operation == "GetObject"
    key: {entity: access_key}
    count: 3
    distinct: {entity: ip}
    within: 10m
`

func TestSequenceThresholdDistinct(t *testing.T) {
	c, _ := newTest(t, testConfig(), parse(t, thresholdRule))
	n := 0
	for i, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.3", "192.0.2.4"} {
		e := mkEvent("g"+string(rune('a'+i)), "cloudtrail", time.Duration(i)*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"), ob(ocsf.EntityIP, ip))
		e.API.Operation = "GetObject"
		r := c.Process([]ocsf.Event{e}, nil)
		n += len(corrOnly(r))
		if len(corrOnly(r)) == 1 && i != 4 {
			t.Errorf("threshold reached at event %d, want at the third distinct address (event 4)", i)
		}
	}
	if n != 1 {
		t.Errorf("%d matches, want 1", n)
	}
	// Spread wider than the window: no match.
	c, _ = newTest(t, testConfig(), parse(t, thresholdRule))
	for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		e := mkEvent("h"+string(rune('a'+i)), "cloudtrail", time.Duration(i)*8*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"), ob(ocsf.EntityIP, ip))
		e.API.Operation = "GetObject"
		if r := c.Process([]ocsf.Event{e}, nil); len(corrOnly(r)) > 0 {
			t.Error("threshold matched across more than its window")
		}
	}
}

const absenceRule = `kind: correlation
id: t.absence
title: Deployment created and never finished
severity: medium
stages:
  - event: event.api.operation == "CreateDeployment"
    key: {entity: deployment}
  - event: event.api.operation == "PutLifecycleEventHookExecutionStatus"
    on: {entity: deployment}
    absent: true
    within: 30m
`

func deployEvent(uid string, d time.Duration, op, dep string) ocsf.Event {
	e := mkEvent(uid, "cloudtrail", d, ob(ocsf.EntityDeployment, dep))
	e.API.Operation = op
	return e
}

func TestSequenceAbsence(t *testing.T) {
	cfg := testConfig()
	c, _ := newTest(t, cfg, parse(t, absenceRule))
	var raised []alert.Alert
	step := func(evs ...ocsf.Event) { raised = append(raised, corrOnly(c.Process(evs, nil))...) }
	step(deployEvent("d1", 0, "CreateDeployment", "d-1"), deployEvent("d2", 0, "CreateDeployment", "d-2"))
	// d-2 finishes, late but within the allowed lateness; it arrives after
	// a later event moved the source's mark.
	step(deployEvent("x", 20*time.Minute, "ListApplications", "d-9"))
	step(deployEvent("f2", 18*time.Minute, "PutLifecycleEventHookExecutionStatus", "d-2"))
	step(deployEvent("y", 34*time.Minute, "ListApplications", "d-9"))
	if len(raised) != 0 {
		t.Fatalf("absence fired before deadline + lateness: %v", raised)
	}
	step(deployEvent("z", 36*time.Minute, "ListApplications", "d-9"))
	if len(raised) != 1 || !strings.Contains(strings.Join(raised[0].EventIDs, ","), "d1") {
		t.Fatalf("raised %d alerts, want one for d-1", len(raised))
	}
	if raised[0].Time != at(30*time.Minute) {
		t.Errorf("absence alert time = %v, want the deadline", time.UnixMilli(raised[0].Time).UTC())
	}
	// Sequence state is evicted once the span has passed.
	if c.seq.partials() == 0 {
		t.Fatal("no sequence state held")
	}
	c.Advance(t0.Add(3 * time.Hour))
	if n := c.seq.partials(); n != 0 {
		t.Errorf("%d stage inputs held after the span closed, want 0", n)
	}
}

// The follow-up arriving before the chain it follows still cancels it.
func TestSequenceAbsenceFollowUpFirst(t *testing.T) {
	c, _ := newTest(t, testConfig(), parse(t, absenceRule))
	var raised []alert.Alert
	raised = append(raised, corrOnly(c.Process([]ocsf.Event{deployEvent("f1", 10*time.Minute, "PutLifecycleEventHookExecutionStatus", "d-1")}, nil))...)
	raised = append(raised, corrOnly(c.Process([]ocsf.Event{deployEvent("d1", 0, "CreateDeployment", "d-1")}, nil))...)
	raised = append(raised, corrOnly(c.Advance(t0.Add(2*time.Hour)))...)
	if len(raised) != 0 {
		t.Errorf("absence fired although the follow-up came (first): %d alerts", len(raised))
	}
}

// The pipeline calls Advance with the clock when input is idle; absence
// rules still fire. synctest gives the idle loop a fake clock.
func TestSequenceAbsenceFiresWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		c, _ := newTest(t, cfg, parse(t, absenceRule))
		start := time.Now()
		ev := mkEvent("d1", "cloudtrail", 0, ob(ocsf.EntityDeployment, "d-1"))
		ev.Time = start.UnixMilli()
		ev.API.Operation = "CreateDeployment"
		if r := c.Process([]ocsf.Event{ev}, nil); len(corrOnly(r)) != 0 {
			t.Fatal("fired at once")
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		fired := make(chan time.Time, 1)
		go func() { // the runner's idle loop
			tick := time.NewTicker(time.Minute)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					if r := c.Advance(now); len(corrOnly(r)) > 0 {
						fired <- now
						return
					}
				}
			}
		}()
		got := <-fired
		if wait := got.Sub(start); wait < 35*time.Minute || wait > 36*time.Minute {
			t.Errorf("fired after %v, want the 30m window plus the 5m lateness", wait)
		}
	})
}

// After a restart the in-flight sequence state comes back from the stored
// alerts, and a chain raised before the restart is not raised again.
func TestSequenceRestore(t *testing.T) {
	rs := parse(t, gapRule)
	c, _ := newTest(t, testConfig(), rs)
	a := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIA1"))
	x1 := mkAlert("x1", "r1", "discovery", 2, a)
	f := final{}
	f.add(t, c.Process([]ocsf.Event{a}, []alert.Alert{x1}))

	c2, _ := newTest(t, testConfig(), rs)
	c2.Restore(f.open(), []alert.Alert{x1})
	b := mkEvent("e2", "cloudtrail", 10*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"))
	x2 := mkAlert("x2", "r2", "impact", 2, b)
	r := c2.Process([]ocsf.Event{b}, []alert.Alert{x2})
	f.add(t, r)
	if len(corrOnly(r)) != 1 {
		t.Fatalf("after restore: %d correlated alerts, want 1 (the first stage came from storage)", len(corrOnly(r)))
	}
	corr := corrOnly(r)[0]
	inc := f.containing(corr.ID)
	if inc == nil || !slices.Contains(inc.AlertIDs, "x1") || inc.ID != IncidentID(tenantA, "x1") {
		t.Fatalf("correlated alert not in the restored incident: %+v", inc)
	}

	// A second restart with everything stored: replaying the stage alerts
	// completes the chain again, but nothing is raised twice.
	c3, _ := newTest(t, testConfig(), rs)
	c3.Restore(f.open(), []alert.Alert{x1, x2, corr})
	late := mkEvent("e3", "cloudtrail", 11*time.Minute, ob(ocsf.EntityHost, "other"))
	if r := c3.Process([]ocsf.Event{late}, nil); len(corrOnly(r)) != 0 || len(r.Incidents) != 0 {
		t.Errorf("restore re-raised %d alerts and re-emitted %d incidents, want none", len(corrOnly(r)), len(r.Incidents))
	}
	// The explanation of the correlated alert survives the restart.
	y := mkEvent("e4", "cloudtrail", 12*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"))
	r = c3.Process([]ocsf.Event{y}, []alert.Alert{mkAlert("x3", "r3", "exfiltration", 2, y)})
	var seq bool
	for _, in := range r.Incidents {
		for _, e := range in.Edges {
			seq = seq || e.Relation == RelSequence
		}
	}
	if !seq {
		t.Error("sequence edges lost after restore")
	}
}

// TestSequenceEventStageReadsBodiesAsRulesDo: an event stage sees
// `request` and `response` as a detection rule's condition does — decoded
// from the event's bodies, an absent key equal to nothing at any depth —
// so a negated test of an absent key holds instead of failing evaluation.
func TestSequenceEventStageReadsBodiesAsRulesDo(t *testing.T) {
	rs := parse(t, `kind: correlation
id: t.body
title: Public bucket policy
severity: high
span: 1h
stages:
  - event: request.bucketName == "loot" && request.acl != "private" && response.status.code != 200
    key: {entity: access_key}
`)
	for _, tc := range []struct {
		name, request string
		want          int
	}{
		{"absent keys", `{"bucketName":"loot"}`, 1},
		{"present keys", `{"bucketName":"loot","acl":"public-read"}`, 1},
		{"excluded by a present key", `{"bucketName":"loot","acl":"private"}`, 0},
		{"no body", ``, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, reg := newTest(t, testConfig(), rs)
			ev := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIA1"))
			ev.API.Request.Data = []byte(tc.request)
			if got := len(corrOnly(c.Process([]ocsf.Event{ev}, nil))); got != tc.want {
				t.Errorf("got %d matches, want %d", got, tc.want)
			}
			if got := metricValue(t, reg, "musubi_correlate_dropped_total", "reason", "sequence_eval"); got != 0 {
				t.Errorf("got %v stage evaluation errors, want 0", got)
			}
		})
	}
}

const eventThenAlertRule = `kind: correlation
id: t.event_then_alert
title: A new access key, then impact with it
severity: high
span: 3h
stages:
  - event: event.api.operation == "CreateAccessKey"
    key: {entity: access_key}
  - alert: alert.stage == "impact"
    on: {entity: access_key}
    max_gap: 1h
`

// TestSequenceEventStagesSurviveRestart: a stage matched by a plain event
// (which raised no alert) comes back after a restart from the stored
// stage inputs (Result.Stages), so the chain it starts completes after the
// restart as without one — for an ordered chain and for a threshold whose
// first inputs arrived before the restart. Restored without them, the
// chain starts over and nothing is raised.
func TestSequenceEventStagesSurviveRestart(t *testing.T) {
	key := ob(ocsf.EntityAccessKey, "AKIA1")
	create := mkEvent("e-create", "cloudtrail", 0, key)
	create.API.Operation = "CreateAccessKey"
	impactEv := mkEvent("e-impact", "cloudtrail", 20*time.Minute, key)
	impact := mkAlert("x-impact", "r-impact", "impact", 3, impactEv)
	var reads []ocsf.Event
	for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		e := mkEvent("g"+string(rune('a'+i)), "cloudtrail", time.Duration(i)*time.Minute, key, ob(ocsf.EntityIP, ip))
		e.API.Operation = "GetObject"
		reads = append(reads, e)
	}
	cases := []struct {
		name         string
		rule         string
		before       []ocsf.Event
		after        []ocsf.Event
		afterAlerts  []alert.Alert
		storedStages int
	}{
		{"event stage, then an alert", eventThenAlertRule, []ocsf.Event{create}, []ocsf.Event{impactEv}, []alert.Alert{impact}, 1},
		{"threshold of events", thresholdRule, reads[:2], reads[2:], nil, 2},
	}
	for _, tc := range cases {
		for _, restore := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/restore stages=%v", tc.name, restore), func(t *testing.T) {
				rs := parse(t, tc.rule)
				c, _ := newTest(t, testConfig(), rs)
				r1 := c.Process(tc.before, nil)
				if len(corrOnly(r1)) != 0 || len(r1.Stages) != tc.storedStages {
					t.Fatalf("before the restart: %d correlated alerts, %d stage inputs to store; want 0 and %d", len(corrOnly(r1)), len(r1.Stages), tc.storedStages)
				}
				for _, s := range r1.Stages {
					if s.RuleID != rs[0].ID || s.Stage != 0 || s.UID == "" || len(s.Observables) == 0 {
						t.Errorf("stage input to store: %+v", s)
					}
				}
				incs, alerts := storedState(t, []Result{r1})
				st := State{Incidents: incs, Alerts: alerts, Links: r1.Links}
				if restore {
					st.Stages = r1.Stages
				}
				c2, _ := newTest(t, testConfig(), rs)
				c2.RestoreState(st)
				// The restore raises nothing by itself.
				if r := c2.Process(nil, nil); len(corrOnly(r)) != 0 {
					t.Fatalf("the restore raised %d correlated alerts", len(corrOnly(r)))
				}
				r2 := c2.Process(tc.after, tc.afterAlerts)
				want := map[bool]int{true: 1, false: 0}[restore]
				if got := len(corrOnly(r2)); got != want {
					t.Fatalf("after the restart: got %d correlated alerts, want %d", got, want)
				}
				if !restore {
					return
				}
				// The same stream without a restart raises the same alert.
				c3, _ := newTest(t, testConfig(), rs)
				c3.Process(tc.before, nil)
				r3 := c3.Process(tc.after, tc.afterAlerts)
				if len(corrOnly(r3)) != 1 || corrOnly(r3)[0].ID != corrOnly(r2)[0].ID || !slices.Equal(corrOnly(r3)[0].EventIDs, corrOnly(r2)[0].EventIDs) {
					t.Errorf("with a restart %+v, without %+v; want the same", corrOnly(r2), corrOnly(r3))
				}
			})
		}
	}
}
