package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"regexp"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/rules"
)

// TestVersionCommand checks `musubi version` prints the version, commit and
// build date set at link time and the Go version, on stdout with exit 0.
func TestVersionCommand(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "1.2.3", "0123456789abcdef", "2026-05-01T12:00:00Z"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d, want 0 (stderr %q)", args, code, stderr.String())
		}
		want := "musubi 1.2.3\n  commit: 0123456789abcdef\n  built:  2026-05-01T12:00:00Z\n  go:     " + runtime.Version() + "\n"
		if got := stdout.String(); got != want {
			t.Errorf("%v: got\n%s\nwant\n%s", args, got, want)
		}
	}
}

// TestBuildInfoMetric checks musubi_build_info carries the build.
func TestBuildInfoMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newBuildInfoGauge(buildInfo{Version: "1.2.3", Commit: "abc", Date: "2026-05-01T12:00:00Z", GoVersion: "go1.26.8"}))
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("got %v (%v), want one musubi_build_info series", mfs, err)
	}
	m := mfs[0].GetMetric()[0]
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": "1.2.3", "commit": "abc", "date": "2026-05-01T12:00:00Z", "goversion": "go1.26.8"}
	if mfs[0].GetName() != "musubi_build_info" || !maps.Equal(got, want) || m.GetGauge().GetValue() != 1 {
		t.Errorf("got %s%v %v, want musubi_build_info%v 1", mfs[0].GetName(), got, m.GetGauge().GetValue(), want)
	}
}

// TestRuleSetMetric checks musubi_rules_set_info names the running rule
// set and follows a swap at once.
func TestRuleSetMetric(t *testing.T) {
	eng := rules.NewEngine(nil, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(newRuleSetCollector(eng))
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("got %v (%v) before a set is loaded, want no series", mfs, err)
	}
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/rules/cloudtrail_stopped.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hashOf := func(content []byte) string {
		t.Helper()
		if err := os.WriteFile(dir+"/r.yaml", content, 0o644); err != nil {
			t.Fatal(err)
		}
		set, err := rules.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		eng.Swap(set)
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
			t.Fatalf("got %v (%v), want one musubi_rules_set_info series", mfs, err)
		}
		m := mfs[0].GetMetric()[0]
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("got value %v, want 1", m.GetGauge().GetValue())
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == "hash" {
				if l.GetValue() != set.Hash {
					t.Errorf("got hash %q, want the set's %q", l.GetValue(), set.Hash)
				}
				return l.GetValue()
			}
		}
		t.Fatal("no hash label")
		return ""
	}
	first := hashOf(data)
	second := hashOf(append(data, []byte("\n# changed\n")...))
	if first == second || !regexp.MustCompile(`^[0-9a-f]{8,}$`).MatchString(first) {
		t.Errorf("got hashes %q then %q, want two different content hashes", first, second)
	}
}

// TestLinkerFlags checks that the Makefile and the Dockerfile set exactly
// the build variables the binary has (a renamed variable would leave
// `musubi version` saying "dev" in every release).
func TestLinkerFlags(t *testing.T) {
	re := regexp.MustCompile(`-X main\.(\w+)=`)
	for _, f := range []string{"../../Makefile", "../../Dockerfile"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			got[m[1]] = true
		}
		for _, v := range []string{"version", "commit", "date"} {
			if !got[v] {
				t.Errorf("%s does not set main.%s with -ldflags -X", f, v)
			}
		}
		if len(got) != 3 {
			t.Errorf("%s sets %v, want exactly version, commit and date", f, got)
		}
	}
}
