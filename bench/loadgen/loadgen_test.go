package loadgen

import (
	"bytes"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/rules"
)

func testConfig(seed uint64) Config {
	return Config{Seed: seed, Rate: 1000, Entities: 2000, ChainEvery: 3 * time.Second, ChainSpan: 2 * time.Second}
}

// generate returns every record with event time before d after the start,
// plus every record of chains already begun.
func generate(g *Generator, d time.Duration) []Record {
	end := g.Config().Start.Add(d)
	var out []Record
	for g.Now().Before(end) || g.Pending() > 0 {
		out = append(out, g.Next())
	}
	return out
}

// TestDeterministicBySeed: one seed gives the same stream, background and
// chain alike (four seconds hold the chain begun at 3 s), another seed
// another stream.
func TestDeterministicBySeed(t *testing.T) {
	a := generate(New(testConfig(7)), 4*time.Second)
	b := generate(New(testConfig(7)), 4*time.Second)
	c := generate(New(testConfig(8)), 4*time.Second)
	if n := slices.IndexFunc(a, func(r Record) bool { return r.Chain != 0 }); n < 0 {
		t.Fatalf("no chain record among %d records", len(a))
	}
	if len(a) != len(b) {
		t.Fatalf("got %d and %d records from the same seed, want equal", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Value, b[i].Value) || a[i].Source != b[i].Source || !a[i].Time.Equal(b[i].Time) {
			t.Fatalf("record %d differs between two runs of seed 7:\n%s\n%s", i, a[i].Value, b[i].Value)
		}
	}
	same := 0
	for i := range min(len(a), len(c)) {
		if bytes.Equal(a[i].Value, c[i].Value) {
			same++
		}
	}
	if same > len(a)/100 {
		t.Errorf("got %d of %d records equal between seeds 7 and 8, want almost none", same, len(a))
	}
}

