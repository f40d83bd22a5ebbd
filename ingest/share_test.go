package ingest_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"unsafe"

	"github.com/musubi-xdr/musubi/ingest"
)

// within reports whether s's bytes lie inside buf.
func within(s string, buf []byte) bool {
	if len(s) == 0 || len(buf) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(buf))
}

// TestShareInput decodes every CloudTrail record of the test data as a
// message of its own and inside its delivery file, with and without
// ShareInput. The events are the same either way; with ShareInput the
// strings of a one-record message are its own bytes, those of a record
// that is less than half of its file are not (a string kept from it would
// keep the whole file alive); without it no string is the message's.
func TestShareInput(t *testing.T) {
	files, err := filepath.Glob("cloudtrail/testdata/stratus/*.json")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "cloudtrail/testdata/delivery_file.json", "cloudtrail/testdata/s3_putobject_instance_role.json")
	copied, shared := ingest.NewDecoder(ingest.DefaultLimits()), ingest.NewDecoder(ingest.DefaultLimits())
	shared.ShareInput()
	records := 0
	for _, f := range files {
		data := read(t, f)
		whole, errs := copied.Decode(ingest.SourceCloudTrail, data)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs[0])
		}
		wholeShared, _ := shared.Decode(ingest.SourceCloudTrail, data)
		if !reflect.DeepEqual(whole, wholeShared) {
			t.Fatalf("%s: the events of the file differ with ShareInput", f)
		}
		for i := range wholeShared {
			ev := &wholeShared[i]
			small := 2*len(ev.Raw) < len(data)
			if small && (within(ev.Metadata.UID, data) || within(ev.API.Operation, data)) {
				t.Errorf("%s: record %d of %d (%d of %d bytes): a string shares the file's bytes", f, i, len(whole), len(ev.Raw), len(data))
			}
			if !small && !within(ev.Metadata.UID, data) {
				t.Errorf("%s: record %d of %d (%d of %d bytes) is a copy, want the file's own bytes", f, i, len(whole), len(ev.Raw), len(data))
			}
		}
		for i := range whole {
			msg := append([]byte(nil), whole[i].Raw...)
			want, errs := copied.Decode(ingest.SourceCloudTrail, msg)
			if len(errs) > 0 || len(want) != 1 {
				t.Fatalf("%s: record %d alone: %d events, %v", f, i, len(want), errs)
			}
			got, _ := shared.Decode(ingest.SourceCloudTrail, msg)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: record %d: the event differs with ShareInput:\n got %+v\nwant %+v", f, i, got, want)
			}
			ev, plain := &got[0], &want[0]
			for _, s := range []string{ev.Metadata.UID, ev.API.Operation, ev.Cloud.Region} {
				if s != "" && !within(s, msg) {
					t.Errorf("%s: record %d: %q is a copy, want the message's own bytes with ShareInput", f, i, s)
				}
			}
			for _, s := range []string{plain.Metadata.UID, plain.API.Operation, plain.Cloud.Region} {
				if within(s, msg) {
					t.Errorf("%s: record %d: %q shares the message's bytes without ShareInput", f, i, s)
				}
			}
			records++
		}
	}
	if records < 40 {
		t.Fatalf("only %d records decoded; the test data moved?", records)
	}
}
