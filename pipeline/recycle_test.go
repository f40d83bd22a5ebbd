package pipeline

import (
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/bench/loadgen"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// A batch whose events were handed back (Recycle) is decoded into by the
// next: what earlier batches returned (alerts, incidents, link signals,
// stage inputs, dead letters) must not change when their events' memory
// is reused, and every batch must equal what fresh slices give. Batches
// shrink and grow, so slots are reused, left over and outgrown. The
// recycling run decodes as the engine does, its strings sharing the
// records' bytes (ingest.Decoder.ShareInput); the fresh one copies them.
func TestRecycledEventsChangeNoResult(t *testing.T) {
	g := loadgen.New(loadgen.Config{Seed: 7, Rate: 2000, ChainEvery: 300 * time.Millisecond, ChainSpan: 200 * time.Millisecond})
	recs := make([]Record, 4000)
	for i := range recs {
		r := g.Next()
		recs[i] = Record{Source: ingest.Source(r.Source), Topic: r.Source, Offset: int64(i), Value: r.Value, Time: r.Time}
	}
	// A malformed record and a CloudTrail file of many records in the
	// middle: a dead letter, and a message that outgrows the slice.
	recs[2500].Value = []byte(`{"eventVersion":"1.08",`)
	recs[2501] = Record{Source: ingest.SourceCloudTrail, Topic: "cloudtrail", Offset: 2501, Time: recs[2501].Time, Value: cloudTrailFile(t, recs[:2500], 900)}
	sizes := []int{700, 300, 1200, 50, 900, 400, 1500, 950}

	// The rules are loaded once: a rule's version names the git commit
	// the set was loaded at, which may move between two loads.
	set, err := rules.Load("../detections")
	if err != nil {
		t.Fatal(err)
	}
	seq, err := correlate.LoadRules("../detections")
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	run := func(recycle bool) []string {
		eng := rules.NewEngine(nil, nil)
		eng.Swap(set)
		corr, err := correlate.New(correlate.DefaultConfig(), seq, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		dec := ingest.NewDecoder(ingest.DefaultLimits())
		if recycle {
			dec.ShareInput()
		}
		p := NewProcessor(dec, eng, corr, func(string) string { return "default" }, true, slog.New(slog.DiscardHandler), nil)
		var batches []storage.Batch
		var derived, whole []string
		for i, lo := 0, 0; lo < len(recs); i++ {
			hi := min(lo+sizes[i%len(sizes)], len(recs))
			b := p.Process(recs[lo:hi])
			lo = hi
			batches = append(batches, b)
			alerts += len(b.Alerts)
			derived = append(derived, derivedJSON(t, b))
			whole = append(whole, wholeJSON(t, b))
			if recycle {
				p.Recycle(b.Events)
			}
		}
		for i, b := range batches {
			if got := derivedJSON(t, b); got != derived[i] {
				t.Errorf("recycle=%v: batch %d's results changed after later batches:\nnow  %.300s\nwas  %.300s", recycle, i, got, derived[i])
			}
		}
		return whole
	}
	fresh, recycled := run(false), run(true)
	for i := range fresh {
		if fresh[i] != recycled[i] {
			k := 0
			for k < len(fresh[i]) && k < len(recycled[i]) && fresh[i][k] == recycled[i][k] {
				k++
			}
			k = max(k-300, 0)
			t.Errorf("batch %d differs with recycled events:\nrecycled …%.600s\nfresh    …%.600s", i, recycled[i][k:], fresh[i][k:])
		}
	}
	if alerts == 0 {
		t.Fatal("the stream raised no alert: the test compares nothing")
	}
}

// Recycle lets go of what the durable batch's events point to (records,
// strings, observables) at once, not only as the next batch reaches their
// slots: a smaller next batch would otherwise keep the rest alive.
func TestRecycleReleasesTheBatch(t *testing.T) {
	g := loadgen.New(loadgen.Config{Seed: 3, Rate: 2000})
	recs := make([]Record, 200)
	for i := range recs {
		r := g.Next()
		recs[i] = Record{Source: ingest.Source(r.Source), Topic: r.Source, Offset: int64(i), Value: r.Value, Time: r.Time}
	}
	eng := rules.NewEngine(nil, nil)
	corr, err := correlate.New(correlate.DefaultConfig(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), eng, corr, func(string) string { return "default" }, true, slog.New(slog.DiscardHandler), nil)
	b := p.Process(recs)
	if len(b.Events) < len(recs) || b.Events[0].Raw == nil {
		t.Fatalf("%d events from %d records, the first without its record", len(b.Events), len(recs))
	}
	evs := b.Events[:cap(b.Events)]
	p.Recycle(b.Events)
	for i := range evs {
		if e := &evs[i]; e.Raw != nil || e.Metadata.UID != "" || e.Observables != nil {
			t.Fatalf("slot %d of the recycled batch still holds event %q (%d bytes of record)", i, e.Metadata.UID, len(e.Raw))
		}
	}
	next := p.Process(recs[:10])
	if len(next.Events) != 10 || &next.Events[0] != &evs[0] {
		t.Fatalf("the next batch did not decode into the recycled slice")
	}
}

// derivedJSON is what a batch derived besides its events, with what of
// its alerts the JSON form leaves out (the origins a replay is told by,
// an expected source's held severity).
func derivedJSON(t *testing.T, b storage.Batch) string {
	t.Helper()
	b.Events = nil
	type hidden struct {
		Origins []alert.Origin
		Unheld  *alert.Unheld
	}
	var h []hidden
	for _, a := range b.Alerts {
		h = append(h, hidden{a.Origins, a.Unheld})
	}
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return wholeJSON(t, b) + string(js)
}

// wholeJSON is the batch as JSON, incident versions (the wall clock)
// left out.
func wholeJSON(t *testing.T, b storage.Batch) string {
	t.Helper()
	b.Incidents = slices.Clone(b.Incidents)
	for i := range b.Incidents {
		b.Incidents[i].Version = 0
	}
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// cloudTrailFile is a CloudTrail delivery file of the first n CloudTrail
// records of recs.
func cloudTrailFile(t *testing.T, recs []Record, n int) []byte {
	t.Helper()
	var rs []json.RawMessage
	for _, r := range recs {
		if r.Source == ingest.SourceCloudTrail && len(rs) < n {
			rs = append(rs, r.Value)
		}
	}
	if len(rs) < n/2 {
		t.Fatalf("only %d CloudTrail records for the file", len(rs))
	}
	js, err := json.Marshal(map[string]any{"Records": rs})
	if err != nil {
		t.Fatal(err)
	}
	return js
}
