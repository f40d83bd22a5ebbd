package layers

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/musubi-xdr/musubi"

// deps lists the import paths pkg depends on, directly or not, as
// `go list -deps` reports them (the build of pkg, not its tests).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestEdgePackagesLinkNoRuleEngine: storage, api and notify use the data
// packages for alerts and incidents, so they link neither the rule engine,
// the correlator nor cel-go.
func TestEdgePackagesLinkNoRuleEngine(t *testing.T) {
	forbidden := []string{module + "/rules", module + "/correlate", "cel.dev/cel-go", "github.com/google/cel-go"}
	for _, pkg := range []string{"storage", "api", "notify"} {
		t.Run(pkg, func(t *testing.T) {
			for _, d := range deps(t, module+"/"+pkg) {
				for _, f := range forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s depends on %s", pkg, d)
					}
				}
			}
		})
	}
}

// TestAPIDoesNotImportStorage: the API declares the interface it needs.
func TestAPIDoesNotImportStorage(t *testing.T) {
	if slices.Contains(deps(t, module+"/api"), module+"/storage") {
		t.Error("api depends on storage; it should declare the interface it needs (api.Store)")
	}
}

// TestDataPackagesAreLeaves: the event model and the shared data types
// import the standard library and each other only.
func TestDataPackagesAreLeaves(t *testing.T) {
	data := []string{module + "/ocsf", module + "/alert", module + "/incident", module + "/casework"}
	for _, pkg := range data {
		t.Run(pkg[len(module)+1:], func(t *testing.T) {
			for _, d := range deps(t, pkg) {
				first, _, _ := strings.Cut(d, "/")
				if !strings.Contains(first, ".") || slices.Contains(data, d) {
					continue // the standard library, or another data package
				}
				t.Errorf("%s depends on %s", pkg, d)
			}
		})
	}
}
