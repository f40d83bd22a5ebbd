package api

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Role is what a token may do.
type Role string

// Roles, from least to most privileged.
const (
	RoleViewer  Role = "viewer"
	RoleAnalyst Role = "analyst"
	RoleAdmin   Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleAnalyst:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Token is an API token. Only the SHA-256 of its secret is kept.
type Token struct {
	Name    string
	Hash    [32]byte
	Role    Role
	Tenants []string // tenant ids; "*" means every tenant
	Expires time.Time
}

// HashSecret returns the stored form of a token secret.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// Tenant is a tenant and the AWS accounts it owns.
type Tenant struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Accounts []string `json:"accounts"`
}

// principal is the authenticated caller of a request.
type principal struct {
	name    string
	role    Role
	tenants []string
}

type principalKey struct{}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

// tokenStore holds the tokens by hash.
type tokenStore struct {
	mu      sync.RWMutex
	byHash  map[[32]byte]Token
	tenants []string
}

func newTokenStore(tokens []Token, tenants []Tenant) *tokenStore {
	ts := &tokenStore{byHash: map[[32]byte]Token{}}
	for _, t := range tenants {
		ts.tenants = append(ts.tenants, t.ID)
	}
	for _, t := range tokens {
		ts.byHash[t.Hash] = t
	}
	return ts
}

// authenticate resolves the bearer token of r; it returns a problem on failure.
func (ts *tokenStore) authenticate(r *http.Request, now time.Time) (*principal, *problem) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, &problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "missing bearer token: send 'Authorization: Bearer <token>'"}
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" || len(secret) > 512 {
		return nil, &problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "malformed Authorization header: want 'Bearer <token>'"}
	}
	ts.mu.RLock()
	t, ok := ts.byHash[HashSecret(secret)]
	ts.mu.RUnlock()
	if !ok {
		return nil, &problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "unknown token"}
	}
	if !t.Expires.IsZero() && now.After(t.Expires) {
		return nil, &problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "token expired"}
	}
	p := &principal{name: t.Name, role: t.Role}
	if slices.Contains(t.Tenants, "*") {
		p.tenants = slices.Clone(ts.tenants)
	} else {
		p.tenants = slices.Clone(t.Tenants)
	}
	return p, nil
}
