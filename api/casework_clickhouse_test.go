package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/storage"
)

// The tests of this file check what issue 18 found wrong with case work
// through the API (D1–D6 and the smaller points), through HTTP against the
// real ClickHouse.

// auditOf returns the audit entries of one action on one incident, newest
// first, with their details decoded.
func (e *apiEnv) auditOf(incident, action string) []auditRow {
	e.t.Helper()
	var page struct{ Items []casework.AuditEntry }
	e.get("/v1/audit?incident_id="+url.QueryEscape(incident)+"&action="+url.QueryEscape(action)+"&limit=500", apitest.TokRootAdmin, &page)
	out := make([]auditRow, 0, len(page.Items))
	for _, a := range page.Items {
		row := auditRow{AuditEntry: a}
		if err := json.Unmarshal(a.Details, &row.det); err != nil {
			e.t.Fatalf("audit details %s: %v", a.Details, err)
		}
		out = append(out, row)
	}
	return out
}

type auditRow struct {
	casework.AuditEntry
	det struct {
		RequestID string `json:"request_id"`
		Status    int    `json:"status"`
		Reason    string `json:"reason"`
		After     json.RawMessage
	}
}

// extendIncident writes the correlator's next version of an acme incident
// (one more alert id), as the correlator does when a chain grows.
func (e *apiEnv) extendIncident(id string) {
	e.t.Helper()
	var d casework.IncidentDetail
	e.get("/v1/incidents/"+id, apitest.TokAcmeViewer, &d)
	in := d.Incident.Incident
	in.Version++
	in.Status = "new"
	in.Severity = 4
	in.AlertIDs = append(in.AlertIDs, fmt.Sprintf("al-extra-%d", in.Version))
	if err := e.store.Write(context.Background(), storage.Batch{Incidents: []incident.Incident{in}}); err != nil {
		e.t.Fatal(err)
	}
}

