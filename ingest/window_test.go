package ingest_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
)

// checkWindow compares Window with Decode on one message: the same record
// boundaries (records and failures add up the same), a window that holds
// every decoded event, and, when every record decodes, exactly Decode's.
func checkWindow(t *testing.T, name string, d *ingest.Decoder, src ingest.Source, data []byte) {
	t.Helper()
	evs, errs := d.Decode(src, data)
	w := d.Window(src, data)
	if w.Records+w.Failed != len(evs)+len(errs) {
		t.Fatalf("%s: window saw %d records and %d failures, Decode %d events and %d dead letters", name, w.Records, w.Failed, len(evs), len(errs))
	}
	if w.Records < len(evs) {
		t.Fatalf("%s: window counted %d records, Decode decoded %d", name, w.Records, len(evs))
	}
	var lo, hi int64
	for i, ev := range evs {
		if i == 0 || ev.Time < lo {
			lo = ev.Time
		}
		if i == 0 || ev.Time > hi {
			hi = ev.Time
		}
	}
	if len(evs) > 0 && (w.Lo > lo || w.Hi < hi) {
		t.Fatalf("%s: window [%d, %d] does not hold the events' [%d, %d]", name, w.Lo, w.Hi, lo, hi)
	}
	if len(errs) == 0 && (w.Records != len(evs) || w.Lo != lo || w.Hi != hi) {
		t.Fatalf("%s: every record decodes, yet the window is %+v and the events' [%d, %d] (%d)", name, w, lo, hi, len(evs))
	}
}

// TestWindowMatchesDecode runs Window and Decode over every fixture of the
// ingest packages, the scenarios and the public logs: where all records
// decode the window is exact, elsewhere it holds the events.
func TestWindowMatchesDecode(t *testing.T) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	tight := ingest.NewDecoder(ingest.Limits{MaxMessageBytes: 4096, MaxRecordBytes: 2048, MaxRecords: 4})
	var files, exact int
	for _, root := range []string{".", "../testdata/scenarios", "../../shared/data"} {
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || strings.Contains(p, "/fuzz/") || strings.Contains(p, "golden") {
				return nil
			}
			switch filepath.Ext(p) {
			case ".json", ".jsonl", ".log", ".gz", ".txt":
			default:
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			for _, src := range []ingest.Source{ingest.SourceAuto, ingest.Detect(data)} {
				checkWindow(t, p, d, src, data)
				checkWindow(t, p+" (tight limits)", tight, src, data)
			}
			if _, errs := d.Decode(ingest.SourceAuto, data); len(errs) == 0 {
				exact++
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if files < 50 || exact < files/2 {
		t.Fatalf("compared %d files, %d of them clean: too few to show anything", files, exact)
	}
	t.Logf("%d files, %d decoded without a dead letter", files, exact)
}

// TestWindowReadsTimesDirectly checks the direct reads against what the
// normalizers do with unusual time members.
func TestWindowReadsTimesDirectly(t *testing.T) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	for _, c := range []struct {
		name string
		src  ingest.Source
		data string
	}{
		{"agent time in seconds", ingest.SourceAgent, `{"class_uid":1007,"activity_id":1,"time":1741082000,"device":{"hostname":"h"}}`},
		{"agent time keyed in capitals, last wins", ingest.SourceAgent, `{"class_uid":1007,"activity_id":1,"time":1741082000000,"TIME":1741082999000,"device":{"hostname":"h"}}`},
		{"agent time as a string", ingest.SourceAgent, `{"class_uid":1007,"activity_id":1,"time":"1741082000000","device":{"hostname":"h"}}`},
		{"agent negative time", ingest.SourceAgent, `{"class_uid":1007,"activity_id":1,"time":-5,"device":{"hostname":"h"}}`},
		{"cloudtrail without eventName", ingest.SourceCloudTrail, `{"eventTime":"2025-03-04T10:21:39Z","eventSource":"s3.amazonaws.com"}`},
		{"cloudtrail eventTime twice", ingest.SourceCloudTrail, `{"eventTime":"2025-03-04T10:21:39Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2025-03-04T11:00:00Z","recipientAccountId":"111122223333","eventID":"e1"}`},
		{"falco time not a timestamp", ingest.SourceFalco, `{"rule":"r","output":"x","priority":"Notice","time":"later"}`},
		{"flow line without start", ingest.SourceVPCFlow, "2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 5555 6 1 40 - 1741082000 ACCEPT OK\n"},
		{"flow line too short", ingest.SourceVPCFlow, "2 123456789012 eni-1 10.0.0.1\n"},
	} {
		t.Run(c.name, func(t *testing.T) { checkWindow(t, c.name, d, c.src, []byte(c.data)) })
	}
}

// BenchmarkWindow compares Window with Decode on each source's fixture
// file: what an offline replay pays to order a file it decodes later.
func BenchmarkWindow(b *testing.B) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	for _, f := range []string{
		"cloudtrail/testdata/delivery_file.json",
		"agent/testdata/agent_batch.jsonl",
		"agent/testdata/falco_alerts.jsonl",
		"vpcflow/testdata/v5_full.log",
	} {
		data := read(b, f)
		src := ingest.Detect(data)
		b.Run(filepath.Base(f)+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				d.Decode(src, data)
			}
		})
		b.Run(filepath.Base(f)+"/window", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				d.Window(src, data)
			}
		})
	}
}
