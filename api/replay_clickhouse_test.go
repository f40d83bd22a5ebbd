package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/internal/apitest"
)

// landedThen503 is a store whose next fail workflow updates are written
// and then reported as failed, as when the connection breaks after the
// server stored the insert.
type landedThen503 struct {
	api.Store
	fail atomic.Int32
}

func (s *landedThen503) UpdateIncidentWorkflow(ctx context.Context, u casework.WorkflowUpdate) (casework.Incident, error) {
	in, err := s.Store.UpdateIncidentWorkflow(ctx, u)
	if err == nil && s.fail.Add(-1) >= 0 {
		return casework.Incident{}, errors.New("read: connection reset by peer (after the insert)")
	}
	return in, err
}

// TestAPIPatchRetryAfterLanded503: a PATCH whose change was stored but
// answered 503 is retried with the ETag the client had: the retry is
// answered 200 with the incident as changed and its current ETag, and
// writes nothing. A different change, another analyst's retry or a retry
// behind a later change are still 412.
func TestAPIPatchRetryAfterLanded503(t *testing.T) {
	e := newAPIEnv(t)
	store := &landedThen503{}
	e.wrap = func(s api.Store) api.Store { store.Store = s; return store }
	e.url = e.server(false)
	const path = "/v1/incidents/inc-a1"
	change := `{"status": "in_progress", "assignee": "me", "tags": ["phishing"]}`
	etagOf := func(r response) string { return r.header.Get("ETag") }

	store.fail.Store(1)
	r := e.do(http.MethodPatch, path, apitest.TokAcmeAnalyst, change, "If-Match", `"1.0"`)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("the PATCH that landed: got %d Retry-After %q, want 503 with Retry-After", r.code, r.header.Get("Retry-After"))
	}
	if g := e.do(http.MethodGet, path, apitest.TokAcmeAnalyst, nil); etagOf(g) != `"1.1"` {
		t.Fatalf("after the landed PATCH: got ETag %s, want \"1.1\" (the change is stored)", etagOf(g))
	}

	// Not a retry: another analyst, a different change.
	for _, c := range []struct{ name, token, body string }{
		{"another analyst's identical change", apitest.TokAcmeAnalyst2, `{"status": "in_progress", "assignee": "alice", "tags": ["phishing"]}`},
		{"a different change", apitest.TokAcmeAnalyst, `{"status": "on_hold"}`},
		{"a change of one more field", apitest.TokAcmeAnalyst, `{"status": "in_progress", "assignee": "me", "tags": ["phishing"], "impact": "low"}`},
	} {
		if r := e.do(http.MethodPatch, path, c.token, c.body, "If-Match", `"1.0"`); r.code != http.StatusPreconditionFailed || etagOf(r) != `"1.1"` {
			t.Errorf("%s with the old ETag: got %d ETag %s, want 412 with ETag \"1.1\"", c.name, r.code, etagOf(r))
		}
	}

	r = e.do(http.MethodPatch, path, apitest.TokAcmeAnalyst, change, "If-Match", `"1.0"`)
	if r.code != http.StatusOK || etagOf(r) != `"1.1"` {
		t.Fatalf("the retry: got %d ETag %s %.300s, want 200 with ETag \"1.1\"", r.code, etagOf(r), r.body)
	}
	var got casework.Incident
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if w := got.Workflow; w.Status != "in_progress" || w.Assignee != "alice" || len(w.Tags) != 1 || w.Version != 1 {
		t.Errorf("the retry's answer: got workflow %+v, want version 1, in_progress, alice, [phishing]", w)
	}
	if g := e.do(http.MethodGet, path, apitest.TokAcmeAnalyst, nil); etagOf(g) != `"1.1"` {
		t.Errorf("after the retry: got ETag %s, want \"1.1\" (a retry writes nothing)", etagOf(g))
	}

	// A later change: the retry is two versions behind, and 412.
	if r := e.do(http.MethodPatch, path, apitest.TokAcmeAnalyst, `{"impact": "low"}`, "If-Match", `"1.1"`); r.code != http.StatusOK {
		t.Fatalf("a later change: got %d %.300s", r.code, r.body)
	}
	if r := e.do(http.MethodPatch, path, apitest.TokAcmeAnalyst, change, "If-Match", `"1.0"`); r.code != http.StatusPreconditionFailed || etagOf(r) != `"1.2"` {
		t.Errorf("a retry behind a later change: got %d ETag %s, want 412 with ETag \"1.2\"", r.code, etagOf(r))
	}
}
