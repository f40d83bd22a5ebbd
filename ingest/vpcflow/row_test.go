package vpcflow_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/vpcflow"
	"github.com/musubi-xdr/musubi/ocsf"
)

// checkRow requires that an event with a Row is built back from it into
// the same OCSF document and raw record, and reports whether it had one.
func checkRow(t *testing.T, ev *ocsf.Event) bool {
	t.Helper()
	row, ok := vpcflow.RowOf(ev)
	if !ok {
		return false
	}
	var back ocsf.Event
	row.Event(&back, ev.Raw)
	want, err := ev.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("event built from its row differs\n got %s\nwant %s", got, want)
	}
	if !bytes.Equal(back.Raw, ev.Raw) {
		t.Errorf("raw: got %q, want %q", back.Raw, ev.Raw)
	}
	return true
}

// TestRowRoundTrip builds every fixture's events back from their rows,
// and checks which records have one.
func TestRowRoundTrip(t *testing.T) {
	// The records of each fixture that a Row holds: the default format,
	// v3 with packet addresses equal to the record's, v5 without an AWS
	// service or traffic path, JSON records with a direction; not
	// Transit Gateway, ECS or reject-reason records.
	want := map[string]int{
		"v2_default.log": 5, "v2_no_header.log": 1, "v3_custom.log": 1, "v5_full.log": 1,
		"v6_transit_gateway.log": 0, "v7_ecs.log": 0, "v8_reject_reason.log": 0, "json_records.jsonl": 2,
	}
	for _, f := range fixtures(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			evs, errs := decode(t, ingest.SourceAuto, data)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			rows := 0
			for i := range evs {
				if checkRow(t, &evs[i]) {
					rows++
				}
			}
			if w, ok := want[filepath.Base(f)]; !ok || rows != w {
				t.Errorf("%d of %d records have a row, want %d", rows, len(evs), w)
			}
		})
	}
}

