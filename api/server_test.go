package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// errStore answers every incident read with err (or panics when err is nil).
type errStore struct {
	fakeStore
	err error
}

func (s errStore) ListIncidents(context.Context, casework.IncidentQuery) (casework.IncidentPage, error) {
	if s.err == nil {
		panic("boom")
	}
	return casework.IncidentPage{}, s.err
}

// TestStoreErrorsMapToProblems: what storage says decides the status; a
// panic is a 500 problem with the request id, never a dropped connection.
func TestStoreErrorsMapToProblems(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{errors.Join(casework.ErrNotFound, errors.New("x")), 404},
		{fmt.Errorf("%w: malformed cursor", casework.ErrInvalidArgument), 400},
		{context.DeadlineExceeded, 503},
		{errors.New("dial tcp: connection refused"), 503},
		{nil, 500},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.err), func(t *testing.T) {
			s, err := New(Options{Store: errStore{err: c.err}, Rules: fakeRules{}, Ready: func(context.Context) error { return nil },
				Logger: discardLogger(), Tokens: []Token{{Name: "v", Hash: HashSecret("v"), Role: RoleViewer, Tenants: []string{"t"}}},
				Tenants: []Tenant{{ID: "t"}}})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/v1/incidents", nil)
			req.Header.Set("Authorization", "Bearer v")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != c.code {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, c.code)
			}
			var p problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != c.code || p.RequestID == "" {
				t.Errorf("got body %s, want a problem with status %d and a request id", w.Body, c.code)
			}
			if strings.Contains(w.Body.String(), "connection refused") || strings.Contains(w.Body.String(), "boom") {
				t.Errorf("the problem leaks internals: %s", w.Body)
			}
		})
	}
}

func TestParseIncidentQuery(t *testing.T) {
	p := &principal{name: "alice", tenants: []string{"acme", "globex"}}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		query    string
		wantErrs int
		check    func(casework.IncidentQuery) bool
	}{
		{"", 0, func(q casework.IncidentQuery) bool {
			return q.Sort == "risk_score" && q.Desc && q.Limit == 50 && len(q.Tenants) == 2
		}},
		{"assignee=me", 0, func(q casework.IncidentQuery) bool { return q.Assignee == "alice" }},
		{"assignee=none&status=new,closed&status=merged", 0, func(q casework.IncidentQuery) bool { return q.Assignee == "none" && len(q.Status) == 3 }},
		{"tenant=globex&order=asc&limit=500", 0, func(q casework.IncidentQuery) bool { return q.Tenants[0] == "globex" && !q.Desc && q.Limit == 500 }},
		{"tenant=initech", 1, nil},
		{"entity_type=ip", 1, nil},
		{"entity_type=nope&entity_value=1", 1, nil},
		{"status=open&min_severity=7&sort=title&order=up&limit=0&account=12&x=1", 7, nil},
		{"from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z", 1, nil},
		{"from=2026-01-01T00:00:00Z", 0, nil},
		{"from=2024-01-01T00:00:00Z", 1, nil},
		{"cursor=" + url.QueryEscape("a b"), 1, nil},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			v, _ := url.ParseQuery(c.query)
			q, prob := parseIncidentQuery(v, p, now)
			n := 0
			if prob != nil {
				n = len(prob.Errors)
			}
			if n != c.wantErrs {
				t.Fatalf("got %d errors (%v), want %d", n, prob, c.wantErrs)
			}
			if c.check != nil && !c.check(q) {
				t.Errorf("got query %+v", q)
			}
		})
	}
}

func TestUnmatchedRoutes(t *testing.T) {
	s := newTestServer(t)
	cases := []struct {
		method, path string
		code         int
		allow        string
	}{
		{"DELETE", "/v1/incidents/x", http.StatusMethodNotAllowed, "GET"},
		{"PUT", "/v1/admin/tokens", http.StatusMethodNotAllowed, "GET"},
		{"GET", "/v2/incidents", http.StatusNotFound, ""},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.code || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: got %d %s, want %d as a problem", c.method, c.path, w.Code, w.Header().Get("Content-Type"), c.code)
		}
		if c.allow != "" && !strings.Contains(strings.Join(w.Header().Values("Allow"), ","), c.allow) {
			t.Errorf("%s %s: got Allow %v, want it to include %s", c.method, c.path, w.Header().Values("Allow"), c.allow)
		}
	}
}

// FuzzParseIncidentQuery: no query string makes the parser panic, and
// whatever it accepts stays within the limits.
func FuzzParseIncidentQuery(f *testing.F) {
	for _, s := range []string{"status=new&limit=5", "q=%27+OR+1%3D1", "from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "cursor=abc&sort=severity"} {
		f.Add(s)
	}
	p := &principal{name: "alice", tenants: []string{"acme"}}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, prob := parseIncidentQuery(v, p, now)
		if prob != nil {
			return
		}
		if q.Limit < 1 || q.Limit > maxPageSize || len(q.Text) > 256 || len(q.Tenants) != 1 || q.Tenants[0] != "acme" {
			t.Errorf("accepted out-of-bounds query %+v", q)
		}
	})
}

// FuzzDecodePatch: no body makes the patch decoder panic, and an accepted
// patch holds only allowed values.
func FuzzDecodePatch(f *testing.F) {
	for _, s := range []string{`{"status":"closed","verdict":"duplicate","reason":"x"}`, `{"assignee":null}`, `{"tags":["a"]}`, `[]`, `{"a":1}`} {
		f.Add([]byte(s))
	}
	me := &principal{name: "alice"}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, errs, prob := decodePatch(body, me)
		if prob != nil || len(errs) > 0 {
			return
		}
		if p.Status != nil && !validStatus(*p.Status) || p.SeverityOverride != nil && (*p.SeverityOverride < 0 || *p.SeverityOverride > 6) ||
			p.Tags != nil && len(*p.Tags) > maxTags || p.Reason != nil && len(*p.Reason) > maxReasonBytes {
			t.Errorf("accepted out-of-bounds patch %+v", p)
		}
	})
}

func validStatus(s string) bool {
	for _, st := range statuses {
		if s == st {
			return true
		}
	}
	return false
}
