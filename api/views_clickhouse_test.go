package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/internal/apitest"
)

// TestAPISavedViews: an analyst saves named queue filters, validated by
// the queue's own parser; only the owner lists, uses and deletes them; a
// viewer cannot save; every change is audited, refusals included.
func TestAPISavedViews(t *testing.T) {
	e := newAPIEnv(t)
	listViews := func(token string) []casework.SavedView {
		t.Helper()
		var page struct{ Items []casework.SavedView }
		e.get("/v1/views", token, &page)
		return page.Items
	}
	r := e.do(http.MethodPost, "/v1/views", apitest.TokAcmeAnalyst, map[string]string{"name": "Mine, breached", "query": "status=new,in_progress&sla=breached&assignee=me"})
	if r.code != http.StatusCreated {
		t.Fatalf("create a view: got %d %.300s, want 201", r.code, r.body)
	}
	var v casework.SavedView
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Owner != "alice" || v.Name != "Mine, breached" || v.Query != "assignee=me&sla=breached&status=new%2Cin_progress" ||
		r.header.Get("Location") != "/v1/views/"+v.ID {
		t.Errorf("the created view: got %+v Location %q, want alice's, in canonical form", v, r.header.Get("Location"))
	}
	// The view is a query of the queue as it stands.
	var page casework.IncidentPage
	e.get("/v1/incidents?"+v.Query, apitest.TokAcmeAnalyst, &page)

	for _, c := range []struct {
		name, token string
		body        any
		code        int
		want        []string
	}{
		{"a viewer", apitest.TokAcmeViewer, map[string]string{"name": "v", "query": "status=new"}, 403, nil},
		{"the same name in other case", apitest.TokAcmeAnalyst, map[string]string{"name": "MINE, BREACHED", "query": "status=new"}, 409, nil},
		{"every problem of the query at once", apitest.TokAcmeAnalyst, map[string]string{"name": "bad", "query": "status=done&limit=9000&owner=x"},
			422, []string{`status "done"`, `limit "9000"`, `owner`}},
		{"a raw semicolon", apitest.TokAcmeAnalyst, map[string]string{"name": "bad", "query": "status=closed;x"}, 422, []string{`";"`}},
		{"a cursor", apitest.TokAcmeAnalyst, map[string]string{"name": "bad", "query": "cursor=abc"}, 422, []string{"cursor"}},
		{"another tenant", apitest.TokAcmeAnalyst, map[string]string{"name": "bad", "query": "tenant=globex"}, 422, []string{"tenant"}},
		{"no name", apitest.TokAcmeAnalyst, map[string]string{"name": "", "query": ""}, 422, []string{"name"}},
		{"a control character in the name", apitest.TokAcmeAnalyst, map[string]string{"name": "a\x07b", "query": ""}, 422, []string{"name"}},
		{"an unknown field", apitest.TokAcmeAnalyst, map[string]string{"name": "x", "query": "", "owner": "bob"}, 400, []string{"unknown field"}},
	} {
		r := e.do(http.MethodPost, "/v1/views", c.token, c.body)
		if r.code != c.code {
			t.Errorf("%s: got %d %.300s, want %d", c.name, r.code, r.body, c.code)
			continue
		}
		p := r.problem(t)
		got := p.Detail + " " + strings.Join(p.Errors, " ")
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: got %q, want it to mention %s", c.name, got, w)
			}
		}
	}
	// An empty query is a view of everything.
	if r := e.do(http.MethodPost, "/v1/views", apitest.TokAcmeAnalyst, map[string]string{"name": "all", "query": ""}); r.code != http.StatusCreated {
		t.Errorf("a view without filters: got %d %.300s, want 201", r.code, r.body)
	}

	if got := listViews(apitest.TokAcmeAnalyst); len(got) != 2 || got[0].Name != "all" || got[1].ID != v.ID {
		t.Errorf("alice's views: got %+v, want all and Mine, breached", got)
	}
	for _, tok := range []string{apitest.TokAcmeAnalyst2, apitest.TokAcmeViewer, apitest.TokRootAdmin, apitest.TokGlobexAnalyst} {
		if got := listViews(tok); len(got) != 0 {
			t.Errorf("another principal sees alice's views: %+v", got)
		}
	}
	// bob cannot delete alice's view, nor can an admin; a bad id is a 400.
	for _, tok := range []string{apitest.TokAcmeAnalyst2, apitest.TokAcmeAdmin} {
		if r := e.do(http.MethodDelete, "/v1/views/"+v.ID, tok, nil); r.code != http.StatusNotFound {
			t.Errorf("deleting alice's view as another: got %d, want 404", r.code)
		}
	}
	if r := e.do(http.MethodDelete, "/v1/views/not-an-id", apitest.TokAcmeAnalyst, nil); r.code != http.StatusBadRequest {
		t.Errorf("deleting a view by a malformed id: got %d, want 400", r.code)
	}
	if r := e.do(http.MethodDelete, "/v1/views/"+v.ID, apitest.TokAcmeAnalyst, nil); r.code != http.StatusNoContent {
		t.Fatalf("alice deletes her view: got %d %.300s, want 204", r.code, r.body)
	}
	if r := e.do(http.MethodDelete, "/v1/views/"+v.ID, apitest.TokAcmeAnalyst, nil); r.code != http.StatusNotFound {
		t.Errorf("deleting it again: got %d, want 404", r.code)
	}
	if got := listViews(apitest.TokAcmeAnalyst); len(got) != 1 || got[0].Name != "all" {
		t.Errorf("alice's views after the deletion: got %+v, want all", got)
	}
	// The name is free again.
	if r := e.do(http.MethodPost, "/v1/views", apitest.TokAcmeAnalyst, map[string]string{"name": "mine, breached", "query": "sla=breached"}); r.code != http.StatusCreated {
		t.Errorf("reusing a deleted view's name: got %d %.300s, want 201", r.code, r.body)
	}

	// Audit: creations, deletions and refusals by the acme analysts.
	var audit struct{ Items []casework.AuditEntry }
	e.get("/v1/audit?limit=500", apitest.TokRootAdmin, &audit)
	got := map[string]int{}
	for _, a := range audit.Items {
		if strings.HasPrefix(a.Action, "api.view.") {
			var d struct{ Status int }
			_ = json.Unmarshal(a.Details, &d)
			got[fmt.Sprintf("%s %s %d", a.Actor, a.Action, d.Status)]++
		}
	}
	want := map[string]int{
		"alice api.view.create 201": 3, "alice api.view.create 409": 1, "alice api.view.create 422": 6, "alice api.view.create 400": 1,
		"alice api.view.delete 204": 1, "alice api.view.delete 404": 1, "alice api.view.delete 400": 1,
		"bob api.view.delete 404": 1, "ada api.view.delete 404": 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("audit %q: got %d entries, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
