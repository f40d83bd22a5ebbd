package rules

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func ruleIDs(s *Set) []string {
	var ids []string
	for _, r := range s.Rules() {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestManagerRejectsBrokenSetWhole(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yaml": ruleYAML("t.a", "'true'")})
	e := NewEngine(prometheus.NewRegistry(), nil)
	m := NewManager(dir, e, nil)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	// One good new rule and one broken one: neither may be loaded.
	writeFiles(t, dir, map[string]string{
		"b.yaml": ruleYAML("t.b", "'true'"),
		"c.yaml": ruleYAML("t.c", "'event.nope'"),
	})
	if err := m.Reload(); err == nil {
		t.Fatal("Reload: got nil error, want the broken set rejected")
	}
	if got := ruleIDs(e.Set()); len(got) != 1 || got[0] != "t.a" {
		t.Errorf("got running rules %v, want [t.a]", got)
	}
	if m.LastError() == nil {
		t.Error("LastError: got nil, want the reload error")
	}
	if got := counterValue(t, e.metrics.reloads.WithLabelValues("failure")); got != 1 {
		t.Errorf("got %v failed reloads, want 1", got)
	}
	// Fixing it is picked up by the next poll.
	writeFiles(t, dir, map[string]string{"c.yaml": ruleYAML("t.c", "'true'")})
	m.poll()
	if got := ruleIDs(e.Set()); len(got) != 3 {
		t.Errorf("got running rules %v after the fix, want 3", got)
	}
}

// TestManagerFollowsConfigMapSwap reproduces how Kubernetes updates a
// mounted ConfigMap: files are symbolic links through ..data, which is
// atomically re-pointed at a new timestamped directory.
func TestManagerFollowsConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "..2026_01_01_00_00_00.1")
	v2 := filepath.Join(dir, "..2026_01_01_00_05_00.2")
	writeFiles(t, v1, map[string]string{"rules.yaml": ruleYAML("t.v1", "'true'")})
	writeFiles(t, v2, map[string]string{"rules.yaml": ruleYAML("t.v2", "'true'")})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Base(v1), filepath.Join(dir, "..data")))
	must(os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(dir, "rules.yaml")))

	e := NewEngine(nil, nil)
	m := NewManager(dir, e, nil)
	m.Interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	waitFor := func(id string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if s := e.Set(); s != nil && s.Rule(id) != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("rule %s never loaded; running %v", id, ruleIDs(e.Set()))
	}
	waitFor("t.v1")
	// The atomic swap: a new link renamed over ..data.
	must(os.Symlink(filepath.Base(v2), filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	waitFor("t.v2")
	if e.Set().Rule("t.v1") != nil {
		t.Error("old rule still loaded after the swap")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
}

// TestManagerKeepsTheSetItWasGiven: a set the caller loaded from the
// directory before making the manager is not compiled again by the first
// poll; a change still is.
func TestManagerKeepsTheSetItWasGiven(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yaml": ruleYAML("t.a", "'true'")})
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(prometheus.NewRegistry(), nil)
	e.Swap(s)
	m := NewManager(dir, e, nil)
	m.poll()
	if e.Set() != s {
		t.Error("the first poll replaced the set loaded from the unchanged directory")
	}
	if got := counterValue(t, e.metrics.reloads.WithLabelValues("success")); got != 0 {
		t.Errorf("got %v reloads of the unchanged directory, want 0", got)
	}
	writeFiles(t, dir, map[string]string{"b.yaml": ruleYAML("t.b", "'true'")})
	m.poll()
	if got := ruleIDs(e.Set()); len(got) != 2 {
		t.Errorf("got running rules %v after a rule was added, want 2", got)
	}
}

func TestManagerRunFailsWithoutRules(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yaml": "id: [broken"})
	m := NewManager(dir, NewEngine(nil, nil), nil)
	if err := m.Run(context.Background()); err == nil {
		t.Error("Run: got nil, want the initial load error")
	}
}

func TestVersionCarriesGitCommit(t *testing.T) {
	// The shipped pack lives in this git checkout.
	s, err := Load("../detections")
	if err != nil {
		t.Fatal(err)
	}
	r := s.Rules()[0]
	if len(r.Version) != 12 {
		t.Errorf("got version %q, want 12 hex digits", r.Version)
	}
	if s.Commit == "" {
		t.Skip("not a git checkout (or git missing)")
	}
	if want := r.Version + "@" + s.Commit[:12]; r.AlertVersion() != want {
		t.Errorf("got alert version %q, want %q", r.AlertVersion(), want)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(ruleYAML("t.f", "'true'")))
	f.Add([]byte("kind: correlation\nid: x\n"))
	f.Add([]byte(ruleYAML("t.f", "'request.a.b == 1'", "tests: [{match: true, event: {class_uid: 6003}}]")))
	f.Add([]byte("---\n---\nid: 1\n"))
	f.Add([]byte("condition: |\n  event.\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadFiles([]File{{Path: "fuzz.yaml", Data: data}})
		if err != nil {
			for _, p := range Problems(err) {
				if p.Error() == "" {
					t.Fatal("empty problem")
				}
			}
			return
		}
		e := NewEngine(nil, nil)
		e.Swap(s)
		for _, r := range s.Rules() {
			r.RunTests()
		}
		e.Evaluate(ctEvent("X", `{"a":{"b":1}}`))
	})
}
