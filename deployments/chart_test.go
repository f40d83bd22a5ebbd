package deployments_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/musubi-xdr/musubi/config"
)

const chartDir = "kubernetes/musubi"

// manifest is one rendered Kubernetes object.
type manifest struct {
	source string
	obj    map[string]any
}

func (m manifest) kind() string { return str(m.obj["kind"]) }
func (m manifest) name() string { return str(dig(m.obj, "metadata", "name")) }

func str(v any) string {
	s, _ := v.(string)
	return s
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// renderChart renders the chart as `helm install` (install) or `helm
// upgrade` does, with overrides over values.yaml, and returns the rendered
// templates by file name or the error Helm gives (values schema or
// template).
func renderChart(t *testing.T, overrides map[string]any, install bool) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Validate(); err != nil {
		t.Fatal(err)
	}
	opts := chartutil.ReleaseOptions{Name: "musubi", Namespace: "security", Revision: 1, IsInstall: install, IsUpgrade: !install}
	vals, err := chartutil.ToRenderValues(ch, overrides, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, vals)
}

// render renders the chart as `helm template` does (the Helm SDK's loader,
// values coalescing, values.schema.json validation and template engine),
// with overrides over values.yaml, and parses every manifest.
func render(t *testing.T, overrides map[string]any) []manifest {
	t.Helper()
	out, err := renderChart(t, overrides, true)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var ms []manifest
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	}) {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		dec := yaml.NewDecoder(strings.NewReader(out[name]))
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s does not parse as YAML: %v\n%s", name, err, out[name])
			}
			if obj == nil {
				continue
			}
			m := manifest{source: name, obj: obj}
			if m.kind() == "" || str(obj["apiVersion"]) == "" || m.name() == "" {
				t.Fatalf("%s: object without apiVersion, kind or name:\n%s", name, out[name])
			}
			checkTyped(t, m)
			ms = append(ms, m)
		}
	}
	return ms
}

// typed are the Kubernetes API types of the kinds the chart renders, by
// apiVersion and kind.
var typed = map[string]func() any{
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"monitoring.coreos.com/v1/ServiceMonitor": nil,
	"monitoring.coreos.com/v1/PrometheusRule": nil,
}

// checkTyped decodes a manifest into its Kubernetes API type, rejecting
// unknown fields (a misspelled or misplaced key) as the API server would.
func checkTyped(t *testing.T, m manifest) {
	t.Helper()
	key := str(m.obj["apiVersion"]) + "/" + m.kind()
	newObj, known := typed[key]
	if !known {
		t.Errorf("%s: unexpected %s", m.source, key)
		return
	}
	if newObj == nil {
		return // a custom resource: no type to check against here
	}
	j, err := json.Marshal(m.obj)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(newObj()); err != nil {
		t.Errorf("%s: %s %s is not a valid %s: %v", m.source, m.kind(), m.name(), key, err)
	}
}

func byKind(ms []manifest, kind string) []manifest {
	var out []manifest
	for _, m := range ms {
		if m.kind() == kind {
			out = append(out, m)
		}
	}
	return out
}

// TestChartDefault renders the default values: one Deployment running the
// whole engine with probes, limits and a locked-down security context, the
// configuration as a ConfigMap that Musubi's strict decoder accepts, the
// migration hook Job, and the Service.
func TestChartDefault(t *testing.T) {
	ms := render(t, nil)
	kinds := map[string]int{}
	for _, m := range ms {
		kinds[m.kind()]++
	}
	want := map[string]int{"Deployment": 1, "ConfigMap": 1, "Job": 1, "Service": 2, "ServiceAccount": 1, "PodDisruptionBudget": 1}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("rendered kinds %v, want %v", kinds, want)
	}
	deps := byKind(ms, "Deployment")
	if len(deps) != 1 || deps[0].name() != "musubi-all" {
		t.Fatalf("deployments %v, want musubi-all", deps)
	}
	checkDeployment(t, deps[0], "all")
	cfg := checkConfig(t, ms)
	if cfg.Rules.Dir != "/detections" {
		t.Errorf("rules.dir %q, want the image's /detections without a rules ConfigMap", cfg.Rules.Dir)
	}
	if cfg.ClickHouse.MigrateOnStart {
		t.Error("migrate_on_start is on although the migration Job runs")
	}
	job := byKind(ms, "Job")[0]
	if hook := str(dig(job.obj, "metadata", "annotations", "helm.sh/hook")); hook != "pre-install,pre-upgrade" {
		t.Errorf("migration Job hook %q, want pre-install,pre-upgrade", hook)
	}
	c := dig(job.obj, "spec", "template", "spec", "containers").([]any)[0]
	if args := dig(c, "args"); !reflect.DeepEqual(args, []any{"migrate", "up"}) {
		t.Errorf("migration Job args %v, want [migrate up]", args)
	}
	for _, s := range byKind(ms, "Service") {
		if s.name() == "musubi" {
			if comp := dig(s.obj, "spec", "selector", "app.kubernetes.io/component"); comp != "all" {
				t.Errorf("API Service selects component %v, want all", comp)
			}
		}
	}
}

