package cloudtrail_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/cloudtrail"
	"github.com/musubi-xdr/musubi/ingest/internal/cputime"
	"github.com/musubi-xdr/musubi/ingest/internal/golden"
	"github.com/musubi-xdr/musubi/ocsf"
)

func decode(t *testing.T, data []byte) ([]ocsf.Event, []string) {
	t.Helper()
	evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceCloudTrail, data)
	var reasons []string
	for _, e := range errs {
		reasons = append(reasons, e.Reason+": "+e.Error())
	}
	return evs, reasons
}

// TestGolden normalizes every fixture and stratus-red-team detonation log
// and compares the events with testdata/golden/.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	stratus, _ := filepath.Glob("testdata/stratus/*.json")
	files = append(files, stratus...)
	if len(files) < 30 {
		t.Fatalf("found %d fixtures, want the fixtures and the stratus logs", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			evs, errs := decode(t, data)
			if len(errs) > 0 {
				t.Errorf("decode errors: %v", errs)
			}
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			name := strings.TrimPrefix(f, "testdata/")
			golden.Check(t, filepath.Join("testdata/golden", strings.ReplaceAll(name, "/", "_")+".golden"), golden.Events(t, evs, errs))
		})
	}
}

// TestStratusKeyFields checks that every real event normalizes and that the
// key fields equal the raw values.
func TestStratusKeyFields(t *testing.T) {
	files, _ := filepath.Glob("testdata/stratus/*.json")
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raws []map[string]json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			t.Fatal(err)
		}
		evs, errs := decode(t, data)
		if len(errs) > 0 || len(evs) != len(raws) {
			t.Fatalf("%s: got %d events and errors %v, want %d events", f, len(evs), errs, len(raws))
		}
		for i, ev := range evs {
			total++
			var r struct {
				EventID            string `json:"eventID"`
				EventName          string `json:"eventName"`
				EventSource        string `json:"eventSource"`
				EventTime          string `json:"eventTime"`
				AWSRegion          string `json:"awsRegion"`
				SourceIPAddress    string `json:"sourceIPAddress"`
				RecipientAccountID string `json:"recipientAccountId"`
				ErrorCode          string `json:"errorCode"`
				UserIdentity       struct {
					PrincipalID string `json:"principalId"`
					Arn         string `json:"arn"`
					AccessKeyID string `json:"accessKeyId"`
				} `json:"userIdentity"`
			}
			b, _ := json.Marshal(raws[i])
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			checks := []struct{ name, got, want string }{
				{"metadata.uid", ev.Metadata.UID, r.EventID},
				{"api.operation", ev.API.Operation, r.EventName},
				{"api.service.name", ev.API.Service.Name, r.EventSource},
				{"metadata.original_time", ev.Metadata.OriginalTime, r.EventTime},
				{"cloud.region", ev.Cloud.Region, r.AWSRegion},
				{"src_endpoint.ip", ev.SrcEndpoint.IP, r.SourceIPAddress},
				{"cloud.account.uid", ev.Cloud.Account.UID, r.RecipientAccountID},
				{"api.response.error", ev.API.Response.Error, r.ErrorCode},
				{"actor.user.uid", ev.Actor.User.UID, r.UserIdentity.PrincipalID},
				{"actor.user.uid_alt", ev.Actor.User.UIDAlt, r.UserIdentity.Arn},
				{"actor.user.credential_uid", ev.Actor.User.CredentialUID, r.UserIdentity.AccessKeyID},
				{"metadata.log_name", ev.Metadata.LogName, "cloudtrail"},
				{"metadata.version", ev.Metadata.Version, ocsf.Version},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s[%d] %s: got %q, want %q", filepath.Base(f), i, c.name, c.got, c.want)
				}
			}
			if want, err := time.Parse(time.RFC3339, r.EventTime); err != nil || ev.Time != want.UnixMilli() {
				t.Errorf("%s[%d] time: got %d, want %s (%v)", filepath.Base(f), i, ev.Time, r.EventTime, err)
			}
			if ev.ClassUID == 0 || ev.TypeUID != ev.ClassUID*100+ev.ActivityID || len(ev.Raw) == 0 {
				t.Errorf("%s[%d]: time %d class %d type %d raw %d", f, i, ev.Time, ev.ClassUID, ev.TypeUID, len(ev.Raw))
			}
			if !json.Valid(ev.API.Request.Data) && ev.API.Request.Data != nil {
				t.Errorf("%s[%d]: api.request.data is not JSON", f, i)
			}
		}
	}
	if total != 310 {
		t.Errorf("normalized %d stratus events, want 310", total)
	}
}

