package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// invocations lists every command and subcommand whose help the CLI has.
func invocations() [][]string {
	var out [][]string
	for _, c := range commands {
		if c.name == "help" {
			continue
		}
		out = append(out, []string{c.name})
		for _, sub := range c.subcommands {
			out = append(out, []string{c.name, sub})
		}
	}
	return out
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// TestHelpToStdout checks that help asked for — `musubi CMD -h`, -help,
// --help and `musubi help CMD` — goes to stdout with exit 0 for every
// command and subcommand, and that `help CMD` is that command's help, not
// the top level's.
func TestHelpToStdout(t *testing.T) {
	for _, inv := range invocations() {
		name := strings.Join(inv, " ")
		for _, args := range [][]string{
			append(slices.Clone(inv), "-h"),
			append(slices.Clone(inv), "-help"),
			append(slices.Clone(inv), "--help"),
			append([]string{"help"}, inv...),
		} {
			code, stdout, stderr := runCLI(args...)
			if code != 0 || stderr != "" {
				t.Errorf("musubi %s: exit %d, stderr %q; want exit 0 and nothing on stderr", strings.Join(args, " "), code, stderr)
			}
			if !strings.HasPrefix(stdout, "Usage: musubi "+inv[0]) {
				t.Errorf("musubi %s: got stdout %q, want the help of %s", strings.Join(args, " "), firstLine(stdout), name)
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "Commands:") {
			t.Errorf("musubi %s: exit %d, stderr %q, stdout %q; want the command list on stdout, exit 0", strings.Join(args, " "), code, stderr, firstLine(stdout))
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestUsageErrors checks that misuse goes to stderr with exit 2 and says
// what was wrong.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"rules", "lint", "-scenarios", "x", "dir"}, "flag provided but not defined: -scenarios"},
		{[]string{"migrate", "-brokers", "x", "up"}, "Usage: musubi migrate"},
		{[]string{"migrate", "up", "-brokers", "x"}, "flag provided but not defined: -brokers"},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh"`},
		{[]string{"version", "-x"}, "flag provided but not defined: -x"},
	} {
		code, stdout, stderr := runCLI(tc.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("musubi %s: exit %d, stdout %q, stderr %q; want exit 2, stdout empty, stderr naming %q",
				strings.Join(tc.args, " "), code, firstLine(stdout), firstLine(stderr), tc.want)
		}
	}
}

// helpFlags returns the flags `musubi ARGS -h` lists.
func helpFlags(t *testing.T, args ...string) []string {
	t.Helper()
	code, stdout, _ := runCLI(append(args, "-h")...)
	if code != 0 {
		t.Fatalf("musubi %s -h: exit %d", strings.Join(args, " "), code)
	}
	var out []string
	for _, m := range defaultsRe.FindAllStringSubmatch(stdout, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestOnlyUsedFlags checks that each command lists exactly the flags it
// uses.
func TestOnlyUsedFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve"}, []string{"-brokers", "-clickhouse", "-config", "-listen", "-log-level", "-pprof", "-role", "-rules"}},
		{[]string{"config", "check"}, []string{"-brokers", "-clickhouse", "-config", "-listen", "-log-level", "-pprof", "-role", "-rules"}},
		{[]string{"demo"}, []string{"-brokers", "-clickhouse", "-config", "-data", "-exit", "-inventory", "-listen", "-log-level", "-rules", "-wait"}},
		{[]string{"migrate", "up"}, []string{"-clickhouse", "-config", "-log-level"}},
		{[]string{"migrate", "status"}, []string{"-clickhouse", "-config", "-log-level"}},
		{[]string{"replay"}, []string{"-account", "-clickhouse", "-config", "-cpuprofile", "-format", "-lateness", "-log-level", "-memory-limit-mib", "-memprofile", "-min-severity", "-quiet", "-rules", "-since", "-source", "-tenant", "-until", "-write"}},
		{[]string{"normalize"}, []string{"-max-record-bytes", "-source"}},
		{[]string{"rules", "lint"}, []string{"-cost", "-format"}},
		{[]string{"rules", "coverage"}, []string{"-format"}},
		{[]string{"rules", "test"}, []string{"-format", "-orders", "-scenarios"}},
		{[]string{"version"}, nil},
		{[]string{"healthcheck"}, []string{"-timeout", "-url"}},
	} {
		if got := helpFlags(t, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("musubi %s -h lists %v, want %v", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	// eval scores offline: no broker, database or listener.
	for _, f := range helpFlags(t, "eval") {
		if slices.Contains([]string{"-brokers", "-clickhouse", "-listen"}, f) {
			t.Errorf("musubi eval -h lists %s, which eval does not use", f)
		}
	}
}

// completionCases are command lines being completed (the last word is the
// one under the cursor) and what must, and must not, be offered.
var completionCases = []struct {
	line          string
	want, notWant []string
}{
	{"musubi se", []string{"serve"}, []string{"replay"}},
	{"musubi rules ", []string{"lint", "test", "coverage"}, nil},
	{"musubi rules test -", []string{"-format", "-scenarios", "-orders"}, nil},
	{"musubi rules lint -", []string{"-format"}, []string{"-scenarios", "-orders"}},
	{"musubi serve -r", []string{"-role", "-rules"}, []string{"-format"}},
	{"musubi migrate up -", []string{"-clickhouse", "-config", "-log-level"}, []string{"-brokers", "-listen"}},
	{"musubi help mi", []string{"migrate"}, nil},
	{"musubi completion ", []string{"bash", "zsh", "fish"}, nil},
}

func checkCompletion(t *testing.T, shell, line string, got []string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: completing %q offers %v, want %s among them", shell, line, got, w)
		}
	}
	for _, w := range notWant {
		if slices.Contains(got, w) {
			t.Errorf("%s: completing %q offers %s, which does not apply", shell, line, w)
		}
	}
}

// shell returns the path of a shell, skipping when it is missing unless
// MUSUBI_REQUIRE_SHELLS is set (make test installs bash, zsh and fish).
func shell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("MUSUBI_REQUIRE_SHELLS") != "" {
			t.Fatalf("%s is required (MUSUBI_REQUIRE_SHELLS) and not installed", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func script(t *testing.T, sh string) string {
	t.Helper()
	code, stdout, stderr := runCLI("completion", sh)
	if code != 0 {
		t.Fatalf("musubi completion %s: exit %d: %s", sh, code, stderr)
	}
	path := filepath.Join(t.TempDir(), "musubi."+sh)
	if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCompletionBash loads the bash script into bash and completes.
func TestCompletionBash(t *testing.T) {
	bash := shell(t, "bash")
	path := script(t, "bash")
	for _, tc := range completionCases {
		words := strings.Split(tc.line, " ")
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := "source " + path + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\ncd " + t.TempDir() + "\n_musubi\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command(bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		checkCompletion(t, "bash", tc.line, strings.Fields(string(out)), tc.want, tc.notWant)
	}
}

// TestCompletionZsh loads the zsh script with compadd and _files replaced
// by functions that print what they are given, and completes.
func TestCompletionZsh(t *testing.T) {
	zsh := shell(t, "zsh")
	path := script(t, "zsh")
	if out, err := exec.Command(zsh, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	for _, tc := range completionCases {
		words := strings.Split(tc.line, " ")
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := `compdef() { :; }
compadd() { if [[ $1 == -a ]]; then print -l -- ${(P)2}; else shift; print -l -- "$@"; fi }
_files() { :; }
source ` + path + `
words=(` + strings.Join(quoted, " ") + `)
CURRENT=` + strconv.Itoa(len(words)) + `
PREFIX='` + words[len(words)-1] + `'
_musubi
`
		out, err := exec.Command(zsh, "-f", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("zsh: %v\n%s", err, out)
		}
		// compadd leaves the filtering by prefix to zsh; filter here.
		var got []string
		for _, c := range strings.Fields(string(out)) {
			if strings.HasPrefix(c, words[len(words)-1]) {
				got = append(got, c)
			}
		}
		checkCompletion(t, "zsh", tc.line, got, tc.want, tc.notWant)
	}
}

// TestCompletionFish loads the fish script into fish and asks it to
// complete (complete -C).
func TestCompletionFish(t *testing.T) {
	fish := shell(t, "fish")
	path := script(t, "fish")
	if out, err := exec.Command(fish, "--no-execute", path).CombinedOutput(); err != nil {
		t.Fatalf("fish --no-execute: %v\n%s", err, out)
	}
	for _, tc := range completionCases {
		cmd := exec.Command(fish, "--no-config", "-c", "source "+path+"; complete -C '"+tc.line+"'")
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			c, _, _ := strings.Cut(line, "\t")
			got = append(got, c)
		}
		checkCompletion(t, "fish", tc.line, got, tc.want, tc.notWant)
	}
}

// TestHealthcheck checks `musubi healthcheck` exits 0 on a 2xx answer and 1
// on a 503 or no answer (the compose healthcheck of the distroless image).
func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "clickhouse: connection refused", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		url  string
		want int
	}{
		{srv.URL + "/readyz", 0},
		{srv.URL + "/down", 1},
		{"http://" + deadBroker(t) + "/readyz", 1},
	} {
		if code, _, stderr := runCLI("healthcheck", "-url", tc.url); code != tc.want {
			t.Errorf("healthcheck %s: exit %d (%s), want %d", tc.url, code, stderr, tc.want)
		}
	}
}
