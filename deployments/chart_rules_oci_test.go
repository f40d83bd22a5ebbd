package deployments_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/release"
)

// ociValues are the values of an OCI rules artifact behind a private
// registry on a non-default port.
func ociValues(extra map[string]any) map[string]any {
	oci := map[string]any{"enabled": true, "reference": "registry.example:5000/soc/musubi-rules:v3", "pullSecret": "rules-registry"}
	for k, v := range extra {
		oci[k] = v
	}
	return map[string]any{"rules": map[string]any{"oci": oci}}
}

// containerEnv returns a container's plain environment variables.
func containerEnv(c any) map[string]string {
	env := map[string]string{}
	list, _ := dig(c, "env").([]any)
	for _, e := range list {
		env[str(dig(e, "name"))] = str(dig(e, "value"))
	}
	return env
}

// checkMountsResolve fails unless every volumeMount of every container of
// the pod names a volume of the pod.
func checkMountsResolve(t *testing.T, spec any) {
	t.Helper()
	for _, m := range unresolvedMounts(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": spec}}}) {
		t.Errorf("%s names no volume of the pod", m)
	}
}

// TestChartRulesOCI renders rules.oci: oras pulls the artifact once before
// Musubi starts (an init container that fails without rules) and resolves
// it again beside it (a sidecar, unless refresh is off), into an emptyDir
// that Musubi mounts read-only; rules.dir is the artifact's folder under
// the current symlink; the registry credentials are the pull Secret,
// mounted where oras's --registry-config reads them. Played in Helm's
// install order, the pod needs that Secret to exist beforehand (and only
// it), and every mount names a volume.
func TestChartRulesOCI(t *testing.T) {
	ms := render(t, ociValues(nil))
	cfg := checkConfig(t, ms)
	if cfg.Rules.Dir != "/etc/musubi/rules-oci/current/detections" {
		t.Errorf("rules.dir %q, want /etc/musubi/rules-oci/current/detections", cfg.Rules.Dir)
	}
	dep := byKind(ms, "Deployment")[0]
	spec := dig(dep.obj, "spec", "template", "spec")
	inits, _ := dig(spec, "initContainers").([]any)
	cs, _ := dig(spec, "containers").([]any)
	if len(inits) != 1 || len(cs) != 2 || dig(inits[0], "name") != "rules-oci-init" || dig(cs[1], "name") != "rules-oci" {
		t.Fatalf("init containers %d, containers %d; want rules-oci-init, and musubi with rules-oci", len(inits), len(cs))
	}
	checkMountsResolve(t, spec)
	for i, c := range []any{inits[0], cs[1]} {
		env := containerEnv(c)
		if env["RULES_OCI_REFERENCE"] != "registry.example:5000/soc/musubi-rules:v3" {
			t.Errorf("%s: reference %q", dig(c, "name"), env["RULES_OCI_REFERENCE"])
		}
		if once := env["RULES_OCI_ONCE"] == "1"; once != (i == 0) {
			t.Errorf("%s: RULES_OCI_ONCE %q, want it on the init container only", dig(c, "name"), env["RULES_OCI_ONCE"])
		}
		if env["RULES_OCI_FLAGS"] != "--registry-config /etc/musubi/rules-oci-auth/.dockerconfigjson" {
			t.Errorf("%s: flags %q, want the mounted registry config", dig(c, "name"), env["RULES_OCI_FLAGS"])
		}
		if !strings.HasPrefix(str(dig(c, "image")), "ghcr.io/oras-project/oras:") {
			t.Errorf("%s: image %v", dig(c, "name"), dig(c, "image"))
		}
		if dig(c, "securityContext", "readOnlyRootFilesystem") != true {
			t.Errorf("%s: root file system not read-only", dig(c, "name"))
		}
		mounts := map[string]any{}
		for _, m := range dig(c, "volumeMounts").([]any) {
			mounts[str(dig(m, "mountPath"))] = str(dig(m, "name"))
		}
		if mounts["/etc/musubi/rules-oci"] != "rules-oci" || mounts["/etc/musubi/rules-oci-auth"] != "rules-oci-auth" {
			t.Errorf("%s: mounts %v, want rules-oci and the registry credentials", dig(c, "name"), mounts)
		}
	}
	for _, m := range dig(cs[0], "volumeMounts").([]any) {
		if dig(m, "name") == "rules-oci" && dig(m, "readOnly") != true {
			t.Error("musubi mounts rules-oci writable")
		}
	}
	for _, v := range dig(spec, "volumes").([]any) {
		if dig(v, "name") == "rules-oci-auth" {
			items, _ := dig(v, "secret", "items").([]any)
			if dig(v, "secret", "secretName") != "rules-registry" || len(items) != 1 || dig(items[0], "key") != ".dockerconfigjson" || dig(items[0], "path") != ".dockerconfigjson" {
				t.Errorf("rules-oci-auth volume %v, want the dockerconfigjson key of Secret rules-registry", v)
			}
		}
	}

	install := renderFiles(t, ociValues(nil), true)
	base := map[ref]bool{{"ServiceAccount", "default"}: true}
	problems := simulate(t, install, base, release.HookPreInstall, release.HookPostInstall)
	if len(problems) != 1 || !strings.Contains(problems[0], "Secret/rules-registry") {
		t.Errorf("install without the pull Secret: %v; want exactly the missing Secret/rules-registry", problems)
	}
	base = map[ref]bool{{"ServiceAccount", "default"}: true, {"Secret", "rules-registry"}: true}
	for _, p := range simulate(t, install, base, release.HookPreInstall, release.HookPostInstall) {
		t.Errorf("install with the pull Secret: %s", p)
	}

	// A public artifact over plain HTTP, without the sidecar.
	ms = render(t, ociValues(map[string]any{"pullSecret": "", "plainHTTP": true, "refresh": false, "path": ""}))
	spec = dig(byKind(ms, "Deployment")[0].obj, "spec", "template", "spec")
	inits, _ = dig(spec, "initContainers").([]any)
	cs, _ = dig(spec, "containers").([]any)
	if len(inits) != 1 || len(cs) != 1 {
		t.Fatalf("refresh off: %d init containers, %d containers; want the init container and musubi", len(inits), len(cs))
	}
	if f := containerEnv(inits[0])["RULES_OCI_FLAGS"]; f != "--plain-http" {
		t.Errorf("flags %q, want --plain-http", f)
	}
	checkMountsResolve(t, spec)
	if cfg := checkConfig(t, ms); cfg.Rules.Dir != "/etc/musubi/rules-oci/current" {
		t.Errorf("rules.dir %q, want the artifact's root", cfg.Rules.Dir)
	}
}