// TestChartSplitRoles renders roles.split with a rules ConfigMap, secrets,
// a ServiceMonitor and the PrometheusRule.
func TestChartSplitRoles(t *testing.T) {
	ms := render(t, map[string]any{
		// Fixed replicas: TestChartDetectAutoscaling covers the autoscaler.
		"roles": map[string]any{"split": true, "detect": map[string]any{"replicas": 3, "autoscaling": map[string]any{"enabled": false}}},
		"rules": map[string]any{"files": map[string]any{"my_rule.yaml": "id: custom.rule\n"}},
		"secret": map[string]any{"env": map[string]any{
			"MUSUBI_CLICKHOUSE_PASSWORD": "pw", "MUSUBI_TOKEN_SOC": "msb_x",
		}},
		"config": map[string]any{"api": map[string]any{"tokens": []any{
			map[string]any{"name": "soc", "secret": "env:MUSUBI_TOKEN_SOC", "role": "admin", "tenants": []any{"*"}},
		}}},
		"serviceMonitor":    map[string]any{"enabled": true},
		"prometheusRule":    map[string]any{"enabled": true},
		"grafanaDashboards": map[string]any{"enabled": true},
	})
	var names []string
	for _, d := range byKind(ms, "Deployment") {
		names = append(names, d.name())
		role := strings.TrimPrefix(d.name(), "musubi-")
		checkDeployment(t, d, role)
		env := map[string]string{}
		c := dig(d.obj, "spec", "template", "spec", "containers").([]any)[0]
		for _, e := range dig(c, "env").([]any) {
			env[str(dig(e, "name"))] = str(dig(e, "value"))
		}
		// The roles find their consumer groups in the configuration:
		// detect kafka.group_id, correlate kafka.signals_group_id.
		if _, override := env["MUSUBI_KAFKA_GROUP_ID"]; env["MUSUBI_ROLE"] != role || override {
			t.Errorf("%s: env %v, want MUSUBI_ROLE=%s and no consumer group override", d.name(), env, role)
		}
		if want := map[string]string{"detect": "800MiB", "correlate": "1600MiB", "api": "400MiB"}[role]; env["GOMEMLIMIT"] != want {
			t.Errorf("%s: GOMEMLIMIT %q, want %q (about 80%% of its memory limit)", d.name(), env["GOMEMLIMIT"], want)
		}
		if role == "detect" && dig(d.obj, "spec", "replicas") != 3 {
			t.Errorf("detect replicas %v, want 3", dig(d.obj, "spec", "replicas"))
		}
		if dig(c, "envFrom") == nil {
			t.Errorf("%s: no envFrom for the secret", d.name())
		}
	}
	slices.Sort(names)
	if want := []string{"musubi-api", "musubi-correlate", "musubi-detect"}; !reflect.DeepEqual(names, want) {
		t.Errorf("deployments %v, want %v", names, want)
	}
	cfg := checkConfig(t, ms)
	if cfg.Rules.Dir != "/etc/musubi/rules" {
		t.Errorf("rules.dir %q, want the mounted ConfigMap", cfg.Rules.Dir)
	}
	var rulesCM, secret bool
	for _, m := range ms {
		switch {
		case m.kind() == "ConfigMap" && m.name() == "musubi-rules":
			rulesCM = dig(m.obj, "data", "my_rule.yaml") == "id: custom.rule\n"
		case m.kind() == "ConfigMap" && m.name() == "musubi-dashboards":
			if dig(m.obj, "metadata", "labels", "grafana_dashboard") != "1" {
				t.Error("dashboards ConfigMap without the sidecar's grafana_dashboard label")
			}
			data, _ := dig(m.obj, "data").(map[string]any)
			for _, name := range []string{"soc-overview.json", "incident.json", "detections.json", "pipeline-health.json"} {
				var d dashboard
				if err := json.Unmarshal([]byte(str(data[name])), &d); err != nil || d.UID == "" {
					t.Errorf("dashboards ConfigMap: %s is not a dashboard (%v)", name, err)
				}
			}
		case m.kind() == "Secret":
			secret = dig(m.obj, "stringData", "MUSUBI_TOKEN_SOC") == "msb_x" &&
				strings.Contains(str(dig(m.obj, "metadata", "annotations", "helm.sh/hook")), "pre-install")
		}
	}
	if !rulesCM || !secret {
		t.Errorf("rules ConfigMap rendered %v, Secret (a pre-install hook, for the migration Job) %v; want both", rulesCM, secret)
	}
	if sm := byKind(ms, "ServiceMonitor"); len(sm) != 1 {
		t.Error("no ServiceMonitor")
	} else if jl := str(dig(sm[0].obj, "spec", "jobLabel")); jl == "" || dig(sm[0].obj, "spec", "selector", "matchLabels", jl) != "musubi" {
		// The alert rules select job="musubi".
		t.Errorf("ServiceMonitor jobLabel %q does not make the job musubi", jl)
	}
	rules := byKind(ms, "PrometheusRule")
	if len(rules) != 1 {
		t.Fatal("no PrometheusRule")
	}
	var file map[string]any
	data, err := os.ReadFile("prometheus/musubi-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rules[0].obj["spec"], file) {
		t.Error("the PrometheusRule's spec differs from prometheus/musubi-alerts.yml")
	}
}

