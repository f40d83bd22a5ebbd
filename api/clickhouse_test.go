package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// The API tests run the real handler on the real ClickHouse store, seeded
// with incidents of two tenants: acme (account 111111111111) and globex
// (account 222222222222).

type apiEnv struct {
	t     testing.TB
	url   string
	store *storage.Store
	// db is the name of the test's own ClickHouse database.
	db    string
	rules *stubRules
	now   time.Time
	// cursorKey, when set, is the key of the servers started after.
	cursorKey []byte
	// sla, when set, is the SLA table of the servers started after.
	sla map[int]time.Duration
	// wrap, when set, wraps the store of the servers started after.
	wrap func(api.Store) api.Store
}

type stubRules struct{ reloads int }

func (r *stubRules) Rules() []api.RuleInfo {
	return []api.RuleInfo{{ID: "aws.s3.appspec_tamper", Kind: "detection", Title: "appspec.yml rewritten", Version: "3", Severity: 4,
		Evaluations: 7, Matches: 2}}
}
func (r *stubRules) Reload() error { r.reloads++; return nil }

func newAPIEnv(t testing.TB) *apiEnv {
	t.Helper()
	db, _ := chtest.Database(t)
	ctx := context.Background()
	cfg := storage.Default()
	cfg.Addr, cfg.Database, cfg.StoreRaw = []string{chtest.Addr()}, db, true
	store, err := storage.Open(ctx, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	apitest.SeedIncidents(t, store, now.Add(-2*time.Hour))

	e := &apiEnv{t: t, store: store, db: db, rules: &stubRules{}, now: now}
	e.url = e.server(false)
	return e
}

// server starts an API server on e's store and returns its URL.
func (e *apiEnv) server(restoreTokens bool) string {
	t := e.t
	tok := func(secret, name string, role api.Role, tenants ...string) api.Token {
		return api.Token{Name: name, Hash: api.HashSecret(secret), Role: role, Tenants: tenants}
	}
	expired := tok(apitest.TokExpired, "old", api.RoleAdmin, "*")
	expired.Expires = e.now.Add(-time.Minute)
	reg := prometheus.NewRegistry()
	var store api.Store = e.store
	if e.wrap != nil {
		store = e.wrap(store)
	}
	srv, err := api.New(api.Options{
		Store:    store,
		Rules:    e.rules,
		Ready:    e.store.Ping,
		Registry: reg,
		Gatherer: reg,
		Tokens: []api.Token{
			tok(apitest.TokAcmeAnalyst, "alice", api.RoleAnalyst, "acme"),
			tok(apitest.TokAcmeAnalyst2, "bob", api.RoleAnalyst, "acme"),
			tok(apitest.TokAcmeViewer, "victor", api.RoleViewer, "acme"),
			tok(apitest.TokAcmeAdmin, "ada", api.RoleAdmin, "acme"),
			tok(apitest.TokGlobexAnalyst, "gina", api.RoleAnalyst, "globex"),
			tok(apitest.TokGlobexAdmin, "gus", api.RoleAdmin, "globex"),
			tok(apitest.TokRootAdmin, "root", api.RoleAdmin, "*"),
			expired,
		},
		Tenants: []api.Tenant{
			{ID: "acme", Name: "Acme", Accounts: []string{apitest.AcmeAccount}},
			{ID: "globex", Name: "Globex", Accounts: []string{apitest.GlobexAccount}},
		},
		RestoreTokens: restoreTokens,
		Logger:        slog.New(slog.DiscardHandler),
		CursorKey:     e.cursorKey,
		SLA:           e.sla,
		Directory:     api.Directory{Analysts: []string{"carol@acme.example"}, Teams: map[string][]string{"tier2": {"alice", "bob"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	// The limits of the real server (engine.go).
	ts.Config.ReadHeaderTimeout, ts.Config.MaxHeaderBytes = 10*time.Second, 64<<10
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

// response is a decoded HTTP answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) apiProblem {
	t.Helper()
	var p apiProblem
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("got Content-Type %q for status %d, want application/problem+json (body %.300s)", ct, r.code, r.body)
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("problem body %.300s: %v", r.body, err)
	}
	return p
}

type apiProblem struct {
	Type, Title, Detail, Instance string
	Status                        int
	RequestID                     string `json:"request_id"`
	Errors                        []string
}

func (e *apiEnv) do(method, path, token string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Request-Id") == "" && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		e.t.Errorf("%s %s: no X-Request-Id on the response", method, path)
	}
	if strings.HasPrefix(path, "/v1/") && path != "/v1/openapi.json" && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge &&
		resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed && resp.Header.Get("Cache-Control") != "no-store" {
		e.t.Errorf("%s %s: got Cache-Control %q, want no-store", method, path, resp.Header.Get("Cache-Control"))
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		e.t.Errorf("%s %s: got %d %.300s, never want a 5xx", method, path, resp.StatusCode, b)
	}
	// Every answer of the API is one its OpenAPI document describes (431
	// comes from net/http before the API sees the request).
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		v, err := openapiValidator()
		if err != nil {
			e.t.Fatalf("openapi.json: %v", err)
		}
		if err := v.validate(method, path, resp.StatusCode, resp.Header.Get("Content-Type"), b); err != nil {
			e.t.Errorf("%s %s: the response does not match openapi.json: %v", method, path, err)
		}
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// get decodes a 200 answer into v.
func (e *apiEnv) get(path, token string, v any) response {
	e.t.Helper()
	r := e.do(http.MethodGet, path, token, nil)
	if r.code != http.StatusOK {
		e.t.Fatalf("GET %s: got %d %.300s, want 200", path, r.code, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			e.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return r
}

// detailOf decodes an incident answer into a fresh value.
func detailOf(t *testing.T, r response) casework.IncidentDetail {
	t.Helper()
	var d casework.IncidentDetail
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("decode incident %.200s: %v", r.body, err)
	}
	return d
}

func ids(items []casework.Incident) []string {
	var out []string
	for _, in := range items {
		out = append(out, in.ID)
	}
	return out
}

// TestAPIAnalystQueue works the queue as an analyst would: list, filter,
// sort, page, open an incident with its graph and evidence.
func TestAPIAnalystQueue(t *testing.T) {
	e := newAPIEnv(t)
	var page casework.IncidentPage
	e.get("/v1/incidents", apitest.TokAcmeAnalyst, &page)
	if got, want := ids(page.Items), []string{"inc-a1", "inc-a3", "inc-a2"}; !slices.Equal(got, want) {
		t.Errorf("queue by default (risk_score desc): got %v, want %v", got, want)
	}
	e.get("/v1/incidents?sort=last_seen", apitest.TokAcmeAnalyst, &page)
	if got, want := ids(page.Items), []string{"inc-a3", "inc-a2", "inc-a1"}; !slices.Equal(got, want) {
		t.Errorf("queue by last_seen desc: got %v, want %v", got, want)
	}
	if page.CountsByStatus["new"] != 3 {
		t.Errorf("got counts %v, want new: 3", page.CountsByStatus)
	}

	filters := []struct {
		query string
		want  []string
	}{
		{"min_severity=4", []string{"inc-a3", "inc-a1"}},
		{"rule=aws.iam.policy", []string{"inc-a2"}},
		{"entity_type=bucket&entity_value=artifacts&sort=first_seen&order=asc", []string{"inc-a1", "inc-a2", "inc-a3"}},
		{"account=" + apitest.AcmeAccount + "&sort=severity&order=desc", []string{"inc-a1", "inc-a3", "inc-a2"}},
		{"account=" + apitest.GlobexAccount, nil},
		{"q=poisoning", []string{"inc-a1"}},
		{"q=inc-a2", []string{"inc-a2"}},
		{"status=new&assignee=none", []string{"inc-a3", "inc-a2", "inc-a1"}},
		{"status=closed", nil},
		{"from=" + url.QueryEscape(e.now.Add(-100*time.Minute).Format(time.RFC3339)), []string{"inc-a3", "inc-a2"}},
		{"to=" + url.QueryEscape(e.now.Add(-115*time.Minute).Format(time.RFC3339)), []string{"inc-a1"}},
	}
	for _, f := range filters {
		t.Run(f.query, func(t *testing.T) {
			var p casework.IncidentPage
			q := f.query
			if !strings.Contains(q, "sort=") {
				q += "&sort=last_seen"
			}
			e.get("/v1/incidents?"+q, apitest.TokAcmeAnalyst, &p)
			if got := ids(p.Items); !slices.Equal(got, f.want) {
				t.Errorf("got %v, want %v", got, f.want)
			}
		})
	}

	// Cursor pagination walks the queue one by one without repeats.
	var walked []string
	cursor := ""
	for range 5 {
		var p casework.IncidentPage
		e.get("/v1/incidents?sort=last_seen&limit=1&cursor="+cursor, apitest.TokAcmeAnalyst, &p)
		walked = append(walked, ids(p.Items)...)
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if want := []string{"inc-a3", "inc-a2", "inc-a1"}; !slices.Equal(walked, want) {
		t.Errorf("paged queue: got %v, want %v", walked, want)
	}
	// A cursor of another sort order is refused.
	var p1 casework.IncidentPage
	e.get("/v1/incidents?limit=1", apitest.TokAcmeAnalyst, &p1)
	if r := e.do("GET", "/v1/incidents?limit=1&sort=severity&cursor="+p1.NextCursor, apitest.TokAcmeAnalyst, nil); r.code != http.StatusBadRequest {
		t.Errorf("cursor of another sort: got %d, want 400", r.code)
	} else if p := r.problem(t); !strings.Contains(p.Detail, "cursor") {
		t.Errorf("got detail %q, want it to name the cursor", p.Detail)
	}

	// Open an incident: graph, timeline, alerts, evidence, ETag.
	var d casework.IncidentDetail
	r := e.get("/v1/incidents/inc-a1", apitest.TokAcmeViewer, &d)
	if got, want := r.header.Get("ETag"), `"1.0"`; got != want {
		t.Errorf("got ETag %s, want %s", got, want)
	}
	if len(d.Nodes) != 3 || len(d.Edges) != 2 || len(d.Timeline) != 2 || len(d.Alerts) != 2 {
		t.Errorf("got %d nodes, %d edges, %d timeline entries, %d alerts; want 3, 2, 2, 2", len(d.Nodes), len(d.Edges), len(d.Timeline), len(d.Alerts))
	}
	var evIDs []string
	for _, ev := range d.Evidence {
		evIDs = append(evIDs, ev.ID)
	}
	if want := []string{"ev-a1", "ev-a2", "ev-a3"}; !slices.Equal(evIDs, want) {
		t.Errorf("got evidence %v, want %v", evIDs, want)
	}
	if d.Workflow.Status != "new" || d.Workflow.Version != 0 {
		t.Errorf("got workflow %+v, want new at version 0", d.Workflow)
	}

	// Rules, health, readiness, metrics by route.
	var rs struct{ Rules []api.RuleInfo }
	e.get("/v1/rules", apitest.TokAcmeViewer, &rs)
	if len(rs.Rules) != 1 || rs.Rules[0].Version != "3" || rs.Rules[0].Evaluations != 0 {
		t.Errorf("got rules %+v, want the one stub rule at version 3, without the counters of every tenant", rs.Rules)
	}
	e.get("/v1/rules", apitest.TokRootAdmin, &rs)
	if len(rs.Rules) != 1 || rs.Rules[0].Evaluations != 7 || rs.Rules[0].Matches != 2 {
		t.Errorf("got rules %+v, want the counters for a token of every tenant", rs.Rules)
	}
	e.get("/healthz", "", nil)
	e.get("/readyz", "", nil)
	m := e.get("/metrics", "", nil)
	if !strings.Contains(string(m.body), `musubi_api_requests_total{code="200",route="GET /v1/incidents"}`) {
		t.Errorf("metrics lack the request counter by route and code")
	}
}

// TestAPIAnalystWorkflow changes an incident's status with and without the
// right ETag, comments, closes it with a verdict, reopens it and merges
// another into it; the audit log records each step.
func TestAPIAnalystWorkflow(t *testing.T) {
	e := newAPIEnv(t)
	patch := func(id, token, ifMatch string, body any) response {
		t.Helper()
		h := []string{"Content-Type", "application/merge-patch+json"}
		if ifMatch != "" {
			h = append(h, "If-Match", ifMatch)
		}
		return e.do(http.MethodPatch, "/v1/incidents/"+id, token, body, h...)
	}

	if r := patch("inc-a1", apitest.TokAcmeAnalyst, "", map[string]any{"status": "in_progress"}); r.code != http.StatusPreconditionRequired {
		t.Fatalf("PATCH without If-Match: got %d, want 428", r.code)
	}
	if r := patch("inc-a1", apitest.TokAcmeAnalyst, `"1.7"`, map[string]any{"status": "in_progress"}); r.code != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with a stale ETag: got %d, want 412", r.code)
	} else if r.header.Get("ETag") != `"1.0"` {
		t.Errorf("412 carries ETag %s, want the current \"1.0\"", r.header.Get("ETag"))
	}

	r := patch("inc-a1", apitest.TokAcmeAnalyst, `"1.0"`, map[string]any{"status": "in_progress", "assignee": "me", "tags": []string{"ransomware", "ci"}, "severity_override": 5})
	if r.code != http.StatusOK {
		t.Fatalf("PATCH to in_progress: got %d %s, want 200", r.code, r.body)
	}
	d := detailOf(t, r)
	if d.Workflow.Status != "in_progress" || d.Workflow.Assignee != "alice" || !slices.Equal(d.Workflow.Tags, []string{"ransomware", "ci"}) || d.Severity != 5 {
		t.Errorf("got workflow %+v severity %d, want in_progress, alice, [ransomware ci], 5", d.Workflow, d.Severity)
	}
	etag1 := r.header.Get("ETag")
	if etag1 != `"1.1"` {
		t.Errorf("got ETag %s after the change, want \"1.1\"", etag1)
	}
	// The old ETag is now stale: a second analyst who read before loses.
	if r := patch("inc-a1", apitest.TokAcmeAnalyst2, `"1.0"`, map[string]any{"assignee": "me"}); r.code != http.StatusPreconditionFailed {
		t.Errorf("PATCH by a second analyst with the old ETag: got %d, want 412", r.code)
	}

	// The queue filters by what changed.
	for q, want := range map[string][]string{
		"assignee=me":                     {"inc-a1"},
		"assignee=alice":                  {"inc-a1"},
		"assignee=none":                   {"inc-a3", "inc-a2"},
		"tag=ransomware":                  {"inc-a1"},
		"status=in_progress":              {"inc-a1"},
		"status=new,on_hold":              {"inc-a3", "inc-a2"},
		"min_severity=5":                  {"inc-a1"},
		"sort=updated&order=desc&limit=1": {"inc-a1"},
	} {
		var p casework.IncidentPage
		e.get("/v1/incidents?"+q, apitest.TokAcmeAnalyst, &p)
		if got := ids(p.Items); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", q, got, want)
		}
	}
	var counts casework.IncidentPage
	e.get("/v1/incidents?status=in_progress", apitest.TokAcmeAnalyst, &counts)
	if counts.CountsByStatus["in_progress"] != 1 || counts.CountsByStatus["new"] != 2 {
		t.Errorf("got counts %v, want in_progress 1 and new 2 regardless of the status filter", counts.CountsByStatus)
	}

	// Invalid changes: every problem is reported at once.
	invalid := []struct {
		name string
		body any
		want []string
	}{
		{"back to new", map[string]any{"status": "new"}, []string{"cannot go from in_progress to new"}},
		{"closing without verdict and reason, unknown field", map[string]any{"status": "closed", "owner": "x"},
			[]string{"closing needs a verdict", "closing needs a reason", `unknown field "owner"`}},
		{"bad values", map[string]any{"status": "done", "severity_override": 9, "tags": []string{"ok", "no spaces"}, "verdict": "maybe"},
			[]string{`status "done" is not one of`, "severity_override", `tag "no spaces"`, `verdict "maybe"`}},
		{"verdict while not closing", map[string]any{"verdict": "true_positive", "reason": "x"}, []string{"only when closing or resolving"}},
		{"empty patch", map[string]any{}, []string{"the patch is empty"}},
		{"wrong types", map[string]any{"status": 3, "tags": "a,b", "assignee": []int{1}}, []string{"status must be a string", "tags must be an array", "assignee must be a string"}},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			r := patch("inc-a1", apitest.TokAcmeAnalyst, etag1, c.body)
			if r.code != http.StatusUnprocessableEntity {
				t.Fatalf("got %d %s, want 422", r.code, r.body)
			}
			p := r.problem(t)
			all := strings.Join(p.Errors, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("got errors %q, want one containing %q", p.Errors, w)
				}
			}
			if len(p.Errors) < len(c.want) {
				t.Errorf("got %d errors, want at least %d", len(p.Errors), len(c.want))
			}
		})
	}

	// Comment.
	r = e.do(http.MethodPost, "/v1/incidents/inc-a1/comments", apitest.TokAcmeAnalyst, map[string]string{"body": "Keys used from 198.51.100.9; rotating."}, "Idempotency-Key", "c-1")
	if r.code != http.StatusCreated {
		t.Fatalf("POST comment: got %d %s, want 201", r.code, r.body)
	}
	// A retry with the same key folds into the first comment.
	e.do(http.MethodPost, "/v1/incidents/inc-a1/comments", apitest.TokAcmeAnalyst, map[string]string{"body": "Keys used from 198.51.100.9; rotating."}, "Idempotency-Key", "c-1")
	var comments struct{ Items []casework.Comment }
	e.get("/v1/incidents/inc-a1/comments", apitest.TokAcmeViewer, &comments)
	if len(comments.Items) != 1 || comments.Items[0].Author != "alice" || !strings.Contains(comments.Items[0].Body, "rotating") {
		t.Errorf("got comments %+v, want alice's one comment", comments.Items)
	}

	// Close with a verdict, then reopen.
	r = patch("inc-a1", apitest.TokAcmeAnalyst, etag1, map[string]any{"status": "closed", "verdict": "true_positive", "reason": "confirmed pipeline poisoning; keys rotated"})
	if r.code != http.StatusOK {
		t.Fatalf("close with verdict: got %d %s, want 200", r.code, r.body)
	}
	d = detailOf(t, r)
	if d.Workflow.Status != "closed" || d.Workflow.Verdict != "true_positive" || d.Workflow.Reason == "" {
		t.Errorf("got workflow %+v, want closed true_positive with a reason", d.Workflow)
	}
	r = patch("inc-a1", apitest.TokAcmeAnalyst, r.header.Get("ETag"), map[string]any{"status": "in_progress", "reason": "new activity"})
	if r.code != http.StatusOK {
		t.Fatalf("reopen: got %d %s, want 200", r.code, r.body)
	}
	d = detailOf(t, r)
	if d.Workflow.Status != "in_progress" || d.Workflow.Verdict != "" {
		t.Errorf("reopened workflow %+v, want in_progress without a verdict", d.Workflow)
	}
	// Unassign with null (merge-patch semantics), sent as application/json.
	r = e.do(http.MethodPatch, "/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, `{"assignee": null, "tags": null}`, "If-Match", r.header.Get("ETag"))
	if r.code != http.StatusOK {
		t.Fatalf("unassign: got %d %s, want 200", r.code, r.body)
	}
	d = detailOf(t, r)
	if d.Workflow.Assignee != "" || len(d.Workflow.Tags) != 0 || d.Workflow.Status != "in_progress" {
		t.Errorf("got workflow %+v, want unassigned, no tags, still in_progress", d.Workflow)
	}

	// Merge inc-a3 into inc-a1.
	for _, c := range []struct {
		body any
		code int
	}{
		{map[string]string{"into": "inc-a3", "reason": "same"}, http.StatusUnprocessableEntity},
		{map[string]string{"into": "inc-b1", "reason": "other tenant"}, http.StatusUnprocessableEntity},
		{map[string]string{"into": "inc-a1"}, http.StatusUnprocessableEntity},
		{map[string]string{"into": "inc-a1", "reason": "same bucket and rule", "x": "y"}, http.StatusBadRequest},
	} {
		if r := e.do(http.MethodPost, "/v1/incidents/inc-a3/merge", apitest.TokAcmeAnalyst, c.body); r.code != c.code {
			t.Errorf("merge %v: got %d %s, want %d", c.body, r.code, r.body, c.code)
		}
	}
	if r := e.do(http.MethodPost, "/v1/incidents/inc-a3/merge", apitest.TokAcmeAnalyst, map[string]string{"into": "inc-a1", "reason": "same bucket and rule"}); r.code != http.StatusOK {
		t.Fatalf("merge: got %d %s, want 200", r.code, r.body)
	}
	r = e.get("/v1/incidents/inc-a3", apitest.TokAcmeAnalyst, nil)
	d = detailOf(t, r)
	if d.Workflow.Status != "merged" || d.Workflow.MergedInto != "inc-a1" {
		t.Errorf("merged incident: got workflow %+v, want merged into inc-a1", d.Workflow)
	}
	if r := patch("inc-a3", apitest.TokAcmeAnalyst, r.header.Get("ETag"), map[string]any{"status": "in_progress"}); r.code != http.StatusUnprocessableEntity {
		t.Errorf("PATCH of a merged incident: got %d, want 422", r.code)
	}
	if r := e.do(http.MethodPost, "/v1/incidents/inc-a3/merge", apitest.TokAcmeAnalyst, map[string]string{"into": "inc-a2", "reason": "again"}); r.code != http.StatusConflict {
		t.Errorf("merging a merged incident: got %d, want 409", r.code)
	}

	// The audit log has who, tenant, what, before/after and the request id,
	// including the refused attempts.
	r = e.do(http.MethodPatch, "/v1/incidents/inc-a2", apitest.TokAcmeAnalyst, map[string]any{"status": "on_hold"}, "If-Match", `"1.0"`, "X-Request-Id", "req-audit-1")
	if r.code != http.StatusOK || r.header.Get("X-Request-Id") != "req-audit-1" {
		t.Fatalf("PATCH inc-a2: got %d with request id %q, want 200 and req-audit-1", r.code, r.header.Get("X-Request-Id"))
	}
	var audit struct{ Items []casework.AuditEntry }
	e.get("/v1/audit?incident_id=inc-a2", apitest.TokAcmeAdmin, &audit)
	found := false
	for _, a := range audit.Items {
		var det struct {
			RequestID     string `json:"request_id"`
			Status        int
			Before, After casework.Workflow
		}
		_ = json.Unmarshal(a.Details, &det)
		if a.Action == "api.incident.update" && det.RequestID == "req-audit-1" {
			found = true
			if a.Actor != "alice" || a.TenantUID != "acme" || det.Before.Status != "new" || det.After.Status != "on_hold" || det.Status != 200 {
				t.Errorf("got audit entry %+v %+v, want alice in acme, new → on_hold, 200", a, det)
			}
		}
	}
	if !found {
		t.Errorf("no api.incident.update entry with request id req-audit-1 in %+v", audit.Items)
	}
	e.get("/v1/audit?incident_id=inc-a1&action=api.incident.update", apitest.TokAcmeAdmin, &audit)
	statuses := map[int]int{}
	for _, a := range audit.Items {
		var det struct{ Status int }
		_ = json.Unmarshal(a.Details, &det)
		statuses[det.Status]++
	}
	if statuses[http.StatusPreconditionRequired] != 1 || statuses[http.StatusPreconditionFailed] != 2 || statuses[http.StatusOK] != 4 {
		t.Errorf("got audited inc-a1 updates by status %v, want 428: 1, 412: 2, 200: 4", statuses)
	}
	e.get("/v1/audit?action=api.incident.comment", apitest.TokAcmeAdmin, &audit)
	if len(audit.Items) != 2 {
		t.Errorf("got %d audited comment requests, want 2 (the retry is a request too)", len(audit.Items))
	}
	// Every merge request is audited, the refused ones too.
	e.get("/v1/audit?action=api.incident.merge", apitest.TokAcmeAdmin, &audit)
	mergeStatuses := map[int]int{}
	for _, a := range audit.Items {
		var det struct{ Status int }
		_ = json.Unmarshal(a.Details, &det)
		mergeStatuses[det.Status]++
		if a.IncidentID != "inc-a3" {
			t.Errorf("got merge audit entry for %q, want inc-a3", a.IncidentID)
		}
	}
	if want := map[int]int{200: 1, 400: 1, 409: 1, 422: 3}; !maps.Equal(mergeStatuses, want) {
		t.Errorf("got audited merge requests by status %v, want %v", mergeStatuses, want)
	}
	// Analysts cannot read the audit log.
	if r := e.do(http.MethodGet, "/v1/audit", apitest.TokAcmeAnalyst, nil); r.code != http.StatusForbidden {
		t.Errorf("GET /v1/audit as analyst: got %d, want 403", r.code)
	}
}

// TestAPIViewerCannotChange: a viewer reads but changes nothing, and every
// refused attempt is audited.
func TestAPIViewerCannotChange(t *testing.T) {
	e := newAPIEnv(t)
	attempts := []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, "/v1/incidents/inc-a1", map[string]any{"status": "closed", "verdict": "false_positive", "reason": "x"}},
		{http.MethodPost, "/v1/incidents/inc-a1/comments", map[string]string{"body": "hi"}},
		{http.MethodPost, "/v1/incidents/inc-a1/merge", map[string]string{"into": "inc-a2", "reason": "x"}},
		{http.MethodPost, "/-/reload", nil},
		{http.MethodPost, "/v1/admin/tokens", map[string]any{"name": "x", "role": "admin", "tenants": []string{"acme"}}},
		{http.MethodDelete, "/v1/admin/tokens/tok_0000000000000000", nil},
		{http.MethodGet, "/v1/admin/tokens", nil},
		{http.MethodGet, "/v1/admin/tenants", nil},
		{http.MethodGet, "/v1/audit", nil},
	}
	for _, a := range attempts {
		t.Run(a.method+" "+a.path, func(t *testing.T) {
			r := e.do(a.method, a.path, apitest.TokAcmeViewer, a.body, "If-Match", `"1.0"`)
			if r.code != http.StatusForbidden {
				t.Fatalf("got %d %s, want 403", r.code, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, "role") {
				t.Errorf("got detail %q, want it to name the role needed", p.Detail)
			}
		})
	}
	// Analysts cannot administer either.
	for _, a := range attempts[3:] {
		if r := e.do(a.method, a.path, apitest.TokAcmeAnalyst, a.body); r.code != http.StatusForbidden {
			t.Errorf("%s %s as analyst: got %d, want 403", a.method, a.path, r.code)
		}
	}
	if e.rules.reloads != 0 {
		t.Errorf("got %d reloads, want 0", e.rules.reloads)
	}
	// Unauthenticated and expired tokens: 401.
	for _, tok := range []string{"", "not-a-token", apitest.TokExpired} {
		if r := e.do(http.MethodPatch, "/v1/incidents/inc-a1", tok, map[string]any{"status": "closed"}); r.code != http.StatusUnauthorized {
			t.Errorf("PATCH with token %q: got %d, want 401", tok, r.code)
		} else if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeViewer, &d)
	if d.Workflow.Version != 0 || d.Workflow.Status != "new" {
		t.Errorf("after the refused attempts: got workflow %+v, want untouched", d.Workflow)
	}
	var comments struct{ Items []casework.Comment }
	e.get("/v1/incidents/inc-a1/comments", apitest.TokAcmeViewer, &comments)
	if len(comments.Items) != 0 {
		t.Errorf("got %d comments, want 0", len(comments.Items))
	}
	// Refusals are audited: the viewer's under acme, anonymous ones under
	// the global tenant that only every-tenant admins see.
	var audit struct{ Items []casework.AuditEntry }
	e.get("/v1/audit?action=api.denied&actor=victor", apitest.TokAcmeAdmin, &audit)
	if len(audit.Items) != 6 {
		t.Errorf("got %d audited refusals of the viewer's state-changing requests, want 6", len(audit.Items))
	}
	e.get("/v1/audit?action=api.denied&actor=anonymous", apitest.TokRootAdmin, &audit)
	if len(audit.Items) != 3 {
		t.Errorf("got %d audited anonymous refusals, want 3", len(audit.Items))
	}
	e.get("/v1/audit?action=api.denied&actor=anonymous", apitest.TokAcmeAdmin, &audit)
	if len(audit.Items) != 0 {
		t.Errorf("a single-tenant admin sees %d global entries, want 0", len(audit.Items))
	}
}

// TestAPITenantIsolation: a token of one tenant neither sees nor changes
// another's data, on every endpoint.
func TestAPITenantIsolation(t *testing.T) {
	e := newAPIEnv(t)
	var page casework.IncidentPage
	e.get("/v1/incidents", apitest.TokGlobexAnalyst, &page)
	if got := ids(page.Items); !slices.Equal(got, []string{"inc-b1"}) {
		t.Errorf("globex queue: got %v, want [inc-b1]", got)
	}
	for _, q := range []string{"q=inc-a1", "entity_type=bucket&entity_value=artifacts&status=new", "account=" + apitest.AcmeAccount, "rule=aws.iam.policy"} {
		var p casework.IncidentPage
		e.get("/v1/incidents?"+q, apitest.TokGlobexAnalyst, &p)
		for _, in := range p.Items {
			if in.TenantUID != "globex" {
				t.Errorf("%s: globex sees %s of %s", q, in.ID, in.TenantUID)
			}
		}
	}
	acmeID := "inc-a1"
	notFound := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/incidents/" + acmeID, nil},
		{http.MethodGet, "/v1/incidents/" + acmeID + "/comments", nil},
		{http.MethodPatch, "/v1/incidents/" + acmeID, map[string]any{"status": "in_progress"}},
		{http.MethodPost, "/v1/incidents/" + acmeID + "/comments", map[string]string{"body": "hello from globex"}},
		{http.MethodPost, "/v1/incidents/" + acmeID + "/merge", map[string]string{"into": "inc-b1", "reason": "x"}},
	}
	for _, c := range notFound {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := e.do(c.method, c.path, apitest.TokGlobexAnalyst, c.body, "If-Match", `"1.0"`)
			if r.code != http.StatusNotFound {
				t.Fatalf("got %d %s, want 404", r.code, r.body)
			}
			// Exactly like an id that does not exist.
			missing := e.do(c.method, strings.Replace(c.path, acmeID, "inc-nope", 1), apitest.TokGlobexAnalyst, c.body, "If-Match", `"1.0"`)
			if pa, pb := r.problem(t), missing.problem(t); pa.Detail != pb.Detail || missing.code != r.code {
				t.Errorf("another tenant's id answers %d %q, a missing id %d %q; want the same", r.code, pa.Detail, missing.code, pb.Detail)
			}
		})
	}
	// Merging into another tenant's incident is refused as not found.
	if r := e.do(http.MethodPost, "/v1/incidents/inc-b1/merge", apitest.TokGlobexAnalyst, map[string]string{"into": acmeID, "reason": "x"}); r.code != http.StatusUnprocessableEntity {
		t.Errorf("merge into acme's incident: got %d, want 422", r.code)
	}
	// The tenant parameter cannot widen the scope.
	if r := e.do(http.MethodGet, "/v1/incidents?tenant=acme", apitest.TokGlobexAnalyst, nil); r.code != http.StatusBadRequest {
		t.Errorf("tenant=acme as globex: got %d, want 400", r.code)
	}
	// Entity pivot: the shared bucket shows only globex's incident, alerts, events.
	var act casework.EntityActivity
	e.get("/v1/entities/bucket/artifacts", apitest.TokGlobexAnalyst, &act)
	if got := ids(act.Incidents); !slices.Equal(got, []string{"inc-b1"}) || len(act.Alerts) != 1 || len(act.Events) != 1 {
		t.Errorf("globex pivot: got incidents %v, %d alerts, %d events; want [inc-b1], 1, 1", got, len(act.Alerts), len(act.Events))
	}
	e.get("/v1/entities/object/artifacts/releases/app.zip", apitest.TokAcmeViewer, &act)
	if len(act.Events) != 5 || act.Value != "artifacts/releases/app.zip" {
		t.Errorf("acme pivot on an object with slashes: got %d events for %q, want 5", len(act.Events), act.Value)
	}
	for _, ev := range act.Events {
		if !strings.HasPrefix(ev.ID, "ev-a") {
			t.Errorf("acme pivot shows event %s", ev.ID)
		}
	}
	// acme's incident is untouched.
	var d casework.IncidentDetail
	e.get("/v1/incidents/"+acmeID, apitest.TokAcmeAnalyst, &d)
	if d.Workflow.Version != 0 {
		t.Errorf("acme's incident changed: %+v", d.Workflow)
	}
	var comments struct{ Items []casework.Comment }
	e.get("/v1/incidents/"+acmeID+"/comments", apitest.TokAcmeAnalyst, &comments)
	if len(comments.Items) != 0 {
		t.Errorf("acme's incident got comments: %+v", comments.Items)
	}
	// Admin endpoints are scoped too.
	var tenants struct{ Items []api.Tenant }
	e.get("/v1/admin/tenants", apitest.TokGlobexAdmin, &tenants)
	if len(tenants.Items) != 1 || tenants.Items[0].ID != "globex" || !slices.Equal(tenants.Items[0].Accounts, []string{apitest.GlobexAccount}) {
		t.Errorf("globex admin tenants: got %+v", tenants.Items)
	}
	var toks struct{ Items []struct{ ID, Name string } }
	e.get("/v1/admin/tokens", apitest.TokGlobexAdmin, &toks)
	var names []string
	for _, tk := range toks.Items {
		names = append(names, tk.Name)
	}
	if !slices.Equal(names, []string{"gina", "gus"}) {
		t.Errorf("globex admin sees tokens %v, want [gina gus]", names)
	}
	if r := e.do(http.MethodPost, "/v1/admin/tokens", apitest.TokGlobexAdmin, map[string]any{"name": "sneaky", "role": "admin", "tenants": []string{"acme"}}); r.code != http.StatusUnprocessableEntity {
		t.Errorf("globex admin creating an acme token: got %d, want 422", r.code)
	}
	var all struct{ Items []struct{ ID, Name string } }
	e.get("/v1/admin/tokens", apitest.TokRootAdmin, &all)
	for _, tk := range all.Items {
		if tk.Name == "alice" {
			if r := e.do(http.MethodDelete, "/v1/admin/tokens/"+tk.ID, apitest.TokGlobexAdmin, nil); r.code != http.StatusNotFound {
				t.Errorf("globex admin deleting acme's token: got %d, want 404", r.code)
			}
		}
	}
	// Comment on globex's own incident, then the audit views differ.
	e.do(http.MethodPost, "/v1/incidents/inc-b1/comments", apitest.TokGlobexAnalyst, map[string]string{"body": "ours"})
	var audit struct{ Items []casework.AuditEntry }
	e.get("/v1/audit", apitest.TokAcmeAdmin, &audit)
	for _, a := range audit.Items {
		if a.TenantUID != "acme" {
			t.Errorf("acme admin sees audit entry of %s: %+v", a.TenantUID, a)
		}
	}
	e.get("/v1/audit?tenant=globex", apitest.TokGlobexAdmin, &audit)
	if len(audit.Items) == 0 {
		t.Errorf("globex admin sees no audit entries of globex")
	}
	if r := e.do(http.MethodGet, "/v1/audit?tenant=acme", apitest.TokGlobexAdmin, nil); r.code != http.StatusBadRequest {
		t.Errorf("globex admin asking for acme's audit: got %d, want 400", r.code)
	}
}

