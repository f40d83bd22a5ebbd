package deployments_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// renderFiles renders the chart as `helm install` does and returns the
// rendered templates by file name.
func renderFiles(t *testing.T, overrides map[string]any, install bool) map[string]string {
	t.Helper()
	out, err := renderChart(t, overrides, install)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for name := range out {
		if !strings.HasSuffix(name, ".yaml") {
			delete(out, name)
		}
	}
	return out
}

// ref is a reference from a pod spec to an object it needs to start.
type ref struct{ kind, name string }

func (r ref) String() string { return r.kind + "/" + r.name }

// podRefs returns what the pod template of a workload refers to: its
// ServiceAccount (the namespace's "default" when none is named), the
// Secrets and ConfigMaps of envFrom, env and volumes. Optional references
// are left out.
func podRefs(obj map[string]any) []ref {
	spec := dig(obj, "spec", "template", "spec")
	if spec == nil {
		return nil
	}
	sa := str(dig(spec, "serviceAccountName"))
	if sa == "" {
		sa = "default"
	}
	refs := []ref{{"ServiceAccount", sa}}
	optional := func(v any) bool { b, _ := dig(v, "optional").(bool); return b }
	var containers []any
	for _, k := range []string{"initContainers", "containers"} {
		cs, _ := dig(spec, k).([]any)
		containers = append(containers, cs...)
	}
	for _, c := range containers {
		froms, _ := dig(c, "envFrom").([]any)
		for _, f := range froms {
			if s := dig(f, "secretRef"); s != nil && !optional(s) {
				refs = append(refs, ref{"Secret", str(dig(s, "name"))})
			}
			if s := dig(f, "configMapRef"); s != nil && !optional(s) {
				refs = append(refs, ref{"ConfigMap", str(dig(s, "name"))})
			}
		}
		envs, _ := dig(c, "env").([]any)
		for _, e := range envs {
			if s := dig(e, "valueFrom", "secretKeyRef"); s != nil && !optional(s) {
				refs = append(refs, ref{"Secret", str(dig(s, "name"))})
			}
			if s := dig(e, "valueFrom", "configMapKeyRef"); s != nil && !optional(s) {
				refs = append(refs, ref{"ConfigMap", str(dig(s, "name"))})
			}
		}
	}
	vols, _ := dig(spec, "volumes").([]any)
	for _, v := range vols {
		if s := dig(v, "configMap"); s != nil && !optional(s) {
			refs = append(refs, ref{"ConfigMap", str(dig(s, "name"))})
		}
		if s := dig(v, "secret"); s != nil && !optional(s) {
			refs = append(refs, ref{"Secret", str(dig(s, "secretName"))})
		}
	}
	return refs
}

// unresolvedMounts returns the volumeMounts of a workload's containers
// that name no volume of its pod template.
func unresolvedMounts(obj map[string]any) []string {
	spec := dig(obj, "spec", "template", "spec")
	if spec == nil {
		return nil
	}
	vols := map[string]bool{}
	vs, _ := dig(spec, "volumes").([]any)
	for _, v := range vs {
		vols[str(dig(v, "name"))] = true
	}
	var out []string
	for _, k := range []string{"initContainers", "containers"} {
		cs, _ := dig(spec, k).([]any)
		for _, c := range cs {
			ms, _ := dig(c, "volumeMounts").([]any)
			for _, m := range ms {
				if n := str(dig(m, "name")); !vols[n] {
					out = append(out, str(dig(c, "name"))+":"+n)
				}
			}
		}
	}
	return out
}

