package api

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// tokenNamePattern is what a token's name may look like; the name is the
// actor in the audit log and the assignee "me".
var tokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9._:@+-]{1,64}$`)

// maxTokenLifetime bounds expires_at of a created token.
const maxTokenLifetime = 2 * 366 * 24 * time.Hour

// tokenView is a token as the admin API shows it: never the secret or hash.
type tokenView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Tenants   []string  `json:"tenants"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Expired   bool      `json:"expired,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
	// Source is "config" for tokens seeded from configuration, "api" for
	// tokens created here.
	Source string `json:"source"`
	// Secret is set only in the response that creates the token.
	Secret string `json:"secret,omitempty"`
}

func viewToken(t Token, now time.Time) tokenView {
	v := tokenView{ID: t.ID, Name: t.Name, Role: t.Role, Tenants: slices.Clone(t.Tenants), ExpiresAt: t.Expires,
		CreatedAt: t.Created, CreatedBy: t.CreatedBy, Source: "config"}
	if v.Tenants == nil {
		v.Tenants = []string{}
	}
	if !t.Created.IsZero() {
		v.Source = "api"
	}
	v.Expired = !t.Expires.IsZero() && now.After(t.Expires)
	return v
}

// listTokens serves GET /v1/admin/tokens: the tokens within the admin's
// tenant scope.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	if errs := unknownParams(r.URL.Query()); len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	out := []tokenView{}
	now := s.opts.Now()
	for _, t := range s.tokens.list(p) {
		out = append(out, viewToken(t, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// createTokenRequest is the body of POST /v1/admin/tokens.
type createTokenRequest struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Tenants   []string  `json:"tenants"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createToken serves POST /v1/admin/tokens. The response holds the secret,
// once; only its hash is kept.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	body, prob := readJSONBody(r, "application/json")
	if prob != nil {
		return prob
	}
	var req createTokenRequest
	if prob := decodeStrict(body, &req); prob != nil {
		return prob
	}
	now := s.opts.Now()
	var errs []string
	if !tokenNamePattern.MatchString(req.Name) {
		errs = append(errs, fmt.Sprintf("name %s is not 1 to 64 letters, digits and . _ : @ + -", quote(req.Name)))
	}
	if req.Role.rank() == 0 {
		errs = append(errs, fmt.Sprintf("role %s is not viewer, analyst or admin", quote(string(req.Role))))
	}
	if len(req.Tenants) == 0 {
		errs = append(errs, "tenants must name at least one tenant (or \"*\" for every tenant)")
	}
	known := s.tokens.tenantIDs()
	for _, t := range req.Tenants {
		if t != AllTenants && !slices.Contains(known, t) {
			errs = append(errs, fmt.Sprintf("tenant %s does not exist", quote(t)))
		}
	}
	if !p.covers(req.Tenants) {
		errs = append(errs, "a token may only be scoped to tenants of the token that creates it")
	}
	switch {
	case req.ExpiresAt.IsZero():
	case !req.ExpiresAt.After(now):
		errs = append(errs, "expires_at is in the past")
	case req.ExpiresAt.Sub(now) > maxTokenLifetime:
		errs = append(errs, fmt.Sprintf("expires_at is more than %d days ahead", int(maxTokenLifetime.Hours()/24)))
	}
	// Names are unique: the name is the actor of the audit log.
	s.tokens.createMu.Lock()
	defer s.tokens.createMu.Unlock()
	if tokenNamePattern.MatchString(req.Name) && s.tokens.nameTaken(req.Name) {
		errs = append(errs, fmt.Sprintf("name %s is taken by another token (names are unique, case-insensitive); pick another or delete that token", quote(req.Name)))
	}
	if len(errs) > 0 {
		return unprocessable("the token request is not valid", errs)
	}
	secret := NewSecret()
	t := Token{ID: newTokenID(), Name: req.Name, Hash: HashSecret(secret), Role: req.Role, Tenants: slices.Clone(req.Tenants),
		Expires: req.ExpiresAt.UTC(), Created: now.UTC(), CreatedBy: p.name}
	v := viewToken(t, now)
	// Audited before it exists: a token nobody can account for must not.
	rec := tokenRecord{tokenView: v, Hash: hex.EncodeToString(t.Hash[:])}
	if err := s.audit(r, p, p.auditTenant(), actionTokenCreate, "", auditDetails{Status: http.StatusCreated, After: rec}); err != nil {
		return &problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: "the audit log is unavailable, so no token was created; retry shortly"}
	}
	s.tokens.add(t)
	v.Secret = secret
	w.Header().Set("Location", "/v1/admin/tokens/"+v.ID)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// deleteToken serves DELETE /v1/admin/tokens/{id}: the token stops working
// at once. A token seeded from configuration comes back at the next start
// unless it is removed there too.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		return badRequest(fmt.Sprintf("token id %s is not an id like tok_0123456789abcdef", quote(id)))
	}
	t, ok := s.tokens.get(p, id)
	if !ok {
		return notFound("token")
	}
	v := viewToken(t, s.opts.Now())
	if err := s.audit(r, p, p.auditTenant(), actionTokenDelete, "", auditDetails{Status: http.StatusNoContent, Before: v}); err != nil {
		return &problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: "the audit log is unavailable, so the token was not deleted; retry shortly"}
	}
	s.tokens.remove(t)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listTenants serves GET /v1/admin/tenants: the admin's tenants and their
// AWS accounts.
func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	if errs := unknownParams(r.URL.Query()); len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	out := []Tenant{}
	for _, t := range s.tokens.tenants {
		if slices.Contains(p.tenants, t.ID) {
			if t.Accounts == nil {
				t.Accounts = []string{}
			}
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}