// TestRowHostileRecords builds back records whose values are written
// oddly, out of range or missing.
func TestRowHostileRecords(t *testing.T) {
	const header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type region az-id flow-direction pkt-srcaddr pkt-dstaddr"
	lines := []struct {
		name, line string
		row        bool
	}{
		{"default", "2 111122223333 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 100 160 ACCEPT OK - - - - - - - - - -", true},
		{"every field a dash", "- - - - - - - - - - 100 - - - - - - - - - - - - -", true},
		{"no start", "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 - 160 REJECT OK - - - - - - - - - -", true},
		{"no data", "2 111122223333 eni-1 - - - - - - - 100 160 - NODATA - - - - - - - - - -", true},
		{"skip data", "2 111122223333 eni-1 - - - - - - - 100 160 - SKIPDATA - - - - - - - - - -", true},
		{"unknown status and action", "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 100 160 MAYBE WEIRD - - - - - - - - - -", true},
		{"protocol with leading zeros", "2 1 eni-1 10.0.0.1 10.0.0.2 0080 00443 006 3 4 100 160 ACCEPT OK - - - - - - - - - -", true},
		{"unnamed and huge protocol", "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 9999999999999 3 4 100 160 ACCEPT OK - - - - - - - - - -", true},
		{"protocol zero", "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 0 3 4 100 160 ACCEPT OK - - - - - - - - - -", true},
		{"port limits", "2 1 eni-1 10.0.0.1 10.0.0.2 0 65535 17 3 4 100 160 ACCEPT OK - - - - - - - - - -", true},
		{"huge counters", "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 9223372036854775807 999999999999999999 100 160 ACCEPT OK - - - - - - - - - -", true},
		{"not numbers", "v2 1 eni-1 10.0.0.1 10.0.0.2 1 2 tcp many lots 100 160 ACCEPT OK - - - 0x1f IPv5 - - - - -", true},
		{"v3 fields", "3 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 100 160 ACCEPT OK vpc-1 subnet-1 i-0123456789abcdef0 19 IPv4 eu-west-1 euw1-az1 - 10.0.0.1 10.0.0.2", true},
		{"ipv6", "3 1 eni-1 2001:db8::1 2001:db8::2 1 2 58 3 4 100 160 ACCEPT OK - - - - IPv6 - - - - -", true},
		{"ingress", "5 1 eni-1 203.0.113.9 10.0.0.2 1 2 6 3 4 100 160 ACCEPT OK vpc-1 subnet-1 i-0123456789abcdef0 2 IPv4 eu-west-1 euw1-az1 ingress - -", true},
		{"egress", "5 1 eni-1 10.0.0.2 203.0.113.9 1 2 6 3 4 100 160 ACCEPT OK vpc-1 subnet-1 i-0123456789abcdef0 2 IPv4 eu-west-1 euw1-az1 egress - -", true},
		{"an instance id that is not one", "3 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 100 160 ACCEPT OK - - not-an-instance - - - - - - -", true},
		{"non-ASCII and quotes", "3 \"1\" eni-\u00e9\\ 10.0.0.1 10.0.0.2 1 2 6 3 4 100 160 ACCEPT OK vpc-\u2603 - - - - r\"e - - - -", true},
		{"unknown direction", "5 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 100 160 ACCEPT OK - - - - - - - sideways - -", false},
		{"packet address of a NAT", "3 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 100 160 ACCEPT OK - - - - - - - - 192.0.2.1 -", false},
	}
	format, err := vpcflow.ParseHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range lines {
		t.Run(c.name, func(t *testing.T) {
			ev, err := format.Normalize([]byte(c.line), "hostile", 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := checkRow(t, &ev); got != c.row {
				t.Errorf("has a row: got %v, want %v", got, c.row)
			}
		})
	}
}

// TestRowOfOtherEvents finds no row in events other sources built, nor in
// a flow event changed after it was built.
func TestRowOfOtherEvents(t *testing.T) {
	line := []byte(benchLine)
	ev, err := vpcflow.DefaultFormat().Normalize(line, "x", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vpcflow.RowOf(&ev); !ok {
		t.Fatal("a default-format record has no row")
	}
	for name, change := range map[string]func(*ocsf.Event){
		"another source":          func(e *ocsf.Event) { e.Metadata.LogName = "agent" },
		"another product":         func(e *ocsf.Event) { e.Metadata.Product.Name = "Amazon VPC Transit Gateway" },
		"an unmapped field":       func(e *ocsf.Event) { e.Unmapped = []byte(`{"x":"y"}`) },
		"an AWS service":          func(e *ocsf.Event) { e.DstEndpoint.SvcName = "S3" },
		"a remote interface":      func(e *ocsf.Event) { e.DstEndpoint.InterfaceUID = "eni-2" },
		"a boundary":              func(e *ocsf.Event) { e.ConnectionInfo.BoundaryID = 4 },
		"a reject reason":         func(e *ocsf.Event) { e.StatusDetail = "BPA" },
		"a port out of range":     func(e *ocsf.Event) { e.SrcEndpoint.Port = 70000 },
		"a time other than start": func(e *ocsf.Event) { e.Time++ },
	} {
		e := ev
		change(&e)
		if _, ok := vpcflow.RowOf(&e); ok {
			t.Errorf("%s: got a row", name)
		}
	}
}

// FuzzRowRoundTrip builds back every record with a row that a file of any
// format (its header line first, or the default format) or a JSON record
// yields.
func FuzzRowRoundTrip(f *testing.F) {
	for _, file := range fixtures(f) {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Add([]byte("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status flow-direction az-id\n" +
		"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 006 3 4 100 160 ACCEPT OK ingress az"))
	d := ingest.NewDecoder(ingest.DefaultLimits())
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, _ := d.Decode(ingest.SourceVPCFlow, data)
		for i := range evs {
			checkRow(t, &evs[i])
		}
		if ev, err := vpcflow.NormalizeJSON(data, 64, "fuzz", 0); err == nil {
			checkRow(t, &ev)
		}
	})
}

// BenchmarkRowOf measures what the writer spends on a default-format
// record to find its row (building its event again and comparing).
func BenchmarkRowOf(b *testing.B) {
	ev, err := vpcflow.DefaultFormat().Normalize([]byte(benchLine), "bench", 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := vpcflow.RowOf(&ev); !ok {
			b.Fatal("no row")
		}
	}
}
