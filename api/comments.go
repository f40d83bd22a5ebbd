package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/musubi-xdr/musubi/casework"
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
	errs := unknownParams(v, "limit", "cursor")
	limit, errs := parseLimit(v, maxPageSize, errs)
	cursor := v.Get("cursor")
	errs = checkCursor("cursor", cursor, errs)
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	scope := "comments\x00" + strings.Join(p.tenants, ",") + "\x00" + id
	pos, ok := s.cursors.open(scope, cursor)
	if !ok {
		return badRequest("invalid cursor", "cursor is not a cursor this API returned for this incident's comments and these tenants")
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	cs, next, err := s.opts.Store.CommentPage(ctx, p.tenants, id, pos, limit)
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	if cs == nil {
		cs = []casework.Comment{}
	}
	page := map[string]any{"items": cs}
	if next != "" {
		page["next_cursor"] = s.cursors.sign(scope, next)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// commentIDPattern is what a comment id may look like.
var commentIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// editComment serves PATCH /v1/incidents/{id}/comments/{comment_id}: the
// author changes the text. Every answer is audited.
func (s *Server) editComment(w http.ResponseWriter, r *http.Request) *problem {
	return s.changeComment(w, r, false)
}

// deleteComment serves DELETE /v1/incidents/{id}/comments/{comment_id}:
// the author removes the comment. Every answer is audited.
func (s *Server) deleteComment(w http.ResponseWriter, r *http.Request) *problem {
	return s.changeComment(w, r, true)
}

func (s *Server) changeComment(w http.ResponseWriter, r *http.Request, del bool) *problem {
	action := actionCommentEdit
	if del {
		action = actionCommentDel
	}
	return s.audited(r, action, func(p *principal, ref *refusal) *problem { return s.commentChange(w, r, p, del, action, ref) })
}

func (s *Server) commentChange(w http.ResponseWriter, r *http.Request, p *principal, del bool, action string, ref *refusal) *problem {
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	ref.incidentID = id
	cid := r.PathValue("comment_id")
	if !commentIDPattern.MatchString(cid) {
		return badRequest(fmt.Sprintf("comment id %s is not a comment id: 32 hex digits", quote(cid)))
	}
	ref.summary = map[string]any{"comment_id": cid}
	ch := casework.CommentChange{Tenants: p.tenants, IncidentID: id, CommentID: cid, Delete: del, Actor: p.name}
	if !del {
		body, prob := readJSONBody(r, "application/json", "application/merge-patch+json")
		if prob != nil {
			return prob
		}
		var req commentRequest
		if prob := decodeStrict(body, &req); prob != nil {
			return prob
		}
		if errs := checkCommentBody(req.Body); len(errs) > 0 {
			return unprocessable("the comment is not valid", errs)
		}
		ch.Body = req.Body
		ref.summary = map[string]any{"comment_id": cid, "bytes": len(req.Body)}
	}
	ch.Check = func(cur casework.Comment) error {
		ref.tenant = cur.TenantUID
		if cur.Author != p.name {
			return refusedError{&problem{Status: http.StatusForbidden, Title: "Forbidden",
				Detail: "only the author of a comment may edit or delete it; it was written by " + quote(cur.Author)}}
		}
		return nil
	}
	status := http.StatusOK
	if del {
		status = http.StatusNoContent
	}
	ch.Audit = func(before, after casework.Comment) casework.AuditEntry {
		return s.auditEntry(r, p, before.TenantUID, action, id, auditDetails{Status: status,
			Before: map[string]any{"comment_id": cid, "version": before.Version, "bytes": len(before.Body)},
			After:  map[string]any{"comment_id": cid, "version": after.Version, "bytes": len(after.Body), "deleted": after.Deleted}})
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	c, err := s.opts.Store.ChangeComment(ctx, ch)
	if err != nil {
		var refused refusedError
		if errors.As(err, &refused) {
			return refused.prob
		}
		return s.storeError(r, err, "comment on this incident")
	}
	s.audits.WithLabelValues("written").Inc()
	if del {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// checkCommentBody lists what is wrong with a comment's text.
func checkCommentBody(body string) []string {
	switch {
	case strings.TrimSpace(body) == "":
		return []string{"body must not be empty"}
	case len(body) > maxCommentBytes:
		return []string{fmt.Sprintf("body is longer than %d bytes", maxCommentBytes)}
	case !printable(body, true):
		return []string{"body holds invalid UTF-8 or control characters"}
	}
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
	if errs := checkCommentBody(req.Body); len(errs) > 0 {
		return unprocessable("the comment is not valid", errs)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	c := casework.Comment{IncidentID: id, Author: p.name, Body: req.Body, Time: s.opts.Now()}
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
