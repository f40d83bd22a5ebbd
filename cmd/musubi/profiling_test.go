package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfilingIsOptIn checks that the API listener serves Go's profiles
// only when api.pprof or serve's -pprof turns them on, and that the API and
// the console are still served beside them.
func TestProfilingIsOptIn(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		http.NotFound(w, r)
	})
	for _, tc := range []struct {
		name string
		yaml string
		args []string
		want bool
	}{
		{"default", "", nil, false},
		{"api.pprof false", "api: {pprof: false}\n", nil, false},
		{"api.pprof true", "api: {pprof: true}\n", nil, true},
		{"-pprof", "", []string{"-pprof"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "musubi.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var cf commonFlags
			var sf serveFlags
			fs := newFlagSet("serve", "serve", io.Discard, io.Discard)
			cf.register(fs, flagsAll)
			sf.register(fs, "role")
			if code, stop := fs.parse(append([]string{"-config", path}, tc.args...)); stop {
				t.Fatalf("flags: exit %d", code)
			}
			sf.apply(&cf)
			cfg, err := cf.load()
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(serverHandler(cfg.API, api))
			defer srv.Close()
			get := func(path string) (int, string) {
				t.Helper()
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}
			for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline"} {
				code, body := get(p)
				if got := code == http.StatusOK; got != tc.want {
					t.Errorf("GET %s: got %d, want served %v", p, code, tc.want)
				}
				if tc.want && p == "/debug/pprof/heap?debug=1" && !strings.Contains(body, "heap profile:") {
					t.Errorf("GET %s: got %.80q, want a heap profile", p, body)
				}
			}
			if code, body := get("/healthz"); code != http.StatusOK || body != "ok" {
				t.Errorf("GET /healthz: got %d %q, want the API's answer", code, body)
			}
			if code, _ := get("/ui/"); code != http.StatusOK {
				t.Errorf("GET /ui/: got %d, want the console", code)
			}
		})
	}
}