func TestClasses(t *testing.T) {
	for _, tc := range []struct {
		file          string
		class, act    int
		status        string
		wantObsKinds  []ocsf.Entity
		wantObsValues []string
	}{
		{"testdata/eventbridge_console_signin.json", ocsf.ClassAuthentication, 1, "Failure", []ocsf.Entity{ocsf.EntityUser, ocsf.EntityIP}, []string{"ci-deployer", "198.51.100.23"}},
		{"testdata/stratus/aws.persistence.iam-create-admin-user.json", ocsf.ClassAccountChange, 0, "", nil, nil},
		{"testdata/s3_putobject_instance_role.json", ocsf.ClassAPIActivity, 3, "Success",
			[]ocsf.Entity{ocsf.EntityInstance, ocsf.EntityBucket, ocsf.EntityObject, ocsf.EntitySession, ocsf.EntityRole, ocsf.EntityAccessKey},
			[]string{"i-0a1b2c3d4e5f60718", "acme-release-artifacts", "acme-release-artifacts/webapp/appspec.yml", "arn:aws:sts::111122223333:assumed-role/web-server-role/i-0a1b2c3d4e5f60718", "arn:aws:iam::111122223333:role/web-server-role", "ASIA2EXAMPLEKEY00001"}},
		{"testdata/codedeploy_create_deployment.json", ocsf.ClassAPIActivity, 1, "Success",
			[]ocsf.Entity{ocsf.EntityDeployment, ocsf.EntityApplication, ocsf.EntityDeploymentGroup, ocsf.EntityBucket, ocsf.EntityObject},
			[]string{"d-7KQ2X9ABC", "webapp", "webapp-prod", "acme-release-artifacts", "acme-release-artifacts/webapp/release-2025-03-04.zip"}},
		{"testdata/codepipeline_start_execution.json", ocsf.ClassAPIActivity, 3, "Success", []ocsf.Entity{ocsf.EntityPipeline}, []string{"webapp-release"}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			data, _ := os.ReadFile(tc.file)
			evs, errs := decode(t, data)
			if len(errs) > 0 || len(evs) == 0 {
				t.Fatalf("errors %v", errs)
			}
			found := false
			for _, ev := range evs {
				if ev.ClassUID == tc.class {
					found = true
					if tc.act != 0 && ev.ActivityID != tc.act {
						t.Errorf("activity_id: got %d, want %d", ev.ActivityID, tc.act)
					}
					if tc.status != "" && ev.Status != tc.status {
						t.Errorf("status: got %q, want %q", ev.Status, tc.status)
					}
					for i, k := range tc.wantObsKinds {
						if !has(ev.EntityValues(k), tc.wantObsValues[i]) {
							t.Errorf("observable %s: got %v, want %q", k, ev.EntityValues(k), tc.wantObsValues[i])
						}
					}
				}
			}
			if !found {
				t.Errorf("no event of class %d", tc.class)
			}
		})
	}
}