// TestAPIIfMatchWholeETag (D1, D2): If-Match compares both halves of the
// ETag, strongly. A close decided on a graph the correlator has since
// extended is refused, and so is a weak ETag; nothing changes either time.
func TestAPIIfMatchWholeETag(t *testing.T) {
	e := newAPIEnv(t)
	r := e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, nil)
	if got := r.header.Get("ETag"); got != `"1.0"` {
		t.Fatalf("got ETag %s, want \"1.0\"", got)
	}
	closeIt := map[string]any{"status": "closed", "verdict": "benign_positive", "reason": "only a test deploy"}

	// D2: the right versions, but weak.
	r = e.do(http.MethodPatch, "/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, closeIt, "If-Match", `W/"1.0"`)
	if r.code != http.StatusPreconditionFailed || r.header.Get("ETag") != `"1.0"` {
		t.Errorf("weak If-Match: got %d ETag %s, want 412 with ETag \"1.0\"", r.code, r.header.Get("ETag"))
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "weak") {
		t.Errorf("weak If-Match: got detail %q, want it to say weak ETags never match", p.Detail)
	}

	// D1: the analyst read version 1; the correlator then extended the
	// incident to version 2. The workflow half still matches; the whole
	// ETag does not.
	e.extendIncident("inc-a1")
	r = e.do(http.MethodPatch, "/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, closeIt, "If-Match", `"1.0"`)
	if r.code != http.StatusPreconditionFailed || r.header.Get("ETag") != `"2.0"` {
		t.Errorf("stale incident version: got %d ETag %s, want 412 with the current ETag \"2.0\"", r.code, r.header.Get("ETag"))
	}
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, &d)
	if d.Workflow.Version != 0 || d.Workflow.Status != "new" {
		t.Errorf("refused patches changed the incident: workflow %+v", d.Workflow)
	}
	for _, a := range e.auditOf("inc-a1", "api.incident.update") {
		if a.det.Status != http.StatusPreconditionFailed {
			t.Errorf("got audited update with status %d, want only the two 412 refusals", a.det.Status)
		}
	}

	// With the current ETag the close goes through; the answer is the
	// incident's row with the new ETag.
	r = e.do(http.MethodPatch, "/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, closeIt, "If-Match", `"2.0"`)
	if r.code != http.StatusOK || r.header.Get("ETag") != `"2.1"` {
		t.Fatalf("current ETag: got %d ETag %s %.300s, want 200 with ETag \"2.1\"", r.code, r.header.Get("ETag"), r.body)
	}
	var row casework.Incident
	if err := json.Unmarshal(r.body, &row); err != nil {
		t.Fatal(err)
	}
	if row.ID != "inc-a1" || row.Version != 2 || row.Workflow.Status != "closed" || row.Status != "closed" ||
		row.Workflow.Verdict != "benign_positive" || row.Workflow.Version != 1 || row.Workflow.UpdatedBy != "alice" {
		t.Errorf("got answer %+v, want inc-a1 at version 2, closed as benign_positive by alice, workflow version 1", row)
	}
	if row.Nodes != nil || row.Edges != nil {
		t.Errorf("the PATCH answer holds the graph (%d nodes); it is the queue row", len(row.Nodes))
	}
	// A merge with a stale incident version is refused the same way.
	e.extendIncident("inc-a2")
	r = e.do(http.MethodPost, "/v1/incidents/inc-a2/merge", apitest.TokAcmeAnalyst, map[string]string{"into": "inc-a3", "reason": "same bucket"}, "If-Match", `"1.0"`)
	if r.code != http.StatusPreconditionFailed || r.header.Get("ETag") != `"2.0"` {
		t.Errorf("merge with a stale incident version: got %d ETag %s, want 412 with \"2.0\"", r.code, r.header.Get("ETag"))
	}
}

// TestAPIMalformedQuery (D3): a query string that does not parse is a 400
// problem on every route, never a filter silently dropped.
func TestAPIMalformedQuery(t *testing.T) {
	e := newAPIEnv(t)
	cases := []struct{ method, path, token string }{
		{"GET", "/v1/incidents?status=closed;x", apitest.TokAcmeAnalyst},
		{"GET", "/v1/incidents?status=closed&tag=a;b", apitest.TokAcmeAnalyst},
		{"GET", "/v1/incidents?q=%zz", apitest.TokAcmeAnalyst},
		{"GET", "/v1/incidents?;", apitest.TokAcmeAnalyst},
		{"GET", "/v1/incidents/inc-a1?evidence_cursor=x;y", apitest.TokAcmeAnalyst},
		{"GET", "/v1/incidents/inc-a1/comments?limit=5;x", apitest.TokAcmeAnalyst},
		{"GET", "/v1/entities/bucket/artifacts?from=2026-01-01T00:00:00Z;", apitest.TokAcmeAnalyst},
		{"GET", "/v1/audit?actor=alice;x", apitest.TokAcmeAdmin},
		{"GET", "/v1/rules?%", apitest.TokAcmeAnalyst},
		{"GET", "/healthz?a;b", ""},
		{"PATCH", "/v1/incidents/inc-a1?x;y", apitest.TokAcmeAnalyst},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var body any
			var headers []string
			if c.method == "PATCH" {
				body, headers = map[string]string{"status": "in_progress"}, []string{"If-Match", `"1.0"`}
			}
			r := e.do(c.method, c.path, c.token, body, headers...)
			if r.code != http.StatusBadRequest {
				t.Fatalf("got %d %.300s, want 400", r.code, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, "query string is malformed") {
				t.Errorf("got detail %q, want it to say the query string is malformed", p.Detail)
			}
		})
	}
	// The well-formed spelling of the same filter works.
	var page casework.IncidentPage
	e.get("/v1/incidents?status=closed", apitest.TokAcmeAnalyst, &page)
	if len(page.Items) != 0 {
		t.Errorf("status=closed: got %v, want none", ids(page.Items))
	}
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, &d)
	if d.Workflow.Version != 0 {
		t.Errorf("the malformed PATCH changed inc-a1: %+v", d.Workflow)
	}
}

