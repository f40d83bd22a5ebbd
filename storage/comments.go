package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// AddComment stores a comment on an incident of one of tenants. An empty ID
// gets a random one; a caller that retries should set it (an idempotency
// key), so the retry folds into the first write.
func (s *Store) AddComment(ctx context.Context, tenants []string, c casework.Comment) (casework.Comment, error) {
	if c.Body == "" {
		return c, fmt.Errorf("%w: empty comment", casework.ErrInvalidArgument)
	}
	in, err := s.getIncident(ctx, tenants, c.IncidentID, false)
	if err != nil {
		return c, err
	}
	c.TenantUID = in.TenantUID
	if c.ID == "" {
		c.ID = randomID()
	}
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	c.Time = c.Time.UTC().Truncate(time.Millisecond)
	c.Version, c.EditedAt, c.Deleted = 0, time.Time{}, false
	if err := s.insert(ctx, commentColumns(c)); err != nil {
		return c, err
	}
	return c, s.AppendAudit(ctx, casework.AuditEntry{ID: deterministicID("comment", c.TenantUID, c.ID), TenantUID: c.TenantUID, Time: c.Time,
		Actor: c.Author, Action: "incident.comment", IncidentID: c.IncidentID})
}

func commentColumns(c casework.Comment) *columns {
	var edited int64
	if !c.EditedAt.IsZero() {
		edited = c.EditedAt.UnixMilli()
	}
	var deleted uint8
	if c.Deleted {
		deleted = 1
	}
	return &columns{table: TableComments, rows: 1,
		names: []string{"tenant_uid", "incident_id", "comment_id", "time", "time_ms", "author", "body", "version", "edited_ms", "deleted"},
		values: []any{[]string{c.TenantUID}, []string{c.IncidentID}, []string{c.ID}, []time.Time{c.Time}, []int64{c.Time.UnixMilli()},
			[]string{c.Author}, []string{c.Body}, []uint64{c.Version}, []int64{edited}, []uint8{deleted}},
	}
}

// commentsSQL is the latest version of each comment of one incident: its
// first time, the author and body of its highest version, and whether
// that version deleted it.
const commentsSQL = `SELECT comment_id, min(time_ms) AS t, argMax(author, version) AS a, argMax(body, version) AS b,
    max(version) AS v, argMax(edited_ms, version) AS e, argMax(deleted, version) AS d
FROM %s WHERE tenant_uid = ? AND incident_id = ?%s GROUP BY comment_id`

// commentCursor is the opaque position in an incident's comments.
type commentCursor struct {
	Time int64  `json:"t"`
	ID   string `json:"i"`
}

// CommentPage returns one page of an incident's comments, oldest first,
// without deleted ones, starting after cursor (empty: the first page), and
// the cursor of the next page ("" at the end).
func (s *Store) CommentPage(ctx context.Context, tenants []string, incidentID, after string, limit int) ([]casework.Comment, string, error) {
	in, err := s.getIncident(ctx, tenants, incidentID, false)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	args := []any{in.TenantUID, in.ID}
	having := " HAVING d = 0"
	if after != "" {
		var c commentCursor
		if err := decodeCursor(after, &c); err != nil {
			return nil, "", err
		}
		having += " AND (t > ? OR (t = ? AND comment_id > ?))"
		args = append(args, c.Time, c.Time, c.ID)
	}
	q := fmt.Sprintf(commentsSQL, s.t(TableComments), "") + having + fmt.Sprintf(" ORDER BY t, comment_id LIMIT %d", limit+1)
	rows, err := s.conn.Query(s.readCtx(ctx), q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list comments: %w", err)
	}
	defer rows.Close()
	out := []casework.Comment{}
	next := ""
	for rows.Next() {
		c, err := scanComment(rows, in)
		if err != nil {
			return nil, "", err
		}
		if len(out) == limit {
			last := out[len(out)-1]
			next = encodeCursor(commentCursor{Time: last.Time.UnixMilli(), ID: last.ID})
			break
		}
		out = append(out, c)
	}
	return out, next, rows.Err()
}

func scanComment(r scanner, in casework.Incident) (casework.Comment, error) {
	c := casework.Comment{TenantUID: in.TenantUID, IncidentID: in.ID}
	var t, edited int64
	var deleted uint8
	if err := r.Scan(&c.ID, &t, &c.Author, &c.Body, &c.Version, &edited, &deleted); err != nil {
		return c, err
	}
	c.Time, c.Deleted = time.UnixMilli(t).UTC(), deleted == 1
	if edited > 0 {
		c.EditedAt = time.UnixMilli(edited).UTC()
	}
	return c, nil
}

// ChangeComment applies ch and returns the comment's new version. A comment
// that does not exist or was deleted is ErrNotFound.
func (s *Store) ChangeComment(ctx context.Context, ch casework.CommentChange) (casework.Comment, error) {
	if !ch.Delete && ch.Body == "" {
		return casework.Comment{}, fmt.Errorf("%w: empty comment", casework.ErrInvalidArgument)
	}
	in, err := s.getIncident(ctx, ch.Tenants, ch.IncidentID, false)
	if err != nil {
		return casework.Comment{}, err
	}
	_, unlock := s.lockIncident(in.TenantUID, in.ID)
	defer unlock()
	q := fmt.Sprintf(commentsSQL, s.t(TableComments), " AND comment_id = ?")
	rows, err := s.conn.Query(s.readCtx(ctx), q, in.TenantUID, in.ID, ch.CommentID)
	if err != nil {
		return casework.Comment{}, fmt.Errorf("read comment: %w", err)
	}
	var cur casework.Comment
	found := rows.Next()
	if found {
		cur, err = scanComment(rows, in)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return casework.Comment{}, err
	}
	if !found || cur.Deleted {
		return casework.Comment{}, fmt.Errorf("comment %s: %w", ch.CommentID, casework.ErrNotFound)
	}
	if ch.Check != nil {
		if err := ch.Check(cur); err != nil {
			return cur, err
		}
	}
	next := cur
	next.Version = cur.Version + 1
	next.EditedAt = time.Now().UTC().Truncate(time.Millisecond)
	action := "incident.comment.edit"
	if ch.Delete {
		next.Body, next.Deleted, action = "", true, "incident.comment.delete"
	} else {
		next.Body = ch.Body
	}
	audits := []casework.AuditEntry{{
		ID:   deterministicID(action, in.TenantUID, cur.ID, fmt.Sprint(next.Version)),
		Time: next.EditedAt, TenantUID: in.TenantUID, Actor: ch.Actor, Action: action, IncidentID: in.ID,
		Details: []byte(fmt.Sprintf(`{"comment_id":%q,"version":%d,"bytes_before":%d,"bytes_after":%d}`, cur.ID, next.Version, len(cur.Body), len(next.Body))),
	}}
	if ch.Audit != nil {
		audits = append(audits, ch.Audit(cur, next))
	}
	// The audit entries go first, as for workflow changes.
	if err := s.AppendAudit(ctx, audits...); err != nil {
		return casework.Comment{}, err
	}
	if err := s.insert(ctx, commentColumns(next)); err != nil {
		return casework.Comment{}, err
	}
	return next, nil
}