func decodeObj(t *testing.T, manifest string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// simulate plays a Helm install (or upgrade) in the order Helm applies it —
// the pre hooks by weight and name (each created, and a Job run to
// completion, before the next), the hooks' deletion on success, the
// release's manifests in Helm's kind order, then the post hooks — and
// reports every pod that would start with a reference to an object that
// does not exist at that moment. existing are the objects there before:
// the namespace's default ServiceAccount and what the values name as
// pre-existing; on an upgrade, the release's own manifests too.
func simulate(t *testing.T, files map[string]string, existing map[ref]bool, pre, post release.HookEvent) []string {
	t.Helper()
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	exists := func(r ref) bool { return existing[r] }
	check := func(when, kind, name string, obj map[string]any) {
		for _, r := range podRefs(obj) {
			if !exists(r) {
				problems = append(problems, fmt.Sprintf("%s: %s/%s needs %s, which does not exist yet", when, kind, name, r))
			}
		}
		for _, m := range unresolvedMounts(obj) {
			problems = append(problems, fmt.Sprintf("%s: %s/%s mounts %s, which is no volume of its pod", when, kind, name, m))
		}
	}
	runHooks := func(event release.HookEvent) {
		var run []*release.Hook
		for _, h := range hooks {
			if slices.Contains(h.Events, event) {
				run = append(run, h)
			}
		}
		sort.SliceStable(run, func(i, j int) bool {
			if run[i].Weight == run[j].Weight {
				return run[i].Name < run[j].Name
			}
			return run[i].Weight < run[j].Weight
		})
		for _, h := range run {
			check(string(event)+" hook", h.Kind, h.Name, decodeObj(t, h.Manifest))
			existing[ref{h.Kind, h.Name}] = true
		}
		for _, h := range run {
			if slices.Contains(h.DeletePolicies, release.HookSucceeded) {
				delete(existing, ref{h.Kind, h.Name})
			}
		}
	}
	runHooks(pre)
	for _, m := range manifests {
		existing[ref{m.Head.Kind, m.Head.Metadata.Name}] = true
	}
	for _, m := range manifests {
		check("release", m.Head.Kind, m.Head.Metadata.Name, decodeObj(t, m.Content))
	}
	runHooks(post)
	return problems
}

// TestChartInstallOrder renders the chart for installs and upgrades with
// several value sets and plays each in Helm's order: every pod — the
// migration Job's before install, the engine's after — must find the
// ServiceAccount, Secrets and ConfigMaps it refers to at the moment it is
// created. (Before, the migration Job named the release's ServiceAccount,
// which Helm creates only after the pre-install hooks: `helm install` with
// default values hung on a Job that could not start.)
func TestChartInstallOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		values   map[string]any
		external []ref // what the values say exists beforehand
	}{
		{"defaults", nil, nil},
		{"lab secrets, rules files, split roles", map[string]any{
			"roles":  map[string]any{"split": true},
			"rules":  map[string]any{"files": map[string]any{"my_rule.yaml": "id: custom.rule\n"}},
			"secret": map[string]any{"env": map[string]any{"MUSUBI_CLICKHOUSE_PASSWORD": "pw"}},
		}, nil},
		{"existing secret, rules and service account", map[string]any{
			"secret":         map[string]any{"existingSecret": "musubi-credentials"},
			"rules":          map[string]any{"existingConfigMap": "soc-rules"},
			"serviceAccount": map[string]any{"create": false, "name": "musubi-irsa"},
		}, []ref{{"Secret", "musubi-credentials"}, {"ConfigMap", "soc-rules"}, {"ServiceAccount", "musubi-irsa"}}},
		{"migration job with its own service account", map[string]any{
			"migrations": map[string]any{"serviceAccountName": "db-migrator"},
		}, []ref{{"ServiceAccount", "db-migrator"}}},
		{"no migration job", map[string]any{"migrations": map[string]any{"job": false}}, nil},
		{"rules from git and an existing secret for it", map[string]any{
			"rules": map[string]any{"gitSync": map[string]any{"enabled": true, "repo": "https://github.com/acme/rules", "existingSecret": "rules-git"}},
		}, []ref{{"Secret", "rules-git"}}},
		{"rules from an OCI artifact with a pull secret", ociValues(nil), []ref{{"Secret", "rules-registry"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := func() map[ref]bool {
				m := map[ref]bool{{"ServiceAccount", "default"}: true}
				for _, r := range tc.external {
					m[r] = true
				}
				return m
			}
			install := renderFiles(t, tc.values, true)
			for _, p := range simulate(t, install, base(), release.HookPreInstall, release.HookPostInstall) {
				t.Errorf("install: %s", p)
			}
			// An upgrade starts from the installed release's objects.
			existing := base()
			_, manifests, err := releaseutil.SortManifests(install, nil, releaseutil.InstallOrder)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range manifests {
				existing[ref{m.Head.Kind, m.Head.Metadata.Name}] = true
			}
			for _, p := range simulate(t, renderFiles(t, tc.values, false), existing, release.HookPreUpgrade, release.HookPostUpgrade) {
				t.Errorf("upgrade: %s", p)
			}
		})
	}
}

