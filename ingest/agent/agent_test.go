package agent_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/agent"
	"github.com/musubi-xdr/musubi/ingest/internal/golden"
	"github.com/musubi-xdr/musubi/ocsf"
)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	jl, _ := filepath.Glob("testdata/*.jsonl")
	files = append(files, jl...)
	if len(files) < 10 {
		t.Fatalf("found %d fixtures", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			want := ingest.SourceAgent
			if strings.HasPrefix(filepath.Base(f), "falco") {
				want = ingest.SourceFalco
			}
			if got := ingest.Detect(data); got != want {
				t.Errorf("Detect: got %q, want %q", got, want)
			}
			evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, data)
			if len(errs) > 0 || len(evs) == 0 {
				t.Fatalf("got %d events, errors %v", len(evs), errs)
			}
			for _, ev := range evs {
				if ev.Metadata.LogName != string(want) || ev.Metadata.Version != ocsf.Version || ev.Metadata.UID == "" || ev.Time < 1e12 || len(ev.Raw) == 0 {
					t.Errorf("metadata %+v time %d", ev.Metadata, ev.Time)
				}
			}
			var reasons []string
			golden.Check(t, filepath.Join("testdata/golden", filepath.Base(f)+".golden"), golden.Events(t, evs, reasons))
		})
	}
}

func TestCodeDeployPathsNameTheDeployment(t *testing.T) {
	for _, f := range []string{"testdata/process_codedeploy_payload.json", "testdata/file_rename_ransomware.json", "testdata/falco_write_below_binary_dir.json"} {
		data, _ := os.ReadFile(f)
		evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, data)
		if len(errs) > 0 || len(evs) != 1 {
			t.Fatalf("%s: %v", f, errs)
		}
		if got := evs[0].EntityValues(ocsf.EntityDeployment); len(got) != 1 || got[0] != "d-7KQ2X9ABC" {
			t.Errorf("%s: deployment observables %v, want [d-7KQ2X9ABC]", f, got)
		}
	}
}

func TestAgentObservablesAndClasses(t *testing.T) {
	data, _ := os.ReadFile("testdata/process_codedeploy_payload.json")
	ev, err := agent.Normalize(data, 64)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ClassName != "Process Activity" || ev.ActivityName != "Launch" || ev.TypeName != "Process Activity: Launch" || ev.CategoryName != "System Activity" {
		t.Errorf("class fields: %q %q %q %q", ev.ClassName, ev.ActivityName, ev.TypeName, ev.CategoryName)
	}
	if got := ev.EntityValues(ocsf.EntityInstance); len(got) != 1 || got[0] != "i-0b2c3d4e5f6071829" {
		t.Errorf("instance: %v", got)
	}
	if got := ev.EntityValues(ocsf.EntityHost); len(got) != 1 || got[0] != "app-3" {
		t.Errorf("host: %v (the agent's own hostname observable is merged, not duplicated)", got)
	}
	if got := ev.EntityValues(ocsf.EntityHash); len(got) != 1 {
		t.Errorf("hash: %v", got)
	}
	for _, o := range ev.Observables {
		if !o.Entity.Valid() {
			t.Errorf("observable %+v has no valid entity", o)
		}
	}
}

