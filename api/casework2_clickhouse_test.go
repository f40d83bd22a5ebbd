package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/storage"
)

// addIncident stores a new one-alert incident.
func (e *apiEnv) addIncident(id, tenant, account string) {
	e.t.Helper()
	in := incident.Incident{ID: id, Version: 1, TenantUID: tenant, Title: "added " + id, Severity: 3, Status: "new",
		FirstSeen: e.now.Add(-time.Minute).UnixMilli(), LastSeen: e.now.Add(-time.Minute).UnixMilli(), Accounts: []string{account}}
	if err := e.store.Write(context.Background(), storage.Batch{Incidents: []incident.Incident{in}}); err != nil {
		e.t.Fatal(err)
	}
}

// queue returns the ids of the acme queue for query, by last_seen unless
// query sorts.
func (e *apiEnv) queue(t *testing.T, query string) []string {
	t.Helper()
	if !strings.Contains(query, "sort=") {
		query += "&sort=last_seen"
	}
	var page casework.IncidentPage
	e.get("/v1/incidents?"+query, apitest.TokAcmeAnalyst, &page)
	return ids(page.Items)
}

// patchOK patches an incident with its current ETag and wants a 200.
func (e *apiEnv) patchOK(t *testing.T, id, token string, body any) casework.Incident {
	t.Helper()
	r := e.get("/v1/incidents/"+id, token, nil)
	r = e.do(http.MethodPatch, "/v1/incidents/"+id, token, body, "If-Match", r.header.Get("ETag"))
	if r.code != http.StatusOK {
		t.Fatalf("PATCH %s %v: got %d %.400s, want 200", id, body, r.code, r.body)
	}
	var in casework.Incident
	if err := json.Unmarshal(r.body, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestAPIIncidentNumbers: every incident has a short number, unique in
// its tenant, kept when the correlator rewrites the incident, found by q.
func TestAPIIncidentNumbers(t *testing.T) {
	e := newAPIEnv(t)
	var page casework.IncidentPage
	e.get("/v1/incidents?sort=first_seen&order=asc", apitest.TokAcmeAnalyst, &page)
	var nums []string
	for _, in := range page.Items {
		nums = append(nums, in.Number)
	}
	// The seed stores acme's incidents in one batch: numbered in order of
	// first alert time.
	if want := []string{"MSB-1", "MSB-2", "MSB-3"}; !slices.Equal(nums, want) {
		t.Fatalf("acme numbers by first_seen: got %v, want %v", nums, want)
	}
	var b casework.IncidentDetail
	e.get("/v1/incidents/inc-b1", apitest.TokGlobexAnalyst, &b)
	if b.Number != "MSB-1" {
		t.Errorf("globex's first incident: got number %q, want MSB-1 (numbers are per tenant)", b.Number)
	}
	// A rewrite keeps the number; a new incident gets the next one.
	e.extendIncident("inc-a2")
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-a2", apitest.TokAcmeAnalyst, &d)
	if d.Number != "MSB-2" || d.Version != 2 {
		t.Errorf("after a rewrite: got number %q version %d, want MSB-2 version 2", d.Number, d.Version)
	}
	e.addIncident("inc-a9", "acme", apitest.AcmeAccount)
	e.get("/v1/incidents/inc-a9", apitest.TokAcmeAnalyst, &d)
	if d.Number != "MSB-4" {
		t.Errorf("a new incident: got number %q, want MSB-4", d.Number)
	}
	if got := e.queue(t, "q=msb-2"); !slices.Equal(got, []string{"inc-a2"}) {
		t.Errorf("q=msb-2: got %v, want [inc-a2]", got)
	}
	if got := e.queue(t, "q=MSB-99"); len(got) != 0 {
		t.Errorf("q=MSB-99: got %v, want none", got)
	}
}

// TestAPIAssignmentAndTeams: assignees and teams must be known; the
// queue filters by me, none and team.
func TestAPIAssignmentAndTeams(t *testing.T) {
	e := newAPIEnv(t)
	for _, bad := range []map[string]any{
		{"assignee": "mallory"},
		{"assignee": "victor"}, // a viewer works no incidents
		{"assignee": "gina"},   // globex's analyst
		{"team": "red-team"},
	} {
		r := e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, nil)
		r = e.do(http.MethodPatch, "/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, bad, "If-Match", r.header.Get("ETag"))
		if r.code != http.StatusUnprocessableEntity {
			t.Errorf("PATCH %v: got %d %.300s, want 422", bad, r.code, r.body)
		} else if p := r.problem(t); !strings.Contains(strings.Join(p.Errors, " "), "is not a") {
			t.Errorf("PATCH %v: got errors %v, want them to name the unknown principal", bad, p.Errors)
		}
	}
	in := e.patchOK(t, "inc-a1", apitest.TokAcmeAnalyst, map[string]any{"assignee": "me", "team": "tier2"})
	if in.Workflow.Assignee != "alice" || in.Workflow.Team != "tier2" {
		t.Errorf("got assignee %q team %q, want alice tier2", in.Workflow.Assignee, in.Workflow.Team)
	}
	e.patchOK(t, "inc-a2", apitest.TokAcmeAnalyst, map[string]any{"assignee": "carol@acme.example"})
	for _, c := range []struct {
		query, token string
		want         []string
	}{
		{"assignee=me", apitest.TokAcmeAnalyst, []string{"inc-a1"}},
		{"assignee=me", apitest.TokAcmeAnalyst2, nil},
		{"assignee=none", apitest.TokAcmeAnalyst, []string{"inc-a3"}},
		{"assignee=carol%40acme.example", apitest.TokAcmeAnalyst, []string{"inc-a2"}},
		{"team=tier2", apitest.TokAcmeAnalyst, []string{"inc-a1"}},
		{"team=none", apitest.TokAcmeAnalyst, []string{"inc-a3", "inc-a2"}},
	} {
		var page casework.IncidentPage
		e.get("/v1/incidents?"+c.query, c.token, &page)
		if got := ids(page.Items); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.query, got, c.want)
		}
	}
}

