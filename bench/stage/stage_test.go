package stage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/bench/loadgen"
	"github.com/musubi-xdr/musubi/bench/rulesets"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// streamSize records, about 5 s of a 20,000 events/s stream with a chain
// injected every second.
const streamSize = 100_000

// batchSize is the batch the stage benchmarks process: the pipeline's
// default batch until it became 2,500, kept so that their numbers compare
// with the runs before.
const batchSize = 5000

// pack is the detection pack rule sets are built from:
// MUSUBI_BENCH_PACK (the bench harness points it at the committed pack) or
// the working tree's.
func pack() string {
	if p := os.Getenv("MUSUBI_BENCH_PACK"); p != "" {
		return p
	}
	return "../../detections"
}

// correlationRules is where the chain's correlation rules are read from:
// MUSUBI_BENCH_CORRELATION, else the pack (detections/correlation).
func correlationRules() string {
	if p := os.Getenv("MUSUBI_BENCH_CORRELATION"); p != "" {
		return p
	}
	return pack()
}

var ruleSizes = []int{10, 100, 300, 1000}

// stream is generated once per test binary: every benchmark reads it.
var stream = sync.OnceValue(func() []loadgen.Record {
	g := loadgen.New(loadgen.Config{Seed: 1, Rate: 20_000, ChainEvery: time.Second, ChainSpan: 500 * time.Millisecond})
	recs := make([]loadgen.Record, streamSize)
	for i := range recs {
		recs[i] = g.Next()
	}
	return recs
})

var decodedOnce sync.Once
var decodedEvents []ocsf.Event

func decoded(b *testing.B, recs []loadgen.Record) []ocsf.Event {
	b.Helper()
	decodedOnce.Do(func() { decodedEvents = decode(b, recs) })
	return decodedEvents
}

func decode(b *testing.B, recs []loadgen.Record) []ocsf.Event {
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	evs := make([]ocsf.Event, 0, len(recs))
	for _, r := range recs {
		e, errs := dec.Decode(ingest.Source(r.Source), r.Value)
		if len(errs) > 0 {
			b.Fatal(errs[0])
		}
		for i := range e {
			e[i].Metadata.TenantUID = "default"
		}
		evs = append(evs, e...)
	}
	return evs
}

func ruleEngine(b *testing.B, n int) *rules.Engine {
	b.Helper()
	dir := b.TempDir()
	if _, err := rulesets.Write(dir, pack(), "", n); err != nil {
		b.Fatal(err)
	}
	set, err := rules.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	e := rules.NewEngine(nil, nil)
	e.Swap(set)
	return e
}

// BenchmarkDecode is ingest.Decoder.Decode (source framing, JSON or flow
// line parsing, normalization to OCSF, observables) per record of the mix.
func BenchmarkDecode(b *testing.B) {
	recs := stream()
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	var bytes int64
	for _, r := range recs {
		bytes += int64(len(r.Value))
	}
	b.SetBytes(bytes / int64(len(recs)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &recs[i%len(recs)]
		if _, errs := dec.Decode(ingest.Source(r.Source), r.Value); len(errs) > 0 {
			b.Fatal(errs[0])
		}
	}
}

// BenchmarkRules is rules.Engine.Evaluate per decoded event of the mix,
// for sets of 10 to 1000 rules (bench/rulesets).
func BenchmarkRules(b *testing.B) {
	evs := decoded(b, stream())
	for _, n := range ruleSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			e := ruleEngine(b, n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e.Evaluate(&evs[i%len(evs)])
			}
		})
	}
}

// BenchmarkCorrelate is correlate.Correlator.Process per event, fed the
// mix's events and their alerts (300 rules) in pipeline-sized batches; the
// correlator's state grows over the run as it would in a stream.
func BenchmarkCorrelate(b *testing.B) {
	evs := decoded(b, stream())
	alerts := alertsOf(b, evs)
	corr := packCorrelator(b)
	b.ReportAllocs()
	b.ResetTimer()
	var f feeder
	for done := 0; done < b.N; {
		start := done % len(evs)
		n := min(batchSize, b.N-done, len(evs)-start)
		f.process(b, corr, evs[start:start+n], alerts[start:start+n])
		done += n
	}
}

// alertsOf evaluates 300 rules on every event, once, before a correlation
// benchmark's timer starts.
func alertsOf(b *testing.B, evs []ocsf.Event) [][]alert.Alert {
	e := ruleEngine(b, 300)
	alerts := make([][]alert.Alert, len(evs))
	for i := range evs {
		alerts[i] = e.Evaluate(&evs[i])
	}
	return alerts
}

// feeder hands a correlator one batch at a time as the pipeline does: a
// copy of the batch's events (Process keeps what it needs of them) and
// their alerts, both made with the timer stopped.
type feeder struct{ alerts []alert.Alert }

