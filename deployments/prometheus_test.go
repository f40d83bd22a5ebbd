package deployments_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// ruleFile is Prometheus' rule file format (rulefmt), decoded strictly.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// registeredMetrics returns the metric names the code registers
// (prometheus.*Opts{Name: "musubi_…"}).
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|prometheus\.NewDesc\()"(musubi_\w+)"`)
	out := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d registered musubi_ metrics", len(out))
	}
	return out
}

var metricRe = regexp.MustCompile(`\bmusubi_\w+`)

// checkPromQL checks an expression's brackets balance and that every Musubi
// metric it names is one the code registers (a renamed metric would leave
// an alert that never fires).
func checkPromQL(t *testing.T, where, expr string, metrics map[string]bool) {
	t.Helper()
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for _, r := range expr {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				t.Errorf("%s: unbalanced %q in %s", where, r, expr)
				return
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 || inQuote {
		t.Errorf("%s: unclosed brackets or quotes in %s", where, expr)
	}
	for _, name := range metricRe.FindAllString(expr, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && metrics[b] {
				base = b
			}
		}
		if !metrics[base] {
			t.Errorf("%s: metric %s is not registered by the code", where, name)
		}
	}
}

// TestPrometheusRules decodes the alert rules strictly and checks every
// expression, duration and the alerts the pipeline needs.
func TestPrometheusRules(t *testing.T) {
	metrics := registeredMetrics(t)
	data, err := os.ReadFile("prometheus/musubi-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("musubi-alerts.yml: %v", err)
	}
	alerts := map[string]string{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q without a name or rules", g.Name)
		}
		for _, r := range g.Rules {
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: a rule is exactly one of alert and record", g.Name)
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("duplicate alert %s", r.Alert)
			}
			alerts[r.Alert] = r.Expr
			checkPromQL(t, r.Alert, r.Expr, metrics)
			for _, d := range []string{r.For, r.KeepFiringFor} {
				if _, err := model.ParseDuration(d); d != "" && err != nil {
					t.Errorf("%s: duration %q: %v", r.Alert, d, err)
				}
			}
			if sev := r.Labels["severity"]; !slices.Contains([]string{"warning", "critical"}, sev) {
				t.Errorf("%s: severity label %q, want warning or critical", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", r.Alert)
			}
		}
	}
	for alert, metric := range map[string]string{
		"MusubiConsumerLagHigh":      "musubi_kafka_consumer_lag",
		"MusubiConsumerStalled":      "musubi_pipeline_commits_total",
		"MusubiConsumerLagUnknown":   "musubi_kafka_lag_errors_total",
		"MusubiDetectionLatencyHigh": "musubi_pipeline_detection_latency_seconds_bucket",
		"MusubiRuleSetsDiffer":       "musubi_rules_set_info",
		"MusubiRebalanceStorm":       "musubi_kafka_reassignments_total",
		"MusubiDeadLetters":          "musubi_pipeline_dead_letters_total",
		"MusubiStorageWriteErrors":   "musubi_storage_insert_errors_total",
		"MusubiRuleErrors":           "musubi_rules_errors_total",
		"MusubiSourceSilent":         "musubi_pipeline_events_total",
	} {
		if !strings.Contains(alerts[alert], metric) {
			t.Errorf("alert %s missing or not on %s (expr %q)", alert, metric, alerts[alert])
		}
	}
	// A silent source: no events now, events before (an offset window),
	// by source.
	if e := alerts["MusubiSourceSilent"]; !strings.Contains(e, "offset") || !strings.Contains(e, "by (source)") {
		t.Errorf("MusubiSourceSilent does not compare with an earlier window by source: %s", e)
	}
}

// TestPrometheusConfig checks the compose scrape configuration loads the
// rule file and scrapes the musubi service's port.
func TestPrometheusConfig(t *testing.T) {
	data, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Global        map[string]string `yaml:"global"`
		RuleFiles     []string          `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	for _, rf := range cfg.RuleFiles {
		// The compose stack mounts deployments/prometheus at /etc/prometheus.
		if _, err := os.Stat(filepath.Join("prometheus", strings.TrimPrefix(rf, "/etc/prometheus/"))); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
	if len(cfg.RuleFiles) == 0 {
		t.Error("no rule_files")
	}
	var job bool
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "musubi" && sc.MetricsPath == "/metrics" && len(sc.StaticConfigs) > 0 && slices.Contains(sc.StaticConfigs[0].Targets, "musubi:8080") {
			job = true
		}
	}
	if !job {
		t.Error(`no scrape job "musubi" of musubi:8080/metrics (the alert rules select job="musubi")`)
	}
}

// TestDashboardPromQL checks the Prometheus panels name registered metrics.
func TestDashboardPromQL(t *testing.T) {
	metrics := registeredMetrics(t)
	n := 0
	for uid, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.Datasource.Type == "prometheus" {
					checkPromQL(t, uid+"/"+p.Title, tg.Expr, metrics)
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Error("no Prometheus panels")
	}
}

// TestPrometheusAlertUnitTests runs promtool (Debian's prometheus package;
// make test installs it) on the shipped alerts: `check rules`, and `test
// rules` with prometheus/musubi-alerts.test.yml, which must exercise every
// alert. Without promtool the test skips, unless MUSUBI_REQUIRE_PROMTOOL is
// set (make test sets it).
func TestPrometheusAlertUnitTests(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("MUSUBI_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool is required (MUSUBI_REQUIRE_PROMTOOL) and not installed: apt-get install prometheus, or make test-tools")
		}
		t.Skip("promtool not installed (make test-tools)")
	}
	for _, args := range [][]string{
		{"check", "rules", "musubi-alerts.yml"},
		{"test", "rules", "musubi-alerts.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	var rulesFile ruleFile
	data, err := os.ReadFile("prometheus/musubi-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &rulesFile); err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				AlertName string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	data, err = os.ReadFile("prometheus/musubi-alerts.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			fires[a.AlertName] = fires[a.AlertName] || len(a.ExpAlerts) > 0
		}
	}
	for _, g := range rulesFile.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !fires[r.Alert] {
				t.Errorf("alert %s has no promtool test in which it fires", r.Alert)
			}
		}
	}
}