// TestStreamShape checks the injected chains are counted, ordered by event
// time, each ending in one Last record, and that every record decodes.
func TestStreamShape(t *testing.T) {
	g := New(testConfig(1))
	recs := generate(g, 10*time.Second)
	if got, want := g.Chains(), 3; got != want { // at 3, 6 and 9 s
		t.Fatalf("got %d chains injected, want %d", got, want)
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	last := map[int]int{}
	sources := map[string]int{}
	var ctMin, ctMax, ctSum, ctN int
	ctMin = 1 << 30
	for i, r := range recs {
		if i > 0 && r.Time.Before(recs[i-1].Time) {
			t.Fatalf("record %d at %v is before record %d at %v", i, r.Time, i-1, recs[i-1].Time)
		}
		if r.Last {
			last[r.Chain]++
		}
		sources[r.Source]++
		if r.Source == SourceCloudTrail && r.Chain == 0 {
			ctMin, ctMax, ctSum, ctN = min(ctMin, len(r.Value)), max(ctMax, len(r.Value)), ctSum+len(r.Value), ctN+1
		}
		evs, errs := dec.Decode(ingest.Source(r.Source), r.Value)
		if len(errs) > 0 || len(evs) != 1 {
			t.Fatalf("record %d (%s): got %d events, errors %v, want one event:\n%s", i, r.Source, len(evs), errs, r.Value)
		}
	}
	for c := 1; c <= g.Chains(); c++ {
		if last[c] != 1 {
			t.Errorf("chain %d: got %d last records, want 1", c, last[c])
		}
	}
	for _, s := range Sources {
		if sources[s] == 0 {
			t.Errorf("no %s records in %d", s, len(recs))
		}
	}
	if avg := ctSum / ctN; ctMin < 900 || ctMax > 2600 || avg < 1000 || avg > 2048 {
		t.Errorf("got CloudTrail records of %d–%d bytes (average %d), want about 1–2 KB", ctMin, ctMax, avg)
	}
	t.Logf("%d records %v; CloudTrail %d–%d bytes, average %d", len(recs), sources, ctMin, ctMax, ctSum/ctN)
}

// TestEachChainIsOneHighIncident replays the stream through the engine's
// Processor with the shipped detection pack and its correlation rules: every chain must become exactly one high or critical
// incident holding the alert of its last record, and the background none.
func TestEachChainIsOneHighIncident(t *testing.T) {
	g := New(testConfig(3))
	recs := generate(g, 10*time.Second)
	set, err := rules.Load("../../detections")
	if err != nil {
		t.Fatal(err)
	}
	eng := rules.NewEngine(nil, nil)
	eng.Swap(set)
	seq, err := correlate.LoadRules("../../detections")
	if err != nil {
		t.Fatal(err)
	}
	corr, err := correlate.New(correlate.DefaultConfig(), seq, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	proc := pipeline.NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), eng, corr,
		func(string) string { return "default" }, false, slog.New(slog.DiscardHandler), nil)
	latest := map[string]incident.Incident{}
	alertEvents := map[string][]string{}
	keep := func(incs []incident.Incident, alerts []alert.Alert) {
		for _, in := range incs {
			if in.Version >= latest[in.ID].Version {
				latest[in.ID] = in
			}
		}
		for _, a := range alerts {
			alertEvents[a.ID] = a.EventIDs
		}
	}
	lastUID := map[string]int{}
	for i := 0; i < len(recs); i += 1000 {
		batch := make([]pipeline.Record, 0, 1000)
		for _, r := range recs[i:min(i+1000, len(recs))] {
			batch = append(batch, pipeline.Record{Source: ingest.Source(r.Source), Topic: r.Source, Value: r.Value, Time: r.Time})
			if r.Last {
				lastUID[r.EventUID] = r.Chain
			}
		}
		b := proc.Process(batch)
		if len(b.DeadLetters) > 0 {
			t.Fatalf("dead letter: %s", b.DeadLetters[0].Error)
		}
		keep(b.Incidents, b.Alerts)
	}
	b := proc.Idle(g.Now().Add(24 * time.Hour))
	keep(b.Incidents, b.Alerts)

	found := map[int]int{}
	high := 0
	for _, in := range latest {
		if in.MergedInto != "" || in.Severity < ocsf.SeverityHigh {
			continue
		}
		high++
		chains := map[int]bool{}
		for _, a := range in.AlertIDs {
			for _, ev := range alertEvents[a] {
				if c, ok := lastUID[ev]; ok {
					chains[c] = true
				}
			}
		}
		for c := range chains {
			found[c]++
		}
		if len(chains) != 1 {
			t.Errorf("high incident %q (%d alerts, rules %v) holds the last record of chains %v, want exactly one", in.Title, len(in.AlertIDs), in.RuleIDs, slices.Collect(mapKeys(chains)))
		}
	}
	if high != g.Chains() {
		t.Errorf("got %d high or critical incidents, want %d (one per chain)", high, g.Chains())
	}
	for c := 1; c <= g.Chains(); c++ {
		if found[c] != 1 {
			t.Errorf("chain %d: its last record is in %d high incidents, want 1", c, found[c])
		}
	}
	t.Logf("%d records, %d chains, %d incidents, %d high", len(recs), g.Chains(), len(latest), high)
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestChainIdentifiers: every identifier ChainIdentifiers gives for a
// chain appears in that chain's records and in no other record, whole
// (not as part of a longer value).
func TestChainIdentifiers(t *testing.T) {
	cfg := testConfig(5)
	g := New(cfg)
	recs := generate(g, 10*time.Second)
	for n := 1; n <= g.Chains(); n++ {
		ids := ChainIdentifiers(cfg, n)
		if len(ids) < 15 {
			t.Fatalf("chain %d: got %d identifiers, want at least 15", n, len(ids))
		}
		for _, id := range ids {
			in := 0
			for _, r := range recs {
				if !holds(r.Value, id) {
					continue
				}
				if r.Chain != n {
					t.Fatalf("chain %d identifier %q is in a record of chain %d:\n%s", n, id, r.Chain, r.Value)
				}
				in++
			}
			if in == 0 {
				t.Errorf("chain %d identifier %q is in none of its records", n, id)
			}
		}
	}
}

// holds reports whether b holds id as a whole value: not preceded or
// followed by a character a value could go on with.
func holds(b []byte, id string) bool {
	word := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_'
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(id))
		if j < 0 {
			return false
		}
		s, e := i+j, i+j+len(id)
		if (s == 0 || !word(b[s-1])) && (e == len(b) || !word(b[e])) {
			return true
		}
		i = s + 1
	}
}
