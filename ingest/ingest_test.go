package ingest_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
)

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSource(t *testing.T) {
	for in, want := range map[string]ingest.Source{
		"": ingest.SourceAuto, "auto": ingest.SourceAuto, "CloudTrail": ingest.SourceCloudTrail,
		"vpcflow": ingest.SourceVPCFlow, "vpc-flow": ingest.SourceVPCFlow, "guardduty": ingest.SourceGuardDuty,
		"agent": ingest.SourceAgent, "ocsf": ingest.SourceAgent, "falco": ingest.SourceFalco,
	} {
		got, err := ingest.ParseSource(in)
		if err != nil || got != want {
			t.Errorf("ParseSource(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ingest.ParseSource("syslog"); err == nil {
		t.Error("ParseSource(syslog): want an error")
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		data string
		want ingest.Source
	}{
		{`{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject"}`, ingest.SourceCloudTrail},
		{`{"Records":[{"eventVersion":"1.08","eventSource":"s3.amazonaws.com"}]}`, ingest.SourceCloudTrail},
		{`{"detail-type":"AWS API Call via CloudTrail","detail":{}}`, ingest.SourceCloudTrail},
		{`{"detail-type":"GuardDuty Finding","source":"aws.guardduty","detail":{}}`, ingest.SourceGuardDuty},
		{`{"schemaVersion":"2.0","arn":"arn:aws:guardduty:us-east-1:1:detector/x/finding/y"}`, ingest.SourceGuardDuty},
		{`{"class_uid":1007,"time":1}`, ingest.SourceAgent},
		{`{"rule":"r","priority":"Notice","output":"o","output_fields":{}}`, ingest.SourceFalco},
		{"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n", ingest.SourceVPCFlow},
		{"2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK", ingest.SourceVPCFlow},
		{`{"srcaddr":"10.0.0.1","dstaddr":"10.0.0.2"}`, ingest.SourceVPCFlow},
		{`{"hello":"world"}`, ingest.SourceAuto},
		{"plain text", ingest.SourceAuto},
		{"", ingest.SourceAuto},
	} {
		if got := ingest.Detect([]byte(tc.data)); got != tc.want {
			t.Errorf("Detect(%.40q): got %q, want %q", tc.data, got, tc.want)
		}
		if got := ingest.Detect(gz([]byte(tc.data))); got != tc.want && tc.data != "" {
			t.Errorf("Detect(gzip %.40q): got %q, want %q", tc.data, got, tc.want)
		}
	}
}

func cwPayload(t *testing.T, messageType string, messages ...string) []byte {
	t.Helper()
	type logEvent struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	p := struct {
		MessageType string     `json:"messageType"`
		Owner       string     `json:"owner"`
		LogGroup    string     `json:"logGroup"`
		LogStream   string     `json:"logStream"`
		LogEvents   []logEvent `json:"logEvents"`
	}{MessageType: messageType, Owner: "111122223333", LogGroup: "group", LogStream: "stream"}
	for i, m := range messages {
		p.LogEvents = append(p.LogEvents, logEvent{fmt.Sprint(i), 1741082400000, m})
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCloudWatchLogs(t *testing.T) {
	ct := strings.TrimSpace(string(read(t, "cloudtrail/testdata/codepipeline_start_execution.json")))
	flow := "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1741082400 1741082460 ACCEPT OK"
	d := ingest.NewDecoder(ingest.DefaultLimits())
	plain := cwPayload(t, "DATA_MESSAGE", ct, ct)
	for name, tc := range map[string]struct {
		data []byte
		src  ingest.Source
		want int
		log  string
	}{
		"plain":           {plain, ingest.SourceAuto, 2, "cloudtrail"},
		"gzip":            {gz(plain), ingest.SourceAuto, 2, "cloudtrail"},
		"base64 gzip":     {[]byte(base64.StdEncoding.EncodeToString(gz(plain))), ingest.SourceAuto, 2, "cloudtrail"},
		"lambda wrapper":  {read(t, "cloudtrail/testdata/cloudwatch_subscription.json"), ingest.SourceAuto, 2, "cloudtrail"},
		"flow lines":      {gz(cwPayload(t, "DATA_MESSAGE", flow, flow)), ingest.SourceAuto, 2, "vpcflow"},
		"explicit source": {gz(cwPayload(t, "DATA_MESSAGE", flow)), ingest.SourceVPCFlow, 1, "vpcflow"},
		"control message": {gz(cwPayload(t, "CONTROL_MESSAGE", "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.")), ingest.SourceAuto, 0, ""},
	} {
		t.Run(name, func(t *testing.T) {
			evs, errs := d.Decode(tc.src, tc.data)
			if len(errs) > 0 || len(evs) != tc.want {
				t.Fatalf("got %d events, errors %v; want %d", len(evs), errs, tc.want)
			}
			for _, ev := range evs {
				if ev.Metadata.LogName != tc.log {
					t.Errorf("log_name: got %q, want %q", ev.Metadata.LogName, tc.log)
				}
			}
			if tc.log == "vpcflow" && tc.want == 2 && evs[0].Metadata.UID == evs[1].Metadata.UID {
				t.Error("two log events of one stream got the same uid")
			}
		})
	}
}

// TestObservableKinds checks that the fixtures of all sources together
// yield every entity kind the correlator needs, including the links hidden
// in values.
func TestObservableKinds(t *testing.T) {
	var files []string
	for _, pat := range []string{"*/testdata/*.json", "*/testdata/*.jsonl", "*/testdata/*.log"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	d := ingest.NewDecoder(ingest.DefaultLimits())
	seen := map[ocsf.Entity]map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "panther.tests.jsonl") {
			continue
		}
		evs, errs := d.Decode(ingest.SourceAuto, read(t, f))
		if len(errs) > 0 {
			t.Errorf("%s: %v", f, errs)
		}
		for _, ev := range evs {
			for _, o := range ev.Observables {
				if !o.Entity.Valid() || o.Value == "" || o.Name == "" {
					t.Errorf("%s: invalid observable %+v", f, o)
				}
				if seen[o.Entity] == nil {
					seen[o.Entity] = map[string]bool{}
				}
				seen[o.Entity][o.Name+"="+o.Value] = true
			}
		}
	}
	for _, k := range ocsf.Entities {
		if len(seen[k]) == 0 {
			t.Errorf("no observable of kind %s in any fixture", k)
		}
	}
	for _, want := range []struct {
		kind ocsf.Entity
		obs  string
	}{
		{ocsf.EntityInstance, "actor.session.name=i-0a1b2c3d4e5f60718"},
		{ocsf.EntityDeployment, "process.file.path=d-7KQ2X9ABC"},
		{ocsf.EntityDeployment, "api.response.data.deploymentId=d-7KQ2X9ABC"},
		{ocsf.EntityBucket, "api.request.data.revision.s3Location.bucket=acme-release-artifacts"},
		{ocsf.EntityObject, "api.request.data.revision.s3Location.key=acme-release-artifacts/webapp/release-2025-03-04.zip"},
		{ocsf.EntityObject, "api.request.data.key=acme-release-artifacts/webapp/appspec.yml"},
		{ocsf.EntityBucket, "api.request.data.bucketName=acme-release-artifacts"},
		{ocsf.EntityApplication, "api.request.data.applicationName=webapp"},
		{ocsf.EntityDeploymentGroup, "api.request.data.deploymentGroupName=webapp-prod"},
		{ocsf.EntityPipeline, "api.request.data.name=webapp-release"},
		{ocsf.EntitySession, "actor.session.uid=arn:aws:sts::111122223333:assumed-role/web-server-role/i-0a1b2c3d4e5f60718"},
		{ocsf.EntityRole, "actor.session.issuer=arn:aws:iam::111122223333:role/web-server-role"},
		{ocsf.EntityAccessKey, "actor.user.credential_uid=ASIA2EXAMPLEKEY00001"},
		{ocsf.EntityInstance, "device.instance_uid=i-0b2c3d4e5f6071829"},
	} {
		if !seen[want.kind][want.obs] {
			t.Errorf("observable %s %s not extracted", want.kind, want.obs)
		}
	}
}

func TestBadInput(t *testing.T) {
	good := strings.TrimSpace(string(read(t, "cloudtrail/testdata/codepipeline_start_execution.json")))
	small := ingest.Limits{MaxRecordBytes: 4096, MaxDepth: 8, MaxMessageBytes: 1 << 20, MaxRecords: 3}
	pretty := prettyRecord(t)
	for _, tc := range []struct {
		name    string
		src     ingest.Source
		data    []byte
		limits  ingest.Limits
		events  int
		reasons []string
	}{
		{"truncated line among good lines", ingest.SourceCloudTrail, []byte(good + "\n" + good[:100] + "\n" + good + "\n"), ingest.DefaultLimits(), 2, []string{"invalid_json"}},
		{"truncated pretty-printed record is one dead letter", ingest.SourceCloudTrail, pretty[:len(pretty)/2], ingest.DefaultLimits(), 0, []string{"invalid_json"}},
		{"truncated pretty-printed record before a good line", ingest.SourceCloudTrail, []byte(string(pretty[:len(pretty)/2]) + "\n" + good + "\n"), ingest.DefaultLimits(), 1, []string{"invalid_json"}},
		{"truncated delivery file keeps the records before", ingest.SourceCloudTrail, []byte(`{"Records":[` + good + `,` + good[:50]), ingest.DefaultLimits(), 1, []string{"invalid_json"}},
		{"10 MB field", ingest.SourceCloudTrail, []byte(`{"eventName":"` + strings.Repeat("A", 10<<20) + `"}`), ingest.DefaultLimits(), 0, []string{"too_large"}},
		{"deep nesting", ingest.SourceAgent, []byte(`{"class_uid":1007,"time":1741082000000,"x":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `}`), ingest.DefaultLimits(), 0, []string{"too_deep"}},
		{"deep nesting of arrays", ingest.SourceGuardDuty, []byte(strings.Repeat(`[`, 100000)), ingest.DefaultLimits(), 0, []string{"too_deep"}},
		{"invalid utf8", ingest.SourceFalco, []byte("{\"rule\":\"r\xc3\x28\",\"time\":\"2025-01-01T00:00:00Z\"}"), ingest.DefaultLimits(), 0, []string{"invalid_utf8"}},
		{"not json", ingest.SourceGuardDuty, []byte("<html>"), ingest.DefaultLimits(), 0, []string{"invalid_json"}},
		{"unknown format", ingest.SourceAuto, []byte(`{"hello":"world"}`), ingest.DefaultLimits(), 0, []string{"unknown_format"}},
		{"broken gzip", ingest.SourceCloudTrail, gz([]byte(good))[:20], ingest.DefaultLimits(), 0, []string{"invalid_gzip"}},
		{"gzip bomb", ingest.SourceCloudTrail, gz(bytes.Repeat([]byte(" "), 2<<20)), small, 0, []string{"too_large"}},
		{"too many records", ingest.SourceCloudTrail, []byte(strings.Repeat(good+"\n", 5)), small, 3, []string{"too_many_records"}},
		{"unsupported EventBridge detail", ingest.SourceAuto, []byte(`{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{"state":"running"}}`), ingest.DefaultLimits(), 0, []string{"unsupported"}},
		{"duplicate keys", ingest.SourceCloudTrail, []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventSource":"s3.amazonaws.com","eventName":"GetObject"}`), ingest.DefaultLimits(), 1, nil},
		{"unknown future fields", ingest.SourceCloudTrail, []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","futureField":{"x":[1,2,3]}}`), ingest.DefaultLimits(), 1, nil},
		{"empty message", ingest.SourceCloudTrail, []byte("  \n"), ingest.DefaultLimits(), 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, errs := ingest.NewDecoder(tc.limits).Decode(tc.src, tc.data)
			var reasons []string
			for _, e := range errs {
				reasons = append(reasons, e.Reason)
				if len(e.Raw) == 0 {
					t.Errorf("error %v carries no raw bytes", e)
				}
			}
			if len(evs) != tc.events || strings.Join(reasons, ",") != strings.Join(tc.reasons, ",") {
				t.Errorf("got %d events and reasons %v, want %d and %v (%v)", len(evs), reasons, tc.events, tc.reasons, errs)
			}
		})
	}
}

// prettyRecord is a real CloudTrail record as pretty-printed JSON, one
// field a line, the way files exported by hand often look.
func prettyRecord(t *testing.T) []byte {
	t.Helper()
	var recs []json.RawMessage
	if err := json.Unmarshal(read(t, "cloudtrail/testdata/stratus/aws.defense-evasion.cloudtrail-stop.json"), &recs); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, recs[0], "", "  "); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(out.Bytes(), []byte("\n")) < 20 {
		t.Fatal("the record is not pretty-printed over many lines")
	}
	return out.Bytes()
}

// TestCutShortKeepsTheRest checks that a message whose decoding stops early
// (too many records, a flow log header that cannot be read) keeps the
// records it did not decode in its dead letter.
func TestCutShortKeepsTheRest(t *testing.T) {
	good := strings.TrimSpace(string(read(t, "cloudtrail/testdata/codepipeline_start_execution.json")))
	last := strings.Replace(good, `"eventID":"`, `"eventID":"the-last-one-`, 1)
	if last == good {
		t.Fatal("the fixture has no compact eventID")
	}
	msg := strings.Repeat(good+"\n", 4) + last + "\n"
	hdr := "version account-id interface-id start end action log-status\n"
	line := func(eni string) string { return "2 111122223333 " + eni + " 1741082400 1741082460 ACCEPT OK\n" }
	manyLines := hdr + line("eni-1") + line("eni-2") + line("eni-3") + line("eni-4") + line("eni-5")
	badHeader := hdr + line("eni-1") + "version account-id bogus-field\n" + line("eni-2")
	for _, tc := range []struct {
		name, src, data, reason, keeps string
	}{
		{"too many records", "cloudtrail", msg, "too_many_records", "the-last-one-"},
		{"too many flow lines", "vpcflow", manyLines, "too_many_records", "eni-5"},
		{"unreadable flow header", "vpcflow", badHeader, "invalid_value", "eni-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, _ := ingest.ParseSource(tc.src)
			_, errs := ingest.NewDecoder(ingest.Limits{MaxRecords: 3}).Decode(src, []byte(tc.data))
			if len(errs) != 1 {
				t.Fatalf("got %d errors %v, want 1", len(errs), errs)
			}
			if errs[0].Reason != tc.reason || !bytes.Contains(errs[0].Raw, []byte(tc.keeps)) {
				t.Errorf("got reason %s and raw %q, want %s and raw holding %q", errs[0].Reason, errs[0].Raw, tc.reason, tc.keeps)
			}
		})
	}
}

// TestGzipBombMemory measures what inflating a gzip bomb allocates: a
// bomb whose trailer tells its size costs next to nothing, one whose trailer
// lies costs the limit and one chunk, never the inflated size.
func TestGzipBombMemory(t *testing.T) {
	const limit = 16 << 20
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 100 { // 100 MiB inflated
		zw.Write(zeros)
	}
	zw.Close()
	honest := buf.Bytes()
	lying := bytes.Clone(honest)
	copy(lying[len(lying)-4:], []byte{0xe8, 0x03, 0, 0}) // claims 1000 bytes
	dec := ingest.NewDecoder(ingest.Limits{MaxMessageBytes: limit})
	for _, tc := range []struct {
		name     string
		data     []byte
		maxAlloc uint64
	}{
		{"honest trailer", honest, 1 << 20},
		{"lying trailer", lying, limit + 2<<20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, errs := dec.Decode(ingest.SourceCloudTrail, tc.data)
			runtime.ReadMemStats(&after)
			if len(errs) != 1 || errs[0].Reason != ingest.ReasonTooLarge {
				t.Fatalf("got %v, want one too_large", errs)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d KiB compressed, %d MiB allocated (limit %d MiB)", tc.name, len(tc.data)>>10, alloc>>20, limit>>20)
			if alloc > tc.maxAlloc {
				t.Errorf("allocated %d bytes, want at most %d", alloc, tc.maxAlloc)
			}
		})
	}
}

func TestDecodeErrorAs(t *testing.T) {
	_, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceCloudTrail, []byte(`{"eventName":`))
	if len(errs) != 1 {
		t.Fatalf("got %d errors", len(errs))
	}
	var err error = errs[0]
	var de *ingest.DecodeError
	if !errors.As(err, &de) || de.Reason != ingest.ReasonInvalidJSON || de.Source != ingest.SourceCloudTrail || de.Record != 0 || de.Offset != 0 {
		t.Errorf("errors.As: %+v", de)
	}
	if errors.Unwrap(err) == nil {
		t.Error("DecodeError wraps no cause")
	}
}

