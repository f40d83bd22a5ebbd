package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// commentRequest is the body of POST /v1/incidents/{id}/comments.
type commentRequest struct {
	Body string `json:"body"`
}

// listComments serves GET /v1/incidents/{id}/comments.
func (s *Server) listComments(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	v := r.URL.Query()
	errs := unknownParams(v, "limit")
	limit, errs := parseLimit(v, maxPageSize, errs)
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	cs, err := s.opts.Store.ListComments(ctx, p.tenants, id, limit)
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	if cs == nil {
		cs = []Comment{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": cs})
	return nil
}

// addComment serves POST /v1/incidents/{id}/comments. An Idempotency-Key
// header makes a retried request fold into the first comment.
func (s *Server) addComment(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !idPattern.MatchString(key) {
		return badRequest(fmt.Sprintf("Idempotency-Key %s may hold only letters, digits and . _ : - (1 to 128)", quote(key)))
	}
	body, prob := readJSONBody(r, "application/json")
	if prob != nil {
		return prob
	}
	var req commentRequest
	if prob := decodeStrict(body, &req); prob != nil {
		return prob
	}
	var errs []string
	switch {
	case strings.TrimSpace(req.Body) == "":
		errs = append(errs, "body must not be empty")
	case len(req.Body) > maxCommentBytes:
		errs = append(errs, fmt.Sprintf("body is longer than %d bytes", maxCommentBytes))
	case !printable(req.Body, true):
		errs = append(errs, "body holds invalid UTF-8 or control characters")
	}
	if len(errs) > 0 {
		return unprocessable("the comment is not valid", errs)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	c := Comment{IncidentID: id, Author: p.name, Body: req.Body, Time: s.opts.Now()}
	if key != "" {
		// Scoped to the author, so two analysts' keys never collide.
		c.ID = commentID(p.name, id, key)
	}
	c, err := s.opts.Store.AddComment(ctx, p.tenants, c)
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	_ = s.audit(r, p, c.TenantUID, actionComment, id, auditDetails{Status: http.StatusCreated, After: map[string]any{"comment_id": c.ID, "bytes": len(c.Body)}})
	w.Header().Set("Location", "/v1/incidents/"+id+"/comments")
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// commentID derives a comment's id from its author, incident and the
// client's idempotency key.
func commentID(author, incident, key string) string {
	h := sha256.Sum256([]byte(author + "\x00" + incident + "\x00" + key))
	return hex.EncodeToString(h[:16])
}
