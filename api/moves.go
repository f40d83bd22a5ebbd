package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/musubi-xdr/musubi/casework"
)

// moveRequest is the body of POST /v1/alerts/{alert_id}/move.
type moveRequest struct {
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// moveAlert serves POST /v1/alerts/{alert_id}/move: an analyst moves an
// alert from the incident that holds it (if any) to another incident of
// its tenant, as Sentinel's and Defender's "link alert to another
// incident" and TheHive's "merge alert into case" do. If-Match is the
// target's ETag, compared whole and strongly; both incidents get a new
// workflow version, so both ETags change. Every answer is audited,
// refusals included.
func (s *Server) moveAlert(w http.ResponseWriter, r *http.Request) *problem {
	return s.audited(r, actionAlertMove, func(p *principal, ref *refusal) *problem { return s.move(w, r, p, ref) })
}

func (s *Server) move(w http.ResponseWriter, r *http.Request, p *principal, ref *refusal) *problem {
	alertID := r.PathValue("alert_id")
	if !idPattern.MatchString(alertID) {
		return badRequest(fmt.Sprintf("alert id %s is not an id: 1 to 128 letters, digits and . _ : -", quote(alertID)))
	}
	body, prob := readJSONBody(r, "application/json")
	if prob != nil {
		return prob
	}
	var req moveRequest
	if prob := decodeStrict(body, &req); prob != nil {
		return prob
	}
	var errs []string
	if !idPattern.MatchString(req.To) {
		errs = append(errs, fmt.Sprintf("to %s is not an incident id", quote(req.To)))
	} else {
		ref.incidentID = req.To
	}
	errs = checkReason("reason", req.Reason, errs)
	ref.summary = map[string]string{"alert_id": alertID, "to": req.To}
	// The body first, so a refusal for want of If-Match is filed under
	// the target.
	cond, prob := parseIfMatch(r)
	if prob != nil {
		return prob
	}
	if len(errs) > 0 {
		return unprocessable("the move is not valid", errs)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	var before *casework.Incident
	m := casework.AlertMove{Tenants: p.tenants, AlertID: alertID, To: req.To, Reason: req.Reason, Actor: p.name}
	m.Check = func(from *casework.Incident, to casework.Incident) error {
		to = to.Effective()
		ref.tenant, before = to.TenantUID, from
		if prob := cond.check(to); prob != nil {
			return refusedError{prob}
		}
		var errs []string
		if from != nil && from.ID == to.ID {
			errs = append(errs, fmt.Sprintf("alert %s is in incident %s already", alertID, to.ID))
		}
		if currentStatus(to.Workflow.Status) == "merged" {
			errs = append(errs, fmt.Sprintf("incident %s was merged into %s; move the alert to that one", to.ID, to.Workflow.MergedInto))
		}
		if len(errs) > 0 {
			return refusedError{unprocessable("the move is not valid", errs)}
		}
		return nil
	}
	m.Audit = func(res casework.AlertMoved) casework.AuditEntry {
		from := ""
		if before != nil {
			from = before.ID
		}
		return s.auditEntry(r, p, res.TenantUID, actionAlertMove, req.To, auditDetails{Status: http.StatusOK, Reason: req.Reason,
			After: map[string]string{"alert_id": alertID, "from": from, "to": req.To}})
	}
	res, err := s.opts.Store.MoveAlert(ctx, m)
	if err != nil {
		var refused refusedError
		switch {
		case errors.As(err, &refused):
			return refused.prob
		case errors.Is(err, casework.ErrNoTarget):
			// The alert was found, the target not in the alert's tenant
			// (another tenant's incident is not found either).
			return unprocessable("the move is not valid", []string{fmt.Sprintf("to %s: no such incident in the alert's tenant", quote(req.To))})
		}
		return s.storeError(r, err, "alert")
	}
	s.audits.WithLabelValues("written").Inc()
	now := s.opts.Now()
	res.To = res.To.Effective()
	res.To.Timing = timing(res.To, s.opts.SLA, now)
	if res.From != nil {
		from := res.From.Effective()
		from.Timing = timing(from, s.opts.SLA, now)
		res.From = &from
	}
	w.Header().Set("ETag", etag(res.To))
	writeJSON(w, http.StatusOK, res)
	return nil
}