func TestFlowFormatForHeaderlessLines(t *testing.T) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	if err := d.SetFlowFormat("${version} ${account-id} ${instance-id} ${srcaddr} ${dstaddr} ${start} ${end} ${action} ${log-status}"); err != nil {
		t.Fatal(err)
	}
	evs, errs := d.Decode(ingest.SourceVPCFlow, []byte("3 111122223333 i-0a1b2c3d4e5f60718 10.0.0.1 10.0.0.2 1741082400 1741082460 ACCEPT OK\n"))
	if len(errs) > 0 || len(evs) != 1 || evs[0].SrcEndpoint.InstanceUID != "i-0a1b2c3d4e5f60718" {
		t.Fatalf("got %v, errors %v", evs, errs)
	}
	if err := d.SetFlowFormat("nothing known here"); err == nil {
		t.Error("SetFlowFormat accepted a header without a known field")
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := ingest.DefaultLimits().Validate(); err != nil {
		t.Errorf("default limits: %v", err)
	}
	if err := (ingest.Limits{}).Validate(); err == nil || strings.Count(err.Error(), "must be positive") != 4 {
		t.Errorf("zero limits: got %v, want four problems", err)
	}
	deep := ingest.DefaultLimits()
	deep.MaxDepth = 1 << 30
	if deep.Validate() == nil {
		t.Error("a MaxDepth above MaxDepthLimit was accepted")
	}
	if got := ingest.NewDecoder(deep).Limits().MaxDepth; got != ingest.MaxDepthLimit {
		t.Errorf("NewDecoder: MaxDepth %d, want it capped at %d", got, ingest.MaxDepthLimit)
	}
}

