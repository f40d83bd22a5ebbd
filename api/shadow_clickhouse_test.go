package api_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/storage"
)

// TestAPIShadowMatches: GET /v1/rules/shadow counts each experimental
// rule's shadow alerts of the token's tenants in the range, and shadow
// alerts stay out of the alert queue.
func TestAPIShadowMatches(t *testing.T) {
	e := newAPIEnv(t)
	shadow := func(tenant, account, id, rule string, ago time.Duration) alert.Alert {
		return alert.Alert{ID: id, TenantUID: tenant, RuleID: rule, RuleVersion: "1", Title: "would fire: " + rule, Severity: 5,
			Time: e.now.Add(-ago).UnixMilli(), AccountUID: account, Source: "agent", EventIDs: []string{}, Shadow: true}
	}
	as := []alert.Alert{
		shadow("acme", apitest.AcmeAccount, "sh-1", "host.exp.encrypt", 10*time.Minute),
		shadow("acme", apitest.AcmeAccount, "sh-2", "host.exp.encrypt", 20*time.Minute),
		shadow("acme", apitest.AcmeAccount, "sh-3", "host.exp.port", 30*time.Minute),
		shadow("acme", apitest.AcmeAccount, "sh-old", "host.exp.port", 9*24*time.Hour),
		shadow("globex", apitest.GlobexAccount, "sh-g", "host.exp.encrypt", 10*time.Minute),
	}
	if err := e.store.Write(context.Background(), storage.Batch{Alerts: as}); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		From, To string
		Rules    []casework.ShadowCount
	}
	counts := func(a answer) map[string]uint64 {
		m := map[string]uint64{}
		for _, c := range a.Rules {
			m[c.RuleID] = c.Alerts
		}
		return m
	}
	var got answer
	e.get("/v1/rules/shadow", apitest.TokAcmeViewer, &got)
	if m := counts(got); len(m) != 2 || m["host.exp.encrypt"] != 2 || m["host.exp.port"] != 1 {
		t.Errorf("acme, 7 days: got %+v, want encrypt 2, port 1", got.Rules)
	}
	from, err1 := time.Parse(time.RFC3339, got.From)
	to, err2 := time.Parse(time.RFC3339, got.To)
	if err1 != nil || err2 != nil || to.Sub(from) != 7*24*time.Hour {
		t.Errorf("default range: got %s .. %s, want the 7 days before to", got.From, got.To)
	}
	if got.Rules[0].LastSeen != as[0].Time || got.Rules[0].Title != "would fire: host.exp.encrypt" {
		t.Errorf("got %+v, want the latest time and title of host.exp.encrypt", got.Rules[0])
	}
	e.get("/v1/rules/shadow?from="+url.QueryEscape(e.now.Add(-10*24*time.Hour).Format(time.RFC3339)), apitest.TokAcmeViewer, &got)
	if m := counts(got); m["host.exp.port"] != 2 {
		t.Errorf("acme, 10 days: got %+v, want port 2", got.Rules)
	}
	e.get("/v1/rules/shadow", apitest.TokGlobexAnalyst, &got)
	if m := counts(got); len(m) != 1 || m["host.exp.encrypt"] != 1 {
		t.Errorf("globex: got %+v, want encrypt 1", got.Rules)
	}
	e.get("/v1/rules/shadow?tenant=globex", apitest.TokRootAdmin, &got)
	if m := counts(got); len(m) != 1 || m["host.exp.encrypt"] != 1 {
		t.Errorf("root, tenant globex: got %+v, want encrypt 1", got.Rules)
	}
	for _, bad := range []string{"tenant=globex", "x=1", "from=yesterday"} {
		if r := e.do(http.MethodGet, "/v1/rules/shadow?"+bad, apitest.TokAcmeViewer, nil); r.code != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", bad, r.code)
		}
	}
	var page alertPage
	e.get("/v1/alerts?limit=500", apitest.TokAcmeAnalyst, &page)
	for _, id := range alertIDs(page) {
		if slices.Contains([]string{"sh-1", "sh-2", "sh-3"}, id) {
			t.Errorf("the alert queue holds shadow alert %s", id)
		}
	}
}
