package deployments_test

import (
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLintStrict runs the lint of `helm lint --strict` (the Helm
// SDK's lint rules, which the CLI runs; --strict fails on warnings) on the
// chart with the default values and with each optional part switched on:
// any message at warning level or above fails, and a value set the schema
// refuses must fail (which proves the lint is not vacuous).
func TestChartLintStrict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		fails  bool
	}{
		{"defaults", nil, false},
		{"split roles, monitoring, dashboards", map[string]any{
			"roles":             map[string]any{"split": true},
			"serviceMonitor":    map[string]any{"enabled": true},
			"prometheusRule":    map[string]any{"enabled": true},
			"grafanaDashboards": map[string]any{"enabled": true},
			"secret":            map[string]any{"env": map[string]any{"MUSUBI_CLICKHOUSE_PASSWORD": "pw"}},
		}, false},
		{"git-sync", map[string]any{"rules": map[string]any{"gitSync": map[string]any{"enabled": true, "repo": "https://github.com/acme/rules"}}}, false},
		{"oci", ociValues(nil), false},
		{"rules files", map[string]any{"rules": map[string]any{"files": map[string]any{"a.yaml": "id: a\n"}}}, false},
		{"a value the schema refuses", map[string]any{"service": map[string]any{"port": "http"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			linter := lint.All(chartDir, tc.values, "security", false)
			var msgs []string
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					msgs = append(msgs, m.Error())
				}
			}
			if failed := len(msgs) > 0; failed != tc.fails {
				t.Errorf("lint at warning level or above: %v; want failure %v", msgs, tc.fails)
			}
		})
	}
}
