package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/rules/attack"
)

func TestRulesImportSigma(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := rulesCommand([]string{"import", "sigma", "-out", out, "-license", "DRL-1.1", "../../rules/sigma/testdata/sigmahq/cloudtrail"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("got exit %d, want 1 (some rules cannot convert)\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"85 converted, 4 not converted", "unsupported: condition \"selection | count(eventName)", "SKIP ../../rules/sigma/testdata/sigmahq/cloudtrail/aws_enum_buckets.yml"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.yaml"))
	if len(files) != 85 {
		t.Errorf("got %d rule files, want 85", len(files))
	}
	// The converted rules test clean; as JUnit for CI.
	stdout.Reset()
	if code := rulesCommand([]string{"test", "-format", "junit", out}, &stdout, &stderr); code != 0 {
		t.Errorf("rules test: got exit %d, want 0\n%s", code, stdout.String())
	}
	if !strings.Contains(stdout.String(), `<testsuite name="musubi rules test" tests="170" failures="0">`) {
		t.Errorf("JUnit output: got\n%s", stdout.String())
	}
	// A wrong ATT&CK pair shows as a GitHub annotation on the file.
	f := filepath.Join(out, "sigma_aws_cloudtrail_disable_logging.yaml")
	b, _ := os.ReadFile(f)
	bad := strings.Replace(string(b), "techniques:\n", "techniques:\n    - T1486\n", 1)
	if err := os.WriteFile(f, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := rulesCommand([]string{"lint", "-format", "github", out}, &stdout, &stderr); code != 1 {
		t.Errorf("lint: got exit %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), "::error file="+f) || !strings.Contains(stdout.String(), "T1486 (Data Encrypted for Impact) belongs to impact") {
		t.Errorf("GitHub annotations: got %q", stdout.String())
	}
}

// TestCoverageNavigatorFormat checks that -format navigator prints the
// layer itself at the top level (what the ATT&CK Navigator uploads) and that
// every technique sits in a column MITRE puts it in.
func TestCoverageNavigatorFormat(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := rulesCommand([]string{"coverage", "-format", "navigator", "../../detections"}, &stdout, &stderr); code != 0 {
		t.Fatalf("got exit %d: %s", code, stderr.String())
	}
	var layer struct {
		Name       string            `json:"name"`
		Domain     string            `json:"domain"`
		Versions   map[string]string `json:"versions"`
		Techniques []struct {
			TechniqueID string `json:"techniqueID"`
			Tactic      string `json:"tactic"`
		} `json:"techniques"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &layer); err != nil {
		t.Fatal(err)
	}
	if layer.Domain != "enterprise-attack" || layer.Versions["layer"] != "4.5" || len(layer.Techniques) == 0 {
		t.Fatalf("got %+v, want a Navigator 4.5 layer at the top level", layer)
	}
	for _, te := range layer.Techniques {
		ta, ok := attack.TacticByShortName(te.Tactic)
		if !ok || !attack.InTactic(te.TechniqueID, ta.ID) {
			t.Errorf("technique %s placed under %q, which MITRE does not give it", te.TechniqueID, te.Tactic)
		}
	}
}
