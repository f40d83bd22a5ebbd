package api

import (
	"net/http"
	"slices"
)

// meView is the caller as GET /v1/me shows it.
type meView struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Tenants are the tenants the token sees, with their display names.
	Tenants []tenantName `json:"tenants"`
	// AllTenants is set for tokens scoped to every tenant ("*").
	AllTenants bool `json:"all_tenants"`
}

type tenantName struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// me serves GET /v1/me: the token's name, role and tenants, so a client
// can offer only the actions the role allows.
func (s *Server) me(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	if errs := unknownParams(r.URL.Query()); len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	v := meView{Name: p.name, Role: p.role, Tenants: []tenantName{}, AllTenants: p.all}
	for _, id := range p.tenants {
		tn := tenantName{ID: id}
		if i := slices.IndexFunc(s.tokens.tenants, func(t Tenant) bool { return t.ID == id }); i >= 0 {
			tn.Name = s.tokens.tenants[i].Name
		}
		v.Tenants = append(v.Tenants, tn)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
