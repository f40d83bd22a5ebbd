package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/internal/apitest"
)

// TestUIExposures opens the Exposures page on tenant acme's seeded
// inventory: the predicted paths are listed by risk as the API answers,
// each drawn hop by hop with its evidence (the policy statement that lets
// the role write the bucket, the pipeline's stages) and the
// countermeasures that would break it; the kind filter and the pages
// follow the API; the attack's incident links the path it walked,
// "predicted on" the inventory's capture day.
func TestUIExposures(t *testing.T) {
	env := newUIEnv(t)
	ctx := newBrowser(t)
	signIn(t, ctx, env.url, apitest.TokAcmeViewer)

	var want api.ExposurePage
	if code := getJSON(t, env.url+"/v1/exposures?tenant=acme", apitest.TokAcmeViewer, &want); code != 200 || len(want.Items) < 2 {
		t.Fatalf("GET /v1/exposures: %d with %d paths, want 200 with the seed account's path and its variant", code, len(want.Items))
	}

	type shown struct {
		IDs, Risks, Chain, CMs []string
		Statements, Evidence   []string
	}
	read := `(() => {
		const items = [...document.querySelectorAll('#exposures > li.exposure')];
		const first = items[0];
		return {
			IDs: items.map((li) => li.dataset.id),
			Risks: items.map((li) => li.querySelector('.sev').textContent),
			Chain: first ? [...first.querySelectorAll('.path-chain > li')].map((x) => x.textContent) : [],
			CMs: first ? [...first.querySelectorAll('.countermeasures > li')].map((x) => x.dataset.cm) : [],
			Statements: first ? [...first.querySelectorAll('.hop .statement')].map((x) => x.textContent) : [],
			Evidence: first ? [...first.querySelectorAll('.hop .evidence > li:not(.statement)')].map((x) => x.textContent) : [],
		};
	})()`
	var got shown
	browse(t, ctx, "open the exposures",
		chromedp.Click(`a[data-nav=exposures]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#exposures > li.exposure`, chromedp.ByQuery),
		chromedp.Evaluate(read, &got))
	var wantIDs []string
	for _, x := range want.Items {
		wantIDs = append(wantIDs, x.ID)
	}
	if strings.Join(got.IDs, " ") != strings.Join(wantIDs, " ") {
		t.Errorf("the page lists paths %v, the API %v (highest risk first)", got.IDs, wantIDs)
	}
	top := want.Items[0]
	if len(got.Risks) == 0 || got.Risks[0] != "Risk "+strconv.Itoa(top.Risk) {
		t.Errorf("got risks %v, want the first at %d", got.Risks, top.Risk)
	}
	if len(got.Chain) != 2*len(top.Hops)+1 {
		t.Errorf("the first path is drawn as %q, want its %d hops", got.Chain, len(top.Hops))
	}
	chain := strings.Join(got.Chain, " ")
	for _, w := range []string{"the internet", "web-frontend-role", "acme-release-artifacts", "can write →", "deploys to →"} {
		if !strings.Contains(chain, w) {
			t.Errorf("the first path %q does not show %q", chain, w)
		}
	}
	if len(got.CMs) != len(top.Countermeasures) || len(got.CMs) == 0 {
		t.Errorf("got countermeasures %v, want the API's %d", got.CMs, len(top.Countermeasures))
	}
	for _, w := range []string{"imdsv2_required", "manual_approval_stage", "s3_versioning"} {
		if !strings.Contains(strings.Join(got.CMs, " "), w) {
			t.Errorf("countermeasures %v lack %s", got.CMs, w)
		}
	}
	if len(got.Statements) == 0 || !strings.Contains(strings.Join(got.Statements, " "), "s3:Put") {
		t.Errorf("got policy statements %q, want the statement that lets the role put objects", got.Statements)
	}
	if len(got.Evidence) == 0 {
		t.Errorf("the hops show no evidence")
	}
	shot(t, ctx, "exposures", func(b *[]byte) chromedp.Action { return chromedp.CaptureScreenshot(b) })

	// The kind filter asks the API for the shorter variant only.
	browse(t, ctx, "filter by kind",
		choose(`#exp-kind`, "role_to_production"),
		chromedp.Click(`#exp-filters button[type=submit]`, chromedp.ByQuery),
		chromedp.Poll(`location.hash.includes('kind=role_to_production') && document.querySelectorAll('#exposures > li.exposure').length > 0 && ![...document.querySelectorAll('#exposures .exp-head h2')].some((x) => !x.textContent.includes('Role'))`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(read, &got))
	var variant api.ExposurePage
	getJSON(t, env.url+"/v1/exposures?tenant=acme&kind=role_to_production", apitest.TokAcmeViewer, &variant)
	if len(got.IDs) != len(variant.Items) || len(got.IDs) == 0 || got.IDs[0] != variant.Items[0].ID {
		t.Errorf("filtered by kind the page lists %v, the API %d paths", got.IDs, len(variant.Items))
	}

	// One path a page: the next page comes from the API's cursor.
	var pages [2][]string
	browse(t, ctx, "page through",
		chromedp.Navigate(env.url+"/ui/#/exposures?limit=1"),
		chromedp.WaitVisible(`#exposures > li.exposure`, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('#exposures > li.exposure')].map((li) => li.dataset.id)`, &pages[0]),
		chromedp.Click(`#exp-more`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('#exposures > li.exposure').length === 2`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`[...document.querySelectorAll('#exposures > li.exposure')].map((li) => li.dataset.id)`, &pages[1]))
	if len(pages[0]) != 1 || strings.Join(pages[1], " ") != strings.Join(wantIDs[:2], " ") {
		t.Errorf("pages of one: %v then %v, want %v", pages[0], pages[1], wantIDs[:2])
	}

	// The incident links the path it walked.
	var link string
	browse(t, ctx, "the incident's exposure",
		chromedp.Navigate(env.url+"/ui/#/incidents/"+env.chainID),
		chromedp.WaitVisible(`#exposure-link .predicted`, chromedp.ByQuery),
		chromedp.Text(`#exposure-link`, &link, chromedp.ByQuery))
	for _, w := range []string{"This path was predicted on 2026-11-01", "in the incident", "web-frontend-role", "Require IMDSv2"} {
		if !strings.Contains(link, w) {
			t.Errorf("the incident's exposure card does not say %q:\n%s", w, link)
		}
	}

	// The incident's risk explains itself: the correlator's part and every
	// asset factor the API gives, and the assets with factors are marked
	// in the graph with the factors on hover.
	var detail struct {
		RiskScore int                       `json:"risk_score"`
		Risk      *incident.RiskExplanation `json:"risk_explanation"`
	}
	if code := getJSON(t, env.url+"/v1/incidents/"+env.chainID, apitest.TokAcmeViewer, &detail); code != 200 || detail.Risk == nil || len(detail.Risk.Factors) == 0 {
		t.Fatalf("GET the attack incident: %d, risk explanation %+v; want the seeded inventory's asset factors", code, detail.Risk)
	}
	var why struct {
		Text      string
		Factors   []string
		AtRisk    []string
		AtRiskTip []string
	}
	browse(t, ctx, "the incident's risk",
		chromedp.WaitVisible(`#risk-why`, chromedp.ByQuery),
		chromedp.WaitVisible(`#graph`, chromedp.ByQuery),
		chromedp.Evaluate(`(() => ({
			Text: document.querySelector('#risk-why').textContent,
			Factors: [...document.querySelectorAll('#risk-why li[data-factor]')].map((li) => li.dataset.factor + '@' + li.dataset.asset),
			AtRisk: [...document.querySelectorAll('#graph .node.entity.at-risk')].map((g) => g.dataset.nodeId)
				.concat([...document.querySelectorAll('#graph .node.more.at-risk')].flatMap((g) => g.dataset.atRisk.split(' '))),
			AtRiskTip: [...document.querySelectorAll('#graph .node.at-risk > title')].map((x) => x.textContent),
		}))()`, &why))
	var wantFactors []string
	assets := map[string]bool{}
	for _, f := range detail.Risk.Factors {
		wantFactors = append(wantFactors, f.Name+"@"+f.Asset)
		assets[f.Asset] = true
	}
	if strings.Join(why.Factors, " ") != strings.Join(wantFactors, " ") {
		t.Errorf("the risk card lists factors %v, the API %v", why.Factors, wantFactors)
	}
	if !strings.Contains(why.Text, "Risk "+strconv.Itoa(detail.RiskScore)) || !strings.Contains(why.Text, strconv.Itoa(detail.Risk.Correlation)+" from the alerts") {
		t.Errorf("the risk card does not say how %d is made from %d: %q", detail.RiskScore, detail.Risk.Correlation, why.Text)
	}
	for _, id := range why.AtRisk {
		if !assets[id] {
			t.Errorf("graph node %s is marked at risk, but no factor names it", id)
		}
	}
	if len(why.AtRisk) == 0 {
		t.Errorf("no asset with a factor is marked in the graph (factors on %v)", wantFactors)
	}
	marked := map[string]bool{}
	for _, id := range why.AtRisk {
		marked[id] = true
	}
	for a := range assets {
		if !marked[a] {
			t.Errorf("asset %s has a risk factor but is not marked in the graph (marked %v)", a, why.AtRisk)
		}
	}
	for _, tip := range why.AtRiskTip {
		if !strings.Contains(strings.ToLower(tip), "asset risk:") {
			t.Errorf("an at-risk node's hover text does not list its factors: %q", tip)
		}
	}
	fmt.Printf("incident risk in the console: %d = %d + factors %v; graph marks %v\n", detail.RiskScore, detail.Risk.Correlation, wantFactors, why.AtRisk)
	shot(t, ctx, "incident-exposure", func(b *[]byte) chromedp.Action { return chromedp.Screenshot(`#exposure-link`, b, chromedp.ByQuery) })
}