// TestChartFilesInSync keeps the chart's copies of the alert rules and the
// dashboards equal to deployments/prometheus and deployments/grafana (a
// chart cannot read files outside its folder).
func TestChartFilesInSync(t *testing.T) {
	pairs := map[string]string{"prometheus/musubi-alerts.yml": chartDir + "/files/musubi-alerts.yml"}
	dashes, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dashes {
		pairs[d] = chartDir + "/files/dashboards/" + filepath.Base(d)
	}
	copies, _ := filepath.Glob(chartDir + "/files/dashboards/*.json")
	if len(copies) != len(dashes) {
		t.Errorf("the chart carries %d dashboards, deployments/grafana %d", len(copies), len(dashes))
	}
	for src, dst := range pairs {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%v: copy %s there", err, src)
			continue
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: copy it over", dst, src)
		}
	}
}

func checkDeployment(t *testing.T, d manifest, role string) {
	t.Helper()
	spec := dig(d.obj, "spec", "template", "spec")
	if dig(spec, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s: pod does not require a non-root user", d.name())
	}
	cs, _ := dig(spec, "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.name(), len(cs))
	}
	c := cs[0]
	if dig(c, "securityContext", "readOnlyRootFilesystem") != true || dig(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Errorf("%s: container security context %v, want a read-only root and no privilege escalation", d.name(), dig(c, "securityContext"))
	}
	if dig(c, "livenessProbe", "httpGet", "path") != "/healthz" || dig(c, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Errorf("%s: probes %v / %v, want /healthz and /readyz", d.name(), dig(c, "livenessProbe"), dig(c, "readinessProbe"))
	}
	if dig(c, "resources", "requests") == nil || dig(c, "resources", "limits") == nil {
		t.Errorf("%s: no resource requests and limits", d.name())
	}
	args, _ := dig(c, "args").([]any)
	if len(args) == 0 || args[0] != "serve" || !slices.Contains(args, any("-config=/etc/musubi/config/musubi.yaml")) {
		t.Errorf("%s: args %v, want serve -config=…", d.name(), args)
	}
	if dig(d.obj, "spec", "selector", "matchLabels", "app.kubernetes.io/component") != role {
		t.Errorf("%s: selector does not select role %s", d.name(), role)
	}
}