// TestAPITokens: an admin creates a token, whose secret is shown once and
// works at once; listing never shows secrets; deleting revokes it.
func TestAPITokens(t *testing.T) {
	e := newAPIEnv(t)
	r := e.do(http.MethodPost, "/v1/admin/tokens", apitest.TokAcmeAdmin, map[string]any{"name": "carol", "role": "analyst", "tenants": []string{"acme"},
		"expires_at": e.now.Add(24 * time.Hour).Format(time.RFC3339)})
	if r.code != http.StatusCreated {
		t.Fatalf("create token: got %d %s, want 201", r.code, r.body)
	}
	var created struct{ ID, Secret, Name string }
	_ = json.Unmarshal(r.body, &created)
	if !strings.HasPrefix(created.Secret, "msb_") || created.ID == "" {
		t.Fatalf("got %+v, want an id and a msb_ secret", created)
	}
	var p casework.IncidentPage
	e.get("/v1/incidents", created.Secret, &p)
	if len(p.Items) != 3 {
		t.Errorf("the new token sees %d incidents, want acme's 3", len(p.Items))
	}
	list := e.get("/v1/admin/tokens", apitest.TokAcmeAdmin, nil)
	if strings.Contains(string(list.body), created.Secret) || strings.Contains(string(list.body), "secret") {
		t.Errorf("the token list shows secrets: %s", list.body)
	}
	if !strings.Contains(string(list.body), created.ID) {
		t.Errorf("the token list lacks the new token %s", created.ID)
	}
	bad := []struct {
		body any
		want []string
	}{
		{map[string]any{"name": "x y", "role": "root", "tenants": []string{}}, []string{"name", "role", "tenants must name"}},
		{map[string]any{"name": "dave", "role": "viewer", "tenants": []string{"nope"}}, []string{`tenant "nope" does not exist`}},
		{map[string]any{"name": "dave", "role": "viewer", "tenants": []string{"*"}}, []string{"only be scoped to tenants"}},
		{map[string]any{"name": "dave", "role": "viewer", "tenants": []string{"acme"}, "expires_at": "2001-01-01T00:00:00Z"}, []string{"expires_at is in the past"}},
	}
	for _, b := range bad {
		r := e.do(http.MethodPost, "/v1/admin/tokens", apitest.TokAcmeAdmin, b.body)
		if r.code != http.StatusUnprocessableEntity {
			t.Errorf("create %v: got %d, want 422", b.body, r.code)
			continue
		}
		all := strings.Join(r.problem(t).Errors, "\n")
		for _, w := range b.want {
			if !strings.Contains(all, w) {
				t.Errorf("create %v: got errors %q, want one containing %q", b.body, all, w)
			}
		}
	}
	if r := e.do(http.MethodDelete, "/v1/admin/tokens/"+created.ID, apitest.TokAcmeAdmin, nil); r.code != http.StatusNoContent {
		t.Fatalf("delete token: got %d %s, want 204", r.code, r.body)
	}
	if r := e.do(http.MethodGet, "/v1/incidents", created.Secret, nil); r.code != http.StatusUnauthorized {
		t.Errorf("a deleted token: got %d, want 401", r.code)
	}
	var audit struct{ Items []casework.AuditEntry }
	e.get("/v1/audit?actor=ada", apitest.TokAcmeAdmin, &audit)
	var actions []string
	for _, a := range audit.Items {
		actions = append(actions, a.Action)
		if strings.Contains(string(a.Details), created.Secret) {
			t.Errorf("the audit log holds the secret")
		}
	}
	if !slices.Contains(actions, "api.token.create") || !slices.Contains(actions, "api.token.delete") {
		t.Errorf("got audited actions %v, want token create and delete", actions)
	}
	// Tokens created through the API survive a restart; deleted ones stay
	// deleted; the secret itself is never stored.
	r = e.do(http.MethodPost, "/v1/admin/tokens", apitest.TokRootAdmin, map[string]any{"name": "erin", "role": "viewer", "tenants": []string{"globex"}})
	var kept struct{ ID, Secret string }
	_ = json.Unmarshal(r.body, &kept)
	first := e.url
	e.url = e.server(true)
	var gp casework.IncidentPage
	e.get("/v1/incidents", kept.Secret, &gp)
	if got := ids(gp.Items); !slices.Equal(got, []string{"inc-b1"}) {
		t.Errorf("the restored token sees %v, want globex's [inc-b1]", got)
	}
	if r := e.do(http.MethodGet, "/v1/incidents", created.Secret, nil); r.code != http.StatusUnauthorized {
		t.Errorf("a deleted token after a restart: got %d, want 401", r.code)
	}
	if r := e.do(http.MethodDelete, "/v1/admin/tokens/"+kept.ID, apitest.TokRootAdmin, nil); r.code != http.StatusNoContent {
		t.Fatalf("delete the restored token: got %d %s, want 204", r.code, r.body)
	}
	e.url = e.server(true)
	if r := e.do(http.MethodGet, "/v1/incidents", kept.Secret, nil); r.code != http.StatusUnauthorized {
		t.Errorf("a token deleted on the restarted server, after another restart: got %d, want 401", r.code)
	}
	e.url = first

	// Reload changes the rules of every tenant: only an admin of every
	// tenant may; it is audited.
	if r := e.do(http.MethodPost, "/-/reload", apitest.TokAcmeAdmin, nil); r.code != http.StatusForbidden || e.rules.reloads != 0 {
		t.Errorf("reload by a tenant admin: got %d with %d reloads, want 403 and 0", r.code, e.rules.reloads)
	}
	if r := e.do(http.MethodPost, "/-/reload", apitest.TokRootAdmin, nil); r.code != http.StatusOK || e.rules.reloads != 1 {
		t.Errorf("reload: got %d with %d reloads, want 200 and 1", r.code, e.rules.reloads)
	}
	e.get("/v1/audit?action=api.rules.reload", apitest.TokRootAdmin, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Actor != "root" {
		t.Errorf("got reload audit %+v, want root's reload", audit.Items)
	}
}

// TestAPIHostileInput: injection attempts and oversized inputs get a 4xx
// with a clear message, never a 500, and never another tenant's data.
func TestAPIHostileInput(t *testing.T) {
	e := newAPIEnv(t)
	huge := strings.Repeat("A", 256<<10)
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		code               int
		detail             string // a substring of the detail or one of the errors
	}{
		{"sql in tag", "GET", "/v1/incidents?tag=" + url.QueryEscape("x' OR 1=1 --"), nil, nil, 400, "tag"},
		{"sql in rule", "GET", "/v1/incidents?rule=" + url.QueryEscape("a'); DROP TABLE incidents; --"), nil, nil, 400, "rule"},
		{"sql in sort", "GET", "/v1/incidents?sort=" + url.QueryEscape("last_seen; DROP TABLE incidents"), nil, nil, 400, "sort"},
		{"sql in order", "GET", "/v1/incidents?order=" + url.QueryEscape("desc, (SELECT 1)"), nil, nil, 400, "order"},
		{"sql in status", "GET", "/v1/incidents?status=" + url.QueryEscape("new' OR '1'='1"), nil, nil, 400, "status"},
		{"sql in account", "GET", "/v1/incidents?account=" + url.QueryEscape("1 OR 1=1"), nil, nil, 400, "account"},
		{"sql in assignee", "GET", "/v1/incidents?assignee=" + url.QueryEscape("' OR ''='"), nil, nil, 400, "assignee"},
		{"sql in entity type", "GET", "/v1/incidents?entity_type=" + url.QueryEscape("ip' --") + "&entity_value=x", nil, nil, 400, "entity_type"},
		{"sql in tenant", "GET", "/v1/incidents?tenant=" + url.QueryEscape("acme' OR 1=1"), nil, nil, 400, "tenant"},
		{"forged cursor", "GET", "/v1/incidents?cursor=eyJzIjoibGFzdF9zZWVuIiwiZCI6dHJ1ZSwidiI6IjsgRFJPUCJ9", nil, nil, 400, "cursor"},
		{"cursor garbage", "GET", "/v1/incidents?cursor=" + url.QueryEscape("'; DROP TABLE x;"), nil, nil, 400, "cursor"},
		{"evidence cursor garbage", "GET", "/v1/incidents/inc-a1?evidence_cursor=Zm9v", nil, nil, 400, "cursor"},
		{"huge limit", "GET", "/v1/incidents?limit=99999999999999999999999", nil, nil, 400, "limit"},
		{"negative limit", "GET", "/v1/incidents?limit=-1", nil, nil, 400, "limit"},
		{"page size over max", "GET", "/v1/incidents?limit=501", nil, nil, 400, "limit"},
		{"unknown parameter", "GET", "/v1/incidents?where=1", nil, nil, 400, "unknown parameter"},
		{"time range too long", "GET", "/v1/incidents?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", nil, nil, 400, "time range"},
		{"from in the far past", "GET", "/v1/incidents?from=0001-01-01T00:00:00Z", nil, nil, 400, "outside"},
		{"to in the far future", "GET", "/v1/incidents?to=9999-12-31T23:59:59Z", nil, nil, 400, "outside"},
		{"from without to, too long ago", "GET", "/v1/incidents?from=2001-01-01T00:00:00Z", nil, nil, 400, "time range"},
		{"bad time", "GET", "/v1/incidents?from=yesterday", nil, nil, 400, "RFC 3339"},
		{"control chars in q", "GET", "/v1/incidents?q=" + url.QueryEscape("a\x00b"), nil, nil, 400, "control"},
		{"invalid utf-8 in q", "GET", "/v1/incidents?q=%ff%fe", nil, nil, 400, "UTF-8"},
		{"long q", "GET", "/v1/incidents?q=" + strings.Repeat("x", 300), nil, nil, 400, "longer"},
		{"path traversal id", "GET", "/v1/incidents/..%2F..%2Fetc%2Fpasswd", nil, nil, 400, "incident id"},
		{"unicode id", "GET", "/v1/incidents/" + url.PathEscape("inc-ä1"), nil, nil, 400, "incident id"},
		{"quote id", "GET", "/v1/incidents/" + url.PathEscape("a' OR '1'='1"), nil, nil, 400, "incident id"},
		{"long id", "GET", "/v1/incidents/" + strings.Repeat("a", 200), nil, nil, 400, "incident id"},
		{"entity type unknown", "GET", "/v1/entities/" + url.PathEscape("ip'--") + "/1.2.3.4", nil, nil, 400, "entity type"},
		{"entity value control", "GET", "/v1/entities/ip/%00", nil, nil, 400, "control"},
		{"entity range reversed", "GET", "/v1/entities/ip/1.2.3.4?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", nil, nil, 400, "before"},
		{"audit sql", "GET", "/v1/audit?actor=" + url.QueryEscape("x' OR 1=1"), nil, []string{"Authorization", "Bearer " + apitest.TokAcmeAdmin}, 400, "actor"},
		{"body over 1 MiB", "PATCH", "/v1/incidents/inc-a1", `{"reason":"` + strings.Repeat("x", 1<<20+10) + `"}`, []string{"If-Match", `"1.0"`}, 413, "larger"},
		{"comment over 1 MiB", "POST", "/v1/incidents/inc-a1/comments", `{"body":"` + strings.Repeat("x", 1<<20+10) + `"}`, nil, 413, "larger"},
		{"comment too long", "POST", "/v1/incidents/inc-a1/comments", map[string]string{"body": strings.Repeat("x", 20000)}, nil, 422, "longer"},
		{"comment empty", "POST", "/v1/incidents/inc-a1/comments", map[string]string{"body": "  "}, nil, 422, "empty"},
		{"comment unknown field", "POST", "/v1/incidents/inc-a1/comments", `{"body":"x","author":"mallory"}`, nil, 400, "unknown field"},
		{"comment not json", "POST", "/v1/incidents/inc-a1/comments", `{"body":`, nil, 400, "malformed"},
		{"comment two values", "POST", "/v1/incidents/inc-a1/comments", `{"body":"x"}{"body":"y"}`, nil, 400, "more than one"},
		{"comment wrong type", "POST", "/v1/incidents/inc-a1/comments", `{"body":42}`, nil, 400, "body must be"},
		{"comment text/plain", "POST", "/v1/incidents/inc-a1/comments", `{"body":"x"}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type"},
		{"patch not an object", "PATCH", "/v1/incidents/inc-a1", `["status"]`, []string{"If-Match", `"1.0"`}, 400, "JSON object"},
		{"patch huge number", "PATCH", "/v1/incidents/inc-a1", `{"severity_override": 1e999}`, []string{"If-Match", `"1.0"`}, 422, "severity_override"},
		{"patch sql status", "PATCH", "/v1/incidents/inc-a1", `{"status":"closed'); DROP TABLE workflow; --"}`, []string{"If-Match", `"1.0"`}, 422, "status"},
		{"if-match garbage", "PATCH", "/v1/incidents/inc-a1", `{"status":"in_progress"}`, []string{"If-Match", `"1.0' OR 1=1"`}, 400, "If-Match"},
		{"if-match star", "PATCH", "/v1/incidents/inc-a1", `{"status":"in_progress"}`, []string{"If-Match", `*`}, 400, "If-Match"},
		{"idempotency key sql", "POST", "/v1/incidents/inc-a1/comments", map[string]string{"body": "x"}, []string{"Idempotency-Key", "a' OR 1=1"}, 400, "Idempotency-Key"},
		{"header too large", "GET", "/v1/incidents", nil, []string{"X-Padding", huge}, 431, ""},
		{"authorization too long", "GET", "/v1/incidents", nil, []string{"Authorization", "Bearer " + strings.Repeat("x", 1000)}, 401, "malformed"},
		{"wrong scheme", "GET", "/v1/incidents", nil, []string{"Authorization", "Basic YWxpY2U6cGFzcw=="}, 401, "Bearer"},
		{"dot-dot path", "GET", "/v1/incidents/inc-a1/../../admin", nil, nil, 400, "not canonical"},
		{"dot-dot path, PATCH", "PATCH", "/v1/incidents/../incidents/inc-a1", `{"status":"closed"}`, []string{"If-Match", `"1.0"`}, 400, "not canonical"},
		{"dot path", "GET", "/v1/./incidents", nil, nil, 400, "not canonical"},
		{"double slash", "GET", "/v1//incidents", nil, nil, 400, "not canonical"},
		{"unknown route", "GET", "/v1/admin", nil, nil, 404, "no such endpoint"},
		{"unknown endpoint", "GET", "/v1/nothing", nil, nil, 404, "no such endpoint"},
		{"method not allowed", "DELETE", "/v1/incidents/inc-a1", nil, nil, 405, "not allowed"},
		{"token name sql", "POST", "/v1/admin/tokens", map[string]any{"name": "x'; --", "role": "viewer", "tenants": []string{"acme"}}, []string{"Authorization", "Bearer " + apitest.TokAcmeAdmin}, 422, "name"},
		{"token id traversal", "DELETE", "/v1/admin/tokens/..%2f..%2f", nil, []string{"Authorization", "Bearer " + apitest.TokAcmeAdmin}, 400, "token id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := append([]string{"Authorization", "Bearer " + apitest.TokAcmeAnalyst}, c.headers...)
			r := e.do(c.method, c.path, "", c.body, h...)
			if r.code != c.code {
				t.Fatalf("got %d %.300s, want %d", r.code, r.body, c.code)
			}
			if r.code == http.StatusRequestHeaderFieldsTooLarge || r.code == http.StatusNotFound && c.detail == "" {
				return // answered by net/http or path cleaning
			}
			p := r.problem(t)
			msg := p.Detail + "\n" + strings.Join(p.Errors, "\n")
			if !strings.Contains(msg, c.detail) {
				t.Errorf("got problem %q %q, want it to mention %q", p.Detail, p.Errors, c.detail)
			}
			if p.Status != c.code || p.RequestID == "" || p.Title == "" {
				t.Errorf("got problem %+v, want status %d, a title and a request id", p, c.code)
			}
			if len(r.body) > 4096 {
				t.Errorf("the problem is %d bytes; it must not echo huge input", len(r.body))
			}
		})
	}
	// Free text is bound, not spliced: SQL in q finds nothing and leaks nothing.
	for _, q := range []string{"' OR 1=1 --", `") OR ("1"="1`, "inc-b1", "%' UNION SELECT * FROM system.tables --", "🦀 \u202e"} {
		var p casework.IncidentPage
		e.get("/v1/incidents?q="+url.QueryEscape(q), apitest.TokAcmeAnalyst, &p)
		if len(p.Items) != 0 {
			t.Errorf("q=%q: got %v, want nothing", q, ids(p.Items))
		}
	}
	var p casework.IncidentPage
	e.get("/v1/incidents?entity_type=ip&entity_value="+url.QueryEscape("1' OR '1'='1"), apitest.TokAcmeAnalyst, &p)
	if len(p.Items) != 0 {
		t.Errorf("entity_value injection: got %v, want nothing", ids(p.Items))
	}
	// A hostile X-Request-Id is replaced, not echoed.
	r := e.do("GET", "/healthz", "", nil, "X-Request-Id", "abc\"><script>")
	if got := r.header.Get("X-Request-Id"); strings.ContainsAny(got, `"<>`) {
		t.Errorf("got request id %q, want a fresh one", got)
	}
	// Nothing above changed the data.
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, &d)
	if d.Workflow.Version != 0 {
		t.Errorf("hostile requests changed inc-a1: %+v", d.Workflow)
	}
	var comments struct{ Items []casework.Comment }
	e.get("/v1/incidents/inc-a1/comments", apitest.TokAcmeAnalyst, &comments)
	if len(comments.Items) != 0 {
		t.Errorf("hostile requests added comments: %+v", comments.Items)
	}
}