// TestAPIClassificationAndSearch: a close carries a classification that
// fits its verdict and an impact; the queue filters by verdict, closed
// time and severity range, and searches comments, entities and evidence.
func TestAPIClassificationAndSearch(t *testing.T) {
	e := newAPIEnv(t)
	r := e.get("/v1/incidents/inc-a2", apitest.TokAcmeAnalyst, nil)
	r = e.do(http.MethodPatch, "/v1/incidents/inc-a2", apitest.TokAcmeAnalyst,
		map[string]any{"status": "closed", "verdict": "true_positive", "reason": "r", "classification": "incorrect_alert_logic"},
		"If-Match", r.header.Get("ETag"))
	if r.code != http.StatusUnprocessableEntity {
		t.Errorf("a classification that does not fit the verdict: got %d %.300s, want 422", r.code, r.body)
	}
	in := e.patchOK(t, "inc-a2", apitest.TokAcmeAnalyst,
		map[string]any{"status": "closed", "verdict": "false_positive", "reason": "test policy", "classification": "incorrect_alert_logic", "impact": "none"})
	if in.Workflow.Classification != "incorrect_alert_logic" || in.Workflow.Impact != "none" || in.Workflow.Verdict != "false_positive" {
		t.Errorf("got workflow %+v, want false_positive / incorrect_alert_logic / impact none", in.Workflow)
	}
	closed := in.Workflow.ClosedAt
	// Reopening drops the verdict and its classification; the impact stays.
	in = e.patchOK(t, "inc-a2", apitest.TokAcmeAnalyst, map[string]any{"status": "in_progress", "reason": "new evidence"})
	if in.Workflow.Classification != "" || in.Workflow.Verdict != "" || in.Workflow.Impact != "none" {
		t.Errorf("reopened: got workflow %+v, want no verdict or classification, impact none", in.Workflow)
	}
	e.patchOK(t, "inc-a2", apitest.TokAcmeAnalyst, map[string]any{"status": "closed", "verdict": "false_positive", "reason": "again", "classification": "inaccurate_data"})
	e.patchOK(t, "inc-a3", apitest.TokAcmeAnalyst, map[string]any{"status": "resolved", "verdict": "true_positive", "classification": "suspicious_activity", "impact": "high"})
	r = e.do(http.MethodPost, "/v1/incidents/inc-a1/comments", apitest.TokAcmeAnalyst, map[string]string{"body": "Ticket ZEBRA-77 opened with the app team"})
	if r.code != http.StatusCreated {
		t.Fatalf("comment: got %d %.300s", r.code, r.body)
	}
	rfc := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"verdict=false_positive", []string{"inc-a2"}},
		{"verdict=false_positive,true_positive", []string{"inc-a3", "inc-a2"}},
		{"max_severity=3", []string{"inc-a2"}},
		{"min_severity=4&max_severity=4", []string{"inc-a3", "inc-a1"}},
		{"closed_from=" + rfc(closed.Add(-time.Minute)), []string{"inc-a3", "inc-a2"}},
		{"closed_to=" + rfc(closed.Add(-time.Hour)), nil},
		{"search=zebra-77", []string{"inc-a1"}},                               // a comment
		{"search=releases%2Fapp.zip", []string{"inc-a3", "inc-a2", "inc-a1"}}, // an entity value
		{"search=ev-a3", []string{"inc-a1"}},                                  // a field of an evidence event
		{"search=alert+al-a4", []string{"inc-a3"}},                            // an alert title
		{"search=poisoning", []string{"inc-a1"}},                              // the title
		{"search=nothing-like-this", nil},
	} {
		if got := e.queue(t, c.query); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.query, got, c.want)
		}
	}
	// Another tenant's comment text is not searched.
	var page casework.IncidentPage
	e.get("/v1/incidents?search=zebra-77", apitest.TokGlobexAnalyst, &page)
	if len(page.Items) != 0 {
		t.Errorf("globex search found %v", ids(page.Items))
	}
	for _, bad := range []string{"verdict=maybe", "max_severity=9", "closed_from=yesterday", "q=a&search=b"} {
		if r := e.do(http.MethodGet, "/v1/incidents?"+bad, apitest.TokAcmeAnalyst, nil); r.code != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", bad, r.code)
		}
	}
}
