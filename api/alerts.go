package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Defaults of the alert queue.
const (
	// alertQueueHighSeverity: an alert in an incident of this OCSF severity
	// (high) or more is worked there, not in the alert queue.
	alertQueueHighSeverity = 4
	alertQueueDefaultRange = 7 * 24 * time.Hour
)

// listAlerts serves GET /v1/alerts: the alerts that are in no high (or
// critical) incident, newest first, with the queue's severity, rule,
// account, time and tenant filters and signed cursors.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	v := r.URL.Query()
	now := s.opts.Now()
	q := casework.AlertQuery{Tenants: p.tenants, HighSeverity: alertQueueHighSeverity}
	errs := unknownParams(v, "min_severity", "max_severity", "rule", "account", "from", "to", "limit", "cursor", "tenant")
	q.MinSeverity, errs = parseSeverity(v, "min_severity", 1, errs)
	q.MaxSeverity, errs = parseSeverity(v, "max_severity", 1, errs)
	q.RuleID, q.Account = v.Get("rule"), v.Get("account")
	if q.RuleID != "" && !idPattern.MatchString(q.RuleID) {
		errs = append(errs, fmt.Sprintf("rule %s may hold only letters, digits and . _ : - (at most 128)", quote(q.RuleID)))
	}
	if q.Account != "" && !ocsf.IsAccountID(q.Account) {
		errs = append(errs, fmt.Sprintf("account %s is not a 12-digit AWS account id", quote(q.Account)))
	}
	q.From, q.To, errs = parseRange(v, now, errs)
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-alertQueueDefaultRange)
	}
	q.Limit, errs = parseLimit(v, defaultPage, errs)
	cursor := v.Get("cursor")
	errs = checkCursor("cursor", cursor, errs)
	q.Tenants, errs = tenantParam(v, q.Tenants, errs)
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	// The cursor is bound to the filters as the incident queue's is; from
	// and to are bound as the client sent them (a default range moves).
	scope := queueScope("alerts", v, p.tenants)
	pos, ok := s.cursors.open(scope, cursor)
	if !ok {
		return badRequest("invalid cursor", "cursor is not a cursor this API returned for this query (same filters, same tenants)")
	}
	q.Cursor = pos
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	page, err := s.opts.Store.ListAlerts(ctx, q)
	if err != nil {
		return s.storeError(r, err, "alert")
	}
	if page.Items == nil {
		page.Items = []alert.Alert{}
	}
	page.NextCursor = s.cursors.sign(scope, page.NextCursor)
	writeJSON(w, http.StatusOK, page)
	return nil
}
