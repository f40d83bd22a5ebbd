package ingest_test

import (
	"fmt"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
)

// BenchmarkDecodeAppendBatch decodes a pipeline batch of multi-record
// messages (flow log files of three lines) into one slice, as
// pipeline.Processor does: the cost per event must not grow with the
// number of messages in the batch.
func BenchmarkDecodeAppendBatch(b *testing.B) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	data := read(b, "vpcflow/testdata/v5_full.log")
	for _, msgs := range []int{100, 1000} {
		b.Run(fmt.Sprintf("messages=%d", msgs), func(b *testing.B) {
			b.ReportAllocs()
			var events int
			for b.Loop() {
				var evs []ocsf.Event
				for range msgs {
					var errs []*ingest.DecodeError
					if evs, errs = d.DecodeAppend(evs, ingest.SourceVPCFlow, data); len(errs) > 0 {
						b.Fatal(errs[0])
					}
				}
				events += len(evs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		})
	}
}

// TestDecodeAppendBatch checks that decoding message after message into
// one slice keeps every message's events, in order.
func TestDecodeAppendBatch(t *testing.T) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	data := read(t, "vpcflow/testdata/v5_full.log")
	one, errs := d.Decode(ingest.SourceVPCFlow, data)
	if len(errs) > 0 || len(one) == 0 {
		t.Fatalf("fixture: %d events, errors %v", len(one), errs)
	}
	var evs []ocsf.Event
	for range 50 {
		evs, errs = d.DecodeAppend(evs, ingest.SourceVPCFlow, data)
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
	}
	if got, want := len(evs), 50*len(one); got != want {
		t.Fatalf("got %d events, want %d", got, want)
	}
	for i := range evs {
		if got, want := evs[i].Metadata.UID, one[i%len(one)].Metadata.UID; got != want {
			t.Fatalf("event %d: got uid %q, want %q", i, got, want)
		}
	}
}
