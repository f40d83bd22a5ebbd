package rules_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/rules"
)

const metaRule = `id: test.sigma_meta
title: Sigma metadata
description: d
status: test
%s
stage: defense_evasion
attack: {tactics: [%s], techniques: [%s]}
sources: {log_names: [cloudtrail], operations: [StopLogging]}
condition: event.api.operation == "StopLogging"
entities: [principal]
author: Jane Doe
date: 2024-01-02
modified: 2024/02/03
tags: [attack.defense-evasion, attack.t1562.008]
license: DRL-1.1
sigma_id: 4db60cc0-36fb-42b7-9b58-a5b53019fb74
tests:
  - {name: stop, match: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: a}, api: {operation: StopLogging}}}
  - {name: start, match: false, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: b}, api: {operation: StartLogging}}}
`

func writeRule(t *testing.T, severity, tactics, techniques string) string {
	t.Helper()
	dir := t.TempDir()
	src := strings.Replace(metaRule, "%s", severity, 1)
	src = strings.Replace(src, "%s", tactics, 1)
	src = strings.Replace(src, "%s", techniques, 1)
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSigmaMetadataKeys(t *testing.T) {
	s, err := rules.Load(writeRule(t, "level: high", "TA0005", "T1562.008"))
	if err != nil {
		t.Fatalf("got %v, want author, date, modified, tags, level, license, sigma_id accepted", err)
	}
	r := s.Rules()[0]
	if r.Severity != 4 || r.Meta.Author != "Jane Doe" || r.Meta.License != "DRL-1.1" || len(r.Meta.Tags) != 2 {
		t.Errorf("got severity %d meta %+v, want level high (4) and the metadata kept", r.Severity, r.Meta)
	}
	if _, err := rules.Load(writeRule(t, "severity: low\nlevel: high", "TA0005", "T1562.008")); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Errorf("got %v, want level and severity that disagree rejected", err)
	}
}

func TestLintATTACKPairs(t *testing.T) {
	tests := []struct{ tactics, techniques, want string }{
		{"TA0005", "T1562.008", ""},
		{"TA0005, TA0003", "T1562.008", "tactic TA0003 (persistence) holds none"},
		{"TA0006", "T1562.008", "belongs to defense-evasion, none of the rule's tactics TA0006"},
		{"TA0005", "T1562.099", "not in ATT&CK Enterprise"},
		{"TA0005", "T1073", "not in ATT&CK Enterprise"}, // revoked
	}
	for _, tt := range tests {
		rep := rules.Lint(writeRule(t, "severity: high", tt.tactics, tt.techniques))
		var msgs []string
		for _, p := range rep.Problems {
			msgs = append(msgs, p.Msg)
		}
		got := strings.Join(msgs, "; ")
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("tactics [%s] techniques [%s]: got problems %q, want %q", tt.tactics, tt.techniques, got, tt.want)
		}
	}
}

func TestCIFormats(t *testing.T) {
	cases := []rules.CICase{
		{Name: "a", RuleID: "a", File: "d/a.yaml"},
		{Name: "b", RuleID: "b", File: "d/b.yaml", Line: 7, Col: 3, Failure: "condition: undefined field, 'x'\nsecond line"},
	}
	var j bytes.Buffer
	if err := rules.WriteJUnit(&j, "lint", cases); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suite    []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(j.Bytes(), &suites); err != nil {
		t.Fatalf("JUnit: %v\n%s", err, j.String())
	}
	if suites.Tests != 2 || suites.Failures != 1 || suites.Suite[0].Cases[1].Failure == nil {
		t.Errorf("JUnit: got %+v, want 2 tests, 1 failure on b", suites)
	}
	var s bytes.Buffer
	if err := rules.WriteSARIF(&s, "musubi", "dev", cases); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
						Region           struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(s.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs[0].Results) != 1 || log.Runs[0].Results[0].RuleID != "b" ||
		log.Runs[0].Results[0].Locations[0].PhysicalLocation.Region.StartLine != 7 {
		t.Errorf("SARIF: got %s, want one result for b at line 7", s.String())
	}
	var g bytes.Buffer
	if err := rules.WriteGitHub(&g, cases); err != nil {
		t.Fatal(err)
	}
	want := "::error file=d/b.yaml,line=7,col=3,title=b::condition: undefined field, 'x'%0Asecond line\n"
	if g.String() != want {
		t.Errorf("GitHub: got %q, want %q", g.String(), want)
	}
}

