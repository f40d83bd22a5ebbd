package vpcflow_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/internal/cputime"
	"github.com/musubi-xdr/musubi/ingest/internal/golden"
	"github.com/musubi-xdr/musubi/ingest/vpcflow"
	"github.com/musubi-xdr/musubi/ocsf"
)

func decode(t *testing.T, src ingest.Source, data []byte) ([]ocsf.Event, []string) {
	t.Helper()
	evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(src, data)
	var reasons []string
	for _, e := range errs {
		reasons = append(reasons, e.Reason+": "+e.Error())
	}
	return evs, reasons
}

func fixtures(t testing.TB) []string {
	files, _ := filepath.Glob("testdata/*.log")
	j, _ := filepath.Glob("testdata/*.jsonl")
	files = append(files, j...)
	if len(files) < 8 {
		t.Fatalf("found %d fixtures", len(files))
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			if got := ingest.Detect(data); got != ingest.SourceVPCFlow {
				t.Errorf("Detect: got %q, want vpcflow", got)
			}
			evs, errs := decode(t, ingest.SourceAuto, data)
			if len(errs) > 0 || len(evs) == 0 {
				t.Fatalf("got %d events, errors %v", len(evs), errs)
			}
			golden.Check(t, filepath.Join("testdata/golden", filepath.Base(f)+".golden"), golden.Events(t, evs, errs))
		})
	}
}

