package gen

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
)

// scenarios builds one scenario of every variant once for the whole test
// binary, concurrently: building is what these tests spend their time on
// (a second of CPU per scenario under the race detector, minutes of wall
// time on a loaded machine), and every test checks the same scenarios.
var scenarios = sync.OnceValue(func() []result {
	return buildAll(func(i int, v Variant) uint64 { return uint64(100 + i) })
})

type result struct {
	s   Scenario
	err error
}

// buildAll builds one scenario of every variant with the seed seed(i, v),
// as many at a time as there are processors.
func buildAll(seed func(int, Variant) uint64) []result {
	out := make([]result, len(Variants))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, v := range Variants {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := Build(v, seed(i, v))
			out[i] = result{s, err}
		})
	}
	wg.Wait()
	return out
}

// scenario returns the built scenario of variant v.
func scenario(t *testing.T, v Variant) Scenario {
	t.Helper()
	for _, r := range scenarios() {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.s.Variant == v {
			return r.s
		}
	}
	t.Fatalf("no scenario of variant %s", v)
	return Scenario{}
}

// TestDeterministic: the same seed gives the same bytes, another seed
// other bytes, also when scenarios are built concurrently.
func TestDeterministic(t *testing.T) {
	a := scenarios()
	seeds := map[Variant]uint64{}
	for _, r := range a {
		if r.err != nil {
			t.Fatal(r.err)
		}
		seeds[r.s.Variant] = r.s.Seed
	}
	b := buildAll(func(_ int, v Variant) uint64 { return seeds[v] })
	for i := range a {
		sa, sb := a[i].s, b[i].s
		if b[i].err != nil {
			t.Fatal(b[i].err)
		}
		if len(sa.Files) != len(sb.Files) {
			t.Fatalf("%s: got %d files, then %d", sa.Variant, len(sa.Files), len(sb.Files))
		}
		for j := range sa.Files {
			fa, fb := sa.Files[j], sb.Files[j]
			if fa.Path != fb.Path || !bytes.Equal(fa.Data, fb.Data) {
				t.Fatalf("%s: file %d differs between runs of one seed (%s, %s)", sa.Variant, j, fa.Path, fb.Path)
			}
		}
		ta, _ := sa.Truth.Marshal()
		tb, _ := sb.Truth.Marshal()
		if !bytes.Equal(ta, tb) {
			t.Fatalf("%s: expected.json differs between runs of one seed", sa.Variant)
		}
	}
	c, err := Build(Variants[0], a[0].s.Seed+1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c.Files[0].Data, a[0].s.Files[0].Data) {
		t.Fatal("two seeds gave the same first file")
	}
}

// TestFilesDecode: every generated file decodes with no dead letter, every
// source and both flow log formats are present, and the truth's event uids
// are all among the decoded events.
func TestFilesDecode(t *testing.T) {
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	for _, v := range Variants {
		s := scenario(t, v)
		t.Run(string(v), func(t *testing.T) {
			uids := map[string]bool{}
			sources := map[ingest.Source]int{}
			formats := map[string]bool{}
			for _, f := range s.Files {
				events, errs := dec.Decode(ingest.SourceAuto, f.Data)
				if len(errs) > 0 {
					t.Fatalf("%s: got %d dead letters, want 0: %s: %v", f.Path, len(errs), errs[0].Reason, errs[0].Err)
				}
				sources[ingest.Detect(f.Data)]++
				for _, ev := range events {
					uids[ev.Metadata.UID] = true
				}
				if strings.HasPrefix(f.Path, "vpcflow/") {
					formats[strings.Fields(plain(t, f.Data))[1]] = true
				}
			}
			want := []ingest.Source{ingest.SourceCloudTrail, ingest.SourceVPCFlow, ingest.SourceAgent, ingest.SourceFalco}
			if v != VariantBenignDay {
				want = append(want, ingest.SourceGuardDuty)
			}
			for _, src := range want {
				if sources[src] == 0 {
					t.Errorf("no %s file", src)
				}
			}
			if !formats["account-id"] || !formats["vpc-id"] {
				t.Errorf("flow log headers %v, want the default and the custom format", formats)
			}
			var truthUIDs []string
			if a := s.Truth.Attack; a != nil {
				if len(a.EventUIDs) == 0 {
					t.Fatal("the attack has no event uids")
				}
				truthUIDs = append(truthUIDs, a.EventUIDs...)
			}
			for _, u := range s.Truth.Unrelated {
				truthUIDs = append(truthUIDs, u.EventUIDs...)
			}
			for _, u := range truthUIDs {
				if !uids[u] {
					t.Fatalf("truth names event %s, which no file holds", u)
				}
			}
			if len(s.Truth.Benign.Entities) < 5 {
				t.Errorf("got %d benign entities, want at least 5: %v", len(s.Truth.Benign.Entities), s.Truth.Benign.Entities)
			}
		})
	}
}

func plain(t *testing.T, data []byte) string {
	t.Helper()
	if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gunzip(data)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	}
	return string(data)
}

// TestVariantsDiffer: each variant writes what makes it that variant.
func TestVariantsDiffer(t *testing.T) {
	has := func(s Scenario, sub string) bool {
		return slices.ContainsFunc(s.Files, func(f File) bool {
			text := f.Data
			if len(text) > 2 && text[0] == 0x1f {
				u, _ := gunzip(text)
				text = []byte(u)
			}
			return bytes.Contains(text, []byte(sub))
		})
	}
	for _, tc := range []struct {
		v    Variant
		want string
	}{
		{VariantIMDSv2, "latest/api/token"},
		{VariantGDRuntime, "Execution:Runtime/NewBinaryExecuted"},
		{VariantStoppedAtS3, "InstanceCredentialExfiltration"},
		{VariantKeysFromVPS, "Example Cloud VPS"},
		{VariantResidential, "Example Broadband"},
	} {
		if s := scenario(t, tc.v); !has(s, tc.want) {
			t.Errorf("%s: no file holds %q", tc.v, tc.want)
		}
	}
	s := scenario(t, VariantCrossAccount)
	accounts := map[string]bool{}
	for _, f := range s.Files {
		if p := strings.Split(f.Path, "/"); p[0] == "cloudtrail" {
			accounts[p[2]] = true
		}
	}
	if len(accounts) != 2 {
		t.Errorf("cross-account pipeline: CloudTrail of %d accounts, want 2", len(accounts))
	}
	slow := scenario(t, VariantSlowTwoDays)
	days := map[string]bool{}
	for _, f := range slow.Files {
		if strings.HasPrefix(f.Path, "agent/") {
			days[strings.Split(f.Path, "/")[2][:8]] = true
		}
	}
	if len(days) < 2 {
		t.Errorf("slow chain spans days %v, want two", days)
	}
}
