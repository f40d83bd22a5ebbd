package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
