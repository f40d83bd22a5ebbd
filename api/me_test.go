package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestMe checks that GET /v1/me names the caller's role and tenants, and
// only those.
func TestMe(t *testing.T) {
	s, err := New(Options{Store: fakeStore{}, Rules: fakeRules{}, Ready: func(context.Context) error { return nil },
		Logger: discardLogger(),
		Tokens: []Token{
			{Name: "victor", Hash: HashSecret("v"), Role: RoleViewer, Tenants: []string{"acme"}},
			{Name: "root", Hash: HashSecret("r"), Role: RoleAdmin, Tenants: []string{AllTenants}},
		},
		Tenants: []Tenant{{ID: "acme", Name: "Acme"}, {ID: "globex", Name: "Globex"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret, path string
		code         int
		role         Role
		tenants      []string
		all          bool
	}{
		{"v", "/v1/me", http.StatusOK, RoleViewer, []string{"acme"}, false},
		{"r", "/v1/me", http.StatusOK, RoleAdmin, []string{"acme", "globex"}, true},
		{"", "/v1/me", http.StatusUnauthorized, "", nil, false},
		{"v", "/v1/me?x=1", http.StatusBadRequest, "", nil, false},
	} {
		t.Run(tc.secret+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if tc.secret != "" {
				req.Header.Set("Authorization", "Bearer "+tc.secret)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("got %d, want %d (%s)", rec.Code, tc.code, rec.Body)
			}
			if tc.code != http.StatusOK {
				return
			}
			var me meView
			if err := json.Unmarshal(rec.Body.Bytes(), &me); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, tn := range me.Tenants {
				ids = append(ids, tn.ID)
			}
			if me.Role != tc.role || !slices.Equal(ids, tc.tenants) || me.AllTenants != tc.all {
				t.Errorf("got role %s tenants %v all %v, want %s %v %v", me.Role, ids, me.AllTenants, tc.role, tc.tenants, tc.all)
			}
			if me.Tenants[0].Name != "Acme" {
				t.Errorf("got tenant name %q, want Acme", me.Tenants[0].Name)
			}
		})
	}
}