func FuzzDecode(f *testing.F) {
	for _, pat := range []string{"*/testdata/*.json", "*/testdata/*.log", "*/testdata/*.jsonl"} {
		m, _ := filepath.Glob(pat)
		for _, file := range m {
			data, _ := os.ReadFile(file)
			if len(data) < 64<<10 {
				f.Add(data)
			}
		}
	}
	// Compressed seeds: one member, two members, a trailer that lies.
	small := read(f, "cloudtrail/testdata/codepipeline_start_execution.json")
	f.Add(gz(small))
	f.Add(append(gz(small), gz(small)...))
	lying := gz(bytes.Repeat(small, 8))
	copy(lying[len(lying)-4:], []byte{1, 0, 0, 0})
	f.Add(lying)
	d := ingest.NewDecoder(ingest.DefaultLimits())
	tight := ingest.NewDecoder(ingest.Limits{MaxMessageBytes: 4096, MaxRecordBytes: 2048, MaxRecords: 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Window reads the same records as Decode and never misses an
		// event's time.
		checkWindow(t, "fuzz input", d, ingest.SourceAuto, data)
		checkWindow(t, "fuzz input (tight limits)", tight, ingest.SourceAuto, data)
		evs, errs := d.Decode(ingest.SourceAuto, data)
		_, tightErrs := tight.Decode(ingest.SourceAuto, data)
		for _, e := range append(errs, tightErrs...) {
			if e.Reason == ingest.ReasonInternal {
				t.Fatalf("internal error: %v", e)
			}
			if e.Reason == "" {
				t.Fatalf("error without a reason: %v", e)
			}
		}
		for _, ev := range evs {
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
			if ev.Metadata.UID == "" || ev.Metadata.LogName == "" {
				t.Fatalf("event without uid or log name: %+v", ev.Metadata)
			}
		}
	})
}

