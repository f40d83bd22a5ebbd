// Package golden compares test output with golden files under testdata/;
// `go test ./ingest/... -update` rewrites them. It also holds the fixture
// harness the source packages share: the golden test over every fixture
// (CheckFixtures), a fixture decoded alone (Decode) and the fuzz target
// seeded from them (AddSeeds, FuzzNormalize).
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
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

// Fixtures returns the fixtures of a source package: testdata/*.json* and
// testdata/hostile/*.json*, as slash-separated paths relative to testdata.
func Fixtures(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, pattern := range []string{"testdata/*.json*", "testdata/hostile/*.json*"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range files {
			out = append(out, strings.TrimPrefix(filepath.ToSlash(f), "testdata/"))
		}
	}
	return out
}

// CheckFixtures runs a subtest per fixture (see Fixtures): it decodes the
// fixture as `musubi normalize` does (ingest's auto-detection, default
// limits), requires every error to be of source src, with its raw bytes
// and a classified reason, and compares the events and error messages with
// testdata/golden/<fixture>.golden.
func CheckFixtures(t *testing.T, src ingest.Source) {
	t.Helper()
	d := ingest.NewDecoder(ingest.DefaultLimits())
	for _, rel := range Fixtures(t) {
		t.Run(rel, func(t *testing.T) {
			evs, errs := decode(t, d, rel)
			var reasons []string
			for _, e := range errs {
				if e.Source != src || len(e.Raw) == 0 || e.Reason == ingest.ReasonInternal {
					t.Errorf("error %v: want source %s, raw bytes and a classified reason", e, src)
				}
				reasons = append(reasons, e.Error())
			}
			Check(t, filepath.Join("testdata/golden", rel+".golden"), Events(t, evs, reasons))
		})
	}
}

// Decode decodes the fixture testdata/rel as `musubi normalize` does
// (ingest's auto-detection, default limits).
func Decode(tb testing.TB, rel string) ([]ocsf.Event, []*ingest.DecodeError) {
	tb.Helper()
	return decode(tb, ingest.NewDecoder(ingest.DefaultLimits()), rel)
}

func decode(tb testing.TB, d *ingest.Decoder, rel string) ([]ocsf.Event, []*ingest.DecodeError) {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		tb.Fatal(err)
	}
	return d.Decode(ingest.SourceAuto, data)
}

// FuzzNormalize adds the fixtures as seeds (see AddSeeds) and fuzzes a
// source's NormalizeTo: it must never panic, and an event it accepts must
// marshal. check, when set, runs further checks on each input.
func FuzzNormalize(f *testing.F, normalizeTo func(*ocsf.Event, []byte, int) error, check func(t *testing.T, data []byte)) {
	f.Helper()
	AddSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev ocsf.Event
		if err := normalizeTo(&ev, data, 64); err == nil {
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
		}
		if check != nil {
			check(t, data)
		}
	})
}

// AddSeeds adds every fixture (see Fixtures) to the fuzz corpus, whole and
// line by line.
func AddSeeds(f *testing.F) {
	f.Helper()
	for _, rel := range Fixtures(f) {
		data, err := os.ReadFile(filepath.Join("testdata", rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		for _, l := range bytes.Split(data, []byte("\n")) {
			f.Add(l)
		}
	}
}
