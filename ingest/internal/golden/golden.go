// Package golden compares test output with golden files under testdata/;
// `go test ./ingest/... -update` rewrites them.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/musubi-xdr/musubi/ocsf"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Check compares got with the golden file path, or rewrites it with -update.
func Check(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: output differs from the golden file (run with -update after checking the diff)\ngot:\n%s", path, got)
	}
}

// Events renders events and error reasons as indented JSON for a golden file.
func Events(t *testing.T, events []ocsf.Event, errs []string) []byte {
	t.Helper()
	out, err := json.MarshalIndent(struct {
		Events []ocsf.Event `json:"events"`
		Errors []string     `json:"errors,omitempty"`
	}{events, errs}, "", "  ")
	if err != nil {
		t.Fatalf("marshal events: %v", err)
	}
	return append(out, '\n')
}
