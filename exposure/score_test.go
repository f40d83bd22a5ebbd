package exposure_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestExplain: assets add their weights scaled by the room the
// correlator's risk leaves, the points sum to the score, and the score
// stops at 100.
func TestExplain(t *testing.T) {
	r := exposure.Risk{Factors: []exposure.Factor{
		{Name: exposure.FactorExploitable, Points: 20, Asset: "instance:i-1", Evidence: "CVE"},
		{Name: exposure.FactorInternetFacing, Points: 15, Asset: "instance:i-1", Evidence: "sg"},
	}}
	for _, tc := range []struct {
		corr, want int
		points     []int
	}{
		{corr: 0, want: 18, points: []int{10, 8}},   // 20×100/200, 15×100/200 = 7.5 → 8
		{corr: 40, want: 51, points: []int{6, 5}},   // 20×60/200, 15×60/200 = 4.5 → 5
		{corr: 90, want: 92, points: []int{1, 1}},   // 20×10/200, 15×10/200 = 0.75 → 1
		{corr: 100, want: 100, points: []int{0, 0}}, // no room left
	} {
		got, ex := exposure.Explain(tc.corr, r, time.UnixMilli(5))
		if got != tc.want || ex.Correlation != tc.corr || ex.InventoryAsOf != 5 || len(ex.Factors) != 2 {
			t.Errorf("correlation %d: got %d %+v, want %d", tc.corr, got, ex, tc.want)
			continue
		}
		sum := ex.Correlation
		for i, f := range ex.Factors {
			sum += f.Points
			if f.Points != tc.points[i] || f.Weight != r.Factors[i].Points || f.Asset != r.Factors[i].Asset || f.Evidence != r.Factors[i].Evidence {
				t.Errorf("correlation %d: factor %d got %+v, want %d points of %+v", tc.corr, i, f, tc.points[i], r.Factors[i])
			}
		}
		if sum != got {
			t.Errorf("correlation %d: factors sum to %d, score %d", tc.corr, sum, got)
		}
	}
	// A weight of 110 over a low correlation is capped at 100.
	big := exposure.Risk{Factors: []exposure.Factor{{Name: "a", Points: 100}, {Name: "b", Points: 100}, {Name: "c", Points: 100}}}
	if got, ex := exposure.Explain(0, big, time.Time{}); got != 100 || ex.Factors[2].Points != 0 {
		t.Errorf("capped: got %d %+v, want 100 with the last factor adding nothing", got, ex.Factors)
	}
}

// rowsOf stores items as a store would return them.
func rowsOf(t testing.TB, tenant string) []casework.InventoryRow {
	t.Helper()
	var rows []casework.InventoryRow
	for _, it := range seedItems(t) {
		js, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, casework.InventoryRow{TenantUID: tenant, AccountUID: it.Account, ResourceType: it.ResourceType, ResourceID: it.ResourceID, Item: js})
	}
	for _, v := range seedVulns(t) {
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, casework.InventoryRow{TenantUID: tenant, ResourceType: exposure.VulnerabilityResourceType, ResourceID: v.FindingUID, Item: js})
	}
	return rows
}

func webIncident(id string, first int64) incident.Incident {
	return incident.Incident{ID: id, TenantUID: "acme", RiskScore: 40, FirstSeen: first, Accounts: []string{"111122223333"},
		Nodes: []incident.Node{{Kind: incident.NodeEntity, Entity: ocsf.EntityInstance, Value: webID}}}
}