// checkConfig decodes the rendered musubi.yaml with Musubi's strict decoder
// and validates it, as `musubi serve` does at start.
func checkConfig(t *testing.T, ms []manifest) config.Config {
	t.Helper()
	for _, m := range ms {
		if m.kind() != "ConfigMap" || m.name() != "musubi-config" {
			continue
		}
		text := str(dig(m.obj, "data", "musubi.yaml"))
		cfg := config.Default()
		if err := config.Decode(strings.NewReader(text), &cfg); err != nil {
			t.Fatalf("rendered configuration is rejected: %v\n%s", err, text)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("rendered configuration is invalid: %v\n%s", err, text)
		}
		if cfg.API.Listen != "0.0.0.0:8080" {
			t.Errorf("api.listen %q, want 0.0.0.0:8080 (the Service's port)", cfg.API.Listen)
		}
		return cfg
	}
	t.Fatal("no musubi-config ConfigMap rendered")
	return config.Config{}
}

// TestChartValuesSchema validates values.yaml against values.schema.json,
// checks the schema rejects mistakes, and that every key the schema allows
// under config is a key Musubi's configuration has (strict decoding would
// reject any other).
func TestChartValuesSchema(t *testing.T) {
	schemaJSON, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("values.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	valuesYAML, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	validate := func(v map[string]any) error {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			return err
		}
		return sch.Validate(inst)
	}
	defaults := map[string]any{}
	if err := sigsyaml.Unmarshal(valuesYAML, &defaults); err != nil {
		t.Fatal(err)
	}
	if err := validate(defaults); err != nil {
		t.Fatalf("values.yaml does not satisfy values.schema.json: %v", err)
	}
	bad := []struct {
		name string
		edit func(v map[string]any)
	}{
		{"unknown top-level key", func(v map[string]any) { v["replicaCount"] = 2 }},
		{"unknown config key", func(v map[string]any) { v["config"].(map[string]any)["kafka"].(map[string]any)["bootstrap"] = "x" }},
		{"password in the ConfigMap", func(v map[string]any) { v["config"].(map[string]any)["clickhouse"].(map[string]any)["password"] = "pw" }},
		{"literal token secret", func(v map[string]any) {
			v["config"].(map[string]any)["api"].(map[string]any)["tokens"] = []any{map[string]any{"name": "a", "secret": "plain", "role": "admin"}}
		}},
		{"literal SASL password", func(v map[string]any) {
			v["config"].(map[string]any)["kafka"].(map[string]any)["sasl"] = map[string]any{"mechanism": "SCRAM-SHA-512", "username": "u", "password": "plain"}
		}},
		{"unknown SASL mechanism", func(v map[string]any) {
			v["config"].(map[string]any)["kafka"].(map[string]any)["sasl"] = map[string]any{"mechanism": "GSSAPI"}
		}},
		{"negative replicas", func(v map[string]any) { v["roles"].(map[string]any)["api"].(map[string]any)["replicas"] = -1 }},
		{"rule file in a folder", func(v map[string]any) { v["rules"].(map[string]any)["files"] = map[string]any{"aws/x.yaml": "a"} }},
	}
	for _, b := range bad {
		v := map[string]any{}
		if err := sigsyaml.Unmarshal(valuesYAML, &v); err != nil {
			t.Fatal(err)
		}
		b.edit(v)
		if validate(v) == nil {
			t.Errorf("%s: the schema accepts it", b.name)
		}
	}

	var schema map[string]any
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		t.Fatal(err)
	}
	checkSchemaKeys(t, "config", dig(schema, "properties", "config").(map[string]any), reflect.TypeFor[config.Config]())
}

// checkSchemaKeys walks a schema object beside the Go type it configures
// and reports properties without a yaml field.
func checkSchemaKeys(t *testing.T, path string, s map[string]any, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
		if items, ok := s["items"].(map[string]any); ok {
			s = items
		}
	}
	if typ.Kind() != reflect.Struct {
		return
	}
	props, _ := s["properties"].(map[string]any)
	fields := map[string]reflect.Type{}
	for f := range typ.Fields() {
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			fields[tag] = f.Type
		}
	}
	for name, sub := range props {
		ft, ok := fields[name]
		if !ok {
			t.Errorf("values.schema.json allows %s.%s, which Musubi's configuration does not have", path, name)
			continue
		}
		if m, ok := sub.(map[string]any); ok {
			checkSchemaKeys(t, path+"."+name, m, ft)
		}
	}
}
