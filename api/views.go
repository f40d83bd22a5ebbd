package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"github.com/musubi-xdr/musubi/casework"
)

// Limits of a saved view.
const (
	maxViewNameBytes  = 128
	maxViewQueryBytes = 4096
)

// viewIDPattern is what a saved view's id looks like.
var viewIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// viewRequest is the body of POST /v1/views.
type viewRequest struct {
	Name  string `json:"name"`
	Query string `json:"query"`
}

// listViews serves GET /v1/views: the caller's saved views, by name.
// Views belong to the token's name; nobody sees another's.
func (s *Server) listViews(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	if errs := unknownParams(r.URL.Query()); len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	vs, err := s.opts.Store.ListViews(ctx, p.name)
	if err != nil {
		return s.storeError(r, err, "view")
	}
	if vs == nil {
		vs = []casework.SavedView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": vs})
	return nil
}

// checkViewQuery validates the query string of a saved view with the
// queue's own parser, as GET /v1/incidents would take it, and returns it
// in canonical form. A view is filters, not a position: no cursor.
func checkViewQuery(q string, p *principal, s *Server) (string, []string) {
	if len(q) > maxViewQueryBytes {
		return "", []string{fmt.Sprintf("query is longer than %d bytes", maxViewQueryBytes)}
	}
	v, err := url.ParseQuery(q)
	if err != nil {
		return "", []string{"query is not a query string: " + queryError(err) +
			"; separate parameters with & and percent-encode ; % and other reserved characters in values"}
	}
	var errs []string
	if v.Has("cursor") {
		errs = append(errs, "query names a cursor; a view holds filters, sort and order, not a position")
	}
	if _, prob := parseIncidentQuery(v, p, s.opts.Now()); prob != nil {
		for _, e := range prob.Errors {
			errs = append(errs, "query: "+e)
		}
	}
	return v.Encode(), errs
}

// createView serves POST /v1/views. Every answer is audited.
func (s *Server) createView(w http.ResponseWriter, r *http.Request) *problem {
	return s.audited(r, actionViewCreate, func(p *principal, ref *refusal) *problem {
		body, prob := readJSONBody(r, "application/json")
		if prob != nil {
			return prob
		}
		var req viewRequest
		if prob := decodeStrict(body, &req); prob != nil {
			return prob
		}
		var errs []string
		switch {
		case req.Name == "":
			errs = append(errs, "name is required")
		case len(req.Name) > maxViewNameBytes || !printable(req.Name, false):
			errs = append(errs, fmt.Sprintf("name must be at most %d bytes of printable text", maxViewNameBytes))
		default:
			ref.summary = map[string]string{"name": req.Name}
		}
		query, qerrs := checkViewQuery(req.Query, p, s)
		if errs = append(errs, qerrs...); len(errs) > 0 {
			return unprocessable("the view is not valid", errs)
		}
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		v, err := s.opts.Store.CreateView(ctx, casework.SavedView{Owner: p.name, Name: req.Name, Query: query})
		switch {
		case errors.Is(err, casework.ErrConflict):
			return &problem{Status: http.StatusConflict, Title: "Conflict", Detail: fmt.Sprintf("you have a view named %s already", quote(req.Name))}
		case errors.Is(err, casework.ErrInvalidArgument):
			// Too many views: the store says how many one may keep.
			prob := s.storeError(r, err, "view")
			return unprocessable("the view is not valid", []string{prob.Detail})
		case err != nil:
			return s.storeError(r, err, "view")
		}
		_ = s.audit(r, p, p.auditTenant(), actionViewCreate, "", auditDetails{Status: http.StatusCreated,
			After: map[string]string{"id": v.ID, "name": v.Name, "query": v.Query}})
		w.Header().Set("Location", "/v1/views/"+v.ID)
		writeJSON(w, http.StatusCreated, v)
		return nil
	})
}

// deleteView serves DELETE /v1/views/{view_id}: only the caller's own
// views; another's is not found. Every answer is audited.
func (s *Server) deleteView(w http.ResponseWriter, r *http.Request) *problem {
	return s.audited(r, actionViewDelete, func(p *principal, ref *refusal) *problem {
		id := r.PathValue("view_id")
		if !viewIDPattern.MatchString(id) {
			return badRequest(fmt.Sprintf("view id %s is not a view id (32 hexadecimal digits)", quote(id)))
		}
		ref.summary = map[string]string{"id": id}
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		v, err := s.opts.Store.DeleteView(ctx, p.name, id)
		if err != nil {
			return s.storeError(r, err, "view")
		}
		_ = s.audit(r, p, p.auditTenant(), actionViewDelete, "", auditDetails{Status: http.StatusNoContent,
			Before: map[string]string{"id": v.ID, "name": v.Name, "query": v.Query}})
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
