package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// TableViews holds the saved views: named queue filters of one principal
// (a token name). A change is the view's next version; a deletion is a
// version with deleted = 1.
const TableViews = "saved_views"

// MaxViewsPerOwner bounds the saved views of one principal.
const MaxViewsPerOwner = 100

// viewsSQL is the latest version of each view of one owner.
const viewsSQL = `SELECT view_id, argMax(name, version) AS n, argMax(query, version) AS q, min(created_ms) AS c,
    max(version) AS v, argMax(deleted, version) AS d
FROM %s WHERE owner = ? GROUP BY view_id HAVING d = 0 ORDER BY lower(n), view_id LIMIT %d`

type storedView struct {
	casework.SavedView
	version uint64
}

func (s *Store) views(ctx context.Context, owner string) ([]storedView, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), fmt.Sprintf(viewsSQL, s.t(TableViews), MaxViewsPerOwner*10), owner)
	if err != nil {
		return nil, fmt.Errorf("saved views: %w", err)
	}
	defer rows.Close()
	out := []storedView{}
	for rows.Next() {
		v := storedView{SavedView: casework.SavedView{Owner: owner}}
		var created int64
		var deleted uint8
		if err := rows.Scan(&v.ID, &v.Name, &v.Query, &created, &v.version, &deleted); err != nil {
			return nil, err
		}
		v.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

// ListViews returns the saved views of owner, by name. Nobody else's are
// read: owner is the only key.
func (s *Store) ListViews(ctx context.Context, owner string) ([]casework.SavedView, error) {
	vs, err := s.views(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make([]casework.SavedView, len(vs))
	for i, v := range vs {
		out[i] = v.SavedView
	}
	return out, nil
}

// CreateView stores a new saved view of v.Owner with a random id. A name
// the owner already uses (ignoring case) is ErrConflict; more than
// MaxViewsPerOwner views is ErrInvalidArgument. Views of one owner are
// created one at a time in this process.
func (s *Store) CreateView(ctx context.Context, v casework.SavedView) (casework.SavedView, error) {
	if v.Owner == "" || v.Name == "" {
		return v, fmt.Errorf("%w: a view needs an owner and a name", casework.ErrInvalidArgument)
	}
	_, unlock := s.lockIncident("\x00views", v.Owner)
	defer unlock()
	vs, err := s.views(ctx, v.Owner)
	if err != nil {
		return v, err
	}
	for _, o := range vs {
		if strings.EqualFold(o.Name, v.Name) {
			return v, fmt.Errorf("view name %q is taken by view %s: %w", v.Name, o.ID, casework.ErrConflict)
		}
	}
	if len(vs) >= MaxViewsPerOwner {
		return v, fmt.Errorf("%w: %d saved views is the most one principal may keep; delete one first", casework.ErrInvalidArgument, MaxViewsPerOwner)
	}
	v.ID = randomID()
	v.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	return v, s.insert(ctx, viewColumns(v, 1, false))
}

// DeleteView deletes view id of owner; ErrNotFound when owner has no such
// view (another principal's view included).
func (s *Store) DeleteView(ctx context.Context, owner, id string) (casework.SavedView, error) {
	_, unlock := s.lockIncident("\x00views", owner)
	defer unlock()
	vs, err := s.views(ctx, owner)
	if err != nil {
		return casework.SavedView{}, err
	}
	for _, v := range vs {
		if v.ID == id {
			return v.SavedView, s.insert(ctx, viewColumns(v.SavedView, v.version+1, true))
		}
	}
	return casework.SavedView{}, fmt.Errorf("view %s: %w", id, casework.ErrNotFound)
}

func viewColumns(v casework.SavedView, version uint64, deleted bool) *columns {
	var d uint8
	if deleted {
		d = 1
	}
	return &columns{table: TableViews, rows: 1,
		names: []string{"owner", "view_id", "version", "name", "query", "created_ms", "deleted"},
		values: []any{[]string{v.Owner}, []string{v.ID}, []uint64{version}, []string{v.Name}, []string{v.Query},
			[]int64{v.CreatedAt.UnixMilli()}, []uint8{d}},
	}
}
