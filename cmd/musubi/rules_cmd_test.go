package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestShippedPack runs what a detection engineer's CI runs on the shipped
// pack: lint, inline tests, and the multi-source scenarios replayed in
// shuffled orders.
func TestShippedPack(t *testing.T) {
	for _, args := range [][]string{
		{"rules", "lint", "../../detections"},
		{"rules", "test", "-scenarios", "../../testdata/scenarios", "-orders", "6", "../../detections"},
		{"rules", "coverage", "-format", "json", "../../detections"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, nil, &stdout, &stderr); code != 0 {
				t.Fatalf("musubi %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
			}
			if args[1] == "coverage" {
				var rep struct {
					Layer struct {
						Domain     string
						Techniques []struct{ TechniqueID string }
					}
				}
				if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Layer.Domain != "enterprise-attack" || len(rep.Layer.Techniques) < 30 {
					t.Errorf("got coverage layer %+v (%v), want an enterprise-attack layer with at least 30 techniques", rep.Layer.Domain, err)
				}
			}
		})
	}
}

// TestScenarioFailuresAreReported checks that a scenario whose expectation
// does not hold fails `rules test`, naming what is missing.
func TestScenarioFailuresAreReported(t *testing.T) {
	dir := t.TempDir()
	src := "../../testdata/scenarios/attack-chain"
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "expected.json" {
			data = bytes.Replace(data, []byte(`"ip:203.0.113.9"`), []byte(`"ip:192.0.2.250"`), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"rules", "test", "-scenarios", dir, "-orders", "1", "../../detections"}, nil, &stdout, &stderr)
	if code == 0 || !strings.Contains(stdout.String(), "attack incident lacks entity ip:192.0.2.250") {
		t.Errorf("got exit %d with\n%s\nwant a failure naming the missing entity", code, stdout.String())
	}
}

// costFixture holds a rule of each kind the -cost report tells apart.
const costFixture = "testdata/costrules"

// TestRulesLintCostText checks the table of `rules lint -cost`: each
// rule's evaluation path (untracked, or tracked and why) and its gate
// (the prerequisites that keep it from running, or the events it runs
// for), most expensive first.
func TestRulesLintCostText(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"rules", "lint", "-cost", costFixture}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0 (cost is never a lint failure)\n%s%s", code, stdout.String(), stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	rows := map[string]string{}
	var order []string
	for _, l := range lines {
		if name, _, ok := strings.Cut(l, " "); ok && strings.HasPrefix(name, "cost.") {
			if strings.HasPrefix(l, "cost.failed_signins") {
				name = "cost.failed_signins [failed sign-ins]"
			}
			rows[name] = l
			order = append(order, name)
		}
	}
	tests := []struct {
		rule string
		want []string // substrings of the row, in order
	}{
		{"cost.json_text", []string{"unbounded", "tracked: unbounded strict estimate (json_text", `event.api.operation == "PutBucketPolicy"`}},
		{"cost.scan_above_limit", []string{"tracked+deadline: strict estimate above the cost limit", "evaluated for every event of class 1007, log agent"}},
		{"cost.scan_narrow", []string{"untracked within strings ≤ 2048 B, lists ≤ 64 (estimate ", "), else tracked+deadline", "evaluated for every event of class 1007, log agent"}},
		{"cost.regex_prefix", []string{"untracked", `event.class_uid == 6003 && event.metadata.log_name == "cloudtrail" && event.actor.session.name starts with "i-"`}},
		{"cost.op_untracked", []string{"untracked", `event.api.operation == "StopLogging" && event.metadata.log_name == "cloudtrail" && event.status_id != 2`}},
		{"cost.class_only", []string{"untracked", "evaluated for every event of class 4001, log vpcflow"}},
		{"cost.failed_signins [failed sign-ins]", []string{"tracked: correlation stage conditions run tracked", `event.api.operation == "ConsoleLogin"`}},
	}
	for _, tt := range tests {
		row, ok := rows[tt.rule]
		if !ok {
			t.Errorf("no row for %s in\n%s", tt.rule, stdout.String())
			continue
		}
		rest := row
		for _, w := range tt.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("%s: got row %q, want it to contain %q (after the earlier columns)", tt.rule, row, w)
				break
			}
			rest = rest[i+len(w):]
		}
	}
	wantOrder := []string{"cost.json_text", "cost.scan_above_limit", "cost.scan_narrow", "cost.regex_prefix"}
	if len(order) < len(wantOrder) || !slices.Equal(order[:len(wantOrder)], wantOrder) {
		t.Errorf("got rows in order %v, want the unbounded and most expensive first: %v", order, wantOrder)
	}
	if want := "cost: 7 rules (6 detection, 1 correlation stage conditions), 4 untracked, 4 prefiltered"; !strings.Contains(stdout.String(), want) {
		t.Errorf("got\n%s\nwant the summary %q", stdout.String(), want)
	}
}

