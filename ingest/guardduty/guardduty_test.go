package guardduty_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/guardduty"
	"github.com/musubi-xdr/musubi/ingest/internal/golden"
	"github.com/musubi-xdr/musubi/ocsf"
)

func decode(t *testing.T, data []byte) ([]ocsf.Event, []string) {
	t.Helper()
	evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, data)
	var reasons []string
	for _, e := range errs {
		reasons = append(reasons, e.Reason+": "+e.Error())
	}
	return evs, reasons
}

// panther returns the findings of the panther-analysis rule tests, one per
// line of testdata/panther.tests.jsonl.
func panther(t testing.TB) [][]byte {
	f, err := os.Open("testdata/panther.tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var test struct {
			Log json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal(sc.Bytes(), &test); err != nil {
			t.Fatal(err)
		}
		out = append(out, test.Log)
	}
	if len(out) != 8 {
		t.Fatalf("got %d panther findings, want 8", len(out))
	}
	return out
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	jl, _ := filepath.Glob("testdata/*.jsonl")
	for _, f := range append(files, jl...) {
		if filepath.Base(f) == "panther.tests.jsonl" {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			if got := ingest.Detect(data); got != ingest.SourceGuardDuty {
				t.Errorf("Detect: got %q, want guardduty", got)
			}
			evs, errs := decode(t, data)
			if len(errs) > 0 || len(evs) == 0 {
				t.Fatalf("got %d events, errors %v", len(evs), errs)
			}
			golden.Check(t, filepath.Join("testdata/golden", filepath.Base(f)+".golden"), golden.Events(t, evs, errs))
		})
	}
	for i, rec := range panther(t) {
		t.Run(fmt.Sprintf("panther-%d", i), func(t *testing.T) {
			evs, errs := decode(t, rec)
			if len(errs) > 0 || len(evs) != 1 {
				t.Fatalf("got %d events, errors %v", len(evs), errs)
			}
			golden.Check(t, filepath.Join("testdata/golden", fmt.Sprintf("panther-%d.golden", i)), golden.Events(t, evs, errs))
		})
	}
}

// TestPantherKeyFields checks finding id, type, severity, account, region
// and times against the raw findings.
func TestPantherKeyFields(t *testing.T) {
	for i, rec := range panther(t) {
		var raw struct {
			ID, Type, AccountID, Region, Title, UpdatedAt string
			Severity                                      float64
		}
		if err := json.Unmarshal(rec, &raw); err != nil {
			t.Fatal(err)
		}
		ev, err := guardduty.Normalize(rec, 64)
		if err != nil {
			t.Fatalf("panther %d: %v", i, err)
		}
		wantSev := ocsf.SeverityLow
		switch {
		case raw.Severity >= 9:
			wantSev = ocsf.SeverityCritical
		case raw.Severity >= 7:
			wantSev = ocsf.SeverityHigh
		case raw.Severity >= 4:
			wantSev = ocsf.SeverityMedium
		}
		for _, c := range []struct{ name, got, want string }{
			{"finding_info.uid", ev.FindingInfo.UID, raw.ID},
			{"finding_info.types[0]", ev.FindingInfo.Types[0], raw.Type},
			{"finding_info.title", ev.FindingInfo.Title, raw.Title},
			{"cloud.account.uid", ev.Cloud.Account.UID, raw.AccountID},
			{"cloud.region", ev.Cloud.Region, raw.Region},
			{"metadata.uid", ev.Metadata.UID, raw.ID + ":" + raw.UpdatedAt},
			{"severity_id", strconv.Itoa(ev.SeverityID), strconv.Itoa(wantSev)},
			{"class_uid", strconv.Itoa(ev.ClassUID), strconv.Itoa(ocsf.ClassDetectionFinding)},
			{"metadata.log_name", ev.Metadata.LogName, "guardduty"},
		} {
			if c.got != c.want {
				t.Errorf("panther %d %s: got %q, want %q", i, c.name, c.got, c.want)
			}
		}
		layout := "2006-01-02 15:04:05.000"
		if strings.Contains(raw.UpdatedAt, "T") {
			layout = time.RFC3339Nano
		}
		if want, err := time.Parse(layout, raw.UpdatedAt); err != nil || ev.Time != want.UnixMilli() {
			t.Errorf("panther %d time: got %d, want %s (%v)", i, ev.Time, raw.UpdatedAt, err)
		}
		if len(ev.Raw) == 0 {
			t.Errorf("panther %d: time %d raw %d", i, ev.Time, len(ev.Raw))
		}
	}
}

func TestResourceTypes(t *testing.T) {
	data, _ := os.ReadFile("testdata/getfindings_output.json")
	evs, errs := decode(t, data)
	if len(errs) > 0 || len(evs) != 5 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	want := []struct {
		kind  ocsf.Entity
		value string
	}{
		{ocsf.EntityBucket, "acme-release-artifacts"},
		{ocsf.EntityAccessKey, "ASIA2EXAMPLEKEY00001"},
		{ocsf.EntityInstance, "i-0a1b2c3d4e5f60718"}, // the session name of the S3 finding's access key
		{ocsf.EntityCluster, "payments-eks"},
		{ocsf.EntityInstance, "i-0c3d4e5f607182930"}, // the EKS node's role session
		{ocsf.EntityCluster, "payments"},
		{ocsf.EntityContainer, "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"},
		{ocsf.EntityHash, "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"},
		{ocsf.EntityIP, "198.51.100.200"},
		{ocsf.EntityDomain, "x1f3a5.exfil.example.net"},
	}
	all := map[string]bool{}
	for _, ev := range evs {
		for _, o := range ev.Observables {
			all[string(o.Entity)+"="+o.Value] = true
		}
	}
	for _, w := range want {
		if !all[string(w.kind)+"="+w.value] {
			t.Errorf("observable %s=%s not found", w.kind, w.value)
		}
	}
	c2 := evs[3]
	if c2.DstEndpoint.IP != "198.51.100.200" || c2.DstEndpoint.Port != 4444 || c2.SrcEndpoint.IP != "10.0.2.40" || c2.ConnectionInfo.Direction != "Outbound" {
		t.Errorf("C&C finding endpoints: src %+v dst %+v", c2.SrcEndpoint, c2.DstEndpoint)
	}
}

