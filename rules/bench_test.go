package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/musubi-xdr/musubi/ocsf"
)

// syntheticRules returns n CloudTrail rules in the shape of the shipped
// pack: each names one operation (two rules per operation, so the number of
// candidate rules per event is the same at every n) and has a condition of
// realistic size that reads the typed event, the request body, a
// comprehension or a regular expression. The two rules of an operation have
// neighbouring conditions, so every n sees the same mix.
func syntheticRules(n int) []File {
	ops := max(n/2, 1)
	conds := []string{
		`event.actor.user.type == "AssumedRole" && event.actor.session.name.matches('^i-[0-9a-f]{8,17}$') && is_public_ip(event.src_endpoint.ip)`,
		`request.?name.orValue("") == "n1" || string(request.?bucketName.orValue("")).startsWith("art")`,
		`event.resources.exists(r, r.type == "AWS::S3::Object" && r.uid.iendsWith([".zip", "/appspec.yml"])) && !event.actor.user.name.icontains(["ci", "deploy"])`,
		`event.cloud.region != "us-west-2" && cidr_match(event.src_endpoint.ip, ["10.0.0.0/8", "172.16.0.0/12"]) == false && event.status_id != 2`,
	}
	files := make([]File, n)
	for i := range n {
		body := fmt.Sprintf(`id: synthetic.rule_%04d
title: synthetic rule %d
severity: medium
stage: discovery
attack: {tactics: [TA0007], techniques: [T1619]}
sources: {log_names: [cloudtrail], operations: [Op%d]}
condition: |
  event.api.operation == "Op%d" && (%s)
entities: [principal, ip, session]
`, i, i, i%ops, i%ops, conds[(i%ops+i/ops)%len(conds)])
		files[i] = File{Path: fmt.Sprintf("synthetic/rule_%04d.yaml", i), Data: []byte(body)}
	}
	return files
}

func syntheticEvents(n int) []*ocsf.Event {
	ops := max(n/2, 1)
	evs := make([]*ocsf.Event, 64)
	for i := range evs {
		ev := ctEvent(fmt.Sprintf("Op%d", i%ops), `{"name":"n1","bucketName":"artifacts","key":"releases/app.zip"}`)
		ev.Metadata.UID = fmt.Sprintf("ev-%d", i)
		ev.Actor.User.Type, ev.Actor.User.Name = "AssumedRole", "web-role"
		if i%2 == 1 && os.Getenv("MUSUBI_BENCH_ALL_MATCH") == "" {
			// half the events match no rule, as in a real stream
			ev.API.Request.Data = json.RawMessage(`{"name":"other"}`)
			ev.Actor.User.Type, ev.Actor.User.Name = "IAMUser", "ci-deploy"
			ev.Cloud.Region = "us-west-2"
			ev.Resources = nil
			ev.Metadata.UID = fmt.Sprintf("ev-%d", i)
			evs[i] = ev
			continue
		}
		ev.Actor.Session.Name = "i-0a1b2c3d4e5f60718"
		ev.SrcEndpoint.IP = "203.0.113.7"
		ev.Cloud.Region = "us-east-1"
		ev.Resources = []ocsf.Resource{{Type: "AWS::S3::Object", UID: "artifacts/releases/app.zip"}}
		ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", ev.SrcEndpoint.IP)
		evs[i] = ev
	}
	return evs
}

// BenchmarkEvaluate measures the per-event cost of Evaluate (index lookup,
// CEL, alert building) as the rule count grows. Compare ns/op across
// sub-benchmarks: the throughput at 1000 rules against 10 rules.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{10, 100, 300, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			s, err := LoadFiles(syntheticRules(n))
			if err != nil {
				b.Fatal(err)
			}
			e := NewEngine(nil, nil)
			e.Swap(s)
			evs := syntheticEvents(n)
			b.ReportAllocs()
			b.ResetTimer()
			start, n := cpuTime(), 0
			for i := 0; b.Loop(); i++ {
				e.Evaluate(evs[i%len(evs)])
				n++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/event")
		})
	}
}

// BenchmarkEvaluatePack runs the shipped detection pack over the real
// stratus-red-team CloudTrail events decoded from JSON into the OCSF shape,
// plus the agent events of the pack's own inline tests.
func BenchmarkEvaluatePack(b *testing.B) {
	s, err := Load("../detections")
	if err != nil {
		b.Fatal(err)
	}
	var evs []*ocsf.Event
	for _, r := range s.Rules() {
		for i := range r.Tests {
			evs = append(evs, &r.Tests[i].Event)
		}
	}
	files, _ := filepath.Glob("testdata/stratus-red-team/*.json")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var records []map[string]any
		if err := json.Unmarshal(data, &records); err != nil {
			b.Fatal(err)
		}
		for _, rec := range records {
			ev := &ocsf.Event{ClassUID: ocsf.ClassAPIActivity}
			ev.Metadata.LogName = "cloudtrail"
			ev.API.Operation, _ = rec["eventName"].(string)
			ev.SrcEndpoint.IP, _ = rec["sourceIPAddress"].(string)
			ev.API.Request.Data, _ = json.Marshal(rec["requestParameters"])
			evs = append(evs, ev)
		}
	}
	e := NewEngine(nil, nil)
	e.Swap(s)
	b.Logf("%d rules, %d events", s.Len(), len(evs))
	b.ReportAllocs()
	b.ResetTimer()
	start, n := cpuTime(), 0
	for i := 0; b.Loop(); i++ {
		e.Evaluate(evs[i%len(evs)])
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/event")
}

// BenchmarkLoad300 measures parsing, type-checking and compiling 300 rules.
func BenchmarkLoad300(b *testing.B) {
	files := syntheticRules(300)
	b.ReportAllocs()
	start, n := cpuTime(), 0
	for b.Loop() {
		if _, err := LoadFiles(files); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(n)/1e9, "cpu-s/load")
}