// TestAPIOpenAPIServed: the contract is served at /v1/openapi.json and
// documents every route of the server (api.TestOpenAPIRoutes checks the
// reverse).
func TestAPIOpenAPIServed(t *testing.T) {
	e := newAPIEnv(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	e.get("/v1/openapi.json", "", &doc)
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) == 0 {
		t.Fatalf("got openapi %q with %d paths, want 3.1.0 with paths", doc.OpenAPI, len(doc.Paths))
	}
	fmt.Fprint(io.Discard, doc.Paths)
}

// TestAPIEvidencePages: an incident with more evidence than one page is
// read page by page through next_evidence_cursor.
func TestAPIEvidencePages(t *testing.T) {
	e := newAPIEnv(t)
	base := e.now.Add(-time.Hour)
	var evs []ocsf.Event
	var evIDs []string
	for i := range 130 {
		var ev ocsf.Event
		ev.SetClass(ocsf.ClassAPIActivity, 1, "Create")
		ev.Time = base.Add(time.Duration(i) * time.Second).UnixMilli()
		ev.Metadata.UID, ev.Metadata.TenantUID, ev.Metadata.LogName = fmt.Sprintf("ev-big-%03d", i), "acme", "cloudtrail"
		ev.Cloud.Account.UID = apitest.AcmeAccount
		evs = append(evs, ev)
		evIDs = append(evIDs, ev.Metadata.UID)
	}
	a := alert.Alert{ID: "al-big", TenantUID: "acme", RuleID: "aws.s3.mass_get", RuleVersion: "1", Title: "mass read", Severity: ocsf.SeverityMedium,
		Time: evs[len(evs)-1].Time, AccountUID: apitest.AcmeAccount, Source: "cloudtrail", EventIDs: evIDs}
	in := incident.Incident{ID: "inc-big", Version: 1, TenantUID: "acme", Title: "mass read", Severity: ocsf.SeverityMedium, Status: "new",
		FirstSeen: a.Time, LastSeen: a.Time, AlertIDs: []string{a.ID}, RuleIDs: []string{a.RuleID}, Accounts: []string{apitest.AcmeAccount}}
	if err := e.store.Write(context.Background(), storage.Batch{Events: evs, Alerts: []alert.Alert{a}, Incidents: []incident.Incident{in}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	cursor, pages := "", 0
	for {
		var d casework.IncidentDetail
		e.get("/v1/incidents/inc-big?evidence_cursor="+cursor, apitest.TokAcmeViewer, &d)
		pages++
		for _, ev := range d.Evidence {
			got = append(got, ev.ID)
		}
		if cursor = d.NextEvidenceCursor; cursor == "" || pages > 5 {
			break
		}
	}
	if pages != 2 || !slices.Equal(got, evIDs) {
		t.Errorf("got %d evidence events in %d pages, want all %d in 2 pages, in time order", len(got), pages, len(evIDs))
	}
	// Another tenant's token cannot use the cursor either: it is bound to
	// the tenants it was issued to (400, the same whether or not the
	// incident exists), and without it the incident is not found.
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-big", apitest.TokAcmeViewer, &d)
	if r := e.do(http.MethodGet, "/v1/incidents/inc-big?evidence_cursor="+d.NextEvidenceCursor, apitest.TokGlobexAnalyst, nil); r.code != http.StatusBadRequest {
		t.Errorf("globex with acme's evidence cursor: got %d, want 400", r.code)
	}
	if r := e.do(http.MethodGet, "/v1/incidents/inc-big", apitest.TokGlobexAnalyst, nil); r.code != http.StatusNotFound {
		t.Errorf("globex reading acme's incident: got %d, want 404", r.code)
	}
}