// TestAPIRefusedPatchAudited (D5): every refused PATCH leaves an audit
// entry with the outcome and the reason, filed under the caller's tenant
// when the incident is not theirs.
func TestAPIRefusedPatchAudited(t *testing.T) {
	e := newAPIEnv(t)
	cases := []struct {
		name     string
		id       string
		body     any
		headers  []string
		code     int
		reason   string
		tenant   string
		incident string
	}{
		{"close without verdict", "inc-a1", map[string]any{"status": "closed", "reason": "done"}, []string{"If-Match", `"1.0"`}, 422, "closing needs a verdict", "acme", "inc-a1"},
		{"forbidden transition", "inc-a1", map[string]any{"status": "new", "verdict": "true_positive"}, []string{"If-Match", `"1.0"`}, 422, "verdict and reason", "acme", "inc-a1"},
		{"not JSON", "inc-a1", `{"status":`, []string{"If-Match", `"1.0"`}, 400, "not a JSON object", "acme", "inc-a1"},
		{"wrong content type", "inc-a1", map[string]any{"status": "on_hold"}, []string{"If-Match", `"1.0"`, "Content-Type", "text/plain"}, 415, "Content-Type", "acme", "inc-a1"},
		{"malformed If-Match", "inc-a1", map[string]any{"status": "on_hold"}, []string{"If-Match", `1.0`}, 400, "If-Match", "acme", "inc-a1"},
		{"no If-Match", "inc-a1", map[string]any{"status": "on_hold"}, nil, 428, "If-Match", "acme", "inc-a1"},
		{"another tenant's incident", "inc-b1", map[string]any{"status": "on_hold"}, []string{"If-Match", `"1.0"`}, 404, "no such incident", "acme", "inc-b1"},
		{"bad id", "a'b", map[string]any{"status": "on_hold"}, []string{"If-Match", `"1.0"`}, 400, "incident id", "acme", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reqID := "refused-" + strings.ReplaceAll(c.name, " ", "-")
			reqID = strings.ReplaceAll(reqID, "'", "")
			h := append([]string{"X-Request-Id", reqID}, c.headers...)
			r := e.do(http.MethodPatch, "/v1/incidents/"+url.PathEscape(c.id), apitest.TokAcmeAnalyst, c.body, h...)
			if r.code != c.code {
				t.Fatalf("got %d %.300s, want %d", r.code, r.body, c.code)
			}
			var found *auditRow
			var page struct{ Items []casework.AuditEntry }
			e.get("/v1/audit?action=api.incident.update&actor=alice&limit=500", apitest.TokRootAdmin, &page)
			for _, a := range page.Items {
				row := auditRow{AuditEntry: a}
				_ = json.Unmarshal(a.Details, &row.det)
				if row.det.RequestID == reqID {
					found = &row
				}
			}
			if found == nil {
				t.Fatalf("no audit entry for the refused PATCH (request id %s)", reqID)
			}
			if found.det.Status != c.code || !strings.Contains(found.det.Reason, c.reason) || found.TenantUID != c.tenant ||
				found.IncidentID != c.incident || found.Actor != "alice" {
				t.Errorf("got audit entry %+v status %d reason %q, want alice, status %d, reason with %q, tenant %s, incident %q",
					found.AuditEntry, found.det.Status, found.det.Reason, c.code, c.reason, c.tenant, c.incident)
			}
		})
	}
	// The refused close keeps what was valid of the patch.
	for _, a := range e.auditOf("inc-a1", "api.incident.update") {
		if a.det.RequestID == "refused-close-without-verdict" && !strings.Contains(string(a.det.After), `"status":"closed"`) {
			t.Errorf("got refused close audited with %s, want the valid fields of the patch", a.det.After)
		}
	}
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, &d)
	if d.Workflow.Version != 0 {
		t.Errorf("refused patches changed inc-a1: %+v", d.Workflow)
	}
}

// TestAPIConcurrentPatches (D6): 200 analysts' PATCHes on one incident at
// once, all with the same ETag: exactly one wins, the others get 412, none
// gets a 5xx (503 included), and every one is audited.
func TestAPIConcurrentPatches(t *testing.T) {
	e := newAPIEnv(t)
	const n = 200
	codes := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := apitest.TokAcmeAnalyst
			if i%2 == 1 {
				tok = apitest.TokAcmeAnalyst2
			}
			<-start
			r := e.do(http.MethodPatch, "/v1/incidents/inc-a1", tok, map[string]any{"assignee": "me", "tags": []string{fmt.Sprint("t", i)}}, "If-Match", `"1.0"`)
			if r.code == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
				t.Errorf("a 503 without Retry-After: %.300s", r.body)
			}
			codes <- r.code
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusOK] != 1 || got[http.StatusPreconditionFailed] != n-1 {
		t.Errorf("got status counts %v, want one 200 and %d 412 (no 5xx)", got, n-1)
	}
	var d casework.IncidentDetail
	r := e.get("/v1/incidents/inc-a1", apitest.TokAcmeViewer, &d)
	if d.Workflow.Version != 1 || r.header.Get("ETag") != `"1.1"` || len(d.Workflow.Tags) != 1 || d.Workflow.Assignee == "" {
		t.Errorf("got workflow %+v ETag %s, want exactly one change (assignee and tag) applied", d.Workflow, r.header.Get("ETag"))
	}
	audited := map[int]int{}
	for _, a := range e.auditOf("inc-a1", "api.incident.update") {
		audited[a.det.Status]++
	}
	if audited[http.StatusOK] != 1 || audited[http.StatusPreconditionFailed] != n-1 {
		t.Errorf("got audited outcomes %v, want one 200 and %d 412", audited, n-1)
	}
}

