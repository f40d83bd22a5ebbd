package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/musubi-xdr/musubi/casework"
)

// maxBulkItems is how many incidents one bulk action may change.
const maxBulkItems = 100

// actionBulk is the audit action of a bulk request refused as a whole;
// each item of an accepted one is audited as its own PATCH (actionPatch).
const actionBulk = "api.incident.bulk"

// bulkRequest is the body of POST /v1/incidents/bulk: one merge patch
// applied to each listed incident, each with the ETag the client read it at.
type bulkRequest struct {
	Patch json.RawMessage `json:"patch"`
	Items []bulkItem      `json:"items"`
}

type bulkItem struct {
	ID   string `json:"id"`
	ETag string `json:"etag"`
}

// bulkResult is the outcome of one item: the status a PATCH of that
// incident would have answered, with the new ETag and workflow, or the
// problem (and the current ETag on a 412).
type bulkResult struct {
	ID       string             `json:"id"`
	Status   int                `json:"status"`
	ETag     string             `json:"etag,omitempty"`
	Workflow *casework.Workflow `json:"workflow,omitempty"`
	Problem  *problem           `json:"problem,omitempty"`
}

type bulkResponse struct {
	Results   []bulkResult `json:"results"`
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
}

// bulkIncidents serves POST /v1/incidents/bulk. A request that is wrong as
// a whole (not JSON, no items, more than maxBulkItems, a patch that is
// invalid whatever the incident) is refused and audited as such; otherwise
// each item goes through the PATCH path in order and gets its own result
// and audit entry, and the answer is 200.
func (s *Server) bulkIncidents(w http.ResponseWriter, r *http.Request) *problem {
	return s.audited(r, actionBulk, func(p *principal, ref *refusal) *problem { return s.bulk(w, r, p, ref) })
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, p *principal, ref *refusal) *problem {
	body, prob := readJSONBody(r, "application/json")
	if prob != nil {
		return prob
	}
	var req bulkRequest
	if prob := decodeStrict(body, &req); prob != nil {
		return prob
	}
	if len(req.Items) > maxBulkItems {
		return &problem{Status: http.StatusRequestEntityTooLarge, Title: "Content Too Large",
			Detail: fmt.Sprintf("the request lists %d incidents; a bulk action takes at most %d", len(req.Items), maxBulkItems)}
	}
	var errs []string
	if len(req.Items) == 0 {
		errs = append(errs, "items is empty; list the incidents to change, each with its etag")
	}
	if len(req.Patch) == 0 {
		errs = append(errs, "patch is missing; it is the merge patch applied to each incident")
	}
	seen := map[string]bool{}
	for i, it := range req.Items {
		if seen[it.ID] {
			errs = append(errs, fmt.Sprintf("items[%d]: incident %s is listed twice", i, quote(it.ID)))
		}
		seen[it.ID] = true
	}
	if len(errs) > 0 {
		return unprocessable("the bulk request is not valid", errs)
	}
	patch, perrs, prob := decodePatch(req.Patch, p)
	if prob != nil {
		prob.Detail = "patch: " + prob.Detail
		return prob
	}
	ref.summary = map[string]any{"items": len(req.Items), "patch": patch.summary()}
	if len(perrs) > 0 {
		return unprocessable("the patch is not valid", perrs)
	}
	out := bulkResponse{Results: make([]bulkResult, 0, len(req.Items))}
	for _, it := range req.Items {
		res := s.bulkItem(r, it, patch)
		if res.Problem != nil {
			res.Problem.Type, res.Problem.Instance = "about:blank", "/v1/incidents/"+it.ID
			out.Failed++
		} else {
			out.Succeeded++
		}
		out.Results = append(out.Results, res)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// bulkItem applies the patch to one item and audits the outcome as a PATCH
// of that incident.
func (s *Server) bulkItem(r *http.Request, it bulkItem, patch incidentPatch) bulkResult {
	res := bulkResult{ID: it.ID, Status: http.StatusOK}
	prob := s.audited(r, actionPatch, func(p *principal, ref *refusal) *problem {
		if prob := checkIncidentID(it.ID); prob != nil {
			return prob
		}
		ref.incidentID, ref.summary = it.ID, patch.summary()
		if it.ETag == "" {
			return &problem{Status: http.StatusPreconditionRequired, Title: "Precondition Required",
				Detail: "the item has no etag; send the ETag of the incident as you read it (GET /v1/incidents/{id})"}
		}
		cond, prob := parseETags(it.ETag, "etag")
		if prob != nil {
			return prob
		}
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		next, prob := s.applyPatch(ctx, r, p, it.ID, cond, patch, nil, ref)
		if prob != nil {
			return prob
		}
		res.ETag, res.Workflow = etag(next), &next.Workflow
		return nil
	})
	if prob != nil {
		return bulkResult{ID: it.ID, Status: prob.Status, ETag: prob.etag, Problem: prob}
	}
	return res
}