func has(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// TestGzipDeliveryFile decodes the S3 delivery file form, gzip-compressed.
func TestGzipDeliveryFile(t *testing.T) {
	data, _ := os.ReadFile("testdata/delivery_file.json")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	evs, errs := decode(t, buf.Bytes())
	if len(errs) > 0 || len(evs) != 3 {
		t.Fatalf("got %d events, errors %v; want 3 events", len(evs), errs)
	}
	if got := ingest.Detect(buf.Bytes()); got != ingest.SourceCloudTrail {
		t.Errorf("Detect: got %q, want cloudtrail", got)
	}
}

func TestBadRecords(t *testing.T) {
	good, _ := os.ReadFile("testdata/codepipeline_start_execution.json")
	good = bytes.TrimSpace(good)
	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"truncated", good[:len(good)/2], "invalid_json"},
		{"not an object", []byte(`"hello"`), "invalid_json"},
		{"missing eventName", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com"}`), "missing_field"},
		{"wrong type", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":42}`), "wrong_type"},
		{"bad time", []byte(`{"eventTime":"yesterday","eventSource":"s3.amazonaws.com","eventName":"GetObject"}`), "invalid_value"},
		{"invalid utf8", append([]byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"Get`), 0xff, '"', '}'), "invalid_utf8"},
		{"too deep", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s","eventName":"n","requestParameters":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`), "too_deep"},
		{"too large", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s","eventName":"n","userAgent":"` + strings.Repeat("a", 2<<20) + `"}`), "too_large"},
		{"control char", []byte("{\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventSource\":\"s\",\"eventName\":\"n\x01\"}"), "invalid_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceCloudTrail, tc.data)
			if len(evs) != 0 || len(errs) != 1 {
				t.Fatalf("got %d events, %d errors; want 0 and 1", len(evs), len(errs))
			}
			if errs[0].Reason != tc.reason {
				t.Errorf("reason: got %q (%v), want %q", errs[0].Reason, errs[0], tc.reason)
			}
			if !bytes.Equal(errs[0].Raw, tc.data) {
				t.Errorf("raw: got %d bytes, want the %d bytes of the record", len(errs[0].Raw), len(tc.data))
			}
		})
	}
}

// TestDuplicateKeys documents the policy: the last value wins.
func TestDuplicateKeys(t *testing.T) {
	data := []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventName":"PutObject","eventID":"x"}`)
	ev, err := cloudtrail.Normalize(data, 64)
	if err != nil {
		t.Fatal(err)
	}
	if ev.API.Operation != "PutObject" {
		t.Errorf("api.operation: got %q, want the last value PutObject", ev.API.Operation)
	}
}

// TestStringsDoNotAliasInput checks the documented contract: strings are
// copies, Raw and the raw parameters are sub-slices of the input.
func TestStringsDoNotAliasInput(t *testing.T) {
	data, _ := os.ReadFile("testdata/s3_putobject_instance_role.json")
	ev, err := cloudtrail.Normalize(data, 64)
	if err != nil {
		t.Fatal(err)
	}
	if &ev.Raw[0] != &data[0] || !json.Valid(ev.API.Request.Data) {
		t.Error("Raw is not the input record")
	}
	op, bucket := ev.API.Operation, ev.EntityValues(ocsf.EntityBucket)[0]
	for i := range data {
		data[i] = 'x'
	}
	if ev.API.Operation != op || op != "PutObject" || bucket != "acme-release-artifacts" {
		t.Errorf("strings changed with the input: %q %q", ev.API.Operation, bucket)
	}
}

func FuzzNormalize(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Add([]byte(`{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s","eventName":"n","requestParameters":{"a":"\ud800\u0041"}}`))
	d := ingest.NewDecoder(ingest.DefaultLimits())
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := cloudtrail.Normalize(data, 64)
		if err == nil {
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
		}
		evs, errs := d.Decode(ingest.SourceCloudTrail, data)
		for _, e := range errs {
			if e.Reason == ingest.ReasonInternal {
				t.Fatalf("internal error: %v", e)
			}
		}
		for _, ev := range evs {
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
		}
	})
}

// BenchmarkNormalize measures one 1.8 KB S3 data event (an assumed-role
// session with resources, request and response parameters), decoded in
// place as ingest.Decoder does. Run with -cpu 1; cpu-ns/op is the CPU time.
func BenchmarkNormalize(b *testing.B) {
	data, err := os.ReadFile("testdata/s3_putobject_instance_role.json")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.TrimSpace(data)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var ev ocsf.Event
	cputime.Report(b, func() {
		ev = ocsf.Event{}
		if err := cloudtrail.NormalizeTo(&ev, data, 64); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkDecode measures the same record through ingest.Decoder, as the
// pipeline calls it (one record per Kafka message), including the events
// slice it returns.
func BenchmarkDecode(b *testing.B) {
	data, err := os.ReadFile("testdata/s3_putobject_instance_role.json")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.TrimSpace(data)
	d := ingest.NewDecoder(ingest.DefaultLimits())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	cputime.Report(b, func() {
		if _, errs := d.Decode(ingest.SourceCloudTrail, data); len(errs) > 0 {
			b.Fatal(errs[0])
		}
	})
}

// BenchmarkDecodeAppend is BenchmarkDecode with the events slice reused
// across messages, as a pipeline that has written the events of one message
// can do.
func BenchmarkDecodeAppend(b *testing.B) {
	data, err := os.ReadFile("testdata/s3_putobject_instance_role.json")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.TrimSpace(data)
	d := ingest.NewDecoder(ingest.DefaultLimits())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var evs []ocsf.Event
	cputime.Report(b, func() {
		var errs []*ingest.DecodeError
		if evs, errs = d.DecodeAppend(evs[:0], ingest.SourceCloudTrail, data); len(errs) > 0 {
			b.Fatal(errs[0])
		}
	})
}
