package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/musubi-xdr/musubi/bench/loadgen"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestTally judges high incidents per chain: a chain consumed whole is one
// high incident, split, or missed; an incident on two chains is glued; one
// holding only a chain still arriving is a piece, not judged; one holding
// no chain identifier is listed with its rules, whatever the count says.
func TestTally(t *testing.T) {
	cfg := loadgen.Config{Seed: 1, Entities: 2000, ChainEvery: time.Second}
	ent := func(n, i int) string { return "x:" + loadgen.ChainIdentifiers(cfg, n)[i] }
	incs := []highIncident{
		{ID: "a", Title: "chain 1", Entities: []string{"ip:10.1.2.3", ent(1, 0), ent(1, 5)}},
		{ID: "b", Title: "chain 2, web", Entities: []string{ent(2, 1)}},
		{ID: "c", Title: "chain 2, targets", Entities: []string{ent(2, 12)}},
		{ID: "d", Title: "chains 4 and 5", Entities: []string{ent(4, 2), ent(5, 3)}},
		{ID: "e", Title: "chain 6, a piece", Entities: []string{ent(6, 4)}},
		{ID: "f", Title: "Port scan", Entities: []string{"ip:45.1.2.3", "ip:10.1.2.4"}, Rules: []string{"Port scan from one internet address"}},
	}
	consumed := func(n int) bool { return n != 6 }
	got := tally(incs, cfg, 6, consumed)
	if got.High != 6 || got.Chains != 6 || got.Consumed != 5 {
		t.Errorf("got high %d, chains %d, consumed %d, want 6, 6, 5", got.High, got.Chains, got.Consumed)
	}
	// Chains 1, 4 and 5 are held once (4 and 5 by the same, glued one).
	if got.One != 3 || !slices.Equal(got.Split, []int{2}) || !slices.Equal(got.Missed, []int{3}) || got.Glued != 1 || got.Partial != 1 {
		t.Errorf("got one %d, split %v, missed %v, glued %d, partial %d; want 3, [2], [3], 1, 1", got.One, got.Split, got.Missed, got.Glued, got.Partial)
	}
	if want := []string{"Port scan: Port scan from one internet address"}; !slices.Equal(got.Unrelated, want) {
		t.Errorf("got unrelated %q, want %q", got.Unrelated, want)
	}
	if got.ok() {
		t.Error("ok() = true for a tally with split, missed, glued and unrelated incidents")
	}
	good := tally(incs[:1], cfg, 1, consumed)
	if !good.ok() || good.cell() != "1 of 1" {
		t.Errorf("one chain, one incident: ok %v, cell %q; want true, \"1 of 1\"", good.ok(), good.cell())
	}
}

// TestChainPlaces: a chain counts as consumed once the group committed
// past the last offset of its records on every partition they went to, and
// never while an offset of one is unknown.
func TestChainPlaces(t *testing.T) {
	c := newChainPlaces()
	recs := []loadgen.Record{{Chain: 1, Value: []byte("a")}, {Chain: 1, Value: []byte("b")}, {Chain: 2, Value: []byte("c")}, {Value: []byte("bg")}}
	for _, r := range recs {
		c.add(r)
	}
	c.written([]kafka.Message{{Topic: "t", Partition: 0, Offset: 7, Value: []byte("a")}, {Topic: "t", Partition: 0, Offset: 8, Value: []byte("bg")}}, nil)
	c.written([]kafka.Message{{Topic: "u", Partition: 1, Offset: 3, Value: []byte("b")}}, nil)
	for _, tc := range []struct {
		committed map[partition]int64
		chain     int
		want      bool
	}{
		{map[partition]int64{{"t", 0}: 8, {"u", 1}: 4}, 1, true},
		{map[partition]int64{{"t", 0}: 7, {"u", 1}: 4}, 1, false},
		{map[partition]int64{{"t", 0}: 8}, 1, false},
		{map[partition]int64{{"t", 0}: 100, {"u", 1}: 100}, 2, false}, // c's offset was never reported
	} {
		if got := c.consumed(tc.chain, tc.committed); got != tc.want {
			t.Errorf("consumed(%d, %v) = %v, want %v", tc.chain, tc.committed, got, tc.want)
		}
	}
}

// TestReplayedHigh reads the incidents `musubi replay -format jsonl`
// prints (the incident's fields and its alerts) into entities and rule
// titles, and the incident count from the replay's summary.
func TestReplayedHigh(t *testing.T) {
	in := incident.Incident{ID: "inc-1", Title: "initial access → impact",
		Nodes: []incident.Node{
			{Kind: incident.NodeEntity, Entity: ocsf.EntityInstance, Value: "i-0abc"},
			{Kind: incident.NodeAlert, Value: "alert-1"},
			{Kind: incident.NodeEntity, Entity: ocsf.EntityIP, Value: "185.0.0.2"},
		},
		Timeline: []incident.TimelineEntry{{Title: "Web shell written"}, {Title: "Ransom note"}, {Title: "Web shell written"}}}
	line, err := json.Marshal(struct {
		incident.Incident
		Alerts []string `json:"alerts"`
	}{in, []string{}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := replayedHigh(append(append(line, '\n'), line...))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "inc-1" || !slices.Equal(got[0].Entities, []string{"instance:i-0abc", "ip:185.0.0.2"}) ||
		!slices.Equal(got[0].Rules, []string{"Web shell written", "Ransom note"}) {
		t.Errorf("got %+v, want two incidents inc-1 with entities instance:i-0abc, ip:185.0.0.2 and two rule titles", got)
	}
	if _, err := replayedHigh([]byte("{\"id\":")); err == nil {
		t.Error("a truncated line read without error")
	}
	m := incidentsRe.FindStringSubmatch("replayed 3 files (1.0 MiB), 10 records in 1s\nalerts: 120; incidents: 4600\npeak memory: 1 MiB")
	if m == nil || m[1] != "4600" {
		t.Errorf("incident count from the summary: got %v, want 4600", m)
	}
}