func TestJSONText(t *testing.T) {
	dir := t.TempDir()
	rule := `id: test.json_text
title: t
severity: low
sources: {log_names: [cloudtrail]}
condition: json_text(request).contains('"Status":"Suspended","x":"<a&b>"') && !json_text(response).contains("Suspended")
tests:
  - {name: suspended, match: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: a}, api: {operation: PutBucketVersioning, request: {data: {"bucketName": "b", "VersioningConfiguration": {"Status": "Suspended", "x": "<a&b>"}}}}}}
  - {name: enabled, match: false, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: b}, api: {operation: PutBucketVersioning, request: {data: {"VersioningConfiguration": {"Status": "Enabled"}}}}}}
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := rules.Test(dir)
	if !rep.OK || rep.Passed != 2 {
		t.Errorf("got %+v, want both tests passing", rep)
	}
}

// TestLintTechniqueOptionalForSigmaRules checks lint's ATT&CK requirement:
// a native rule needs a tactic and a technique; a rule imported from Sigma
// (sigma_id set) whose source names only a tactic passes with a warning;
// one without any tactic still fails, since it has no stage.
func TestLintTechniqueOptionalForSigmaRules(t *testing.T) {
	native := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, "r.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte("sigma_id: 4db60cc0-36fb-42b7-9b58-a5b53019fb74\n"), nil, 1)
		if err := os.WriteFile(filepath.Join(dir, "r.yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, c := range []struct {
		name          string
		dir           string
		wantErr, warn bool
	}{
		{"sigma rule, tactic and technique", writeRule(t, "level: high", "TA0005", "T1562.008"), false, false},
		{"sigma rule, tactic only", writeRule(t, "level: high", "TA0005", ""), false, true},
		{"sigma rule, no ATT&CK", writeRule(t, "level: high", "", ""), true, false},
		{"native rule, tactic only", native(writeRule(t, "level: high", "TA0005", "")), true, false},
	} {
		rep := rules.Lint(c.dir)
		gotErr := slices.ContainsFunc(rep.Problems, func(p *rules.Problem) bool {
			return strings.Contains(p.Msg, "at least one tactic and one technique")
		})
		gotWarn := slices.ContainsFunc(rep.Warnings, func(p *rules.Problem) bool {
			return strings.Contains(p.Msg, "names no technique of ATT&CK")
		})
		if gotErr != c.wantErr || gotWarn != c.warn {
			t.Errorf("%s: got error %v warning %v (problems %v), want error %v warning %v", c.name, gotErr, gotWarn, rep.Problems, c.wantErr, c.warn)
		}
	}
}

// TestCIFormatsWarnings lints a directory with two warnings, one about a
// rule (an imported Sigma rule without a technique) and one about an
// exception that expires in three days, and checks that every CI format
// carries both without failing anything: JUnit system-out, SARIF results
// of level warning, GitHub ::warning annotations.
func TestCIFormatsWarnings(t *testing.T) {
	dir := writeRule(t, "severity: high", "TA0005", "")
	soon := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	exc := "kind: exception\nid: x.soon\nrules: [test.sigma_meta]\nowner: secops@example.com\nreason: the audit account stops its test trail\nexpires: " + soon + "\nfields: {actor.user.name: auditor}\n" +
		"tests:\n" +
		"  - {name: auditor, suppressed: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: a}, api: {operation: StopLogging}, actor: {user: {name: auditor}}}}\n" +
		"  - {name: other, suppressed: false, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: b}, api: {operation: StopLogging}, actor: {user: {name: mallory}}}}\n"
	if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte(exc), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := rules.Lint(dir)
	if !rep.OK || len(rep.Warnings) != 2 {
		t.Fatalf("lint: got ok=%v problems %v warnings %v, want ok with 2 warnings", rep.OK, rep.Problems, rep.Warnings)
	}
	cases := rules.LintCases(rep)

	var j bytes.Buffer
	if err := rules.WriteJUnit(&j, "lint", cases); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suite    []struct {
			Cases []struct {
				Name      string `xml:"name,attr"`
				SystemOut string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(j.Bytes(), &suites); err != nil {
		t.Fatalf("JUnit: %v\n%s", err, j.String())
	}
	out := map[string]string{}
	for _, c := range suites.Suite[0].Cases {
		out[c.Name] = c.SystemOut
	}
	if suites.Failures != 0 || suites.Tests != 2 ||
		!strings.Contains(out["test.sigma_meta"], "warning: "+filepath.Join(dir, "r.yaml")+":1:1: attack: the Sigma rule names no technique") ||
		!strings.Contains(out["x.soon"], "warning: "+filepath.Join(dir, "x.yaml")+":1:1: exception: expires on "+soon) {
		t.Errorf("JUnit: got %d tests, %d failures, system-out %q; want 2 passing cases carrying one warning each\n%s", suites.Tests, suites.Failures, out, j.String())
	}

	var s bytes.Buffer
	if err := rules.WriteSARIF(&s, "musubi", "dev", cases); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID  string            `json:"ruleId"`
				Level   string            `json:"level"`
				Message map[string]string `json:"message"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(s.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range log.Runs[0].Results {
		got = append(got, r.Level+" "+r.RuleID)
	}
	if strings.Join(got, ",") != "warning test.sigma_meta,warning x.soon" {
		t.Errorf("SARIF: got results %q, want one warning for the rule and one for the exception", got)
	}

	var g bytes.Buffer
	if err := rules.WriteGitHub(&g, cases); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(g.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "::warning file="+filepath.Join(dir, "r.yaml")+",line=1,col=1,title=test.sigma_meta::attack:") ||
		!strings.HasPrefix(lines[1], "::warning file="+filepath.Join(dir, "x.yaml")+",line=1,col=1,title=x.soon::exception: expires on") {
		t.Errorf("GitHub: got %q, want two ::warning annotations", g.String())
	}
}
