package sigma

import (
	"slices"
	"strings"
	"testing"

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
