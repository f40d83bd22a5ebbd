package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
)

// defaultPivotRange is how far back an entity pivot looks without from.
const defaultPivotRange = 7 * 24 * time.Hour

// entityPivot serves GET /v1/entities/{type}/{value...}: the incidents,
// alerts and events that name one entity. The value may hold slashes (an
// ARN, an S3 object, a file path).
func (s *Server) entityPivot(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	q := casework.EntityQuery{Tenants: p.tenants, Type: r.PathValue("type"), Value: r.PathValue("value")}
	var errs []string
	if !slices.Contains(entityTypes, q.Type) {
		errs = append(errs, fmt.Sprintf("entity type %s is not one of %s", quote(q.Type), strings.Join(entityTypes, ", ")))
	}
	if q.Value == "" {
		errs = append(errs, "the entity value is missing: /v1/entities/{type}/{value}")
	}
	errs = checkText("entity value", q.Value, 1024, errs)
	v := r.URL.Query()
	errs = append(errs, unknownParams(v, "from", "to", "limit", "tenant")...)
	now := s.opts.Now()
	q.From, q.To, errs = parseRange(v, now, errs)
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-defaultPivotRange)
	}
	if !q.From.Before(q.To) && len(errs) == 0 {
		errs = append(errs, "from must be before to")
	}
	q.Limit, errs = parseLimit(v, defaultPage, errs)
	q.Tenants, errs = tenantParam(v, q.Tenants, errs)
	if len(errs) > 0 {
		return badRequest("invalid entity query", errs...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	a, err := s.opts.Store.EntityPivot(ctx, q)
	if err != nil {
		return s.storeError(r, err, "entity")
	}
	a.Type, a.Value = q.Type, q.Value
	if a.Incidents == nil {
		a.Incidents = []casework.Incident{}
	}
	for i := range a.Incidents {
		a.Incidents[i] = a.Incidents[i].Effective()
		a.Incidents[i].Timing = timing(a.Incidents[i], s.opts.SLA, now)
	}
	if a.Alerts == nil {
		a.Alerts = []alert.Alert{}
	}
	if a.Events == nil {
		a.Events = []casework.Evidence{}
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
