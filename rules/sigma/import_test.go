package sigma

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

// TestImportSigmaHQ imports SigmaHQ's AWS CloudTrail rules vendored under
// testdata (every rule of rules/cloud/aws/cloudtrail, see the NOTICE), then
// lints and tests the converted rules as a rule directory. It reports the
// share of the rules that import and pass lint, and fails below 90%: every
// converted rule must pass lint and its generated tests, and every rule
// that does not convert must say why.
func TestImportSigmaHQ(t *testing.T) {
	out := t.TempDir()
	rep, err := Import("testdata/sigmahq/cloudtrail", out, "DRL-1.1")
	if err != nil {
		t.Fatal(err)
	}
	// The rules that cannot convert, and the construct that stops each.
	wantSkipped := map[string]string{
		"aws_cloudtrail_discovery_api_calls.yml":       "aggregations (count, near, ...) are not supported",
		"aws_secretsmanager_mass_secret_retrieval.yml": "aggregations (count, near, ...) are not supported",
		"aws_enum_buckets.yml":                         "field type has no OCSF mapping",     // the rule means userIdentity.type
		"aws_cloudtrail_console_susp_login.yml":        `modifier "expand" is not supported`, // placeholders to fill per site
	}
	for _, r := range rep.Results {
		name := r.File[strings.LastIndex(r.File, "/")+1:]
		want, skip := wantSkipped[name]
		switch {
		case skip && r.OK():
			t.Errorf("%s: converted, want it reported as unsupported (%s)", name, want)
		case skip && !slices.ContainsFunc(r.Unsupported, func(u string) bool { return strings.Contains(u, want) }):
			t.Errorf("%s: got unsupported %q, want one containing %q", name, r.Unsupported, want)
		case !skip && !r.OK():
			t.Errorf("%s: not converted: %v", name, r.Unsupported)
		}
	}
	total := len(rep.Results)
	lint := rules.Lint(out)
	failed := map[string]bool{}
	for _, p := range lint.Problems {
		failed[p.RuleID] = true
		t.Errorf("lint: %v", p)
	}
	// A Sigma rule that names tactics and no technique the bundled matrix
	// knows is imported with a warning, not rejected.
	for _, w := range lint.Warnings {
		if !strings.Contains(w.Msg, "names no technique of ATT&CK") {
			t.Errorf("lint warning: %v", w)
		}
	}
	test := rules.Test(out)
	if !test.OK || len(test.Problems) > 0 {
		t.Errorf("rules test: %d passed, %d failed, problems %v", test.Passed, test.Failed, test.Problems)
	}
	if test.Passed != 2*rep.Converted {
		t.Errorf("got %d passing tests, want 2 per converted rule (%d)", test.Passed, 2*rep.Converted)
	}
	clean := lint.Rules - len(failed)
	share := float64(clean) / float64(total)
	t.Logf("SigmaHQ CloudTrail rules vendored: %d; imported: %d; imported and lint-clean: %d (%.1f%%); imported with an ATT&CK warning: %d",
		total, rep.Converted, clean, 100*share, len(lint.Warnings))
	if share < 0.9 {
		t.Errorf("imported and lint-clean: %d of %d (%.1f%%), want at least 90%%", clean, total, 100*share)
	}
}

