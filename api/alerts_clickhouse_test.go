package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/storage"
)

type alertPage struct {
	Items      []alert.Alert
	NextCursor string `json:"next_cursor"`
}

func alertIDs(p alertPage) []string {
	var out []string
	for _, a := range p.Items {
		out = append(out, a.ID)
	}
	return out
}

// TestAPIAlertQueue: the alerts in no high incident, newest first, with
// filters, signed paging and tenants apart.
func TestAPIAlertQueue(t *testing.T) {
	e := newAPIEnv(t)
	// Alerts outside any incident: al-o0 (oldest) .. al-o4 (newest).
	var orphans []alert.Alert
	for i := range 5 {
		orphans = append(orphans, alert.Alert{ID: fmt.Sprintf("al-o%d", i), TenantUID: "acme", RuleID: "aws.ec2.scan", RuleVersion: "1",
			Title: "scan", Severity: 2 + i%2, Time: e.now.Add(-time.Duration(50-i) * time.Minute).UnixMilli(),
			AccountUID: apitest.AcmeAccount, Source: "vpcflow", EventIDs: []string{}})
	}
	if err := e.store.Write(context.Background(), storage.Batch{Alerts: orphans}); err != nil {
		t.Fatal(err)
	}
	var page alertPage
	e.get("/v1/alerts", apitest.TokAcmeAnalyst, &page)
	// al-a3 is in inc-a2, a medium incident; al-a1, al-a2 and al-a4 are in
	// high ones and stay out.
	if got, want := alertIDs(page), []string{"al-o4", "al-o3", "al-o2", "al-o1", "al-o0", "al-a3"}; !slices.Equal(got, want) {
		t.Errorf("the alert queue: got %v, want %v", got, want)
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"min_severity=3", []string{"al-o3", "al-o1", "al-a3"}},
		{"max_severity=2", []string{"al-o4", "al-o2", "al-o0"}},
		{"rule=aws.iam.policy", []string{"al-a3"}},
		{"account=" + apitest.GlobexAccount, nil},
		{"from=" + url.QueryEscape(e.now.Add(-48*time.Minute).Format(time.RFC3339)), []string{"al-o4", "al-o3", "al-o2"}},
		{"to=" + url.QueryEscape(e.now.Add(-49*time.Minute).Format(time.RFC3339)), []string{"al-o1", "al-o0", "al-a3"}},
	} {
		var p alertPage
		e.get("/v1/alerts?"+c.query, apitest.TokAcmeAnalyst, &p)
		if got := alertIDs(p); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.query, got, c.want)
		}
	}
	// Paging: pages of 4 then 2, then none.
	var p1, p2 alertPage
	e.get("/v1/alerts?limit=4", apitest.TokAcmeAnalyst, &p1)
	e.get("/v1/alerts?limit=4&cursor="+url.QueryEscape(p1.NextCursor), apitest.TokAcmeAnalyst, &p2)
	if got := append(alertIDs(p1), alertIDs(p2)...); p1.NextCursor == "" || p2.NextCursor != "" || !slices.Equal(got, alertIDs(page)) {
		t.Errorf("pages of 4: got %v (cursors %q, %q), want %v", got, p1.NextCursor, p2.NextCursor, alertIDs(page))
	}
	// A cursor of other filters, or forged, is refused.
	for _, bad := range []string{"min_severity=3&cursor=" + url.QueryEscape(p1.NextCursor), "cursor=forged", "min_severity=9", "tenant=globex", "x=1"} {
		if r := e.do(http.MethodGet, "/v1/alerts?"+bad, apitest.TokAcmeAnalyst, nil); r.code != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", bad, r.code)
		}
	}
	// Globex's one alert is in its critical incident: its queue is empty,
	// and acme's alerts never show.
	var g alertPage
	e.get("/v1/alerts", apitest.TokGlobexAnalyst, &g)
	if len(g.Items) != 0 {
		t.Errorf("globex's alert queue: got %v, want none", alertIDs(g))
	}
}