// TestChartRulesOneSource renders each source of rules — the image, a
// ConfigMap, git-sync, an OCI artifact — and checks exactly that one is
// active: rules.dir points into it, the pod carries its volume and its
// containers and none of another's. Any two at once, and an OCI source
// without a reference or with a period sleep cannot read, are refused.
func TestChartRulesOneSource(t *testing.T) {
	sources := map[string]struct {
		rules      map[string]any
		dir        string
		volume     string
		containers []string
	}{
		"image":     {nil, "/detections", "", nil},
		"configMap": {map[string]any{"files": map[string]any{"a.yaml": "id: a\n"}}, "/etc/musubi/rules", "rules", nil},
		"gitSync":   {map[string]any{"gitSync": map[string]any{"enabled": true, "repo": "https://github.com/acme/rules"}}, "/etc/musubi/rules-git/current", "rules-git", []string{"git-sync-init", "git-sync"}},
		"oci":       {map[string]any{"oci": map[string]any{"enabled": true, "reference": "ghcr.io/acme/rules:v1"}}, "/etc/musubi/rules-oci/current/detections", "rules-oci", []string{"rules-oci-init", "rules-oci"}},
	}
	ruleVolumes := []string{"rules", "rules-git", "rules-oci"}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			values := map[string]any{}
			if src.rules != nil {
				values["rules"] = src.rules
			}
			ms := render(t, values)
			if cfg := checkConfig(t, ms); cfg.Rules.Dir != src.dir {
				t.Errorf("rules.dir %q, want %q", cfg.Rules.Dir, src.dir)
			}
			for _, dep := range byKind(ms, "Deployment") {
				spec := dig(dep.obj, "spec", "template", "spec")
				checkMountsResolve(t, spec)
				var vols, names []string
				for _, v := range dig(spec, "volumes").([]any) {
					if n := str(dig(v, "name")); slices.Contains(ruleVolumes, n) {
						vols = append(vols, n)
					}
				}
				for _, k := range []string{"initContainers", "containers"} {
					cs, _ := dig(spec, k).([]any)
					for _, c := range cs {
						if n := str(dig(c, "name")); n != "musubi" {
							names = append(names, n)
						}
					}
				}
				want := []string{}
				if src.volume != "" {
					want = []string{src.volume}
				}
				if !slices.Equal(append([]string{}, vols...), want) {
					t.Errorf("%s: rule volumes %v, want %v", dep.name(), vols, want)
				}
				if !slices.Equal(names, src.containers) {
					t.Errorf("%s: containers besides musubi %v, want %v", dep.name(), names, src.containers)
				}
			}
		})
	}
	var names []string
	for n := range sources {
		if n != "image" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for i, a := range names {
		for _, b := range names[i+1:] {
			rules := map[string]any{}
			for k, v := range sources[a].rules {
				rules[k] = v
			}
			for k, v := range sources[b].rules {
				rules[k] = v
			}
			if _, err := renderChart(t, map[string]any{"rules": rules}, true); err == nil || !strings.Contains(err.Error(), "exclusive") {
				t.Errorf("%s with %s: got %v, want an error that they are exclusive", a, b, err)
			}
		}
	}
	for name, tc := range map[string]struct {
		oci  map[string]any
		want string
	}{
		"no reference":     {map[string]any{"enabled": true}, "rules.oci.reference is required"},
		"compound period":  {map[string]any{"enabled": true, "reference": "ghcr.io/acme/rules:v1", "period": "1m30s"}, "period"},
		"not a reference":  {map[string]any{"enabled": true, "reference": "https://ghcr.io/acme/rules"}, "reference"},
		"digest too short": {map[string]any{"enabled": true, "reference": "ghcr.io/acme/rules@sha256:abc"}, "reference"},
		"unknown key":      {map[string]any{"enabled": true, "reference": "ghcr.io/acme/rules:v1", "tag": "v1"}, "tag"},
	} {
		if _, err := renderChart(t, map[string]any{"rules": map[string]any{"oci": tc.oci}}, true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, tc.want)
		}
	}
}