// TestAPIUnavailableRetryAfter (D6): when ClickHouse cannot answer, the API
// says 503 with Retry-After, as a problem document.
func TestAPIUnavailableRetryAfter(t *testing.T) {
	db, _ := chtest.Database(t)
	cfg := storage.Default()
	cfg.Addr, cfg.Database = []string{chtest.Addr()}, db
	store, err := storage.Open(context.Background(), cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_ = store.Close() // every query now fails
	srv, err := api.New(api.Options{Store: store, Rules: &stubRules{}, Ready: store.Ping,
		Tokens:  []api.Token{{Name: "alice", Hash: api.HashSecret(apitest.TokAcmeAnalyst), Role: api.RoleAnalyst, Tenants: []string{"acme"}}},
		Tenants: []api.Tenant{{ID: "acme", Name: "Acme", Accounts: []string{apitest.AcmeAccount}}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e := &apiEnv{t: t, url: ts.URL}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/incidents"}, {"GET", "/v1/incidents/inc-a1"}, {"PATCH", "/v1/incidents/inc-a1"}, {"GET", "/readyz"},
	} {
		var body any
		var h []string
		if c.method == "PATCH" {
			body, h = map[string]string{"status": "on_hold"}, []string{"If-Match", `"1.0"`}
		}
		r := e.do(c.method, c.path, apitest.TokAcmeAnalyst, body, h...)
		if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s on a closed store: got %d Retry-After %q, want 503 with Retry-After", c.method, c.path, r.code, r.header.Get("Retry-After"))
			continue
		}
		r.problem(t)
	}
}

// TestAPITokenNamesUnique: two tokens cannot share a name (it is the
// actor in the audit log and the assignee "me"), neither in configuration
// nor through the admin API.
func TestAPITokenNamesUnique(t *testing.T) {
	_, err := api.New(api.Options{Store: &storage.Store{}, Rules: &stubRules{}, Ready: func(context.Context) error { return nil },
		Tokens: []api.Token{
			{Name: "alice", Hash: api.HashSecret("a"), Role: api.RoleAnalyst, Tenants: []string{"acme"}},
			{Name: "Alice", Hash: api.HashSecret("b"), Role: api.RoleViewer, Tenants: []string{"acme"}},
		},
		Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "unique") {
		t.Errorf("two configured tokens named alice/Alice: got %v, want an error about unique names", err)
	}
	e := newAPIEnv(t)
	for _, name := range []string{"alice", "ALICE", "bob"} {
		r := e.do(http.MethodPost, "/v1/admin/tokens", apitest.TokAcmeAdmin, map[string]any{"name": name, "role": "viewer", "tenants": []string{"acme"}})
		if r.code != http.StatusUnprocessableEntity {
			t.Errorf("creating a second token named %s: got %d, want 422", name, r.code)
			continue
		}
		if p := r.problem(t); !strings.Contains(strings.Join(p.Errors, " "), "taken") {
			t.Errorf("got errors %q, want the name called taken", p.Errors)
		}
	}
	// Concurrent creations of one new name: exactly one succeeds.
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- e.do(http.MethodPost, "/v1/admin/tokens", apitest.TokAcmeAdmin, map[string]any{"name": "carol", "role": "viewer", "tenants": []string{"acme"}}).code
		}()
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusCreated] != 1 || got[http.StatusUnprocessableEntity] != 7 {
		t.Errorf("8 concurrent creations of carol: got %v, want one 201 and seven 422", got)
	}
}

// TestAPICursorsSigned: paging cursors are signed and bound to their query
// and tenants. A forged but well-formed cursor, an edited one, one from
// another query or for other tenants, or one signed with another key is a
// 400; replicas sharing a key follow each other's cursors.
func TestAPICursorsSigned(t *testing.T) {
	e := newAPIEnv(t)
	e.cursorKey = []byte("a shared key for two replicas")
	urlA, urlB := e.server(false), e.server(false)
	e.cursorKey = []byte("another key entirely, elsewhere")
	urlOther := e.server(false)
	e.url = urlA

	var p1 casework.IncidentPage
	e.get("/v1/incidents?sort=last_seen&status=new&limit=1", apitest.TokAcmeAnalyst, &p1)
	if p1.NextCursor == "" {
		t.Fatal("no next cursor on a page of 1 of 3")
	}
	raw, err := base64.RawURLEncoding.DecodeString(p1.NextCursor)
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	// What the store's cursor looks like, naming an incident of another
	// tenant: well-formed, but not issued by the API.
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"s":"last_seen","d":true,"v":9999999999999,"t":"globex","i":"inc-b1"}`))
	cases := []struct {
		name, url, path, token string
		code                   int
	}{
		{"the same query", urlA, "/v1/incidents?sort=last_seen&status=new&limit=1&cursor=" + p1.NextCursor, apitest.TokAcmeAnalyst, 200},
		{"another page size", urlA, "/v1/incidents?sort=last_seen&status=new&limit=2&cursor=" + p1.NextCursor, apitest.TokAcmeAnalyst, 200},
		{"another analyst of the tenant", urlA, "/v1/incidents?sort=last_seen&status=new&limit=1&cursor=" + p1.NextCursor, apitest.TokAcmeAnalyst2, 200},
		{"a replica with the same key", urlB, "/v1/incidents?sort=last_seen&status=new&limit=1&cursor=" + p1.NextCursor, apitest.TokAcmeAnalyst, 200},
		{"forged", urlA, "/v1/incidents?sort=last_seen&status=new&limit=1&cursor=" + forged, apitest.TokAcmeAnalyst, 400},
		{"edited", urlA, "/v1/incidents?sort=last_seen&status=new&limit=1&cursor=" + base64.RawURLEncoding.EncodeToString(flipped), apitest.TokAcmeAnalyst, 400},
		{"another filter", urlA, "/v1/incidents?status=closed&limit=1&cursor=" + p1.NextCursor, apitest.TokAcmeAnalyst, 400},
		{"no filter", urlA, "/v1/incidents?limit=1&cursor=" + p1.NextCursor, apitest.TokAcmeAnalyst, 400},
		{"other tenants", urlA, "/v1/incidents?sort=last_seen&status=new&limit=1&cursor=" + p1.NextCursor, apitest.TokRootAdmin, 400},
		{"another key", urlOther, "/v1/incidents?sort=last_seen&status=new&limit=1&cursor=" + p1.NextCursor, apitest.TokAcmeAnalyst, 400},
		{"forged evidence cursor", urlA, "/v1/incidents/inc-a1?evidence_cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"t":0,"u":"ev-a1"}`)), apitest.TokAcmeAnalyst, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := *e
			e.t, e.url = t, c.url
			r := e.do(http.MethodGet, c.path, c.token, nil)
			if r.code != c.code {
				t.Fatalf("got %d %.300s, want %d", r.code, r.body, c.code)
			}
			if c.code == http.StatusBadRequest {
				if p := r.problem(t); !strings.Contains(strings.Join(p.Errors, " "), "cursor") {
					t.Errorf("got errors %q, want them to name the cursor", p.Errors)
				}
				return
			}
			var page casework.IncidentPage
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Items) == 0 || page.Items[0].ID != "inc-a2" {
				t.Errorf("got %v after the cursor, want inc-a2 first", ids(page.Items))
			}
		})
	}
}

