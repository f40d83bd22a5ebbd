package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/storage"
)

// TestAPIExportIncident: one incident as a self-contained JSON bundle and
// as a Markdown report that incident data cannot inject into.
func TestAPIExportIncident(t *testing.T) {
	e := newAPIEnv(t)
	e.patchOK(t, "inc-a1", apitest.TokAcmeAnalyst, map[string]any{"assignee": "me", "tags": []string{"campaign-7"}})
	hostile := "<script>alert(1)</script> | **bold** [x](https://evil.example)\n# heading"
	if r := e.do(http.MethodPost, "/v1/incidents/inc-a1/comments", apitest.TokAcmeAnalyst, map[string]string{"body": hostile}); r.code != http.StatusCreated {
		t.Fatalf("comment: got %d %.300s", r.code, r.body)
	}
	cur := e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, nil).header.Get("ETag")

	r := e.do(http.MethodGet, "/v1/incidents/inc-a1/export", apitest.TokAcmeAnalyst, nil)
	if r.code != http.StatusOK {
		t.Fatalf("export: got %d %.300s", r.code, r.body)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="MSB-1-inc-a1.json"` {
		t.Errorf("got Content-Disposition %q", cd)
	}
	var ex struct {
		Format   string
		Incident casework.IncidentDetail
		ETag     string
		Comments []casework.Comment
		Audit    []casework.AuditEntry
	}
	if err := json.Unmarshal(r.body, &ex); err != nil {
		t.Fatal(err)
	}
	var alerts, evidence, actions []string
	for _, a := range ex.Incident.Alerts {
		alerts = append(alerts, a.ID)
	}
	for _, ev := range ex.Incident.Evidence {
		evidence = append(evidence, ev.ID)
	}
	for _, a := range ex.Audit {
		actions = append(actions, a.Action)
	}
	slices.Sort(alerts)
	slices.Sort(evidence)
	switch {
	case ex.Format != "musubi.incident-export/v1" || ex.ETag != cur || ex.Incident.ID != "inc-a1" || ex.Incident.Number != "MSB-1":
		t.Errorf("got format %q etag %s incident %s %s, want musubi.incident-export/v1, %s, inc-a1 MSB-1", ex.Format, ex.ETag, ex.Incident.ID, ex.Incident.Number, cur)
	case len(ex.Incident.Nodes) != 3 || len(ex.Incident.Edges) != 2 || len(ex.Incident.Timeline) != 2:
		t.Errorf("got graph of %d nodes, %d edges, %d timeline entries, want 3, 2, 2", len(ex.Incident.Nodes), len(ex.Incident.Edges), len(ex.Incident.Timeline))
	case !slices.Equal(alerts, []string{"al-a1", "al-a2"}) || !slices.Equal(evidence, []string{"ev-a1", "ev-a2", "ev-a3"}):
		t.Errorf("got alerts %v evidence %v, want [al-a1 al-a2] [ev-a1 ev-a2 ev-a3]", alerts, evidence)
	case len(ex.Comments) != 1 || ex.Comments[0].Body != hostile:
		t.Errorf("got comments %+v, want the one written", ex.Comments)
	case !slices.Contains(actions, "api.incident.update") || !slices.Contains(actions, "api.incident.comment"):
		t.Errorf("got audit actions %v, want the update and the comment", actions)
	case ex.Incident.Workflow.Assignee != "alice":
		t.Errorf("got workflow %+v, want assignee alice", ex.Incident.Workflow)
	}

	r = e.do(http.MethodGet, "/v1/incidents/inc-a1/export?format=markdown", apitest.TokAcmeAnalyst, nil)
	if r.code != http.StatusOK {
		t.Fatalf("markdown export: got %d %.300s", r.code, r.body)
	}
	report := string(r.body)
	for _, want := range []string{"# MSB-1: Pipeline poisoning in acme\n", "| Assignee | alice |", "| Tags | campaign-7 |",
		"| al-a1 | aws.s3.appspec\\_tamper v3 | alert al-a1 | 4 | ev-a1, ev-a2 |", "| ev-a3 | cloudtrail | PutObject |", "&lt;script&gt;alert(1)&lt;/script&gt; \\| \\*\\*bold\\*\\* \\[x\\](https://evil.example)",
		"> \\# heading", "api.incident.update"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
	for _, bad := range []string{"<script>", "**bold**", "\n# heading"} {
		if strings.Contains(report, bad) {
			t.Errorf("the report holds %q unescaped", bad)
		}
	}

	for _, c := range []struct {
		name, path, token string
		want              int
	}{
		{"another tenant's incident", "/v1/incidents/inc-a1/export", apitest.TokGlobexAnalyst, 404},
		{"a viewer", "/v1/incidents/inc-a1/export", apitest.TokAcmeViewer, 403},
		{"an unknown format", "/v1/incidents/inc-a1/export?format=pdf", apitest.TokAcmeAnalyst, 400},
		{"an unknown parameter", "/v1/incidents/inc-a1/export?x=1", apitest.TokAcmeAnalyst, 400},
		{"no such incident", "/v1/incidents/inc-zz/export", apitest.TokAcmeAnalyst, 404},
	} {
		if r := e.do(http.MethodGet, c.path, c.token, nil); r.code != c.want {
			t.Errorf("%s: got %d %.300s, want %d", c.name, r.code, r.body, c.want)
		}
	}
}

// csvRows fetches a CSV export and returns its rows after the header.
func (e *apiEnv) csvRows(t *testing.T, path, token string) ([][]string, response) {
	t.Helper()
	r := e.do(http.MethodGet, path, token, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: got %d %.300s", path, r.code, r.body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil || len(recs) == 0 || recs[0][0] != "id" || recs[0][3] != "title" {
		t.Fatalf("GET %s: not CSV with a header (%v): %.300s", path, err, r.body)
	}
	return recs[1:], r
}

// TestAPIQueueCSV: the queue as CSV with the queue's filters, paged by
// Link, and with cells a spreadsheet would run as formulas neutralised.
func TestAPIQueueCSV(t *testing.T) {
	e := newAPIEnv(t)
	var hostile []incident.Incident
	titles := []string{`=HYPERLINK("https://evil.example","x")`, "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain =1"}
	for i, title := range titles {
		at := e.now.Add(-time.Duration(len(titles)-i) * time.Minute).UnixMilli()
		hostile = append(hostile, incident.Incident{ID: "inc-f" + string(rune('0'+i)), Version: 1, TenantUID: "acme", Title: title,
			Severity: 2, Status: "new", FirstSeen: at, LastSeen: at, Accounts: []string{apitest.AcmeAccount}})
	}
	if err := e.store.Write(context.Background(), storage.Batch{Incidents: hostile}); err != nil {
		t.Fatal(err)
	}
	rows, _ := e.csvRows(t, "/v1/incidents.csv?max_severity=2&sort=first_seen&order=asc", apitest.TokAcmeAnalyst)
	var got []string
	for _, row := range rows {
		got = append(got, row[3])
	}
	want := []string{`'=HYPERLINK("https://evil.example","x")`, "'+1+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "plain =1"}
	if !slices.Equal(got, want) {
		t.Errorf("titles: got %q, want %q", got, want)
	}

	e.patchOK(t, "inc-a1", apitest.TokAcmeAnalyst, map[string]any{"assignee": "me", "tags": []string{"campaign-7", "x"}})
	rows, _ = e.csvRows(t, "/v1/incidents.csv?assignee=me", apitest.TokAcmeAnalyst)
	if len(rows) != 1 || rows[0][0] != "inc-a1" || rows[0][1] != "MSB-1" || rows[0][7] != "alice" || rows[0][12] != "campaign-7 x" {
		t.Errorf("assignee=me: got %q, want inc-a1 MSB-1 … alice … campaign-7 x", rows)
	}
	// Paging: limit, then the Links to the rest, which together are the
	// whole answer.
	all, r := e.csvRows(t, "/v1/incidents.csv", apitest.TokAcmeAnalyst)
	if len(all) != 10 || r.header.Get("Link") != "" {
		t.Fatalf("the whole queue: got %d rows and Link %q, want 10 and none", len(all), r.header.Get("Link"))
	}
	var paged [][]string
	var pages []int
	for path := "/v1/incidents.csv?limit=4"; path != "" && len(pages) < 5; {
		rows, r := e.csvRows(t, path, apitest.TokAcmeAnalyst)
		paged, pages = append(paged, rows...), append(pages, len(rows))
		path = ""
		if link := r.header.Get("Link"); link != "" {
			next, ok := strings.CutPrefix(link, "<")
			next, _, found := strings.Cut(next, `>; rel="next"`)
			if !ok || !found {
				t.Fatalf("got Link %q, want <…>; rel=\"next\"", link)
			}
			path = next
		}
	}
	if !slices.Equal(pages, []int{4, 4, 2}) || !slices.EqualFunc(paged, all, slices.Equal) {
		t.Errorf("limit=4 and its next pages: got pages of %v rows, want [4 4 2] making the whole queue in order", pages)
	}
	// Another tenant sees only its own.
	rows, _ = e.csvRows(t, "/v1/incidents.csv", apitest.TokGlobexAnalyst)
	if len(rows) != 1 || rows[0][0] != "inc-b1" {
		t.Errorf("globex: got %q, want inc-b1 only", rows)
	}
	for _, bad := range []string{"limit=0", "limit=10001", "status=bogus", "cursor=forged", "format=xlsx"} {
		if r := e.do(http.MethodGet, "/v1/incidents.csv?"+bad, apitest.TokAcmeAnalyst, nil); r.code != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", bad, r.code)
		}
	}
}
