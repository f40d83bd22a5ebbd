package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// fakeStore satisfies Store for tests that never reach storage.
type fakeStore struct{ Store }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type fakeRules struct{}

func (fakeRules) Rules() []RuleInfo { return nil }
func (fakeRules) Reload() error     { return nil }

func newTestServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{Store: fakeStore{}, Rules: fakeRules{}, Ready: func(context.Context) error { return nil },
		Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenAPIRoutes checks the OpenAPI document against the real routes:
// every route is documented with its method, every documented operation
// is routed.
func TestOpenAPIRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("got openapi %q, want 3.1.0", doc.OpenAPI)
	}
	// The documented operations as "METHOD /path" with {value...} spelled {value}.
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if op["responses"] == nil || op["operationId"] == nil {
				t.Errorf("%s %s: no operationId or responses", method, path)
			}
		}
	}
	var routed []string
	for _, r := range newTestServer(t).Routes() {
		routed = append(routed, strings.ReplaceAll(r, "...}", "}"))
	}
	slices.Sort(documented)
	slices.Sort(routed)
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not documented in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.json documents %s, which is not routed", d)
		}
	}
	if len(routed) < 18 {
		t.Errorf("got %d routes, want at least 18", len(routed))
	}
}

// TestOpenAPIRefs checks that every $ref of the document resolves.
func TestOpenAPIRefs(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				var node any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, ok := node.(map[string]any)
					if !ok {
						node = nil
						break
					}
					node = m[part]
				}
				if node == nil {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
}

// TestRoutesNeedRoles checks the role table: what each role may call.
func TestRoutesNeedRoles(t *testing.T) {
	s := newTestServer(t)
	want := map[string]Role{
		"GET /healthz": "", "GET /readyz": "", "GET /metrics": "", "GET /v1/openapi.json": "",
		"GET /v1/incidents": RoleViewer, "GET /v1/incidents/{id}": RoleViewer, "GET /v1/incidents/{id}/comments": RoleViewer,
		"GET /v1/entities/{type}/{value...}": RoleViewer, "GET /v1/rules": RoleViewer, "GET /v1/rules/shadow": RoleViewer, "GET /v1/me": RoleViewer,
		"PATCH /v1/incidents/{id}": RoleAnalyst, "POST /v1/incidents/{id}/comments": RoleAnalyst, "POST /v1/incidents/{id}/merge": RoleAnalyst,
		"PATCH /v1/incidents/{id}/comments/{comment_id}": RoleAnalyst, "DELETE /v1/incidents/{id}/comments/{comment_id}": RoleAnalyst,
		"POST /v1/incidents/bulk":          RoleAnalyst,
		"GET /v1/exposures":                RoleViewer,
		"GET /v1/incidents/{id}/exposures": RoleViewer,
		"POST /v1/alerts/{alert_id}/move":  RoleAnalyst,
		"GET /v1/views":                    RoleViewer, "POST /v1/views": RoleAnalyst, "DELETE /v1/views/{view_id}": RoleAnalyst,
		"GET /v1/incidents.csv": RoleViewer, "GET /v1/alerts": RoleViewer, "GET /v1/incidents/{id}/export": RoleAnalyst,
		"POST /-/reload": RoleAdmin, "GET /v1/audit": RoleAdmin, "GET /v1/admin/tokens": RoleAdmin, "POST /v1/admin/tokens": RoleAdmin,
		"DELETE /v1/admin/tokens/{id}": RoleAdmin, "GET /v1/admin/tenants": RoleAdmin,
	}
	for _, rt := range s.routeTable() {
		w, ok := want[rt.pattern]
		if !ok {
			t.Errorf("route %s: no expected role in this test", rt.pattern)
			continue
		}
		if rt.role != w {
			t.Errorf("route %s: got role %q, want %q", rt.pattern, rt.role, w)
		}
		if rt.role == "" && strings.HasPrefix(rt.pattern, http.MethodGet+" /v1/") && rt.pattern != "GET /v1/openapi.json" {
			t.Errorf("route %s has no authentication", rt.pattern)
		}
	}
}