// TestAPIMergeServesAlertsThroughSurvivor: a merge moves the merged
// incident's alerts to the survivor, which shows their alerts and evidence
// and names the merged incidents in merged_from, also through a chain of
// merges; the merged incident keeps its graph for the record.
func TestAPIMergeServesAlertsThroughSurvivor(t *testing.T) {
	e := newAPIEnv(t)
	alertIDs := func(d casework.IncidentDetail) []string {
		var out []string
		for _, a := range d.Alerts {
			out = append(out, a.ID)
		}
		slices.Sort(out)
		return out
	}
	evidenceIDs := func(d casework.IncidentDetail) []string {
		var out []string
		for _, ev := range d.Evidence {
			out = append(out, ev.ID)
		}
		slices.Sort(out)
		return out
	}
	var before casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, &before)
	if got := alertIDs(before); !slices.Equal(got, []string{"al-a1", "al-a2"}) || len(before.MergedFrom) != 0 {
		t.Fatalf("inc-a1 before any merge: got alerts %v merged_from %v, want al-a1, al-a2 and none", got, before.MergedFrom)
	}
	merge := func(from, into string) {
		t.Helper()
		if r := e.do(http.MethodPost, "/v1/incidents/"+from+"/merge", apitest.TokAcmeAnalyst, map[string]string{"into": into, "reason": "same bucket"}); r.code != http.StatusOK {
			t.Fatalf("merge %s into %s: got %d %.300s", from, into, r.code, r.body)
		}
	}
	// inc-a3 into inc-a2, then inc-a2 into inc-a1: inc-a1 serves all three.
	merge("inc-a3", "inc-a2")
	var mid casework.IncidentDetail
	e.get("/v1/incidents/inc-a2", apitest.TokAcmeAnalyst, &mid)
	if got := alertIDs(mid); !slices.Equal(got, []string{"al-a3", "al-a4"}) || !slices.Equal(mid.MergedFrom, []string{"inc-a3"}) {
		t.Errorf("inc-a2 after inc-a3 merged into it: got alerts %v merged_from %v, want al-a3, al-a4 and [inc-a3]", got, mid.MergedFrom)
	}
	merge("inc-a2", "inc-a1")
	var after casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, &after)
	if got := alertIDs(after); !slices.Equal(got, []string{"al-a1", "al-a2", "al-a3", "al-a4"}) {
		t.Errorf("inc-a1 after the merges: got alerts %v, want al-a1..al-a4", got)
	}
	if !slices.Equal(after.MergedFrom, []string{"inc-a2", "inc-a3"}) {
		t.Errorf("got merged_from %v, want [inc-a2 inc-a3]", after.MergedFrom)
	}
	if got := evidenceIDs(after); !slices.Equal(got, []string{"ev-a1", "ev-a2", "ev-a3", "ev-a4", "ev-a5"}) {
		t.Errorf("inc-a1 evidence after the merges: got %v, want ev-a1..ev-a5", got)
	}
	// The merge moved the alerts: the merged incidents hold none (their
	// graphs stay for the record), the survivors' queue rows list them,
	// and each merge changed the survivor's ETag and is audited on both.
	for _, id := range []string{"inc-a2", "inc-a3"} {
		var merged casework.IncidentDetail
		e.get("/v1/incidents/"+id, apitest.TokAcmeAnalyst, &merged)
		if got := alertIDs(merged); len(got) != 0 || len(merged.AlertIDs) != 0 || merged.Workflow.Status != "merged" || len(merged.Nodes) == 0 {
			t.Errorf("%s: got alerts %v alert_ids %v status %s, %d nodes, want no alerts, merged, its graph", id, got, merged.AlertIDs, merged.Workflow.Status, len(merged.Nodes))
		}
		if got := e.auditOf(id, "incident.merge"); len(got) != 2-slices.Index([]string{"inc-a2", "inc-a3"}, id) {
			t.Errorf("%s: got %d incident.merge entries, want one per merge it took part in", id, len(got))
		}
	}
	if got := slices.Sorted(slices.Values(after.AlertIDs)); !slices.Equal(got, []string{"al-a1", "al-a2", "al-a3", "al-a4"}) {
		t.Errorf("inc-a1's alert_ids after the merges: got %v, want al-a1..al-a4", got)
	}
	if r := e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, nil); r.header.Get("ETag") != `"1.1"` || len(e.auditOf("inc-a1", "incident.merge")) != 1 {
		t.Errorf("inc-a1 after one merge into it: got ETag %s, want \"1.1\" and one incident.merge entry", r.header.Get("ETag"))
	}
	var other casework.IncidentDetail
	e.get("/v1/incidents/inc-b1", apitest.TokGlobexAnalyst, &other)
	if got := alertIDs(other); !slices.Equal(got, []string{"al-b1"}) || len(other.MergedFrom) != 0 {
		t.Errorf("globex's inc-b1: got alerts %v merged_from %v, want al-b1 only", got, other.MergedFrom)
	}
}

