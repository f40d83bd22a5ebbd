package deployments_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// TestChartRulesGitSync renders rules.gitSync: git-sync clones the
// repository once before Musubi starts (an init container, --one-time) and
// keeps pulling beside it (a sidecar), both into one emptyDir that Musubi
// mounts read-only; the configuration's rules.dir is the synced folder;
// both git-sync containers run with the chart's container security context.
// Without a repository, or together with a rules ConfigMap, the chart
// refuses to render.
func TestChartRulesGitSync(t *testing.T) {
	gitSync := map[string]any{"enabled": true, "repo": "https://github.com/acme/musubi-rules", "ref": "v3", "path": "aws/detections",
		"existingSecret": "rules-git-credentials"}
	ms := render(t, map[string]any{"rules": map[string]any{"gitSync": gitSync}})
	cfg := checkConfig(t, ms)
	if cfg.Rules.Dir != "/etc/musubi/rules-git/current/aws/detections" {
		t.Errorf("rules.dir %q, want the synced folder /etc/musubi/rules-git/current/aws/detections", cfg.Rules.Dir)
	}
	spec := dig(byKind(ms, "Deployment")[0].obj, "spec", "template", "spec")
	inits, _ := dig(spec, "initContainers").([]any)
	cs, _ := dig(spec, "containers").([]any)
	if len(inits) != 1 || len(cs) != 2 {
		t.Fatalf("%d init containers and %d containers, want git-sync-init, and musubi with git-sync", len(inits), len(cs))
	}
	for i, c := range []any{inits[0], cs[1]} {
		args, _ := dig(c, "args").([]any)
		for _, want := range []string{"--repo=https://github.com/acme/musubi-rules", "--ref=v3", "--root=/etc/musubi/rules-git", "--link=current"} {
			if !slices.Contains(args, any(want)) {
				t.Errorf("%s: args %v lack %s", dig(c, "name"), args, want)
			}
		}
		if once := slices.Contains(args, any("--one-time")); once != (i == 0) {
			t.Errorf("%s: --one-time %v, want it on the init container only", dig(c, "name"), once)
		}
		if dig(c, "securityContext", "readOnlyRootFilesystem") != true {
			t.Errorf("%s: root file system not read-only", dig(c, "name"))
		}
		if ef, _ := dig(c, "envFrom").([]any); len(ef) != 1 || dig(ef[0], "secretRef", "name") != "rules-git-credentials" {
			t.Errorf("%s: envFrom %v, want the credentials Secret", dig(c, "name"), ef)
		}
	}
	mounts := map[string]any{}
	for _, m := range dig(cs[0], "volumeMounts").([]any) {
		mounts[str(dig(m, "name"))] = dig(m, "readOnly")
	}
	if ro, ok := mounts["rules-git"]; !ok || ro != true {
		t.Errorf("musubi mounts %v, want rules-git read-only", mounts)
	}
	if _, ok := mounts["rules"]; ok {
		t.Error("musubi mounts a rules ConfigMap as well")
	}
	var vols []string
	for _, v := range dig(spec, "volumes").([]any) {
		vols = append(vols, str(dig(v, "name")))
	}
	if !slices.Contains(vols, "rules-git") || slices.Contains(vols, "rules") {
		t.Errorf("volumes %v, want rules-git and no rules ConfigMap", vols)
	}

	for name, tc := range map[string]struct {
		rules map[string]any
		want  string
	}{
		"no repository":    {map[string]any{"gitSync": map[string]any{"enabled": true}}, "rules.gitSync.repo is required"},
		"with a ConfigMap": {map[string]any{"gitSync": gitSync, "existingConfigMap": "musubi-rules"}, "exclusive"},
		"not a git URL":    {map[string]any{"gitSync": map[string]any{"enabled": true, "repo": "ftp://x"}}, "repo"},
	} {
		if _, err := renderChart(t, map[string]any{"rules": tc.rules}, true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, tc.want)
		}
	}
}

// TestChartDefaultImage checks the default image is the one docs/deploy.md
// tells you to build (musubi:<appVersion>), never a registry's image that
// was not published, and that an empty repository is refused.
func TestChartDefaultImage(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	want := "musubi:" + ch.Metadata.AppVersion
	var images []string
	for _, m := range render(t, nil) {
		if m.kind() != "Deployment" && m.kind() != "Job" {
			continue
		}
		for _, c := range dig(m.obj, "spec", "template", "spec", "containers").([]any) {
			images = append(images, str(dig(c, "image")))
		}
	}
	if len(images) == 0 || !reflect.DeepEqual(slices.Compact(images), []string{want}) {
		t.Errorf("images %v, want %s everywhere", images, want)
	}
	if _, err := renderChart(t, map[string]any{"image": map[string]any{"repository": ""}}, true); err == nil {
		t.Error("an empty image.repository rendered")
	}
}

// TestDeployDocAWSValues renders the chart with the values of
// docs/deploy.md's MSK + ClickHouse Cloud walk-through and checks the
// configuration it renders is one `musubi serve` accepts, with IAM
// authentication to MSK and TLS to ClickHouse.
func TestDeployDocAWSValues(t *testing.T) {
	doc, err := os.ReadFile("../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, b := range strings.Split(string(doc), "```yaml\n")[1:] {
		body, _, _ := strings.Cut(b, "```")
		if strings.Contains(body, "AWS_MSK_IAM") && strings.HasPrefix(strings.TrimSpace(body), "image:") {
			block = body
		}
	}
	if block == "" {
		t.Fatal("docs/deploy.md has no values block with AWS_MSK_IAM")
	}
	var values map[string]any
	if err := yaml.Unmarshal([]byte(dedent(block)), &values); err != nil {
		t.Fatalf("the walk-through's values: %v", err)
	}
	cfg := checkConfig(t, render(t, values))
	if cfg.Kafka.SASL.Mechanism != "AWS_MSK_IAM" || !cfg.Kafka.TLS.Enabled || !cfg.ClickHouse.TLS.Enabled {
		t.Errorf("kafka %+v / clickhouse tls %+v: want AWS_MSK_IAM over TLS and TLS to ClickHouse", cfg.Kafka.SASL, cfg.ClickHouse.TLS)
	}
}

// dedent removes the indentation common to every non-empty line.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}
