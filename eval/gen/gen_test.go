package gen

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
)

// TestDeterministic: the same seed gives the same bytes, another seed
// other bytes.
func TestDeterministic(t *testing.T) {
	a, err := Generate(len(Variants), 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(len(Variants), 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if len(a[i].Files) != len(b[i].Files) {
			t.Fatalf("%s: got %d files, then %d", a[i].Name, len(a[i].Files), len(b[i].Files))
		}
		for j := range a[i].Files {
			fa, fb := a[i].Files[j], b[i].Files[j]
			if fa.Path != fb.Path || !bytes.Equal(fa.Data, fb.Data) {
				t.Fatalf("%s: file %d differs between runs of one seed (%s, %s)", a[i].Name, j, fa.Path, fb.Path)
			}
		}
		ta, _ := a[i].Truth.Marshal()
		tb, _ := b[i].Truth.Marshal()
		if !bytes.Equal(ta, tb) {
			t.Fatalf("%s: expected.json differs between runs of one seed", a[i].Name)
		}
	}
	c, err := Build(Variants[0], 8)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c.Files[0].Data, a[0].Files[0].Data) {
		t.Fatal("seeds 7 and 8 gave the same first file")
	}
}

// TestFilesDecode: every generated file decodes with no dead letter, every
// source and both flow log formats are present, and the truth's event uids
// are all among the decoded events.
func TestFilesDecode(t *testing.T) {
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	for i, v := range Variants {
		s, err := Build(v, uint64(100+i))
		if err != nil {
			t.Fatal(err)
		}
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
		s, err := Build(tc.v, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !has(s, tc.want) {
			t.Errorf("%s: no file holds %q", tc.v, tc.want)
		}
	}
	s, err := Build(VariantCrossAccount, 3)
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]bool{}
	for _, f := range s.Files {
		if p := strings.Split(f.Path, "/"); p[0] == "cloudtrail" {
			accounts[p[2]] = true
		}
	}
	if len(accounts) != 2 {
		t.Errorf("cross-account pipeline: CloudTrail of %d accounts, want 2", len(accounts))
	}
	slow, err := Build(VariantSlowTwoDays, 3)
	if err != nil {
		t.Fatal(err)
	}
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