// TestAPICommentsPagedEditedDeleted: comments page with signed cursors;
// their author (and only the author) edits and deletes them; every
// request is audited, refusals included.
func TestAPICommentsPagedEditedDeleted(t *testing.T) {
	e := newAPIEnv(t)
	const n = 7
	var written []casework.Comment
	for i := range n {
		r := e.do(http.MethodPost, "/v1/incidents/inc-a1/comments", apitest.TokAcmeAnalyst, map[string]string{"body": fmt.Sprint("note ", i)})
		if r.code != http.StatusCreated {
			t.Fatalf("comment %d: got %d %.300s", i, r.code, r.body)
		}
		var c casework.Comment
		_ = json.Unmarshal(r.body, &c)
		written = append(written, c)
	}
	type page struct {
		Items      []casework.Comment
		NextCursor string `json:"next_cursor"`
	}
	walk := func(token string) []string {
		t.Helper()
		var got []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			var p page
			e.get("/v1/incidents/inc-a1/comments?limit=3&cursor="+cursor, token, &p)
			for _, c := range p.Items {
				got = append(got, c.Body)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		return got
	}
	want := []string{"note 0", "note 1", "note 2", "note 3", "note 4", "note 5", "note 6"}
	if got := walk(apitest.TokAcmeViewer); !slices.Equal(got, want) {
		t.Fatalf("paged comments: got %v, want %v", got, want)
	}
	var p1 page
	e.get("/v1/incidents/inc-a1/comments?limit=3", apitest.TokAcmeViewer, &p1)
	if r := e.do(http.MethodGet, "/v1/incidents/inc-a2/comments?cursor="+p1.NextCursor, apitest.TokAcmeViewer, nil); r.code != http.StatusBadRequest {
		t.Errorf("a comment cursor of another incident: got %d, want 400", r.code)
	}

	path := func(c casework.Comment) string { return "/v1/incidents/inc-a1/comments/" + c.ID }
	// Bob may not change Alice's comment; a viewer may not either.
	if r := e.do(http.MethodPatch, path(written[1]), apitest.TokAcmeAnalyst2, map[string]string{"body": "bob was here"}); r.code != http.StatusForbidden {
		t.Errorf("bob editing alice's comment: got %d, want 403", r.code)
	}
	if r := e.do(http.MethodDelete, path(written[1]), apitest.TokAcmeAnalyst2, nil); r.code != http.StatusForbidden {
		t.Errorf("bob deleting alice's comment: got %d, want 403", r.code)
	}
	if r := e.do(http.MethodDelete, path(written[1]), apitest.TokAcmeViewer, nil); r.code != http.StatusForbidden {
		t.Errorf("a viewer deleting a comment: got %d, want 403", r.code)
	}
	if r := e.do(http.MethodPatch, path(written[1]), apitest.TokGlobexAnalyst, map[string]string{"body": "x"}); r.code != http.StatusNotFound {
		t.Errorf("another tenant editing: got %d, want 404", r.code)
	}
	if r := e.do(http.MethodPatch, path(written[1]), apitest.TokAcmeAnalyst, map[string]string{"body": " "}); r.code != http.StatusUnprocessableEntity {
		t.Errorf("editing to an empty body: got %d, want 422", r.code)
	}
	// Alice edits one and deletes another.
	r := e.do(http.MethodPatch, path(written[1]), apitest.TokAcmeAnalyst, map[string]string{"body": "note 1, corrected"})
	if r.code != http.StatusOK {
		t.Fatalf("alice editing her comment: got %d %.300s", r.code, r.body)
	}
	var edited casework.Comment
	_ = json.Unmarshal(r.body, &edited)
	if edited.Body != "note 1, corrected" || edited.Version != 1 || edited.EditedAt.IsZero() || !edited.Time.Equal(written[1].Time) || edited.Author != "alice" {
		t.Errorf("got edited comment %+v, want the new body, version 1, edited_at set, the original time", edited)
	}
	if r := e.do(http.MethodDelete, path(written[4]), apitest.TokAcmeAnalyst, nil); r.code != http.StatusNoContent {
		t.Fatalf("alice deleting her comment: got %d %.300s", r.code, r.body)
	}
	if r := e.do(http.MethodDelete, path(written[4]), apitest.TokAcmeAnalyst, nil); r.code != http.StatusNotFound {
		t.Errorf("deleting a deleted comment: got %d, want 404", r.code)
	}
	if r := e.do(http.MethodPatch, path(written[4]), apitest.TokAcmeAnalyst, map[string]string{"body": "back"}); r.code != http.StatusNotFound {
		t.Errorf("editing a deleted comment: got %d, want 404", r.code)
	}
	want = []string{"note 0", "note 1, corrected", "note 2", "note 3", "note 5", "note 6"}
	if got := walk(apitest.TokAcmeViewer); !slices.Equal(got, want) {
		t.Errorf("comments after the edit and the deletion: got %v, want %v", got, want)
	}
	// Audited: the edit, the deletion and every refusal, with sizes, not text.
	outcomes := map[string]int{}
	for _, action := range []string{"api.incident.comment.edit", "api.incident.comment.delete"} {
		for _, a := range e.auditOf("inc-a1", action) {
			outcomes[fmt.Sprint(action, " ", a.Actor, " ", a.det.Status)]++
			if strings.Contains(string(a.Details), "corrected") {
				t.Errorf("the audit entry keeps the comment's text: %s", a.Details)
			}
		}
	}
	wantOutcomes := map[string]int{
		"api.incident.comment.edit bob 403": 1, "api.incident.comment.delete bob 403": 1,
		"api.incident.comment.edit alice 422": 1, "api.incident.comment.edit alice 200": 1,
		"api.incident.comment.delete alice 204": 1, "api.incident.comment.delete alice 200": 0,
		"api.incident.comment.delete alice 404": 1, "api.incident.comment.edit alice 404": 1,
	}
	for k, v := range wantOutcomes {
		if outcomes[k] != v {
			t.Errorf("audited %q: got %d, want %d (all: %v)", k, outcomes[k], v, outcomes)
		}
	}
	var gina []auditRow
	var pg struct{ Items []casework.AuditEntry }
	e.get("/v1/audit?action=api.incident.comment.edit&actor=gina", apitest.TokRootAdmin, &pg)
	for _, a := range pg.Items {
		gina = append(gina, auditRow{AuditEntry: a})
	}
	if len(gina) != 1 || gina[0].TenantUID != "globex" {
		t.Errorf("gina's refused edit: got %+v, want one entry filed under her tenant globex", gina)
	}
}

// TestAPICaseTiming: the queue shows each incident's clock — when it was
// acknowledged, resolved and closed, the times to acknowledge and to
// resolve, the SLA due time of its severity and whether it is breached —
// and filters by the SLA.
func TestAPICaseTiming(t *testing.T) {
	e := newAPIEnv(t)
	// High: resolve within 1h (inc-a1 and inc-a3 started 2h ago and more:
	// breached); medium: within 24h (inc-a2: not breached).
	e.sla = map[int]time.Duration{4: time.Hour, 3: 24 * time.Hour}
	e.url = e.server(false)

	var d casework.IncidentDetail
	r := e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, &d)
	created := time.UnixMilli(d.FirstSeen).UTC()
	if d.Timing == nil || !d.Timing.CreatedAt.Equal(created) || !d.Timing.SLADue.Equal(created.Add(time.Hour)) || !d.Timing.SLABreached ||
		d.Timing.TimeToAcknowledge != nil || d.Timing.TimeToResolve != nil {
		t.Fatalf("inc-a1 untouched: got timing %+v, want created at first_seen, due 1h later, breached, no times yet", d.Timing)
	}
	patch := func(etag string, body map[string]any) (casework.Incident, string) {
		t.Helper()
		r := e.do(http.MethodPatch, "/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, body, "If-Match", etag)
		if r.code != http.StatusOK {
			t.Fatalf("PATCH %v: got %d %.300s", body, r.code, r.body)
		}
		var in casework.Incident
		_ = json.Unmarshal(r.body, &in)
		return in, r.header.Get("ETag")
	}
	before := time.Now()
	in, etag := patch(r.header.Get("ETag"), map[string]any{"assignee": "me"})
	ack := in.Workflow.AcknowledgedAt
	if ack.Before(before.Add(-time.Second)) || in.Timing.TimeToAcknowledge == nil ||
		*in.Timing.TimeToAcknowledge != int64(ack.Sub(created)/time.Second) || in.Timing.TimeToResolve != nil {
		t.Errorf("assigned: got workflow %+v timing %+v, want acknowledged now and time to acknowledge from first_seen", in.Workflow, in.Timing)
	}
	in, etag = patch(etag, map[string]any{"status": "resolved", "verdict": "true_positive", "reason": "keys rotated"})
	if !in.Workflow.AcknowledgedAt.Equal(ack) || in.Workflow.ResolvedAt.IsZero() || in.Timing.TimeToResolve == nil || !in.Timing.SLABreached {
		t.Errorf("resolved: got workflow %+v timing %+v, want the first acknowledgement kept, resolved now, breached", in.Workflow, in.Timing)
	}
	in, etag = patch(etag, map[string]any{"status": "in_progress", "reason": "more keys found"})
	if !in.Workflow.ResolvedAt.IsZero() || in.Timing.TimeToResolve != nil {
		t.Errorf("reopened: got workflow %+v timing %+v, want resolved cleared", in.Workflow, in.Timing)
	}
	in, _ = patch(etag, map[string]any{"status": "closed", "verdict": "true_positive", "reason": "all rotated"})
	if in.Workflow.ClosedAt.IsZero() || in.Timing.TimeToResolve == nil || !in.Workflow.AcknowledgedAt.Equal(ack) {
		t.Errorf("closed: got workflow %+v timing %+v, want closed now and a time to resolve", in.Workflow, in.Timing)
	}
	// The same in the queue and the detail, and as filters.
	var page casework.IncidentPage
	e.get("/v1/incidents?sla=breached&sort=last_seen", apitest.TokAcmeAnalyst, &page)
	if got := ids(page.Items); !slices.Equal(got, []string{"inc-a3", "inc-a1"}) {
		t.Errorf("sla=breached: got %v, want [inc-a3 inc-a1]", got)
	}
	for _, it := range page.Items {
		if it.Timing == nil || !it.Timing.SLABreached {
			t.Errorf("%s in sla=breached: got timing %+v, want breached", it.ID, it.Timing)
		}
		if it.ID == "inc-a1" && (it.Workflow.ClosedAt.IsZero() || !it.Workflow.AcknowledgedAt.Equal(ack)) {
			t.Errorf("inc-a1 in the queue: got workflow %+v, want its acknowledged and closed times", it.Workflow)
		}
	}
	var ok casework.IncidentPage
	e.get("/v1/incidents?sla=ok", apitest.TokAcmeAnalyst, &ok)
	if got := ids(ok.Items); !slices.Equal(got, []string{"inc-a2"}) || ok.Items[0].Timing.SLABreached {
		t.Errorf("sla=ok: got %v, want [inc-a2] not breached", got)
	}
	if r := e.do(http.MethodGet, "/v1/incidents?sla=late", apitest.TokAcmeAnalyst, nil); r.code != http.StatusBadRequest {
		t.Errorf("sla=late: got %d, want 400", r.code)
	}
	// Globex's critical incident has no SLA in this table.
	var globex casework.IncidentPage
	e.get("/v1/incidents", apitest.TokGlobexAnalyst, &globex)
	if len(globex.Items) != 1 || !globex.Items[0].Timing.SLADue.IsZero() || globex.Items[0].Timing.SLABreached {
		t.Errorf("inc-b1 without an SLA: got %+v, want no due time, not breached", globex.Items)
	}
}