// TestScorer: the scorer reads each incident's tenant and accounts as of
// its first event, once per snapshot while it is fresh; scoring a scored
// incident again starts from the correlator's part; an inventory that
// cannot be read leaves the correlator's risk and says why; an empty
// inventory is kept for the shorter EmptyTTL.
func TestScorer(t *testing.T) {
	var reads []casework.InventoryQuery
	fail, empty := false, true
	now := time.Unix(1_800_000_000, 0)
	read := func(_ context.Context, q casework.InventoryQuery) ([]casework.InventoryRow, error) {
		reads = append(reads, q)
		switch {
		case fail:
			return nil, errors.New("clickhouse: connection refused")
		case empty:
			return nil, nil
		}
		return rowsOf(t, q.TenantUID), nil
	}
	s := exposure.NewScorer(read, exposure.ScorerConfig{TTL: time.Minute, Now: func() time.Time { return now }})
	incs := []incident.Incident{webIncident("a", 1000)}
	if err := s.Score(context.Background(), incs); err != nil {
		t.Fatal(err)
	}
	if incs[0].RiskScore != 40 || incs[0].Risk == nil || len(incs[0].Risk.Factors) != 0 {
		t.Errorf("empty inventory: got %d %+v, want 40 and no factors", incs[0].RiskScore, incs[0].Risk)
	}
	// The empty inventory is kept for EmptyTTL (30 s by default), then
	// read again.
	empty = false
	if err := s.Score(context.Background(), incs); err != nil {
		t.Fatal(err)
	}
	if len(reads) != 1 || incs[0].RiskScore != 40 {
		t.Fatalf("within EmptyTTL: %d reads, risk %d; want the empty snapshot again (1 read, 40)", len(reads), incs[0].RiskScore)
	}
	now = now.Add(30 * time.Second)
	if err := s.Score(context.Background(), incs); err != nil {
		t.Fatal(err)
	}
	scored := incs[0].RiskScore
	if len(reads) != 2 || scored <= 40 || len(incs[0].Risk.Factors) < 5 {
		t.Fatalf("after the inventory arrived: %d reads, risk %d, %+v; want a second read and the web server's factors", len(reads), scored, incs[0].Risk)
	}
	q := reads[1]
	if q.TenantUID != "acme" || !q.AsOf.Equal(time.UnixMilli(1000)) || len(q.Accounts) != 1 || q.Accounts[0] != "111122223333" {
		t.Errorf("read %+v; want acme's account as of the first event", q)
	}
	// Again, and a second incident of the same time: no read, same score.
	incs = append(incs, webIncident("b", 1000))
	if err := s.Score(context.Background(), incs); err != nil {
		t.Fatal(err)
	}
	if len(reads) != 2 || incs[0].RiskScore != scored || incs[1].RiskScore != scored {
		t.Errorf("cached: %d reads, risks %d %d; want 2 reads and %d twice", len(reads), incs[0].RiskScore, incs[1].RiskScore, scored)
	}
	// Past the TTL the snapshot is read again; when that fails the
	// correlator's risk stands and the explanation says why.
	now = now.Add(2 * time.Minute)
	fail = true
	err := s.Score(context.Background(), incs[:1])
	if err == nil || incs[0].RiskScore != 40 || incs[0].Risk.Correlation != 40 || !strings.Contains(incs[0].Risk.Unavailable, "connection refused") {
		t.Errorf("failed read: got err %v, risk %d %+v; want an error and the correlator's 40", err, incs[0].RiskScore, incs[0].Risk)
	}
	// An incident with no entity needs no read; a tombstone of a merge is
	// left as it is.
	n := len(reads)
	bare := []incident.Incident{{ID: "c", TenantUID: "acme", RiskScore: 30, FirstSeen: 1000}, {ID: "d", TenantUID: "acme", Status: "merged", MergedInto: "a"}}
	if err := s.Score(context.Background(), bare); err != nil {
		t.Fatal(err)
	}
	if len(reads) != n || bare[0].RiskScore != 30 || bare[0].Risk == nil || len(bare[0].Risk.Factors) != 0 || bare[1].Risk != nil {
		t.Errorf("no entities: %d reads, got %d %+v and tombstone %+v; want no read, 30 without factors, the tombstone untouched", len(reads)-n, bare[0].RiskScore, bare[0].Risk, bare[1].Risk)
	}
}

// TestScorerForget: Forget drops the tenant's snapshots, empty or not,
// and keeps the other tenants'.
func TestScorerForget(t *testing.T) {
	reads := map[string]int{}
	empty := map[string]bool{"globex": true}
	read := func(_ context.Context, q casework.InventoryQuery) ([]casework.InventoryRow, error) {
		reads[q.TenantUID]++
		if empty[q.TenantUID] {
			return nil, nil
		}
		return rowsOf(t, q.TenantUID), nil
	}
	now := time.Unix(1_800_000_000, 0)
	s := exposure.NewScorer(read, exposure.ScorerConfig{Now: func() time.Time { return now }})
	acme, globex := webIncident("a", 1000), webIncident("b", 1000)
	globex.TenantUID = "globex"
	incs := []incident.Incident{acme, globex}
	score := func() {
		t.Helper()
		if err := s.Score(context.Background(), incs); err != nil {
			t.Fatal(err)
		}
	}
	score()
	score()
	if reads["acme"] != 1 || reads["globex"] != 1 {
		t.Fatalf("cached: reads %v; want one per tenant", reads)
	}
	if incs[1].RiskScore != 40 {
		t.Fatalf("globex without inventory: risk %d, want 40", incs[1].RiskScore)
	}
	// globex's first Config items are written: forgetting globex makes its
	// next incident version read them; acme's snapshot stays.
	empty["globex"] = false
	s.Forget("globex")
	score()
	if reads["acme"] != 1 || reads["globex"] != 2 {
		t.Errorf("after Forget(globex): reads %v; want acme 1, globex 2", reads)
	}
	if incs[1].RiskScore <= 40 || incs[1].RiskScore != incs[0].RiskScore {
		t.Errorf("globex after its inventory: risk %d; want acme's %d", incs[1].RiskScore, incs[0].RiskScore)
	}
	s.Forget("acme")
	score()
	if reads["acme"] != 2 || reads["globex"] != 2 {
		t.Errorf("after Forget(acme): reads %v; want acme 2, globex 2", reads)
	}
}

// BenchmarkScore scores one incident on the seed's account: cold reads
// and decodes the inventory and finds its paths (a new incident, or one
// past the cache's TTL); cached reuses the snapshot (an incident's later
// versions).
func BenchmarkScore(b *testing.B) {
	rows := rowsOf(b, "acme")
	read := func(context.Context, casework.InventoryQuery) ([]casework.InventoryRow, error) { return rows, nil }
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := exposure.NewScorer(read, exposure.ScorerConfig{})
			incs := []incident.Incident{webIncident("a", 1000)}
			if err := s.Score(context.Background(), incs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		s := exposure.NewScorer(read, exposure.ScorerConfig{})
		b.ReportAllocs()
		for b.Loop() {
			incs := []incident.Incident{webIncident("a", 1000)}
			if err := s.Score(context.Background(), incs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