// TestRulesLintCostJSON checks the classification in `rules lint -cost
// -format json`.
func TestRulesLintCostJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"rules", "lint", "-cost", "-format", "json", costFixture}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, stdout.String(), stderr.String())
	}
	var rep struct {
		OK   bool `json:"ok"`
		Cost struct {
			Rules []struct {
				RuleID          string   `json:"rule_id"`
				Kind            string   `json:"kind"`
				Strict          uint64   `json:"strict_estimate"`
				Unbounded       bool     `json:"unbounded"`
				Untracked       bool     `json:"untracked"`
				UntrackedWithin string   `json:"untracked_within"`
				UntrackedBound  uint64   `json:"untracked_bound"`
				TrackedBecause  string   `json:"tracked_because"`
				Deadline        bool     `json:"deadline"`
				Prefilter       []string `json:"prefilter"`
				Prefiltered     bool     `json:"prefiltered"`
			} `json:"rules"`
			Untracked   int `json:"untracked"`
			Prefiltered int `json:"prefiltered"`
		} `json:"cost"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v\n%s", err, stdout.String())
	}
	type class struct {
		kind                              string
		untracked, prefiltered, unbounded bool
		deadline                          bool
		because                           string
	}
	want := map[string]class{
		"cost.json_text":        {kind: "detection", prefiltered: true, unbounded: true, because: "json_text"},
		"cost.scan_above_limit": {kind: "detection", deadline: true, because: "above the cost limit"},
		"cost.scan_narrow":      {kind: "detection", untracked: true, deadline: true},
		"cost.regex_prefix":     {kind: "detection", untracked: true, prefiltered: true},
		"cost.op_untracked":     {kind: "detection", untracked: true, prefiltered: true},
		"cost.class_only":       {kind: "detection", untracked: true},
		"cost.failed_signins":   {kind: "correlation", prefiltered: true, because: "correlation"},
	}
	got := map[string]class{}
	for _, r := range rep.Cost.Rules {
		got[r.RuleID] = class{r.Kind, r.Untracked, r.Prefiltered, r.Unbounded, r.Deadline, r.TrackedBecause}
		if !r.Unbounded && r.Strict == 0 {
			t.Errorf("%s: got strict estimate 0, want its bound", r.RuleID)
		}
		if r.Untracked != (r.TrackedBecause == "") {
			t.Errorf("%s: untracked %v with tracked_because %q", r.RuleID, r.Untracked, r.TrackedBecause)
		}
		// Only the single scan is untracked within narrower hints than
		// the widest, under a bound within the cost limit that its
		// strict estimate over the widest is above.
		if narrow := r.RuleID == "cost.scan_narrow"; narrow != (r.UntrackedWithin != "") ||
			narrow && (r.UntrackedBound == 0 || r.UntrackedBound > 1_000_000 || r.Strict <= 1_000_000) {
			t.Errorf("%s: got untracked within %q, bound %d, strict %d", r.RuleID, r.UntrackedWithin, r.UntrackedBound, r.Strict)
		}
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("no entry for %s", id)
			continue
		}
		if !strings.Contains(g.because, w.because) || (w.because == "") != (g.because == "") {
			t.Errorf("%s: got tracked_because %q, want one mentioning %q", id, g.because, w.because)
		}
		g.because, w.because = "", ""
		if g != w {
			t.Errorf("%s: got %+v, want %+v", id, g, w)
		}
	}
	if len(got) != len(want) || rep.Cost.Untracked != 4 || rep.Cost.Prefiltered != 4 || !rep.OK {
		t.Errorf("got %d entries, %d untracked, %d prefiltered, ok %v; want %d, 4, 4, true", len(got), rep.Cost.Untracked, rep.Cost.Prefiltered, rep.OK, len(want))
	}
	// Without -cost the report has no cost section.
	stdout.Reset()
	run(context.Background(), []string{"rules", "lint", "-format", "json", costFixture}, nil, &stdout, &stderr)
	if strings.Contains(stdout.String(), `"cost"`) {
		t.Errorf("got a cost section without -cost")
	}
}