// TestImportedMFARulesOnRawSignIn runs the two imported console sign-in
// rules that read additionalEventData.MFAUsed on a real CloudTrail record
// (Stratus Red Team's console login without MFA), normalized as the engine
// does: both fire on it, neither fires when the sign-in used MFA.
func TestImportedMFARulesOnRawSignIn(t *testing.T) {
	out := t.TempDir()
	if _, err := Import("testdata/sigmahq/cloudtrail", out, "DRL-1.1"); err != nil {
		t.Fatal(err)
	}
	s, err := rules.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../testdata/stratus-red-team/aws.initial-access.console-login-without-mfa.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	normalize := func(data []byte) ocsf.Event {
		evs, errs := dec.Decode(ingest.SourceCloudTrail, data)
		if len(errs) > 0 || len(evs) != 1 {
			t.Fatalf("normalize: got %d events, errors %v; want 1 event", len(evs), errs)
		}
		return evs[0]
	}
	noMFA := normalize(raw)
	withMFA := normalize(bytes.Replace(raw, []byte(`"MFAUsed": "No"`), []byte(`"MFAUsed": "Yes"`), 1))
	for _, id := range []string{
		"sigma.c134e006-5aef-49dd-9386-62675a251585", // AWS Successful Console Login Without MFA
		"sigma.77caf516-34e5-4df9-b4db-20744fea0a60", // AWS IAM user with Console Access Login Without MFA
	} {
		r := s.Rule(id)
		if r == nil {
			t.Fatalf("rule %s not imported", id)
		}
		r.Tests = []rules.RuleTest{{Name: "no MFA", Match: true, Event: noMFA}, {Name: "MFA", Match: false, Event: withMFA}}
		for _, res := range r.RunTests() {
			if !res.Pass {
				t.Errorf("%s on the sign-in with %q: got match=%v, want %v %s", id, res.Name, res.Got, res.Want, res.Error)
			}
		}
	}
}

// TestImportSigmaHQLinux imports SigmaHQ's Linux process_creation and
// network_connection rules vendored under testdata: all convert to rules
// over agent and Falco events and pass their generated tests; the one
// without ATT&CK tags fails lint for that reason only.
func TestImportSigmaHQLinux(t *testing.T) {
	out := t.TempDir()
	rep, err := Import("testdata/sigmahq/linux", out, "DRL-1.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if !r.OK() {
			t.Errorf("%s: not converted: %v", r.File, r.Unsupported)
		}
	}
	test := rules.Test(out)
	if !test.OK || test.Passed != 2*len(rep.Results) {
		t.Errorf("rules test: %d passed, %d failed, problems %v", test.Passed, test.Failed, test.Problems)
	}
	for _, p := range rules.Lint(out).Problems {
		if p.RuleID != "sigma.19bf6fdb-7721-4f3d-867f-53467f6a5db6" || !strings.Contains(p.Msg, "at least one tactic and one technique") && !strings.Contains(p.Msg, "stage is missing") {
			t.Errorf("lint: %v", p)
		}
	}
	// The imported IMDS rule fires on the chain's credential theft and not
	// on cloud-init.
	s, err := rules.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Rule("sigma.31f87cbb-010c-4dbc-8495-0b9f01a638de")
	if r == nil || r.Sources.Classes[0] != 1007 || r.Sources.LogNames[0] != "agent" {
		t.Fatalf("IMDS rule: got %+v, want a Process Activity rule over agent and falco", r)
	}
	for ev, want := range map[string]bool{
		`{"class_uid":1007,"metadata":{"log_name":"agent","uid":"a"},"process":{"cmd_line":"curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/web","parent_process":{"file":{"path":"/bin/sh"}}}}`:       true,
		`{"class_uid":1007,"metadata":{"log_name":"falco","uid":"b"},"process":{"cmd_line":"curl http://169.254.169.254/latest/meta-data/iam/security-credentials/","parent_process":{"file":{"path":"/usr/bin/cloud-init"}}}}`: false,
		`{"class_uid":1007,"metadata":{"log_name":"agent","uid":"c"},"process":{"cmd_line":"curl http://169.254.169.254/latest/meta-data/instance-id"}}`:                                                                        false,
	} {
		var e ocsf.Event
		if err := json.Unmarshal([]byte(ev), &e); err != nil {
			t.Fatal(err)
		}
		r.Tests = []rules.RuleTest{{Name: "x", Match: want, Event: e}}
		if res := r.RunTests()[0]; !res.Pass {
			t.Errorf("IMDS rule on %s: got match=%v, want %v %s", ev, res.Got, want, res.Error)
		}
	}
}
