package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/musubi-xdr/musubi/bench/loadgen"
	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// stdDecode is the reference decoder: encoding/json.
func stdDecode(rec []byte, ev *ocsf.Event) error { return json.Unmarshal(rec, ev) }

// hostile are records that probe where decoders part from encoding/json.
var hostile = []string{
	// Duplicate keys: the last wins, objects merge, slices reuse elements.
	`{"class_uid":1007,"time":1,"process":{"pid":1},"process":{"name":"x"}}`,
	`{"class_uid":1007,"time":1,"process":{"file":{"hashes":[{"algorithm":"a","value":"x"}]}},"process":{"file":{"hashes":[{"value":"y"}]}}}`,
	`{"class_uid":1007,"time":1,"process":{"lineage":["a","b"]},"process":{"lineage":["c"]},"process":{"lineage":null}}`,
	`{"class_uid":1007,"time":1,"observables":[{"name":"a","type_id":1,"entity":"x"}],"observables":[{"value":"v"}]}`,
	`{"class_uid":1007,"time":1,"resources":[{"owner":{"account":{"uid":"1"}}}],"resources":[{}]}`,
	`{"class_uid":1007,"time":1,"TIME":2,"Time":null}`,
	// Key case and Unicode folding, escaped keys, invalid UTF-8 in keys.
	`{"CLASS_UID":1007,"Time":1,"Process":{"PID":3,"File":{"Hashes":null}}}`,
	`{"claſs_uid":1007,"time":1}`,
	`{"class_uid":4001,"time":1,"traffic":{"pac\u212aets":1},"finding_info":{"attac\u212as":[{}]}}`,
	"{\"class_uid\":4001,\"time\":1,\"traffic\":{\"pac\xe2\x84\xaaets\":1}}",
	`{"cl\u0061ss_uid":1007,"\u0074ime":1,"devic\u0065":{"hostname":"h"}}`,
	"{\"class_uid\":1007,\"time\":1,\"mess\xffage\":1}",
	// Nulls and empty containers.
	`{"class_uid":1007,"time":1,"observables":[],"unmapped":null,"api":{"request":{"data":null}}}`,
	`{"class_uid":1007,"time":1,"device":null,"cloud":{"account":null},"is_mfa":null,"metadata":{"profiles":[]}}`,
	`{"class_uid":1007,"time":1,"process":{"lineage":["a",null,"c"]},"finding_info":{"attacks":[{"tactic":{"uid":"T"}},null]}}`,
	`{"class_uid":1007,"time":1,"unmapped":{"a":1},"unmapped":"s","api":{"response":{"data":  [1, {"b":null}] }}}`,
	// Wrong types.
	`{"class_uid":"1007","time":1}`,
	`{"class_uid":1007,"time":true}`,
	`{"class_uid":1007,"time":1,"is_mfa":1}`,
	`{"class_uid":1007,"time":1,"is_remote":"true"}`,
	`{"class_uid":1007,"time":1,"process":[]}`,
	`{"class_uid":1007,"time":1,"message":7}`,
	`{"class_uid":1007,"time":1,"device":{"os":"x"}}`,
	`{"class_uid":1007,"time":1,"metadata":{"profiles":{}}}`,
	`{"class_uid":1007,"time":1,"metadata":{"profiles":["a",1]}}`,
	`{"class_uid":1007,"time":1,"traffic":{"bytes":"1"}}`,
	`{"class_uid":1007,"time":1,"vulnerabilities":[{"cve":{"cvss":[{"base_score":"1"}]}}]}`,
	`[1]`, `null`, `"x"`, `7`,
	// Numbers: fractions and exponents into integers, overflow.
	`{"class_uid":1007.0,"time":1}`,
	`{"class_uid":1007,"time":1E2}`,
	`{"class_uid":1007,"time":99999999999999999999}`,
	`{"class_uid":1007,"time":9223372036854775807,"device":{"type_id":-0}}`,
	`{"class_uid":1007,"time":-9223372036854775808}`,
	`{"class_uid":1007,"time":1,"traffic":{"bytes":1.5}}`,
	`{"class_uid":1007,"time":1,"vulnerabilities":[{"cve":{"cvss":[{"base_score":1e400}]}}]}`,
	`{"class_uid":1007,"time":1,"vulnerabilities":[{"cve":{"cvss":[{"base_score":-1.5e-400}]}}]}`,
	// Strings: escapes, surrogates, invalid UTF-8.
	`{"class_uid":1007,"time":1,"message":"\/\b\f\n\r\t\u0000\"\\"}`,
	`{"class_uid":1007,"time":1,"message":"\ud83d\ude00\udc00\ud800\u0041"}`,
	"{\"class_uid\":1007,\"time\":1,\"message\":\"a\xffb\",\"device\":{\"hostname\":\"\xed\xa0\x80\xc3\"}}",
	// Deep nesting in unknown and known keys.
	`{"class_uid":1007,"time":1,"x":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`,
	`{"class_uid":1007,"time":1,"unmapped":` + strings.Repeat(`{"a":`, 61) + "1" + strings.Repeat("}", 61) + `}`,
	`{"class_uid":1007,"time":1,"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
}

// seeds returns the fixtures (each file whole and each of its records),
// records of the load generator and the hostile records.
func seeds(tb testing.TB) [][]byte {
	files, recs := FixtureRecords(tb, true)
	recs = append(append(recs, files...), GeneratedRecords(10)...)
	for _, h := range hostile {
		recs = append(recs, []byte(h))
	}
	return recs
}

// FixtureRecords reads the package's fixtures, Falco's only when falco is
// set: each file whole, and each record (a .json file, a line of a .jsonl)
// as it is written there. It is exported for the external tests.
func FixtureRecords(tb testing.TB, falco bool) (files, records [][]byte) {
	tb.Helper()
	names, _ := filepath.Glob("testdata/*.json*")
	for _, f := range names {
		if !falco && strings.HasPrefix(filepath.Base(f), "falco") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, data)
		if strings.HasSuffix(f, ".jsonl") {
			records = append(records, bytes.Split(bytes.TrimSpace(data), []byte("\n"))...)
		} else {
			records = append(records, data)
		}
	}
	return files, records
}

// GeneratedRecords returns n records of the load generator's host-agent
// mix (process, file and network activity).
func GeneratedRecords(n int) [][]byte {
	g := loadgen.New(loadgen.Config{Seed: 1, Mix: loadgen.Mix{Agent: 1}})
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = g.Next().Value
	}
	return recs
}

// FuzzNormalizeMatchesEncodingJSON holds Normalize to the results it had
// when it decoded with encoding/json: the same event for every record
// encoding/json accepts, an error with the same reason and message for every
// record it rejects. The decode step is compared on its own too, so that
// the checks after it (class, time) do not hide a difference.
func FuzzNormalizeMatchesEncodingJSON(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	// A long record, to overwrite any buffer a decoder reuses.
	other := []byte(`{"class_uid":1007,"time":1,"unmapped":{"a":"` + strings.Repeat("z", 8192) + `"},"message":"` + strings.Repeat("y", 8192) + `"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want ocsf.Event
		sameResult(t, "Normalize", normalizeTo(&got, data, 64, decode), normalizeTo(&want, data, 64, stdDecode), &got, &want)
		if scan.Validate(data, 64) != nil {
			return
		}
		got, want = ocsf.Event{}, ocsf.Event{}
		err := decode(data, &got)
		sameResult(t, "decode", err, stdDecode(data, &want), &got, &want)
		// What a decode returned is not changed by the next one.
		var next ocsf.Event
		_ = decode(other, &next)
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("the next decode changed the event:\n got %+v\nwant %+v", got, want)
		}
	})
}

