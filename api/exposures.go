package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Exposure is one predicted attack path of a tenant (exposure.Path: its
// hops with evidence and the countermeasures that alone break it).
type Exposure struct {
	TenantUID string `json:"tenant_uid"`
	exposure.Path
}

// ExposurePage is one page of GET /v1/exposures.
type ExposurePage struct {
	Items []Exposure `json:"items"`
	// AsOf is the time of the inventory the paths were found on: the
	// as_of parameter, else the time of the first page's request (the
	// cursor keeps it, so every page reads the same inventory).
	AsOf       time.Time `json:"as_of"`
	NextCursor string    `json:"next_cursor,omitempty"`
	// InventoryTruncated is set when a tenant's inventory had more
	// resources than the store reads at once: paths through the rest are
	// missing.
	InventoryTruncated bool `json:"inventory_truncated"`
}

// listExposures serves GET /v1/exposures: the predicted attack paths of
// the token's tenants, found by exposure.Find on each tenant's asset
// inventory as of a time, highest risk first (then tenant and path id),
// with account, kind, minimum risk and tenant filters and signed cursors.
//
// Paths are computed per request from the inventory (no table of paths):
// Find takes tens of milliseconds on a tenant of fifty accounts
// (exposure.BenchmarkFind). The Inspector findings open at the time are
// kept in the same inventory (exposure.VulnerabilityResourceType).
func (s *Server) listExposures(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	v := r.URL.Query()
	now := s.opts.Now()
	errs := unknownParams(v, "account", "kind", "min_risk", "as_of", "limit", "cursor", "tenant")
	account, kind := v.Get("account"), exposure.Kind(v.Get("kind"))
	if account != "" && !ocsf.IsAccountID(account) {
		errs = append(errs, fmt.Sprintf("account %s is not a 12-digit AWS account id", quote(account)))
	}
	if kind != "" && kind != exposure.KindInternetToProduction && kind != exposure.KindRoleToProduction {
		errs = append(errs, fmt.Sprintf("kind %s is not %s or %s", quote(string(kind)), exposure.KindInternetToProduction, exposure.KindRoleToProduction))
	}
	minRisk := 0
	if mr := v.Get("min_risk"); mr != "" {
		n, err := strconv.Atoi(mr)
		if err != nil || n < 0 || n > 100 {
			errs = append(errs, fmt.Sprintf("min_risk %s is not a number in 0..100", quote(mr)))
		}
		minRisk = n
	}
	asOf, errs := parseTime(v, "as_of", errs)
	limit, errs := parseLimit(v, defaultPage, errs)
	cursor := v.Get("cursor")
	errs = checkCursor("cursor", cursor, errs)
	tenants, errs := tenantParam(v, p.tenants, errs)
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	scope := queueScope("exposures", v, p.tenants)
	pos, ok := s.cursors.open(scope, cursor)
	if !ok {
		return badRequest("invalid cursor", "cursor is not a cursor this API returned for this query (same filters, same tenants)")
	}
	// The position is "<as of, ms>.<offset>": the next pages read the
	// inventory at the first page's time, so a change in between neither
	// repeats nor skips a path.
	offset := 0
	if pos != "" {
		ms, off, _ := strings.Cut(pos, ".")
		at, err1 := strconv.ParseInt(ms, 10, 64)
		n, err2 := strconv.Atoi(off)
		if err1 != nil || err2 != nil || n < 0 {
			return badRequest("invalid cursor", "cursor is not a cursor this API returned")
		}
		asOf, offset = time.UnixMilli(at), n
	}
	if asOf.IsZero() {
		asOf = now
	}
	asOf = asOf.UTC().Truncate(time.Millisecond)

	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	page := ExposurePage{Items: []Exposure{}, AsOf: asOf}
	var all []Exposure
	for _, tenant := range tenants {
		q := casework.InventoryQuery{TenantUID: tenant, AsOf: asOf}
		if account != "" {
			q.Accounts = []string{account}
		}
		paths, truncated, err := s.findExposures(ctx, q)
		if err != nil {
			return s.storeError(r, err, "inventory")
		}
		page.InventoryTruncated = page.InventoryTruncated || truncated
		for _, path := range paths {
			if path.Risk < minRisk || (kind != "" && path.Kind != kind) {
				continue
			}
			all = append(all, Exposure{TenantUID: tenant, Path: path})
		}
	}
	slices.SortStableFunc(all, func(a, b Exposure) int {
		return cmp.Or(cmp.Compare(b.Risk, a.Risk), strings.Compare(a.TenantUID, b.TenantUID), strings.Compare(a.ID, b.ID))
	})
	if offset < len(all) {
		end := min(offset+limit, len(all))
		page.Items = all[offset:end]
		if end < len(all) {
			page.NextCursor = s.cursors.sign(scope, strconv.FormatInt(asOf.UnixMilli(), 10)+"."+strconv.Itoa(end))
		}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// findExposures reads one tenant's inventory and finds its paths.
func (s *Server) findExposures(ctx context.Context, q casework.InventoryQuery) ([]exposure.Path, bool, error) {
	inv, truncated, err := s.inventory(ctx, q)
	if err != nil {
		return nil, false, err
	}
	return exposure.Find(inv), truncated, nil
}

// inventory reads one tenant's inventory as of q.AsOf; truncated reports
// that it has more resources than one read returns.
func (s *Server) inventory(ctx context.Context, q casework.InventoryQuery) (_ *exposure.Inventory, truncated bool, _ error) {
	rows, err := s.opts.Store.InventoryAsOf(ctx, q)
	truncated = errors.Is(err, casework.ErrInventoryTruncated)
	if err != nil && !truncated {
		return nil, false, err
	}
	// Rows are written from decoded items; one that does not decode is a
	// defect of the store, not of the request.
	inv, err := exposure.InventoryFromRows(rows)
	if err != nil {
		return nil, false, fmt.Errorf("the inventory of tenant %s: %w", q.TenantUID, err)
	}
	return inv, truncated, nil
}

// IncidentExposures is the answer of GET /v1/incidents/{id}/exposures.
type IncidentExposures struct {
	IncidentID string `json:"incident_id"`
	// AsOf is the incident's first event time: the paths are those the
	// inventory predicted before the incident began.
	AsOf  time.Time        `json:"as_of"`
	Items []exposure.Match `json:"items"`
	// InventoryTruncated: see ExposurePage.
	InventoryTruncated bool `json:"inventory_truncated"`
}

// incidentExposures serves GET /v1/incidents/{id}/exposures: the paths
// predicted on the incident's accounts as of its first event whose assets
// the incident's entities resolve to (exposure.Walked), each with the
// nodes it shares and since when the inventory showed it.
func (s *Server) incidentExposures(w http.ResponseWriter, r *http.Request) *problem {
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	if errs := unknownParams(r.URL.Query()); len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	p := principalFrom(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	d, err := s.opts.Store.GetIncident(ctx, p.tenants, id, "")
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	asOf := time.UnixMilli(d.FirstSeen).UTC()
	inv, truncated, err := s.inventory(ctx, casework.InventoryQuery{TenantUID: d.TenantUID, AsOf: asOf, Accounts: d.Accounts})
	if err != nil {
		return s.storeError(r, err, "inventory")
	}
	ents := exposure.EntitiesOf(&d.Incident.Incident)
	out := IncidentExposures{IncidentID: d.ID, AsOf: asOf, Items: exposure.Walked(inv, exposure.Find(inv), ents), InventoryTruncated: truncated}
	if out.Items == nil {
		out.Items = []exposure.Match{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