// TestChartDisruptionBudgets checks that each role's PodDisruptionBudget
// selects exactly that role's pods.
func TestChartDisruptionBudgets(t *testing.T) {
	for _, split := range []bool{false, true} {
		ms := render(t, map[string]any{"roles": map[string]any{"split": split}})
		pdbs := byKind(ms, "PodDisruptionBudget")
		deps := byKind(ms, "Deployment")
		if len(pdbs) != len(deps) {
			t.Fatalf("split %v: %d PodDisruptionBudgets for %d Deployments", split, len(pdbs), len(deps))
		}
		for _, d := range deps {
			labels, _ := dig(d.obj, "spec", "template", "metadata", "labels").(map[string]any)
			matched := 0
			for _, p := range pdbs {
				sel, _ := dig(p.obj, "spec", "selector", "matchLabels").(map[string]any)
				all := len(sel) > 0
				for k, v := range sel {
					all = all && labels[k] == v
				}
				if all {
					matched++
				}
			}
			if matched != 1 {
				t.Errorf("split %v: %s's pods are selected by %d PodDisruptionBudgets, want 1", split, d.name(), matched)
			}
		}
	}
}

// TestChartRollsOnSecretChange checks that a change to the chart's Secret
// changes the pod template (so the pods restart and read it), and that an
// unrelated change does not.
func TestChartRollsOnSecretChange(t *testing.T) {
	annotations := func(env map[string]any, version string) map[string]any {
		ms := render(t, map[string]any{"secret": map[string]any{"env": env, "existingSecretVersion": version}})
		a, _ := dig(byKind(ms, "Deployment")[0].obj, "spec", "template", "metadata", "annotations").(map[string]any)
		return a
	}
	a := annotations(map[string]any{"MUSUBI_CLICKHOUSE_PASSWORD": "one"}, "")
	b := annotations(map[string]any{"MUSUBI_CLICKHOUSE_PASSWORD": "two"}, "")
	same := annotations(map[string]any{"MUSUBI_CLICKHOUSE_PASSWORD": "one"}, "")
	if a["checksum/secret"] == nil || a["checksum/secret"] == b["checksum/secret"] {
		t.Errorf("checksum/secret %v then %v: want it to change with the Secret", a["checksum/secret"], b["checksum/secret"])
	}
	if a["checksum/secret"] != same["checksum/secret"] {
		t.Error("checksum/secret changed without a change to the Secret")
	}
	if v := annotations(nil, "42")["checksum/existing-secret"]; v != "42" {
		t.Errorf("checksum/existing-secret %v, want the existingSecretVersion 42", v)
	}
}

// TestChartKafkaSecurity renders an Amazon MSK setup — TLS to the brokers
// and SCRAM with the password from the Secret's environment — and checks
// the configuration Musubi reads carries it.
func TestChartKafkaSecurity(t *testing.T) {
	ms := render(t, map[string]any{
		"config": map[string]any{"kafka": map[string]any{
			"brokers": []any{"b-1.msk.example:9096", "b-2.msk.example:9096"},
			"tls":     map[string]any{"enabled": true},
			"sasl":    map[string]any{"mechanism": "SCRAM-SHA-512", "username": "musubi", "password": "env:MUSUBI_KAFKA_PASSWORD"},
		}},
		"secret": map[string]any{"existingSecret": "musubi-credentials"},
	})
	cfg := checkConfig(t, ms)
	if !cfg.Kafka.TLS.Enabled || cfg.Kafka.SASL.Mechanism != "SCRAM-SHA-512" || cfg.Kafka.SASL.Password != "env:MUSUBI_KAFKA_PASSWORD" {
		t.Errorf("rendered kafka.tls %+v, kafka.sasl %+v; want TLS on and SCRAM-SHA-512 with the password from the environment", cfg.Kafka.TLS, cfg.Kafka.SASL)
	}
}
