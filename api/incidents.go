package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Allow-lists for the queue's parameters.
var (
	sortFields = []string{"last_seen", "first_seen", "severity", "risk_score", "updated"}
	statuses   = []string{"new", "in_progress", "on_hold", "resolved", "closed"}
	idPattern  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	// entityTypes are the entity kinds a filter may name.
	entityTypes = []string{"account", "region", "instance", "ip", "principal", "role", "session", "access_key",
		"user", "bucket", "object", "deployment", "application", "deployment_group", "pipeline", "host",
		"process", "file", "hash", "domain", "finding", "cluster", "container"}
)

// parseIncidentQuery validates the queue's query parameters and reports every
// problem at once.
func parseIncidentQuery(v url.Values, p *principal, now time.Time) (IncidentQuery, *problem) {
	q := IncidentQuery{Tenants: p.tenants, Sort: "last_seen", Desc: true, Limit: defaultPage}
	var errs []string
	for k := range v {
		switch k {
		case "status", "min_severity", "assignee", "tag", "rule", "entity_type", "entity_value", "account",
			"from", "to", "q", "sort", "order", "limit", "cursor", "tenant":
		default:
			errs = append(errs, fmt.Sprintf("unknown parameter %q", k))
		}
	}
	for _, s := range v["status"] {
		for _, st := range strings.Split(s, ",") {
			if !slices.Contains(statuses, st) {
				errs = append(errs, fmt.Sprintf("status %q is not one of %s", st, strings.Join(statuses, ", ")))
			}
			q.Status = append(q.Status, st)
		}
	}
	if s := v.Get("min_severity"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 6 {
			errs = append(errs, fmt.Sprintf("min_severity %q is not an OCSF severity id 0..6", s))
		}
		q.MinSeverity = n
	}
	q.Assignee = v.Get("assignee")
	if q.Assignee == "me" {
		q.Assignee = p.name
	}
	if len(q.Assignee) > 128 {
		errs = append(errs, "assignee is longer than 128 characters")
	}
	q.Tag, q.RuleID, q.Account = v.Get("tag"), v.Get("rule"), v.Get("account")
	for name, val := range map[string]string{"tag": q.Tag, "rule": q.RuleID} {
		if val != "" && !idPattern.MatchString(val) {
			errs = append(errs, fmt.Sprintf("%s %q may hold only letters, digits and . _ : -", name, val))
		}
	}
	if q.Account != "" && !isAccount(q.Account) {
		errs = append(errs, fmt.Sprintf("account %q is not a 12-digit AWS account id", q.Account))
	}
	q.EntityType, q.EntityValue = v.Get("entity_type"), v.Get("entity_value")
	if (q.EntityType == "") != (q.EntityValue == "") {
		errs = append(errs, "entity_type and entity_value go together")
	}
	if q.EntityType != "" && !slices.Contains(entityTypes, q.EntityType) {
		errs = append(errs, fmt.Sprintf("entity_type %q is not one of %s", q.EntityType, strings.Join(entityTypes, ", ")))
	}
	if len(q.EntityValue) > 1024 {
		errs = append(errs, "entity_value is longer than 1024 characters")
	}
	q.Text = v.Get("q")
	if len(q.Text) > 256 {
		errs = append(errs, "q is longer than 256 characters")
	}
	var err error
	if s := v.Get("from"); s != "" {
		if q.From, err = time.Parse(time.RFC3339, s); err != nil {
			errs = append(errs, fmt.Sprintf("from %q is not an RFC 3339 time", s))
		}
	}
	if s := v.Get("to"); s != "" {
		if q.To, err = time.Parse(time.RFC3339, s); err != nil {
			errs = append(errs, fmt.Sprintf("to %q is not an RFC 3339 time", s))
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() {
		if q.To.Before(q.From) {
			errs = append(errs, "to is before from")
		} else if q.To.Sub(q.From) > maxTimeRange {
			errs = append(errs, fmt.Sprintf("the time range is longer than %d days", int(maxTimeRange.Hours()/24)))
		}
	}
	if s := v.Get("sort"); s != "" {
		if !slices.Contains(sortFields, s) {
			errs = append(errs, fmt.Sprintf("sort %q is not one of %s", s, strings.Join(sortFields, ", ")))
		}
		q.Sort = s
	}
	switch v.Get("order") {
	case "", "desc":
	case "asc":
		q.Desc = false
	default:
		errs = append(errs, fmt.Sprintf("order %q is not asc or desc", v.Get("order")))
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			errs = append(errs, fmt.Sprintf("limit %q is outside 1..%d", s, maxPageSize))
		}
		q.Limit = n
	}
	q.Cursor = v.Get("cursor")
	if len(q.Cursor) > 512 {
		errs = append(errs, "cursor is longer than 512 characters")
	}
	if t := v.Get("tenant"); t != "" {
		if !slices.Contains(p.tenants, t) {
			errs = append(errs, fmt.Sprintf("tenant %q is not one of this token's tenants", t))
		}
		q.Tenants = []string{t}
	}
	if len(errs) > 0 {
		return q, badRequest("invalid query parameters", errs...)
	}
	return q, nil
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	q, prob := parseIncidentQuery(r.URL.Query(), p, s.opts.Now())
	if prob != nil {
		return prob
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	page, err := s.opts.Store.ListIncidents(ctx, q)
	if err != nil {
		return s.storeError(r, err)
	}
	if page.Items == nil {
		page.Items = []Incident{}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		return &problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "no such incident"}
	}
	cursor := r.URL.Query().Get("evidence_cursor")
	if len(cursor) > 512 {
		return badRequest("evidence_cursor is longer than 512 characters")
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	d, err := s.opts.Store.GetIncident(ctx, p.tenants, id, cursor)
	if err != nil {
		return s.storeError(r, err)
	}
	w.Header().Set("ETag", etag(d.Incident))
	writeJSON(w, http.StatusOK, d)
	return nil
}

// etag identifies the version of an incident a client has seen: the
// correlator's version and the analyst workflow's version.
func etag(in Incident) string {
	return fmt.Sprintf(`"%d.%d"`, in.Version, in.Workflow.Version)
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) *problem {
	rs := s.opts.Rules.Rules()
	if rs == nil {
		rs = []RuleInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rs})
	return nil
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) *problem {
	if err := s.opts.Rules.Reload(); err != nil {
		return &problem{Status: http.StatusUnprocessableEntity, Title: "Rule set rejected", Detail: "the running rules stay loaded: " + err.Error()}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded", "rules": len(s.opts.Rules.Rules())})
	return nil
}
