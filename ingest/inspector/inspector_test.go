package inspector_test

import (
	"os"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/inspector"
	"github.com/musubi-xdr/musubi/ingest/internal/golden"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestGolden decodes every fixture through ingest's auto-detection, as
// `musubi normalize` does.
func TestGolden(t *testing.T) {
	golden.CheckFixtures(t, ingest.SourceInspector)
}

func FuzzNormalize(f *testing.F) { golden.FuzzNormalize(f, inspector.NormalizeTo, nil) }

func TestKeyFields(t *testing.T) {
	evs, errs := golden.Decode(t, "ec2_critical_exploitable.json")
	if len(errs) != 0 || len(evs) != 1 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	ev := evs[0]
	v := ev.Vulnerabilities[0]
	for _, c := range []struct{ name, got, want string }{
		{"class", ev.ClassName, "Vulnerability Finding"},
		{"log_name", ev.Metadata.LogName, "inspector"},
		{"severity", ev.Severity, "Critical"},
		{"cve", v.CVE.UID, "CVE-2017-5638"},
		{"device.ip (the public address)", ev.Device.IP, "203.0.113.10"},
		{"device.instance_uid", ev.Device.InstanceUID, "i-0a1b2c3d4e5f60001"},
		{"package", v.Packages[0], "struts2-core@2.3.31"},
		{"account", ev.Cloud.Account.UID, "111122223333"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if !v.IsExploitAvailable || !v.IsFixAvailable || v.CVE.CVSS[0].BaseScore != 9.8 || ev.Time != 1796024710000 {
		t.Errorf("exploit %v fix %v cvss %+v time %d", v.IsExploitAvailable, v.IsFixAvailable, v.CVE.CVSS, ev.Time)
	}
	evs, errs = golden.Decode(t, "findings.jsonl")
	if len(errs) != 0 || len(evs) != 3 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	if evs[0].Resources[0].Name != "api" || evs[0].Vulnerabilities[0].IsExploitAvailable || evs[0].Time != 1796112000000 {
		t.Errorf("ECR image: got %+v", evs[0].Resources)
	}
	if evs[1].ActivityName != "Close" || len(evs[1].EntityValues(ocsf.EntityRole)) != 1 {
		t.Errorf("closed Lambda finding: got %s, roles %v", evs[1].ActivityName, evs[1].EntityValues(ocsf.EntityRole))
	}
	if ts := evs[2].FindingInfo.Types; len(ts) != 2 || ts[1] != "internet_reachable" {
		t.Errorf("network reachability through an internet gateway: got types %v", ts)
	}
	evs, errs = golden.Decode(t, "hostile/hostile.jsonl")
	if len(evs) != 0 || len(errs) != 4 {
		t.Errorf("hostile: got %d events, %d errors, want 0 and 4", len(evs), len(errs))
	}
}

func BenchmarkNormalize(b *testing.B) {
	data, err := os.ReadFile("testdata/ec2_critical_exploitable.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var ev ocsf.Event
	for b.Loop() {
		if err := inspector.NormalizeTo(&ev, data, 64); err != nil {
			b.Fatal(err)
		}
	}
}
