package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// Tokens created through the API are persisted in the audit log: the
// api.token.create entry holds the token's record with the SHA-256 of its
// secret (never the secret), the api.token.delete entry its id. With
// Options.RestoreTokens, New replays them, so created tokens survive a
// restart. Each replica restores at its own start; a token created on one
// replica works on another only after that one restarts.

// tokenRecord is what the audit log keeps of a created token.
type tokenRecord struct {
	tokenView
	// Hash is the hex SHA-256 of the secret.
	Hash string `json:"hash"`
}

// restoreLimit is how many create and delete entries are replayed.
const restoreLimit = maxPageSize

// restoreTokens adds the tokens created through the API and not deleted,
// not expired, to ts.
func (s *Server) restoreTokens(ctx context.Context) (int, error) {
	tenants := append(s.tokens.tenantIDs(), globalTenant)
	creates, err := s.opts.Store.ListAudit(ctx, casework.AuditQuery{Tenants: tenants, Action: actionTokenCreate, Limit: restoreLimit})
	if err != nil {
		return 0, fmt.Errorf("api: restore tokens: %w", err)
	}
	deletes, err := s.opts.Store.ListAudit(ctx, casework.AuditQuery{Tenants: tenants, Action: actionTokenDelete, Limit: restoreLimit})
	if err != nil {
		return 0, fmt.Errorf("api: restore tokens: %w", err)
	}
	type entry struct {
		Status int             `json:"status"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	}
	deleted := map[string]bool{}
	var cutoff time.Time
	for _, d := range deletes {
		var e entry
		var v tokenView
		if json.Unmarshal(d.Details, &e) == nil && json.Unmarshal(e.Before, &v) == nil {
			deleted[v.ID] = true
		}
		cutoff = d.Time // newest first: ends at the oldest
	}
	if len(deletes) < restoreLimit {
		cutoff = time.Time{}
	}
	// When the deletions replayed are only the newest restoreLimit, a token
	// created before the oldest of them might have been deleted earlier
	// still: it is not restored (fail closed).
	if len(creates) == restoreLimit || !cutoff.IsZero() {
		s.logger.Warn("only the newest API-created tokens are restored; recreate older ones", "limit", restoreLimit)
	}
	now := s.opts.Now()
	known := s.tokens.tenantIDs()
	n := 0
	for _, c := range creates {
		var e entry
		var rec tokenRecord
		if json.Unmarshal(c.Details, &e) != nil || e.Status != 201 || json.Unmarshal(e.After, &rec) != nil {
			continue
		}
		hash, err := hex.DecodeString(rec.Hash)
		if err != nil || len(hash) != 32 || rec.ID == "" || deleted[rec.ID] || rec.Role.rank() == 0 || c.Time.Before(cutoff) {
			continue
		}
		if !rec.ExpiresAt.IsZero() && now.After(rec.ExpiresAt) {
			continue
		}
		if slices.ContainsFunc(rec.Tenants, func(t string) bool { return t != AllTenants && !slices.Contains(known, t) }) {
			continue // a tenant that is no longer configured
		}
		t := Token{ID: rec.ID, Name: rec.Name, Role: rec.Role, Tenants: rec.Tenants, Expires: rec.ExpiresAt,
			Created: rec.CreatedAt, CreatedBy: rec.CreatedBy}
		copy(t.Hash[:], hash)
		if s.tokens.addIfAbsent(t) {
			n++
		}
	}
	return n, nil
}