// TestProcessPlaces checks that each class's process lands where OCSF puts
// it: the acting process of a network, file or DNS event in actor.process,
// the launched process of a Process Activity in process with its parent in
// both process.parent_process and actor.process, whichever shape the agent
// wrote.
func TestProcessPlaces(t *testing.T) {
	const dev = `"device":{"hostname":"app-1"},"time":1741082000000`
	for _, tc := range []struct {
		name, data           string
		process, actor       string // process.name, actor.process.name
		parent               string // process.parent_process.name
		processEntity        string
		deployment, entityAt string
	}{
		{name: "network, standard", data: `{"class_uid":4001,"activity_id":1,` + dev + `,"actor":{"process":{"pid":7,"name":"x","file":{"path":"/opt/codedeploy-agent/deployment-root/g/d-ABCDEFGH1/deployment-archive/x"}}}}`,
			actor: "x", processEntity: "app-1:7", deployment: "d-ABCDEFGH1", entityAt: "actor.process.file.path"},
		{name: "network, top-level process moved to actor", data: `{"class_uid":4001,"activity_id":1,` + dev + `,"process":{"pid":7,"name":"x","file":{"path":"/opt/codedeploy-agent/deployment-root/g/d-ABCDEFGH1/deployment-archive/x"}}}`,
			actor: "x", processEntity: "app-1:7", deployment: "d-ABCDEFGH1", entityAt: "actor.process.file.path"},
		{name: "network, actor.process wins over a top-level process", data: `{"class_uid":4001,"activity_id":1,` + dev + `,"process":{"pid":8,"name":"y"},"actor":{"process":{"pid":7,"name":"x"}}}`,
			actor: "x", processEntity: "app-1:7"},
		{name: "file, top-level process moved to actor", data: `{"class_uid":1001,"activity_id":1,` + dev + `,"file":{"path":"/tmp/a"},"process":{"pid":9,"name":"bash","cmd_line":"bash /opt/codedeploy-agent/deployment-root/g/d-ABCDEFGH2/deployment-archive/s.sh"}}`,
			actor: "bash", processEntity: "app-1:9", deployment: "d-ABCDEFGH2", entityAt: "actor.process.cmd_line"},
		{name: "dns, standard", data: `{"class_uid":4003,"activity_id":1,` + dev + `,"query":{"hostname":"a.example."},"actor":{"process":{"uid":"p-1","name":"curl"}}}`,
			actor: "curl", processEntity: "p-1"},
		{name: "process launch with parent_process only", data: `{"class_uid":1007,"activity_id":1,` + dev + `,"process":{"pid":11,"name":"sh","parent_process":{"pid":10,"name":"php-fpm"}}}`,
			process: "sh", actor: "php-fpm", parent: "php-fpm", processEntity: "app-1:11"},
		{name: "process launch with actor.process only", data: `{"class_uid":1007,"activity_id":1,` + dev + `,"process":{"pid":11,"name":"sh"},"actor":{"process":{"pid":10,"name":"bash","cmd_line":"bash /opt/codedeploy-agent/deployment-root/g/d-ABCDEFGH3/deployment-archive/hook.sh"}}}`,
			process: "sh", actor: "bash", parent: "bash", processEntity: "app-1:11", deployment: "d-ABCDEFGH3", entityAt: "process.parent_process.cmd_line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := agent.Normalize([]byte(tc.data), 64)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Process.Name != tc.process || ev.Actor.Process.Name != tc.actor || ev.Process.Parent.Name != tc.parent {
				t.Errorf("process %q, actor.process %q, process.parent_process %q; want %q, %q, %q",
					ev.Process.Name, ev.Actor.Process.Name, ev.Process.Parent.Name, tc.process, tc.actor, tc.parent)
			}
			if got := ev.EntityValues(ocsf.EntityProcess); len(got) != 1 || got[0] != tc.processEntity {
				t.Errorf("process entity: got %v, want [%s]", got, tc.processEntity)
			}
			var got []string
			for _, o := range ev.Observables {
				if o.Entity == ocsf.EntityDeployment {
					got = append(got, o.Value+" at "+o.Name)
				}
			}
			if want := tc.deployment + " at " + tc.entityAt; tc.deployment != "" && (len(got) != 1 || got[0] != want) || tc.deployment == "" && len(got) != 0 {
				t.Errorf("deployment: got %v, want %q", got, tc.deployment)
			}
		})
	}
}

// TestLegacyShapeIsStandardized checks that a network event written with a
// top-level process normalizes to the same event as its standard form.
func TestLegacyShapeIsStandardized(t *testing.T) {
	std, _ := os.ReadFile("testdata/network_imds.json")
	old, _ := os.ReadFile("testdata/network_imds_legacy_shape.json")
	a, err := agent.Normalize(std, 64)
	if err != nil {
		t.Fatal(err)
	}
	b, err := agent.Normalize(old, 64)
	if err != nil {
		t.Fatal(err)
	}
	a.Raw, b.Raw = nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("legacy shape:\n%s\nstandard shape:\n%s", jb, ja)
	}
}

