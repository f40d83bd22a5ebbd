package replay

import (
	"bytes"
	"os"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
)

// TestPreparedEventsOwnTheirBytes decodes a CloudTrail delivery file as
// the replay does and overwrites the bytes it was decoded from: the
// events' raw record and request and response parameters must not change.
// They used to be sub-slices of those bytes, so every event in flight kept
// its whole file or segment (up to 16 MiB) alive.
func TestPreparedEventsOwnTheirBytes(t *testing.T) {
	for _, storeRaw := range []bool{false, true} {
		o := options()
		o.StoreRaw = storeRaw
		s, err := NewStream(o, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile("../ingest/cloudtrail/testdata/delivery_file.json")
		if err != nil {
			t.Fatal(err)
		}
		dec := ingest.NewDecoder(s.opts.Limits)
		events, errs := decodeAsServe(dec, ingest.SourceCloudTrail, data)
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
		events, _ = s.prepare(events)
		want, _ := decodeAsServe(dec, ingest.SourceCloudTrail, bytes.Clone(data))
		want, _ = s.prepare(want)
		for i := range data {
			data[i] = 'x'
		}
		withParams := 0
		for i := range events {
			got, w := &events[i], &want[i]
			if len(got.API.Request.Data) > 0 {
				withParams++
			}
			if !bytes.Equal(got.Raw, w.Raw) || !bytes.Equal(got.API.Request.Data, w.API.Request.Data) || !bytes.Equal(got.API.Response.Data, w.API.Response.Data) {
				t.Errorf("store raw %v, event %d: request %.40q after its source was overwritten; want %.40q (and the raw record and response unchanged)",
					storeRaw, i, got.API.Request.Data, w.API.Request.Data)
			}
			if storeRaw != (len(got.Raw) > 0) {
				t.Errorf("store raw %v, event %d: raw record of %d bytes", storeRaw, i, len(got.Raw))
			}
		}
		if len(events) == 0 || withParams == 0 {
			t.Fatalf("%d events, %d with request parameters: nothing to check", len(events), withParams)
		}
	}
}
