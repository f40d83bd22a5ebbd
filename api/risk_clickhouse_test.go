package api_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/storage"
)

const (
	seedWeb      = "i-0a1b2c3d4e5f60001" // the seed's public web server
	seedApp      = "i-0a1b2c3d4e5f60002" // its internal app server (app=storefront)
	seedRoleID   = "AROAEXAMPLEWEB000001"
	seedBucketID = "acme-release-artifacts"
)

// change returns a copy of items with f applied to the item of id.
func change(items []awsconfig.Item, id string, f func(*awsconfig.Item)) []awsconfig.Item {
	out := slices.Clone(items)
	for i := range out {
		if out[i].ResourceID == id {
			f(&out[i])
		}
	}
	return out
}

// TestQueueSortsByAssetRisk: incidents with the same alerts on assets with
// and without each asset factor, scored by exposure.Scorer on the
// inventory in ClickHouse and stored, come out of the queue's default
// order (GET /v1/incidents, no sort) highest risk first: each incident on
// an asset with a factor ranks above its twin on the same asset in an
// account where the factor is absent, and the list and the detail explain
// every score with factors that sum to it.
func TestQueueSortsByAssetRisk(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	// One account per variant of the seed's account: the seed itself, and
	// one with each factor taken away from the asset the incident is on.
	type variant struct {
		account string
		items   []awsconfig.Item
		vuln    bool // Inspector's exploitable finding on the web server
	}
	base := func(acct string) []awsconfig.Item { return seedItems(t, acct) }
	variants := map[string]variant{}
	add := func(name, acct string, items []awsconfig.Item, vuln bool) {
		variants[name] = variant{account: acct, items: items, vuln: vuln}
	}
	add("seed", "310000000001", base("310000000001"), true)
	add("no-public-ip", "310000000002", change(base("310000000002"), seedWeb, func(it *awsconfig.Item) {
		in := *it.Instance
		in.PublicIP = ""
		it.Instance = &in
	}), true)
	add("imdsv2", "310000000003", change(base("310000000003"), seedWeb, func(it *awsconfig.Item) {
		in := *it.Instance
		in.HTTPTokens = "required"
		it.Instance = &in
	}), true)
	add("patched", "310000000004", base("310000000004"), false)
	add("least-privilege", "310000000005", change(base("310000000005"), seedRoleID, func(it *awsconfig.Item) {
		r := *it.Role
		r.InlinePolicies, r.AttachedPolicies = nil, nil
		it.Role = &r
	}), true)
	add("not-production", "310000000006", change(base("310000000006"), seedWeb, func(it *awsconfig.Item) {
		it.Tags = map[string]string{"Name": it.Tags["Name"]}
	}), true)
	add("versioned", "310000000007", change(base("310000000007"), seedBucketID, func(it *awsconfig.Item) {
		b := *it.Bucket
		b.Versioning = "Enabled"
		it.Bucket = &b
	}), true)
	add("no-crown-tag", "310000000008", change(base("310000000008"), seedApp, func(it *awsconfig.Item) {
		it.Tags = map[string]string{"Name": it.Tags["Name"], "Environment": "production"}
	}), false)

	finding, err := os.ReadFile("../ingest/inspector/testdata/ec2_critical_exploitable.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variants {
		writeItems(t, e.store, "acme", v.items)
		if !v.vuln {
			continue
		}
		evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, bytes.ReplaceAll(finding, []byte("111122223333"), []byte(v.account)))
		if len(errs) != 0 || len(evs) != 1 {
			t.Fatalf("inspector fixture: %d events, %v", len(evs), errs)
		}
		evs[0].Metadata.TenantUID = "acme"
		if err := e.store.WriteInventory(ctx, pipeline.InventoryOf(evs)); err != nil {
			t.Fatal(err)
		}
	}

	// The incidents: one alert each (the correlator's risk 40), on the web
	// server or the app server, a day after the inventory was captured.
	first := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	type inc struct {
		id, variant, instance string
		without               string // the factor its twin in "seed" has and it lacks
	}
	incs := []inc{
		{"asset-seed-web", "seed", seedWeb, ""},
		{"asset-no-public-ip", "no-public-ip", seedWeb, exposure.FactorInternetFacing},
		{"asset-imdsv2", "imdsv2", seedWeb, exposure.FactorIMDSv1},
		{"asset-patched", "patched", seedWeb, exposure.FactorExploitable},
		{"asset-least-privilege", "least-privilege", seedWeb, exposure.FactorWritesDeploySrc},
		{"asset-not-production", "not-production", seedWeb, exposure.FactorProduction},
		{"asset-versioned", "versioned", seedWeb, exposure.FactorOnPredictedPath},
		{"asset-seed-app", "seed", seedApp, ""},
		{"asset-no-crown-tag", "no-crown-tag", seedApp, exposure.FactorCrownJewel},
		{"asset-nothing", "seed", "i-0ffffffffffffffff", ""}, // resolves to no asset
	}
	var stored []incident.Incident
	for i, c := range incs {
		acct := variants[c.variant].account
		stored = append(stored, incident.Incident{ID: c.id, Version: 1, TenantUID: "acme", Title: "asset order " + c.id,
			Severity: 3, RiskScore: 40, Status: "new", FirstSeen: first.Add(time.Duration(i) * time.Minute).UnixMilli(),
			LastSeen: first.Add(time.Hour).UnixMilli(), Accounts: []string{acct},
			Nodes: []incident.Node{{ID: "n-" + c.instance, Kind: incident.NodeEntity, Entity: ocsf.EntityInstance, Value: c.instance, Title: c.instance}}})
	}
	scorer := exposure.NewScorer(e.store.InventoryAsOf, exposure.ScorerConfig{Risk: exposure.RiskOptions{CrownJewelTags: map[string][]string{"app": {"storefront"}}}})
	if err := scorer.Score(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Write(ctx, storage.Batch{Incidents: stored}); err != nil {
		t.Fatal(err)
	}

	var page casework.IncidentPage
	e.get("/v1/incidents?limit=100&q=asset+order", apitest.TokAcmeAnalyst, &page)
	if len(page.Items) != len(incs) {
		t.Fatalf("got %d incidents, want %d", len(page.Items), len(incs))
	}
	rank, byID := map[string]int{}, map[string]casework.Incident{}
	for i, in := range page.Items {
		rank[in.ID], byID[in.ID] = i, in
		if i > 0 && page.Items[i-1].RiskScore < in.RiskScore {
			t.Errorf("queue order: %s (risk %d) before %s (risk %d)", page.Items[i-1].ID, page.Items[i-1].RiskScore, in.ID, in.RiskScore)
		}
		explains(t, in.Incident)
	}
	factors := func(id string) []string {
		var out []string
		if r := byID[id].Risk; r != nil {
			for _, f := range r.Factors {
				out = append(out, f.Name)
			}
		}
		return out
	}
	for _, c := range incs {
		if c.without == "" {
			continue
		}
		twin := "asset-seed-web"
		if c.instance == seedApp {
			twin = "asset-seed-app"
		}
		if !slices.Contains(factors(twin), c.without) || slices.Contains(factors(c.id), c.without) {
			t.Errorf("%s: got factors %v, its twin %s %v; want %s only on the twin", c.id, factors(c.id), twin, factors(twin), c.without)
		}
		if byID[c.id].RiskScore >= byID[twin].RiskScore || rank[c.id] <= rank[twin] {
			t.Errorf("%s (risk %d, #%d) without %s does not rank below %s (risk %d, #%d)", c.id, byID[c.id].RiskScore, rank[c.id],
				c.without, twin, byID[twin].RiskScore, rank[twin])
		}
	}
	if got := page.Items[0].ID; got != "asset-seed-web" {
		t.Errorf("first in the queue: got %s, want asset-seed-web (every factor)", got)
	}
	if n := byID["asset-nothing"]; n.RiskScore != 40 || n.Risk == nil || len(n.Risk.Factors) != 0 || rank["asset-nothing"] != len(incs)-1 {
		t.Errorf("incident on no asset: got risk %d, explanation %+v, #%d; want the correlator's 40, no factors, last", n.RiskScore, n.Risk, rank["asset-nothing"])
	}
	// The detail carries the same explanation.
	d := detailOf(t, e.get("/v1/incidents/asset-seed-web", apitest.TokAcmeAnalyst, nil))
	explains(t, d.Incident.Incident)
	if d.Risk == nil || d.RiskScore != byID["asset-seed-web"].RiskScore || len(d.Risk.Factors) != len(byID["asset-seed-web"].Risk.Factors) {
		t.Errorf("detail: got risk %d %+v, want the list's %d", d.RiskScore, d.Risk, byID["asset-seed-web"].RiskScore)
	}
	// Another tenant's token sees none of them.
	var other casework.IncidentPage
	e.get("/v1/incidents?limit=100&q=asset+order", apitest.TokGlobexAnalyst, &other)
	if len(other.Items) != 0 {
		t.Errorf("globex sees %d of acme's incidents", len(other.Items))
	}
}

// explains checks that an incident's risk is its explanation's sum and
// that every factor names its asset and evidence.
func explains(t *testing.T, in incident.Incident) {
	t.Helper()
	if in.Risk == nil {
		t.Errorf("%s: no risk explanation", in.ID)
		return
	}
	sum := in.Risk.Correlation
	var parts []string
	for _, f := range in.Risk.Factors {
		sum += f.Points
		parts = append(parts, fmt.Sprintf("%s+%d", f.Name, f.Points))
		if f.Points <= 0 || f.Asset == "" || f.Evidence == "" {
			t.Errorf("%s: factor %+v wants points, its asset and evidence", in.ID, f)
		}
	}
	if min(sum, 100) != in.RiskScore {
		t.Errorf("%s: risk %d, explanation %d %s sums to %d", in.ID, in.RiskScore, in.Risk.Correlation, strings.Join(parts, " "), sum)
	}
}