func TestFalco(t *testing.T) {
	data, _ := os.ReadFile("testdata/falco_imds.json")
	ev, err := agent.NormalizeFalco(data, 64)
	if err != nil {
		t.Fatal(err)
	}
	if ev.FindingInfo.Title != "Contact EC2 Instance Metadata Service From Host" || ev.SeverityID != ocsf.SeverityMedium ||
		ev.DstEndpoint.IP != "169.254.169.254" || ev.Actor.Process.PID != 2301 || ev.Process.PID != 0 || ev.Device.InstanceUID != "i-0a1b2c3d4e5f60718" {
		t.Errorf("falco event: title %q severity %d dst %q pid %d instance %q", ev.FindingInfo.Title, ev.SeverityID, ev.DstEndpoint.IP, ev.Actor.Process.PID, ev.Device.InstanceUID)
	}
	if len(ev.FindingInfo.Attacks) != 2 || ev.FindingInfo.Attacks[0].Technique.UID != "T1552.005" {
		t.Errorf("attacks: %+v", ev.FindingInfo.Attacks)
	}
	if ev.Time != 1741083341300 {
		t.Errorf("time: got %d, want 1741083341300", ev.Time)
	}
}

func TestBadAgentEvents(t *testing.T) {
	for _, tc := range []struct {
		name, data, reason string
		src                ingest.Source
	}{
		{"unsupported class", `{"class_uid":5001,"time":1741082000000}`, "unsupported", ingest.SourceAgent},
		{"no time", `{"class_uid":1007,"activity_id":1}`, "missing_field", ingest.SourceAgent},
		{"time as string", `{"class_uid":1007,"activity_id":1,"time":"now"}`, "wrong_type", ingest.SourceAgent},
		{"pid out of range", `{"class_uid":1007,"activity_id":1,"time":1741082000000,"process":{"pid":99999999999999999999}}`, "wrong_type", ingest.SourceAgent},
		{"falco without rule", `{"output":"x","priority":"Notice","time":"2025-03-04T10:29:01Z"}`, "missing_field", ingest.SourceFalco},
		{"falco bad time", `{"rule":"r","output":"x","priority":"Notice","time":"later"}`, "invalid_value", ingest.SourceFalco},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(tc.src, []byte(tc.data))
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
	d := ingest.NewDecoder(ingest.DefaultLimits())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fn := range []func([]byte, int) (ocsf.Event, error){agent.Normalize, agent.NormalizeFalco} {
			if ev, err := fn(data, 64); err == nil {
				if _, err := json.Marshal(ev); err != nil {
					t.Fatalf("event does not marshal: %v", err)
				}
			}
		}
		for _, src := range []ingest.Source{ingest.SourceAgent, ingest.SourceFalco} {
			_, errs := d.Decode(src, data)
			for _, e := range errs {
				if e.Reason == ingest.ReasonInternal {
					t.Fatalf("internal error: %v", e)
				}
			}
		}
	})
}

// agentRecords returns varied OCSF agent records, compacted: every agent
// fixture record and n records of the load generator's host-agent mix.
func agentRecords(tb testing.TB, n int) [][]byte {
	tb.Helper()
	_, fixtures := agent.FixtureRecords(tb, false)
	recs := make([][]byte, 0, len(fixtures)+n)
	for _, r := range fixtures {
		var c bytes.Buffer
		if err := json.Compact(&c, r); err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, c.Bytes())
	}
	return append(recs, agent.GeneratedRecords(n)...)
}

// BenchmarkNormalize decodes varied agent records (see agentRecords).
func BenchmarkNormalize(b *testing.B) {
	recs := agentRecords(b, 200)
	var size int
	for _, r := range recs {
		size += len(r)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size / len(recs)))
	for i := 0; b.Loop(); i++ {
		if _, err := agent.Normalize(recs[i%len(recs)], 64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalizeFalco(b *testing.B) {
	data, err := os.ReadFile("testdata/falco_terminal_shell.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := agent.NormalizeFalco(data, 64); err != nil {
			b.Fatal(err)
		}
	}
}
