package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
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

// AllTenants in a token's tenant list means every tenant, including the
// global audit entries that belong to no tenant.
const AllTenants = "*"

// globalTenant is the tenant of audit entries that belong to no tenant
// (token management, refused requests of multi-tenant or unknown callers).
// Only tokens scoped to every tenant see them.
const globalTenant = "-"

// Token is an API token. Only the SHA-256 of its secret is kept.
type Token struct {
	// ID is the token's public identifier. It is random, never derived
	// from the secret, so listing tokens gives nothing to guess secrets
	// against; empty (configured tokens) gets a fresh one at start.
	ID      string
	Name    string
	Hash    [32]byte
	Role    Role
	Tenants []string // tenant ids; "*" means every tenant
	Expires time.Time
	// Created and CreatedBy are set for tokens made through the API.
	Created   time.Time
	CreatedBy string
}

func newTokenID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "tok_" + hex.EncodeToString(b[:])
}

// HashSecret returns the stored form of a token secret.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// NewSecret returns a fresh random token secret.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "msb_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Tenant is a tenant and the AWS accounts it owns.
type Tenant struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Accounts []string `json:"accounts"`
}

// principal is the authenticated caller of a request.
type principal struct {
	name    string
	tokenID string
	role    Role
	tenants []string
	// all: the token is scoped to every tenant (AllTenants).
	all bool
}

// auditTenant is the tenant an audit entry about p's request (not about one
// incident) is filed under.
func (p *principal) auditTenant() string {
	if p != nil && !p.all && len(p.tenants) == 1 {
		return p.tenants[0]
	}
	return globalTenant
}

// auditTenants are the tenants whose audit entries p may read.
func (p *principal) auditTenants() []string {
	if p.all {
		return append(slices.Clone(p.tenants), globalTenant)
	}
	return p.tenants
}

// covers reports whether p's scope includes every one of tenants.
func (p *principal) covers(tenants []string) bool {
	for _, t := range tenants {
		if t == AllTenants {
			if !p.all {
				return false
			}
			continue
		}
		if !slices.Contains(p.tenants, t) {
			return false
		}
	}
	return true
}

type principalKey struct{}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

// tokenStore holds the tokens by hash. Tokens created through the API live
// in memory only: they are gone after a restart (see docs/api.md).
type tokenStore struct {
	// createMu serializes token creation, so two requests cannot both
	// take one name between the check and the add.
	createMu sync.Mutex
	mu       sync.RWMutex
	byHash   map[[32]byte]Token
	tenants  []Tenant
}

func newTokenStore(tokens []Token, tenants []Tenant) (*tokenStore, error) {
	ts := &tokenStore{byHash: map[[32]byte]Token{}, tenants: slices.Clone(tenants)}
	for _, t := range tokens {
		if t.Role.rank() == 0 {
			return nil, fmt.Errorf("api: token %q has unknown role %q", t.Name, t.Role)
		}
		// The name is the actor of the audit log and the assignee "me":
		// two tokens with one name would make both ambiguous.
		if ts.nameTaken(t.Name) {
			return nil, fmt.Errorf("api: two tokens are named %q; token names must be unique (case-insensitive)", t.Name)
		}
		if t.ID == "" {
			t.ID = newTokenID()
		}
		ts.byHash[t.Hash] = t
	}
	return ts, nil
}

func (ts *tokenStore) tenantIDs() []string {
	out := make([]string, 0, len(ts.tenants))
	for _, t := range ts.tenants {
		out = append(out, t.ID)
	}
	return out
}

func unauthorized(detail string) *problem {
	return &problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: detail}
}

// authenticate resolves the bearer token of r; it returns a problem on failure.
func (ts *tokenStore) authenticate(r *http.Request, now time.Time) (*principal, *problem) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" || len(secret) > 512 {
		return nil, unauthorized("malformed Authorization header: want 'Bearer <token>'")
	}
	hash := HashSecret(secret)
	ts.mu.RLock()
	t, ok := ts.byHash[hash]
	ts.mu.RUnlock()
	// The map lookup is by hash, so timing reveals nothing about the secret;
	// the compare is a second guard.
	if !ok || subtle.ConstantTimeCompare(t.Hash[:], hash[:]) != 1 {
		return nil, unauthorized("unknown token")
	}
	if !t.Expires.IsZero() && now.After(t.Expires) {
		return nil, unauthorized("token expired")
	}
	p := &principal{name: t.Name, tokenID: t.ID, role: t.Role}
	if slices.Contains(t.Tenants, AllTenants) {
		p.all = true
		p.tenants = ts.tenantIDs()
	} else {
		p.tenants = slices.Clone(t.Tenants)
	}
	return p, nil
}

// list returns the tokens p may manage: those whose tenants p covers.
func (ts *tokenStore) list(p *principal) []Token {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	var out []Token
	for _, t := range ts.byHash {
		if p.covers(t.Tenants) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// nameTaken reports whether a token named name (case-insensitive) exists;
// the caller holds no lock.
func (ts *tokenStore) nameTaken(name string) bool {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	for _, t := range ts.byHash {
		if strings.EqualFold(t.Name, name) {
			return true
		}
	}
	return false
}

func (ts *tokenStore) add(t Token) {
	ts.mu.Lock()
	ts.byHash[t.Hash] = t
	ts.mu.Unlock()
}

// addIfAbsent adds t unless a token with its secret or its name exists
// already.
func (ts *tokenStore) addIfAbsent(t Token) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.byHash[t.Hash]; ok {
		return false
	}
	for _, o := range ts.byHash {
		if strings.EqualFold(o.Name, t.Name) {
			return false
		}
	}
	ts.byHash[t.Hash] = t
	return true
}

// get returns the token with id if p may manage it.
func (ts *tokenStore) get(p *principal, id string) (Token, bool) {
	for _, t := range ts.list(p) {
		if t.ID == id {
			return t, true
		}
	}
	return Token{}, false
}

func (ts *tokenStore) remove(t Token) {
	ts.mu.Lock()
	delete(ts.byHash, t.Hash)
	ts.mu.Unlock()
}

// rateLimiter allows n events per second.
type rateLimiter struct {
	mu     sync.Mutex
	n      int
	second int64
	used   int
}

func newRateLimiter(n int) *rateLimiter { return &rateLimiter{n: n} }

func (l *rateLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.second {
		l.second, l.used = s, 0
	}
	if l.used >= l.n {
		return false
	}
	l.used++
	return true
}