// TestKeyFields checks ports, bytes, packets, addresses, action, times and
// account against the values of each text line, by the header's field order.
func TestKeyFields(t *testing.T) {
	for _, f := range fixtures(t) {
		if !strings.HasSuffix(f, ".log") {
			continue
		}
		data, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		header := vpcflow.DefaultHeader
		if vpcflow.IsHeader([]byte(lines[0])) {
			header, lines = lines[0], lines[1:]
		}
		names := strings.Fields(header)
		evs, errs := decode(t, ingest.SourceVPCFlow, data)
		if len(errs) > 0 || len(evs) != len(lines) {
			t.Fatalf("%s: got %d events and %v, want %d", f, len(evs), errs, len(lines))
		}
		for i, l := range lines {
			vals := map[string]string{}
			for j, v := range strings.Fields(l) {
				if v != "-" {
					vals[names[j]] = v
				}
			}
			ev := evs[i]
			want := func(name, got, field string) {
				t.Helper()
				if w := vals[field]; got != w && !(w == "" && (got == "0" || got == "")) {
					t.Errorf("%s line %d %s: got %q, want %q", filepath.Base(f), i, name, got, w)
				}
			}
			want("src_endpoint.ip", ev.SrcEndpoint.IP, "srcaddr")
			want("dst_endpoint.ip", ev.DstEndpoint.IP, "dstaddr")
			want("src_endpoint.port", strconv.Itoa(ev.SrcEndpoint.Port), "srcport")
			want("dst_endpoint.port", strconv.Itoa(ev.DstEndpoint.Port), "dstport")
			want("traffic.bytes", strconv.FormatInt(ev.Traffic.Bytes, 10), "bytes")
			want("traffic.packets", strconv.FormatInt(ev.Traffic.Packets, 10), "packets")
			want("connection_info.protocol_num", strconv.Itoa(ev.ConnectionInfo.ProtocolNum), "protocol")
			want("cloud.account.uid", ev.Cloud.Account.UID, "account-id")
			want("start_time", strconv.FormatInt(ev.StartTime/1000, 10), "start")
			want("status_code", ev.StatusCode, "log-status")
			action := map[string]string{"ACCEPT": "Allowed", "REJECT": "Denied"}[vals["action"]]
			if ev.Action != action {
				t.Errorf("%s line %d action: got %q, want %q", f, i, ev.Action, action)
			}
			if ev.Time != ev.StartTime || ev.Metadata.UID == "" || ev.Metadata.LogName != "vpcflow" || ev.ClassUID != ocsf.ClassNetworkActivity {
				t.Errorf("%s line %d: time %d uid %q log %q class %d", f, i, ev.Time, ev.Metadata.UID, ev.Metadata.LogName, ev.ClassUID)
			}
			if id := vals["instance-id"]; id != "" && !contains(ev.EntityValues(ocsf.EntityInstance), id) {
				t.Errorf("%s line %d: instance %s not among the observables", f, i, id)
			}
		}
	}
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func TestDirectionPutsInterfaceOnLocalSide(t *testing.T) {
	data, _ := os.ReadFile("testdata/v5_full.log")
	evs, _ := decode(t, ingest.SourceVPCFlow, data)
	in, out := evs[0], evs[1]
	if in.DstEndpoint.InstanceUID != "i-0a1b2c3d4e5f60718" || in.ConnectionInfo.Direction != "Inbound" {
		t.Errorf("ingress: dst instance %q direction %q", in.DstEndpoint.InstanceUID, in.ConnectionInfo.Direction)
	}
	if out.SrcEndpoint.InstanceUID != "i-0a1b2c3d4e5f60718" || out.DstEndpoint.SvcName != "S3" || out.ConnectionInfo.BoundaryID != 10 {
		t.Errorf("egress: src instance %q svc %q boundary %d", out.SrcEndpoint.InstanceUID, out.DstEndpoint.SvcName, out.ConnectionInfo.BoundaryID)
	}
	if evs[2].ConnectionInfo.ProtocolVerID != 6 || evs[2].SrcEndpoint.IP != "2001:db8:1234:1a00::25" {
		t.Errorf("IPv6 line: %+v", evs[2].ConnectionInfo)
	}
}

func TestUIDsAreDeterministicAndUnique(t *testing.T) {
	data, _ := os.ReadFile("testdata/v2_default.log")
	a, _ := decode(t, ingest.SourceVPCFlow, data)
	b, _ := decode(t, ingest.SourceVPCFlow, data)
	seen := map[string]bool{}
	for i := range a {
		if a[i].Metadata.UID != b[i].Metadata.UID {
			t.Errorf("line %d: uid differs between two decodes", i)
		}
		if seen[a[i].Metadata.UID] {
			t.Errorf("line %d: duplicate uid", i)
		}
		seen[a[i].Metadata.UID] = true
	}
}

func TestGzipFile(t *testing.T) {
	data, _ := os.ReadFile("testdata/v5_full.log")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	evs, errs := decode(t, ingest.SourceAuto, buf.Bytes())
	if len(errs) > 0 || len(evs) != 3 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
}

func TestBadLines(t *testing.T) {
	header := vpcflow.DefaultHeader + "\n"
	for _, tc := range []struct {
		name, data, reason string
	}{
		{"too few fields", header + "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6\n", "missing_field"},
		{"too many fields", header + "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1741082400 1741082460 ACCEPT OK extra\n", "invalid_value"},
		{"port out of range", header + "2 111122223333 eni-1 10.0.0.1 10.0.0.2 99999 2 6 1 1 1741082400 1741082460 ACCEPT OK\n", "invalid_value"},
		{"no times", header + "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 - - ACCEPT OK\n", "missing_field"},
		{"invalid utf8", header + "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1741082400 1741082460 ACC\xffEPT OK\n", "invalid_utf8"},
		{"huge number", header + "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 99999999999999999999999 1741082400 1741082460 ACCEPT OK\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1741082400 1741082460 ACCEPT OK\n"
			evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceVPCFlow, []byte(tc.data+good))
			if tc.reason == "" {
				if len(errs) != 0 {
					t.Fatalf("errors: %v", errs)
				}
				return
			}
			if len(errs) != 1 || len(evs) != 1 {
				t.Fatalf("got %d events and %d errors, want 1 and 1 (the good line after the bad one survives)", len(evs), len(errs))
			}
			if errs[0].Reason != tc.reason || errs[0].Record != 1 || len(errs[0].Raw) == 0 {
				t.Errorf("got reason %q record %d (%v), want %q record 1", errs[0].Reason, errs[0].Record, errs[0], tc.reason)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	for _, file := range fixtures(f) {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	d := ingest.NewDecoder(ingest.DefaultLimits())
	f.Fuzz(func(t *testing.T, data []byte) {
		vpcflow.DefaultFormat().Normalize(data, "fuzz", 0)
		vpcflow.NormalizeJSON(data, 64, "fuzz", 0)
		_, errs := d.Decode(ingest.SourceVPCFlow, data)
		for _, e := range errs {
			if e.Reason == ingest.ReasonInternal {
				t.Fatalf("internal error: %v", e)
			}
		}
	})
}

const benchLine = "2 111122223333 eni-0a1b2c3d4e5f60001 203.0.113.77 10.0.1.25 49152 443 6 12 4210 1741082400 1741082460 ACCEPT OK"

// BenchmarkNormalize measures one default-format line, decoded in place as
// ingest.Decoder does. Run with -cpu 1; cpu-ns/op is the CPU time.
func BenchmarkNormalize(b *testing.B) {
	line := []byte(benchLine)
	f := vpcflow.DefaultFormat()
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	var ev ocsf.Event
	cputime.Report(b, func() {
		ev = ocsf.Event{}
		if err := f.NormalizeTo(&ev, line, "bench", 1); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkDecodeFile measures lines of a file through ingest.Decoder;
// ns/op is per file of 1000 lines.
func BenchmarkDecodeFile(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(vpcflow.DefaultHeader + "\n")
	for range 1000 {
		buf.WriteString(benchLine + "\n")
	}
	d := ingest.NewDecoder(ingest.DefaultLimits())
	b.ReportAllocs()
	b.SetBytes(int64(buf.Len()))
	cputime.Report(b, func() {
		if evs, errs := d.Decode(ingest.SourceVPCFlow, buf.Bytes()); len(errs) > 0 || len(evs) != 1000 {
			b.Fatal(errs)
		}
	})
}

func TestIsHeader(t *testing.T) {
	for in, want := range map[string]bool{
		vpcflow.DefaultHeader:                       true,
		"srcaddr dstaddr srcport dstport":           true,
		"${instance-id} ${srcaddr}":                 true,
		"resource-type account-id tgw-id":           true,
		"2 111122223333 eni-1 10.0.0.1 10.0.0.2":    false,
		"i-0a1b2c3d4e5f60718 10.0.0.1 10.0.0.2 443": false,
		"10.0.0.1 10.0.0.2":                         false,
		"":                                          false,
	} {
		if got := vpcflow.IsHeader([]byte(in)); got != want {
			t.Errorf("IsHeader(%q): got %v, want %v", in, got, want)
		}
	}
}

func TestHeaderWithoutVersionFirst(t *testing.T) {
	data := []byte("srcaddr dstaddr srcport dstport protocol bytes start end action log-status instance-id\n" +
		"10.0.1.25 198.51.100.200 39000 4444 6 91000 1741084200 1741084260 ACCEPT OK i-0a1b2c3d4e5f60718\n")
	evs, errs := decode(t, ingest.SourceAuto, data)
	if len(errs) > 0 || len(evs) != 1 || evs[0].SrcEndpoint.InstanceUID != "i-0a1b2c3d4e5f60718" || evs[0].DstEndpoint.Port != 4444 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
}