func TestRuntimeLineageAndDeployment(t *testing.T) {
	data, _ := os.ReadFile("testdata/runtime_malicious_file_codedeploy.json")
	ev, err := guardduty.Normalize(data, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.EntityValues(ocsf.EntityDeployment); len(got) != 1 || got[0] != "d-7KQ2X9ABC" {
		t.Errorf("deployment: got %v, want [d-7KQ2X9ABC]", got)
	}
	if len(ev.Actor.Process.Lineage) != 2 || ev.Actor.Process.Parent.Name != "bash" || ev.Actor.Process.PID != 4411 || ev.Process.PID != 0 {
		t.Errorf("actor.process: lineage %v parent %q pid %d", ev.Actor.Process.Lineage, ev.Actor.Process.Parent.Name, ev.Actor.Process.PID)
	}
	if ev.ActivityID != 2 {
		t.Errorf("activity_id: got %d, want 2 (Update: updatedAt after createdAt)", ev.ActivityID)
	}
}

func TestAttackSequence(t *testing.T) {
	data, _ := os.ReadFile("testdata/attack_sequence_s3.json")
	ev, err := guardduty.Normalize(data, 64)
	if err != nil {
		t.Fatal(err)
	}
	fi := ev.FindingInfo
	if len(fi.RelatedEvents) != 3 || fi.RelatedEvents[0].UID != "a4c8e2f1b3d5e7f9a1c3e5f7b9d1f3a5" || fi.RelatedEvents[1].FirstSeen != 1741083693000 {
		t.Errorf("related events: %+v", fi.RelatedEvents)
	}
	if len(fi.Attacks) != 6 {
		t.Errorf("attacks: got %d, want 3 tactics and 3 techniques", len(fi.Attacks))
	}
	for _, w := range []struct {
		k ocsf.Entity
		v string
	}{
		{ocsf.EntitySession, "arn:aws:sts::111122223333:assumed-role/web-server-role/i-0a1b2c3d4e5f60718"},
		{ocsf.EntityInstance, "i-0a1b2c3d4e5f60718"},
		{ocsf.EntityBucket, "acme-release-artifacts"},
		{ocsf.EntityIP, "203.0.113.77"},
		{ocsf.EntityAccessKey, "ASIA2EXAMPLEKEY00001"},
	} {
		found := false
		for _, v := range ev.EntityValues(w.k) {
			found = found || v == w.v
		}
		if !found {
			t.Errorf("observable %s=%s missing: %v", w.k, w.v, ev.EntityValues(w.k))
		}
	}
	if ev.SeverityID != ocsf.SeverityCritical {
		t.Errorf("severity_id: got %d, want critical", ev.SeverityID)
	}
}

func TestBadFindings(t *testing.T) {
	for _, tc := range []struct {
		name, data, reason string
	}{
		{"truncated", `{"schemaVersion":"2.0","id":"x","type":"Recon:EC2/PortProbeUnprotectedPort","arn":"arn:aws:guardduty:`, "invalid_json"},
		{"missing id", `{"schemaVersion":"2.0","arn":"arn:aws:guardduty:x","type":"T","updatedAt":"2025-01-01T00:00:00Z"}`, "missing_field"},
		{"severity wrong type", `{"schemaVersion":"2.0","arn":"arn:aws:guardduty:x","id":"i","type":"T","updatedAt":"2025-01-01T00:00:00Z","severity":{"x":1}}`, "wrong_type"},
		{"bad time", `{"schemaVersion":"2.0","arn":"arn:aws:guardduty:x","id":"i","type":"T","updatedAt":"soon"}`, "invalid_value"},
		{"huge port", `{"schemaVersion":"2.0","arn":"arn:aws:guardduty:x","id":"i","type":"T","updatedAt":"2025-01-01T00:00:00Z","service":{"action":{"networkConnectionAction":{"localPortDetails":{"port":1e400}}}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceGuardDuty, []byte(tc.data))
			if tc.reason == "" { // a number out of range is ignored, not fatal
				if len(evs) != 1 || len(errs) != 0 || evs[0].DstEndpoint.Port != 0 {
					t.Fatalf("got %d events, errors %v", len(evs), errs)
				}
				return
			}
			if len(evs) != 0 || len(errs) != 1 {
				t.Fatalf("got %d events, %d errors", len(evs), len(errs))
			}
			if errs[0].Reason != tc.reason {
				t.Errorf("reason: got %q (%v), want %q", errs[0].Reason, errs[0], tc.reason)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	for _, rec := range panther(f) {
		f.Add(rec)
	}
	d := ingest.NewDecoder(ingest.DefaultLimits())
	f.Fuzz(func(t *testing.T, data []byte) {
		if ev, err := guardduty.Normalize(data, 64); err == nil {
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
		}
		_, errs := d.Decode(ingest.SourceGuardDuty, data)
		for _, e := range errs {
			if e.Reason == ingest.ReasonInternal {
				t.Fatalf("internal error: %v", e)
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	data, err := os.ReadFile("testdata/runtime_malicious_file_codedeploy.json")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.TrimSpace(data)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := guardduty.Normalize(data, 64); err != nil {
			b.Fatal(err)
		}
	}
}
