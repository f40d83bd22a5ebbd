package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// Actions of the audit entries the API writes. Storage writes its own
// entries for the data it changes (incident.workflow, incident.merge,
// incident.comment); the API's entries record the request: who, from which
// tenant, what was asked, the outcome, before/after and the request id.
const (
	actionPatch        = "api.incident.update"
	actionComment      = "api.incident.comment"
	actionCommentEdit  = "api.incident.comment.edit"
	actionCommentDel   = "api.incident.comment.delete"
	actionMerge        = "api.incident.merge"
	actionAlertMove    = "api.alert.move"
	actionViewCreate   = "api.view.create"
	actionViewDelete   = "api.view.delete"
	actionReload       = "api.rules.reload"
	actionTokenCreate  = "api.token.create"
	actionTokenDelete  = "api.token.delete"
	actionDenied       = "api.denied"
	auditWriteDeadline = 5 * time.Second
)

// auditDetails is the details document of an API audit entry.
type auditDetails struct {
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Route     string `json:"route,omitempty"`
	Status    int    `json:"status"`
	Token     string `json:"token_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Before    any    `json:"before,omitempty"`
	After     any    `json:"after,omitempty"`
}

// audit appends one entry to the audit log. It outlives a client that hangs
// up, so a change that happened is recorded.
func (s *Server) audit(r *http.Request, p *principal, tenant, action, incidentID string, d auditDetails) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditWriteDeadline)
	defer cancel()
	e := s.auditEntry(r, p, tenant, action, incidentID, d)
	err := s.auditLog.append(ctx, e)
	if err != nil {
		s.audits.WithLabelValues("failed").Inc()
		s.logger.Error("audit write failed", "action", action, "request_id", d.RequestID, "error", err)
		return err
	}
	s.audits.WithLabelValues("written").Inc()
	return nil
}

// auditEntry is the audit entry of request r.
func (s *Server) auditEntry(r *http.Request, p *principal, tenant, action, incidentID string, d auditDetails) casework.AuditEntry {
	d.RequestID, d.Method, d.Path = requestID(r.Context()), r.Method, r.URL.Path
	actor := "anonymous"
	if p != nil {
		actor, d.Token = p.name, p.tokenID
	}
	details, _ := json.Marshal(d) // strings, numbers and workflows: it cannot fail
	return casework.AuditEntry{TenantUID: tenant, Time: s.opts.Now(), Actor: actor, Action: action, IncidentID: incidentID, Details: details}
}

// auditDenied records a state-changing request refused before its handler
// ran (401, 403, a query string that does not parse), at most
// deniedAuditsPerSecond a second.
func (s *Server) auditDenied(r *http.Request, p *principal, routeName string, prob *problem) {
	if !s.denied.allow(s.opts.Now()) {
		s.audits.WithLabelValues("dropped").Inc()
		return
	}
	_ = s.audit(r, p, p.auditTenant(), actionDenied, "", auditDetails{Route: routeName, Status: prob.Status, Reason: prob.Detail})
}

// listAudit serves GET /v1/audit.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	v := r.URL.Query()
	q := casework.AuditQuery{Tenants: p.auditTenants(), Limit: defaultPage}
	var errs []string
	errs = append(errs, unknownParams(v, "tenant", "incident_id", "actor", "action", "from", "to", "limit")...)
	q.Tenants, errs = tenantParam(v, q.Tenants, errs)
	q.IncidentID, q.Actor, q.Action = v.Get("incident_id"), v.Get("actor"), v.Get("action")
	for name, val := range map[string]string{"incident_id": q.IncidentID, "actor": q.Actor, "action": q.Action} {
		if val != "" && !idPattern.MatchString(val) {
			errs = append(errs, name+" "+quote(val)+" may hold only letters, digits and . _ : - (at most 128)")
		}
	}
	q.From, q.To, errs = parseRange(v, s.opts.Now(), errs)
	q.Limit, errs = parseLimit(v, defaultPage, errs)
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	entries, err := s.opts.Store.ListAudit(ctx, q)
	if err != nil {
		return s.storeError(r, err, "audit entry")
	}
	if entries == nil {
		entries = []casework.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": entries})
	return nil
}

// unknownParams lists the parameters of v not in known.
func unknownParams(v url.Values, known ...string) []string {
	var errs []string
	for k := range v {
		if !slices.Contains(known, k) {
			errs = append(errs, "unknown parameter "+quote(k))
		}
	}
	return errs
}

// groupCommit writes audit entries of concurrent requests together: the
// first request writes at once; the entries that arrive while a write is
// in flight wait and go out in the next one, written by the first of them.
// A lone request pays one insert, as before; 200 requests refused at once
// pay a handful instead of 200, so the audit log does not exhaust the
// connection pool exactly when it is busiest.
type groupCommit struct {
	write func(context.Context, ...casework.AuditEntry) error
	mu    sync.Mutex
	busy  bool // a write is in flight
	queue []*commitReq
}

type commitReq struct {
	e   casework.AuditEntry
	res chan commitResult
}

// commitResult is a request's outcome, or lead: the request is to write
// the queue itself.
type commitResult struct {
	err  error
	lead bool
}

// append writes e, together with whatever else is waiting.
func (g *groupCommit) append(ctx context.Context, e casework.AuditEntry) error {
	req := &commitReq{e: e, res: make(chan commitResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	if g.busy {
		g.mu.Unlock()
		if r := <-req.res; !r.lead {
			return r.err
		}
		g.mu.Lock()
	}
	g.busy = true
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	entries := make([]casework.AuditEntry, len(batch))
	for i, r := range batch {
		entries[i] = r.e
	}
	err := g.write(ctx, entries...)
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].res <- commitResult{lead: true} // it stays queued and writes the queue
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, r := range batch {
		if r != req {
			r.res <- commitResult{err: err}
		}
	}
	return err
}
