package sigma

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

// TestImportSigmaHQ imports SigmaHQ's AWS CloudTrail rules vendored under
// testdata, then lints and tests the converted rules as a rule directory:
// every converted rule must pass lint and its generated tests, and every
// rule that does not convert must say why.
func TestImportSigmaHQ(t *testing.T) {
	out := t.TempDir()
	rep, err := Import("testdata/sigmahq/cloudtrail", out, "DRL-1.1")
	if err != nil {
		t.Fatal(err)
	}
	// The rules that cannot convert, and the construct that stops each.
	wantSkipped := map[string]string{
		"aws_cloudtrail_console_login_without_mfa.yml": "field additionalEventData.MFAUsed has no OCSF mapping",
		"aws_cloudtrail_discovery_api_calls.yml":       "aggregations (count, near, ...) are not supported",
		"aws_enum_buckets.yml":                         "field type has no OCSF mapping",
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
	// Converted but not lint-clean: these Sigma rules name tactics and no
	// technique, and a shipped Musubi rule needs both.
	wantLint := map[string]string{
		"sigma.4990c2e3-f4b8-45e3-bc3c-30b14ff0ed26": "at least one tactic and one technique", // glue dev endpoint
		"sigma.97fbabf8-8e1b-47a2-b7d5-a418d2b95e3d": "at least one tactic and one technique", // lambda layer
		"sigma.e386b9b5-af12-450e-afff-761730fb8a98": "at least one tactic and one technique", // VPC flow logs deleted
		"sigma.25cb1ba1-8a19-4a23-a198-d252664c8cef": "at least one tactic and one technique", // EFS deleted
		"sigma.ec541962-c05a-4420-b9ea-84de072d18f4": "at least one tactic and one technique", // Lambda function URL
	}
	lint := rules.Lint(out)
	failed := map[string]bool{}
	for _, p := range lint.Problems {
		failed[p.RuleID] = true
		if want, ok := wantLint[p.RuleID]; !ok || !strings.Contains(p.Msg, want) {
			t.Errorf("lint: %v", p)
		}
	}
	for id := range wantLint {
		if !failed[id] {
			t.Errorf("lint: rule %s passed, want it rejected (%s)", id, wantLint[id])
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
	t.Logf("SigmaHQ CloudTrail rules vendored: %d; imported: %d; imported and lint-clean: %d (%.0f%%)", total, rep.Converted, clean, 100*float64(clean)/float64(total))
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