func (f *feeder) process(b *testing.B, corr *correlate.Correlator, evs []ocsf.Event, alerts [][]alert.Alert) {
	b.StopTimer()
	batch := make([]ocsf.Event, len(evs))
	copy(batch, evs)
	f.alerts = f.alerts[:0]
	for _, as := range alerts {
		f.alerts = append(f.alerts, as...)
	}
	b.StartTimer()
	corr.Process(batch, f.alerts)
}

// longStreamSize is the length of make bench's throughput stream (326,131
// records at 300,000 preloaded events with their chains).
const longStreamSize = 326_000

// longStream is the long stream's events and their alerts of 300 rules,
// made once per test binary (-count runs share them).
var longStream struct {
	once   sync.Once
	events []ocsf.Event
	alerts [][]alert.Alert
}

// BenchmarkCorrelateLong is correlate.Correlator.Process over a stream as
// long as make bench's throughput runs, generated as they generate it
// (20,000 background entities, a chain every 0.5 s of event time), with
// its alerts of 300 rules computed beforehand. One op is the whole stream
// through a fresh correlator, so its state grows to what the engine's
// holds at the end of a run (BenchmarkCorrelate's short stream, repeated,
// keeps the link graph small and the incidents few, and cannot show what
// grows with them). ns/event divides by the stream's events; B/op and
// allocs/op count only the correlator's work (the batches' copies are
// made with the timer stopped).
func BenchmarkCorrelateLong(b *testing.B) {
	longStream.once.Do(func() {
		g := loadgen.New(loadgen.Config{Seed: 1, Start: time.Unix(1_790_000_000, 0), Rate: 20_000, Entities: 20_000,
			ChainEvery: 500 * time.Millisecond, ChainSpan: 2 * time.Second})
		recs := make([]loadgen.Record, longStreamSize)
		for i := range recs {
			recs[i] = g.Next()
		}
		longStream.events = decode(b, recs)
		longStream.alerts = alertsOf(b, longStream.events)
	})
	evs, alerts := longStream.events, longStream.alerts
	var f feeder
	for b.Loop() {
		b.StopTimer()
		corr := packCorrelator(b)
		b.StartTimer()
		for start := 0; start < len(evs); start += batchSize {
			end := min(start+batchSize, len(evs))
			f.process(b, corr, evs[start:end], alerts[start:end])
		}
	}
	b.ReportMetric(float64(len(evs)), "events/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

// packCorrelator is a correlator with the pack's correlation rules.
func packCorrelator(b *testing.B) *correlate.Correlator {
	b.Helper()
	seq, err := correlate.LoadRules(correlationRules())
	if err != nil {
		b.Fatal(err)
	}
	corr, err := correlate.New(correlate.DefaultConfig(), seq, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return corr
}

// BenchmarkProcessor is pipeline.Processor.Process — decode, rules,
// correlate, the engine's whole CPU work but the write — per record, in
// batches of 5000, with the pack's correlation rules loaded. Profile it
// with -cpuprofile to see where an engine core goes.
func BenchmarkProcessor(b *testing.B) {
	recs := stream()
	prs := make([]pipeline.Record, len(recs))
	for i, r := range recs {
		prs[i] = pipeline.Record{Source: ingest.Source(r.Source), Topic: r.Source, Offset: int64(i), Value: r.Value, Time: r.Time}
	}
	for _, n := range ruleSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			e := ruleEngine(b, n)
			corr := packCorrelator(b)
			p := pipeline.NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), e, corr,
				func(string) string { return "default" }, true, slog.New(slog.DiscardHandler), nil)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				start := done % len(prs)
				n := min(batchSize, b.N-done, len(prs)-start)
				// As the consumer does once a batch is durable.
				p.Recycle(p.Process(prs[start : start+n]).Events)
				done += n
			}
		})
	}
}

// BenchmarkEventJSON is ocsf.Event.AppendJSON per decoded event of the
// mix: the OCSF document the write stores for each event.
func BenchmarkEventJSON(b *testing.B) {
	evs := decoded(b, stream())
	var buf []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var err error
		if buf, err = evs[i%len(evs)].AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite is storage.Store.Write of the mix's events (raw bytes
// kept, as serve does by default) into the local ClickHouse, per event, in
// batches of 5000. It skips without ClickHouse unless
// MUSUBI_REQUIRE_CLICKHOUSE=1.
func BenchmarkWrite(b *testing.B) {
	evs := decoded(b, stream())
	db, _ := chtest.Database(b)
	cfg := storage.Default()
	cfg.Addr, cfg.Database, cfg.StoreRaw = []string{chtest.Addr()}, db, true
	ctx := context.Background()
	s, err := storage.Open(ctx, cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		start := done % len(evs)
		n := min(batchSize, b.N-done, len(evs)-start)
		if err := s.Write(ctx, storage.Batch{Events: evs[start : start+n]}); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