func ExampleDecoder_Decode() {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	msg := []byte(`{"eventVersion":"1.08","eventTime":"2025-03-04T10:21:39Z","eventSource":"codepipeline.amazonaws.com",` +
		`"eventName":"StartPipelineExecution","awsRegion":"eu-west-1","recipientAccountId":"111122223333",` +
		`"eventID":"1b0a9c8d-7e6f-4b5a-3d2c-1f0e9d8c7b6a","requestParameters":{"name":"webapp-release"}}`)
	events, errs := d.Decode(ingest.SourceAuto, msg)
	for _, e := range errs {
		fmt.Println("dead letter:", e.Reason)
	}
	for _, ev := range events {
		fmt.Println(ev.ClassName, ev.API.Operation, ev.Metadata.UID)
		fmt.Println("pipeline:", ev.EntityValues(ocsf.EntityPipeline))
	}
	// Output:
	// API Activity StartPipelineExecution 1b0a9c8d-7e6f-4b5a-3d2c-1f0e9d8c7b6a
	// pipeline: [webapp-release]
}

// TestLargeEnvelopeWithLateKeys decodes a one-line EventBridge event larger
// than a record limit whose detail-type comes after a large detail (keys in
// alphabetical order, as some pipelines re-serialise them).
func TestLargeEnvelopeWithLateKeys(t *testing.T) {
	rec := strings.TrimSpace(string(read(t, "cloudtrail/testdata/codepipeline_start_execution.json")))
	rec = strings.Replace(rec, `"userAgent":"events.amazonaws.com"`, `"userAgent":"`+strings.Repeat("a", 3000)+`"`, 1)
	msg := []byte(`{"account":"111122223333","detail":` + rec + `,"detail-type":"AWS API Call via CloudTrail","source":"aws.codepipeline"}`)
	lim := ingest.DefaultLimits()
	lim.MaxRecordBytes = len(rec) + 10
	evs, errs := ingest.NewDecoder(lim).Decode(ingest.SourceAuto, msg)
	if len(errs) > 0 || len(evs) != 1 || evs[0].API.Operation != "StartPipelineExecution" {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
}

func TestDecodeAppendReusesSlots(t *testing.T) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	ct := read(t, "cloudtrail/testdata/s3_putobject_instance_role.json")
	flow := read(t, "vpcflow/testdata/v5_full.log")
	evs, errs := d.DecodeAppend(nil, ingest.SourceAuto, ct)
	if len(errs) > 0 || len(evs) != 1 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	evs, errs = d.DecodeAppend(evs[:0], ingest.SourceAuto, flow)
	if len(errs) > 0 || len(evs) != 3 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	if evs[0].API.Operation != "" || evs[0].ClassUID != ocsf.ClassNetworkActivity || len(evs[0].Resources) != 0 {
		t.Errorf("a reused slot kept fields of the previous event: %q %d", evs[0].API.Operation, evs[0].ClassUID)
	}
	more, _ := d.DecodeAppend(evs, ingest.SourceAuto, ct)
	if len(more) != 4 || more[3].API.Operation != "PutObject" || more[0].ClassUID != ocsf.ClassNetworkActivity {
		t.Errorf("append: got %d events", len(more))
	}
}
