package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/musubi-xdr/musubi/internal/apitest"
)

type bulkAnswer struct {
	Results []struct {
		ID       string
		Status   int
		ETag     string
		Workflow struct{ Status, Assignee, Verdict string }
		Problem  *apiProblem
	}
	Succeeded, Failed int
}

// bulk posts a bulk action and wants a 200.
func (e *apiEnv) bulk(t *testing.T, token string, body any) bulkAnswer {
	t.Helper()
	var out bulkAnswer
	r := e.do(http.MethodPost, "/v1/incidents/bulk", token, body)
	if r.code != http.StatusOK {
		t.Fatalf("bulk: got %d %.400s, want 200", r.code, r.body)
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAPIBulkActions: one change on many incidents, each item checked
// against its own ETag, each with its own result and audit entry.
func TestAPIBulkActions(t *testing.T) {
	e := newAPIEnv(t)
	tag := func(id string) string {
		return e.get("/v1/incidents/"+id, apitest.TokAcmeAnalyst, nil).header.Get("ETag")
	}
	a1, a3 := tag("inc-a1"), tag("inc-a3")
	got := e.bulk(t, apitest.TokAcmeAnalyst, map[string]any{
		"patch": map[string]any{"status": "in_progress", "assignee": "me", "tags": []string{"campaign-7"}},
		"items": []map[string]string{
			{"id": "inc-a1", "etag": a1},
			{"id": "inc-a2", "etag": `"1.99"`}, // stale
			{"id": "inc-a3", "etag": a3},
			{"id": "inc-b1", "etag": `"1.0"`}, // another tenant's
			{"id": "inc-a9", "etag": `"1.0"`}, // none such
			{"id": "inc-a2/x", "etag": `"1.0"`},
			{"id": "inc-a4", "etag": ""},
		},
	})
	want := []struct {
		id     string
		status int
	}{{"inc-a1", 200}, {"inc-a2", 412}, {"inc-a3", 200}, {"inc-b1", 404}, {"inc-a9", 404}, {"inc-a2/x", 400}, {"inc-a4", 428}}
	if len(got.Results) != len(want) || got.Succeeded != 2 || got.Failed != 5 {
		t.Fatalf("got %d results, %d succeeded, %d failed; want %d, 2, 5", len(got.Results), got.Succeeded, got.Failed, len(want))
	}
	for i, w := range want {
		res := got.Results[i]
		if res.ID != w.id || res.Status != w.status {
			t.Errorf("result %d: got %s %d, want %s %d", i, res.ID, res.Status, w.id, w.status)
		}
		if (res.Problem == nil) != (w.status == 200) {
			t.Errorf("result %d (%s): got problem %+v for status %d", i, res.ID, res.Problem, res.Status)
		}
	}
	// The new ETags are the incidents' ETags now; a 412 names the current one.
	for _, i := range []int{0, 2} {
		res := got.Results[i]
		if cur := tag(res.ID); res.ETag != cur || res.Workflow.Status != "in_progress" || res.Workflow.Assignee != "alice" {
			t.Errorf("%s: got etag %s workflow %+v, want etag %s, in_progress, alice", res.ID, res.ETag, res.Workflow, cur)
		}
	}
	if cur := tag("inc-a2"); got.Results[1].ETag != cur {
		t.Errorf("the 412 names etag %s, want the current %s", got.Results[1].ETag, cur)
	}
	var b1 struct{ Workflow struct{ Status string } }
	e.get("/v1/incidents/inc-b1", apitest.TokGlobexAnalyst, &b1)
	if b1.Workflow.Status != "new" {
		t.Errorf("globex's incident: got status %q, want new (untouched)", b1.Workflow.Status)
	}
	// Each item is audited as a PATCH of its incident, refusals included.
	for id, status := range map[string]int{"inc-a1": 200, "inc-a2": 412, "inc-a3": 200, "inc-a4": 428} {
		rows := e.auditOf(id, "api.incident.update")
		if len(rows) != 1 || rows[0].det.Status != status || rows[0].Actor != "alice" {
			t.Errorf("%s: got audit %+v, want one api.incident.update by alice with status %d", id, rows, status)
		}
	}

	// Closing needs a verdict per incident: refused item by item (422),
	// then accepted with one.
	a1, a3 = tag("inc-a1"), tag("inc-a3")
	items := []map[string]string{{"id": "inc-a1", "etag": a1}, {"id": "inc-a3", "etag": a3}}
	got = e.bulk(t, apitest.TokAcmeAnalyst, map[string]any{"patch": map[string]any{"status": "closed"}, "items": items})
	for _, res := range got.Results {
		if res.Status != http.StatusUnprocessableEntity || res.Problem == nil || len(res.Problem.Errors) == 0 {
			t.Errorf("closing %s without a verdict: got %d %+v, want 422 with errors", res.ID, res.Status, res.Problem)
		}
	}
	got = e.bulk(t, apitest.TokAcmeAnalyst, map[string]any{
		"patch": map[string]any{"status": "closed", "verdict": "false_positive", "reason": "bulk triage", "classification": "incorrect_alert_logic"},
		"items": items})
	if got.Succeeded != 2 {
		t.Fatalf("closing with a verdict: got %+v, want 2 succeeded", got)
	}
	var d struct {
		Workflow struct{ Status, Verdict, Classification string }
	}
	e.get("/v1/incidents/inc-a3", apitest.TokAcmeAnalyst, &d)
	if d.Workflow.Status != "closed" || d.Workflow.Verdict != "false_positive" || d.Workflow.Classification != "incorrect_alert_logic" {
		t.Errorf("inc-a3 after the bulk close: got %+v", d.Workflow)
	}

	// Requests wrong as a whole change nothing.
	many := make([]map[string]string, 101)
	for i := range many {
		many[i] = map[string]string{"id": fmt.Sprintf("inc-%d", i), "etag": `"1.0"`}
	}
	for _, c := range []struct {
		name  string
		token string
		body  any
		want  int
	}{
		{"101 items", apitest.TokAcmeAnalyst, map[string]any{"patch": map[string]any{"status": "on_hold"}, "items": many}, 413},
		{"no items", apitest.TokAcmeAnalyst, map[string]any{"patch": map[string]any{"status": "on_hold"}, "items": []any{}}, 422},
		{"no patch", apitest.TokAcmeAnalyst, map[string]any{"items": items}, 422},
		{"an item twice", apitest.TokAcmeAnalyst, map[string]any{"patch": map[string]any{"status": "on_hold"}, "items": append(items, items[0])}, 422},
		{"an invalid patch", apitest.TokAcmeAnalyst, map[string]any{"patch": map[string]any{"status": "gone"}, "items": items}, 422},
		{"an unknown field", apitest.TokAcmeAnalyst, map[string]any{"patch": map[string]any{"status": "on_hold"}, "items": items, "x": 1}, 400},
		{"not JSON", apitest.TokAcmeAnalyst, "{", 400},
		{"a viewer", apitest.TokAcmeViewer, map[string]any{"patch": map[string]any{"status": "on_hold"}, "items": items}, 403},
	} {
		r := e.do(http.MethodPost, "/v1/incidents/bulk", c.token, c.body)
		if r.code != c.want {
			t.Errorf("%s: got %d %.300s, want %d", c.name, r.code, r.body, c.want)
		} else {
			r.problem(t)
		}
	}
	if rows := e.auditOf("", "api.incident.bulk"); len(rows) != 7 {
		t.Errorf("got %d api.incident.bulk refusals audited, want 7 (every refusal but the viewer's 403, which is api.denied)", len(rows))
	}
	if tag("inc-a1") != got.Results[0].ETag {
		t.Errorf("a refused bulk request changed inc-a1")
	}
}
