package correlate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

const reloadDetection = `id: t.detect
title: A detection
severity: low
condition: event.api.operation == "X"
`

// reloadRule is a two-stage rule; stage names the stage of its second alert.
func reloadRule(stage string) string {
	return `kind: correlation
id: t.reload
title: Discovery then another stage with the same key
severity: high
span: 3h
stages:
  - alert: alert.stage == "discovery"
    key: {entity: access_key}
  - alert: alert.stage == "` + stage + `"
`
}

const brokenRule = `kind: correlation
id: t.broken
title: Broken
severity: high
span: 1h
stages:
  - alert: alert.stage ==
`

func writeRule(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// matches runs the two alerts of a chain through c and counts the
// correlated alerts; seq makes the ids and times of each call distinct.
func matches(c *Correlator, seq int, secondStage string) int {
	d := time.Duration(seq) * 4 * time.Hour
	key := ob(ocsf.EntityAccessKey, "AKIA"+string(rune('A'+seq)))
	a := mkEvent("e1"+string(rune('a'+seq)), "cloudtrail", d, key)
	b := mkEvent("e2"+string(rune('a'+seq)), "cloudtrail", d+10*time.Minute, key)
	n := len(corrOnly(c.Process([]ocsf.Event{a}, []alert.Alert{mkAlert("x1"+a.Metadata.UID, "r1", "discovery", 2, a)})))
	return n + len(corrOnly(c.Process([]ocsf.Event{b}, []alert.Alert{mkAlert("x2"+b.Metadata.UID, "r2", secondStage, 2, b)})))
}

// TestLiveReloadCoversCorrelationRules checks the one reload path of a
// rule directory: a broken correlation file rejects the reload (the error
// located as file:line:col, the running detection and correlation rules
// kept), and a valid correlation edit takes effect on the next reload,
// without a restart.
func TestLiveReloadCoversCorrelationRules(t *testing.T) {
	dir := t.TempDir()
	writeRule(t, dir, "detect.yaml", reloadDetection)
	writeRule(t, dir, "chain.yaml", reloadRule("impact"))
	seq, err := LoadRules(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newTest(t, testConfig(), seq)
	eng := rules.NewEngine(nil, nil)
	m := rules.NewManager(dir, eng, nil)
	m.AddCompanion(c.Reloader())
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	running := eng.Set()
	if got := matches(c, 0, "impact"); got != 1 {
		t.Fatalf("before reload: got %d matches, want 1", got)
	}

	writeRule(t, dir, "broken.yaml", brokenRule)
	err = m.Reload()
	if err == nil {
		t.Fatal("got nil error, want the reload rejected for the broken correlation file")
	}
	if want := filepath.Join(dir, "broken.yaml") + ":7:"; !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want the problem located at %s…", err, want)
	}
	if m.LastError() == nil {
		t.Error("LastError is nil after a rejected reload")
	}
	if eng.Set() != running {
		t.Error("the detection set was swapped by a rejected reload")
	}
	if got := len(c.SequenceRules()); got != 1 {
		t.Errorf("got %d correlation rules running, want the old 1", got)
	}
	if got := matches(c, 1, "impact"); got != 1 {
		t.Errorf("after the rejected reload: got %d matches, want 1 (old rule still running)", got)
	}

	// Fix the broken file and edit the rule: the chain now ends in
	// exfiltration, not impact.
	if err := os.Remove(filepath.Join(dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	writeRule(t, dir, "chain.yaml", reloadRule("exfiltration"))
	if err := m.Reload(); err != nil {
		t.Fatalf("valid edit rejected: %v", err)
	}
	if m.LastError() != nil {
		t.Errorf("LastError = %v after a good reload", m.LastError())
	}
	if got := matches(c, 2, "impact"); got != 0 {
		t.Errorf("after the edit: impact chain got %d matches, want 0", got)
	}
	if got := matches(c, 3, "exfiltration"); got != 1 {
		t.Errorf("after the edit: exfiltration chain got %d matches, want 1", got)
	}
}

// TestReloadKeepsStateOfUnchangedRules: a reload that does not change a
// rule keeps its partial chains, so a chain split across a reload fires.
func TestReloadKeepsStateOfUnchangedRules(t *testing.T) {
	seq := parse(t, reloadRule("impact"))
	c, _ := newTest(t, testConfig(), seq)
	key := ob(ocsf.EntityAccessKey, "AKIAKEEP")
	a := mkEvent("k1", "cloudtrail", 0, key)
	b := mkEvent("k2", "cloudtrail", 10*time.Minute, key)
	c.Process([]ocsf.Event{a}, []alert.Alert{mkAlert("xk1", "r1", "discovery", 2, a)})
	c.SetRules(parse(t, reloadRule("impact"))) // same document, compiled anew
	if got := len(corrOnly(c.Process([]ocsf.Event{b}, []alert.Alert{mkAlert("xk2", "r2", "impact", 2, b)}))); got != 1 {
		t.Errorf("got %d matches, want 1: the partial chain was lost on reload", got)
	}
}

// TestHostileCorrelationConditionRejectedAtLoad: correlation stage
// conditions get the load-time bounds of detection conditions (the static
// cost estimate with Musubi's function prices, constant patterns).
func TestHostileCorrelationConditionRejectedAtLoad(t *testing.T) {
	for _, tc := range []struct{ name, cond, want string }{
		{"scans in nested comprehensions", `event.observables.all(a, event.observables.all(b, b.value.contains(a.value + event.message)))`, "estimated worst-case cost"},
		{"priced library function", `event.observables.all(a, event.observables.all(b, event.message.icontains([a.value, b.value])))`, "estimated worst-case cost"},
		{"variable pattern", `event.message.matches(event.actor.user.name)`, "constant string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "kind: correlation\nid: t.hostile\ntitle: Hostile\nseverity: high\nspan: 1h\nstages:\n  - event: '" + tc.cond + "'\n"
			_, err := ParseRules("hostile.yaml", []byte(src))
			if err == nil {
				t.Fatal("got nil error, want the rule rejected")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hostile.yaml:7:") {
				t.Errorf("got %v, want a problem at hostile.yaml:7 mentioning %q", err, tc.want)
			}
		})
	}
}

// TestHostileCorrelationConditionStoppedAtEvaluation: a stage condition
// that passes the load checks but is expensive on one event is stopped by
// the cost limit (or the deadline) and counted, and the correlator goes on.
func TestHostileCorrelationConditionStoppedAtEvaluation(t *testing.T) {
	c, reg := newTest(t, testConfig(), parse(t, `kind: correlation
id: t.slow
title: Slow
severity: high
span: 1h
stages:
  - event: 'event.observables.exists(a, event.observables.exists(b, a.type_id == b.type_id + 1000))'
`))
	ev := mkEvent("slow", "cloudtrail", 0)
	for i := range 3000 {
		ev.Observables = append(ev.Observables, ocsf.Observable{Value: strings.Repeat("v", i%64), Entity: ocsf.EntityIP})
	}
	start := time.Now()
	c.Process([]ocsf.Event{ev}, nil)
	elapsed := time.Since(start)
	got := metricValue(t, reg, "musubi_correlate_dropped_total", "reason", "sequence_cost_limit") +
		metricValue(t, reg, "musubi_correlate_dropped_total", "reason", "sequence_timeout")
	if got != 1 {
		t.Errorf("got %v stopped evaluations, want 1 (took %v)", got, elapsed)
	}
}