func sameResult(t *testing.T, what string, gerr, werr error, got, want *ocsf.Event) {
	t.Helper()
	switch {
	case (gerr == nil) != (werr == nil):
		t.Fatalf("%s: error %v, encoding/json's %v", what, gerr, werr)
	case gerr != nil:
		if scan.ReasonOf(gerr) != scan.ReasonOf(werr) || gerr.Error() != werr.Error() {
			t.Fatalf("%s: error %q (%s), encoding/json's %q (%s)", what, gerr, scan.ReasonOf(gerr), werr, scan.ReasonOf(werr))
		}
	case !reflect.DeepEqual(*got, *want):
		t.Fatalf("%s: event differs from encoding/json's:\n got %+v\nwant %+v", what, *got, *want)
	}
}

// TestDecodeConcurrently decodes from several goroutines at once, as the
// pipeline's workers do: the decoder's pooled buffers are shared between
// them, and no event may see another's bytes.
func TestDecodeConcurrently(t *testing.T) {
	recs := seeds(t)
	want := make([]ocsf.Event, len(recs))
	werr := make([]error, len(recs))
	for i, r := range recs {
		werr[i] = normalizeTo(&want[i], r, 64, stdDecode)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			got := make([]ocsf.Event, len(recs))
			errs := make([]error, len(recs))
			for i := range recs {
				j := (i + w*len(recs)/4) % len(recs)
				errs[j] = NormalizeTo(&got[j], recs[j], 64)
			}
			for i := range recs {
				if (errs[i] == nil) != (werr[i] == nil) || errs[i] == nil && !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("record %d: got %+v (%v), want %+v (%v)", i, got[i], errs[i], want[i], werr[i])
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkDecode compares the decode step of Normalize with encoding/json
// on varied agent records (the package comment's reason for decode).
func BenchmarkDecode(b *testing.B) {
	recs := agentSample(b)
	for _, bc := range []struct {
		name   string
		decode func([]byte, *ocsf.Event) error
	}{{"decode", decode}, {"encoding_json", stdDecode}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var ev ocsf.Event
			for i := 0; b.Loop(); i++ {
				ev = ocsf.Event{}
				if err := bc.decode(recs[i%len(recs)], &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// agentSample is the fixture records and generated records that
// Normalize accepts.
func agentSample(tb testing.TB) [][]byte {
	_, recs := FixtureRecords(tb, false)
	var ok [][]byte
	for _, r := range append(recs, GeneratedRecords(10)...) {
		if _, err := Normalize(r, 64); err == nil {
			ok = append(ok, r)
		}
	}
	return ok
}