// fakeOras is a stand-in for the oras CLI, for the chart's pull script:
// `manifest fetch --descriptor` prints the descriptor of the digest in
// $FAKE_ORAS/digest (or fails when $FAKE_ORAS/down exists), `pull -o DIR
// REF` writes detections/rule.yaml naming the digest it was asked for.
// Every call is appended to $FAKE_ORAS/calls. It tests the script's
// logic — which digest it pulls, where, when it switches — not oras.
const fakeOras = `#!/bin/sh
echo "$*" >> "$FAKE_ORAS/calls"
[ -e "$FAKE_ORAS/down" ] && exit 1
case "$1" in
manifest)
	printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":553}\n' "$(cat "$FAKE_ORAS/digest")" ;;
pull)
	shift
	while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift 2 ;; *) ref=$1; shift ;; esac; done
	mkdir -p "$out/detections" && echo "id: ${ref##*@sha256:}" > "$out/detections/rule.yaml" ;;
*) exit 2 ;;
esac
`

// TestChartRulesOCIScript runs the chart's own pull script (taken from the
// rendered init container) with POSIX sh and a stand-in oras: the first
// run pulls the digest the tag resolves to, by digest, from the repository
// without its tag (the registry's port kept), into its own folder behind
// the current symlink; an unchanged digest pulls nothing; a new one is
// pulled and switched to, keeping the previous folder and removing older
// ones; when the registry is down the run fails (so the init container
// fails and Musubi does not start without rules) and current stays.
func TestChartRulesOCIScript(t *testing.T) {
	ms := render(t, ociValues(nil))
	spec := dig(byKind(ms, "Deployment")[0].obj, "spec", "template", "spec")
	init := dig(spec, "initContainers").([]any)[0]
	if cmd := dig(init, "command").([]any); !slices.Equal(cmd, []any{"/bin/sh", "-c"}) {
		t.Fatalf("command %v, want /bin/sh -c", cmd)
	}
	script := str(dig(init, "args").([]any)[0])
	env := containerEnv(init)

	dir := t.TempDir()
	bin, fake, root := filepath.Join(dir, "bin"), filepath.Join(dir, "fake"), filepath.Join(dir, "rules-oci")
	for _, d := range []string{bin, fake, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "oras"), []byte(fakeOras), 0o755); err != nil {
		t.Fatal(err)
	}
	digest := func(c byte) string { return strings.Repeat(string(c), 64) }
	run := func(d string) error {
		t.Helper()
		if err := os.WriteFile(filepath.Join(fake, "digest"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + dir, "FAKE_ORAS=" + fake,
			"RULES_OCI_REFERENCE=" + env["RULES_OCI_REFERENCE"], "RULES_OCI_FLAGS=" + env["RULES_OCI_FLAGS"],
			"RULES_OCI_PERIOD=" + env["RULES_OCI_PERIOD"], "RULES_OCI_ONCE=" + env["RULES_OCI_ONCE"], "RULES_OCI_ROOT=" + root}
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		return err
	}
	calls := func() []string {
		b, _ := os.ReadFile(filepath.Join(fake, "calls"))
		os.Remove(filepath.Join(fake, "calls"))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	current := func() string {
		t.Helper()
		target, err := os.Readlink(filepath.Join(root, "current"))
		if err != nil {
			t.Fatal(err)
		}
		rule, err := os.ReadFile(filepath.Join(root, "current", "detections", "rule.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "id: " + target + "\n"; string(rule) != want {
			t.Errorf("current -> %s holds %q, want %q", target, rule, want)
		}
		return target
	}
	folders := func() []string {
		es, _ := os.ReadDir(root)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	flags := env["RULES_OCI_FLAGS"]

	if err := run(digest('a')); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	if got := current(); got != digest('a') {
		t.Errorf("current -> %s, want %s", got, digest('a'))
	}
	want := []string{
		"manifest fetch --descriptor " + flags + " registry.example:5000/soc/musubi-rules:v3",
		"pull " + flags + " -o " + root + "/.pull registry.example:5000/soc/musubi-rules@sha256:" + digest('a'),
	}
	if got := calls(); !slices.Equal(got, want) {
		t.Errorf("oras calls\n%q\nwant\n%q", got, want)
	}

	if err := run(digest('a')); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	if got := calls(); len(got) != 1 || !strings.HasPrefix(got[0], "manifest fetch") {
		t.Errorf("unchanged digest: oras calls %q, want only the resolve", got)
	}

	for _, step := range []struct {
		d    byte
		keep []string
	}{
		{'b', []string{digest('a'), digest('b'), "current"}},
		{'c', []string{digest('b'), digest('c'), "current"}},
	} {
		if err := run(digest(step.d)); err != nil {
			t.Fatalf("pull %c: %v", step.d, err)
		}
		if got := current(); got != digest(step.d) {
			t.Errorf("current -> %s, want %s", got, digest(step.d))
		}
		if got := folders(); !slices.Equal(got, step.keep) {
			t.Errorf("after %c: folders %v, want %v", step.d, got, step.keep)
		}
		calls()
	}

	if err := os.WriteFile(filepath.Join(fake, "down"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(digest('d')); err == nil {
		t.Error("the registry is down, but the pull script succeeded")
	}
	if got := current(); got != digest('c') {
		t.Errorf("after a failed pull current -> %s, want %s still", got, digest('c'))
	}
}
