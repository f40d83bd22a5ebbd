package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/rules"
)

// TestConfigCheckRunsComponentValidation checks that `musubi config check`
// rejects what serve's components reject — a misspelled entity kind in
// correlate.windows, a misspelled table in clickhouse.retention — and
// accepts what they accept.
func TestConfigCheckRunsComponentValidation(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of stderr; nil means valid
	}{
		{"valid", "correlate:\n  windows: {access_key: 12h}\nclickhouse:\n  retention: {events: 720h}\n", nil},
		{"misspelled window kind", "correlate:\n  windows: {acess_key: 12h}\n", []string{`correlate: windows: unknown entity kind "acess_key"`}},
		{"misspelled retention table", "clickhouse:\n  retention: {evnets: 720h}\n", []string{`clickhouse: retention: unknown table "evnets"`}},
		{"both at once", "correlate:\n  windows: {acess_key: 12h}\nclickhouse:\n  retention: {evnets: 720h}\n", []string{"acess_key", "evnets"}},
		{"unknown nested key", "correlate:\n  windos: {access_key: 12h}\n", []string{"field windos not found"}},
		{"reload interval too short", "rules:\n  reload_interval: 1ms\n", []string{"rules.reload_interval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "musubi.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI("config", "check", path)
			if tc.want == nil {
				if code != 0 || !strings.Contains(stdout, "configuration is valid") {
					t.Fatalf("got exit %d, stdout %q, stderr %q; want valid", code, stdout, stderr)
				}
				return
			}
			if code != 1 {
				t.Fatalf("got exit %d (stdout %q), want 1", code, stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
}

// TestRuleManagerUsesReloadInterval: rules.reload_interval sets the
// polling interval of the rule manager serve runs.
func TestRuleManagerUsesReloadInterval(t *testing.T) {
	cfg := config.Default()
	if got := ruleManager(cfg, rules.NewEngine(nil, nil), nil).Interval; got != rules.DefaultPollInterval {
		t.Errorf("default: got interval %v, want %v", got, rules.DefaultPollInterval)
	}
	cfg.Rules.ReloadInterval = 42 * time.Second
	if got := ruleManager(cfg, rules.NewEngine(nil, nil), nil).Interval; got != 42*time.Second {
		t.Errorf("got interval %v, want 42s", got)
	}
}
