package api

import (
	"context"
	"net/http"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// shadowMatches serves GET /v1/rules/shadow: per experimental rule, how
// many shadow alerts of the token's tenants fall in [from, to] — how often
// it would have fired.
func (s *Server) shadowMatches(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	v := r.URL.Query()
	now := s.opts.Now()
	q := casework.ShadowQuery{Tenants: p.tenants}
	errs := unknownParams(v, "from", "to", "tenant")
	q.From, q.To, errs = parseRange(v, now, errs)
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-alertQueueDefaultRange)
	}
	q.Tenants, errs = tenantParam(v, q.Tenants, errs)
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	counts, err := s.opts.Store.ShadowMatches(ctx, q)
	if err != nil {
		return s.storeError(r, err, "shadow matches")
	}
	if counts == nil {
		counts = []casework.ShadowCount{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"from": q.From.UTC().Format(time.RFC3339), "to": q.To.UTC().Format(time.RFC3339), "rules": counts,
	})
	return nil
}
