package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Allow-lists for the queue's parameters.
var (
	sortFields = []string{"last_seen", "first_seen", "severity", "risk_score", "updated"}
	// filterStatuses are the statuses the queue can be filtered by: the
	// workflow statuses and "merged".
	filterStatuses = append(slices.Clone(statuses), "merged")
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	// assigneePattern admits token names and e-mail addresses.
	assigneePattern = regexp.MustCompile(`^[A-Za-z0-9._:@+-]{1,128}$`)
	// entityTypes are the entity kinds a filter may name.
	entityTypes = []string{"account", "region", "instance", "ip", "principal", "role", "session", "access_key",
		"user", "bucket", "object", "deployment", "application", "deployment_group", "pipeline", "host",
		"process", "file", "hash", "domain", "finding", "cluster", "container"}
)

// parseIncidentQuery validates the queue's query parameters and reports every
// problem at once.
func parseIncidentQuery(v url.Values, p *principal, now time.Time) (casework.IncidentQuery, *problem) {
	// The queue's default order is risk, highest first: the correlator's
	// risk with the incident's asset factors (exposure.Scorer).
	q := casework.IncidentQuery{Tenants: p.tenants, Sort: "risk_score", Desc: true, Limit: defaultPage}
	errs := unknownParams(v, "status", "min_severity", "assignee", "tag", "rule", "entity_type", "entity_value", "account",
		"from", "to", "q", "sort", "order", "limit", "cursor", "tenant", "sla",
		"team", "verdict", "max_severity", "closed_from", "closed_to", "search")
	switch q.SLA = v.Get("sla"); q.SLA {
	case "", "breached", "ok":
	default:
		errs = append(errs, fmt.Sprintf("sla %s is not breached or ok", quote(q.SLA)))
	}
	for _, s := range v["status"] {
		for _, st := range strings.Split(s, ",") {
			if !slices.Contains(filterStatuses, st) {
				errs = append(errs, fmt.Sprintf("status %s is not one of %s", quote(st), strings.Join(filterStatuses, ", ")))
			}
			q.Status = append(q.Status, st)
		}
	}
	if len(q.Status) > len(filterStatuses) {
		errs = append(errs, "status names more values than there are statuses")
	}
	q.MinSeverity, errs = parseSeverity(v, "min_severity", 0, errs)
	q.Assignee = v.Get("assignee")
	if q.Assignee == "me" {
		q.Assignee = p.name
	}
	if q.Assignee != "" && !assigneePattern.MatchString(q.Assignee) {
		errs = append(errs, fmt.Sprintf("assignee %s is not none, me or a name of letters, digits and . _ : @ + - (at most 128)", quote(q.Assignee)))
	}
	q.Team = v.Get("team")
	if q.Team != "" && !assigneePattern.MatchString(q.Team) {
		errs = append(errs, fmt.Sprintf("team %s is not none or a team name", quote(q.Team)))
	}
	for _, s := range v["verdict"] {
		for _, vd := range strings.Split(s, ",") {
			if !slices.Contains(verdicts, vd) {
				errs = append(errs, fmt.Sprintf("verdict %s is not one of %s", quote(vd), strings.Join(verdicts, ", ")))
			}
			if !slices.Contains(q.Verdict, vd) {
				q.Verdict = append(q.Verdict, vd)
			}
		}
	}
	q.MaxSeverity, errs = parseSeverity(v, "max_severity", 1, errs)
	q.ClosedFrom, errs = parseTime(v, "closed_from", errs)
	q.ClosedTo, errs = parseTime(v, "closed_to", errs)
	if search := v.Get("search"); search != "" {
		if v.Get("q") != "" {
			errs = append(errs, "q and search exclude each other: q matches the title, id and number; search also comments, entities and evidence")
		}
		errs = checkText("search", search, 256, errs)
		q.Text, q.FullText = search, true
	}
	q.Tag, q.RuleID, q.Account = v.Get("tag"), v.Get("rule"), v.Get("account")
	if q.Tag != "" && !tagPattern.MatchString(q.Tag) {
		errs = append(errs, fmt.Sprintf("tag %s may hold only letters, digits and . _ : - (at most 64)", quote(q.Tag)))
	}
	if q.RuleID != "" && !idPattern.MatchString(q.RuleID) {
		errs = append(errs, fmt.Sprintf("rule %s may hold only letters, digits and . _ : - (at most 128)", quote(q.RuleID)))
	}
	if q.Account != "" && !ocsf.IsAccountID(q.Account) {
		errs = append(errs, fmt.Sprintf("account %s is not a 12-digit AWS account id", quote(q.Account)))
	}
	q.EntityType, q.EntityValue = v.Get("entity_type"), v.Get("entity_value")
	if (q.EntityType == "") != (q.EntityValue == "") {
		errs = append(errs, "entity_type and entity_value go together")
	}
	if q.EntityType != "" && !slices.Contains(entityTypes, q.EntityType) {
		errs = append(errs, fmt.Sprintf("entity_type %s is not one of %s", quote(q.EntityType), strings.Join(entityTypes, ", ")))
	}
	errs = checkText("entity_value", q.EntityValue, 1024, errs)
	if !q.FullText {
		q.Text = v.Get("q")
		errs = checkText("q", q.Text, 256, errs)
	}
	q.From, q.To, errs = parseRange(v, now, errs)
	if s := v.Get("sort"); s != "" {
		if !slices.Contains(sortFields, s) {
			errs = append(errs, fmt.Sprintf("sort %s is not one of %s", quote(s), strings.Join(sortFields, ", ")))
		}
		q.Sort = s
	}
	switch v.Get("order") {
	case "", "desc":
	case "asc":
		q.Desc = false
	default:
		errs = append(errs, fmt.Sprintf("order %s is not asc or desc", quote(v.Get("order"))))
	}
	q.Limit, errs = parseLimit(v, defaultPage, errs)
	q.Cursor = v.Get("cursor")
	errs = checkCursor("cursor", q.Cursor, errs)
	q.Tenants, errs = tenantParam(v, q.Tenants, errs)
	if len(errs) > 0 {
		return q, badRequest("invalid query parameters", errs...)
	}
	return q, nil
}

// checkText checks a free-text parameter: printable and at most max bytes.
func checkText(name, s string, max int, errs []string) []string {
	switch {
	case len(s) > max:
		errs = append(errs, fmt.Sprintf("%s is longer than %d bytes", name, max))
	case !printable(s, false):
		errs = append(errs, fmt.Sprintf("%s holds invalid UTF-8 or control characters", name))
	}
	return errs
}

// cursorPattern is the alphabet of the opaque cursors (base64url).
var cursorPattern = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

func checkCursor(name, s string, errs []string) []string {
	if len(s) > 512 || !cursorPattern.MatchString(s) {
		errs = append(errs, fmt.Sprintf("%s is not a cursor this API returned", name))
	}
	return errs
}

// incidentID reads and checks the {id} path parameter.
func incidentID(r *http.Request) (string, *problem) {
	id := r.PathValue("id")
	if prob := checkIncidentID(id); prob != nil {
		return "", prob
	}
	return id, nil
}

// checkIncidentID checks an incident id given by the client.
func checkIncidentID(id string) *problem {
	if !idPattern.MatchString(id) {
		return badRequest(fmt.Sprintf("incident id %s is not an id: 1 to 128 letters, digits and . _ : -", quote(id)))
	}
	return nil
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	q, prob := parseIncidentQuery(r.URL.Query(), p, s.opts.Now())
	if prob != nil {
		return prob
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	scope := queueScope("incidents", r.URL.Query(), p.tenants)
	pos, ok := s.cursors.open(scope, q.Cursor)
	if !ok {
		return badRequest("invalid cursor", "cursor is not a cursor this API returned for this query (same filters, sort and order, same tenants)")
	}
	q.Cursor = pos
	now := s.opts.Now()
	q.SLAMillis, q.NowMillis = slaMillis(s.opts.SLA), now.UnixMilli()
	page, err := s.opts.Store.ListIncidents(ctx, q)
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	for i := range page.Items {
		page.Items[i] = page.Items[i].Effective()
		page.Items[i].Timing = timing(page.Items[i], s.opts.SLA, now)
	}
	if err := s.explainRisk(ctx, p.tenants, page.Items); err != nil {
		return s.storeError(r, err, "incident")
	}
	page.NextCursor = s.cursors.sign(scope, page.NextCursor)
	if page.Items == nil {
		page.Items = []casework.Incident{}
	}
	if page.CountsByStatus == nil {
		page.CountsByStatus = map[string]int{}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	v := r.URL.Query()
	errs := unknownParams(v, "evidence_cursor")
	cursor := v.Get("evidence_cursor")
	errs = checkCursor("evidence_cursor", cursor, errs)
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	scope := evidenceScope(id, p.tenants)
	pos, ok := s.cursors.open(scope, cursor)
	if !ok {
		return badRequest("invalid cursor", "evidence_cursor is not a cursor this API returned for this incident and these tenants")
	}
	// The risk explanation is keyed by the id alone: it is read while the
	// detail is, not after it (one round trip less before the first byte).
	var d casework.IncidentDetail
	var exs map[string]incident.RiskExplanation
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		d, err = s.opts.Store.GetIncident(gctx, p.tenants, id, pos)
		return err
	})
	g.Go(func() (err error) {
		exs, err = s.opts.Store.RiskExplanations(gctx, p.tenants, []string{id})
		return err
	})
	if err := g.Wait(); err != nil {
		return s.storeError(r, err, "incident")
	}
	d.Incident = d.Incident.Effective()
	d.NextEvidenceCursor = s.cursors.sign(scope, d.NextEvidenceCursor)
	d.Timing = timing(d.Incident, s.opts.SLA, s.opts.Now())
	// Incident ids are unique across tenants (the correlator's hash of the
	// tenant and the first alert), so the explanation read by id is this
	// incident's.
	if ex, ok := exs[d.ID]; ok {
		d.Risk = &ex
	}
	fillDetail(&d)
	w.Header().Set("ETag", etag(d.Incident))
	writeJSON(w, http.StatusOK, d)
	return nil
}

// explainRisk sets the risk explanation of every incident of items that
// has one (incident.RiskExplanation, stored with the version it explains).
func (s *Server) explainRisk(ctx context.Context, tenants []string, items []casework.Incident) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].ID
	}
	exs, err := s.opts.Store.RiskExplanations(ctx, tenants, ids)
	if err != nil {
		return err
	}
	for i := range items {
		if ex, ok := exs[items[i].ID]; ok {
			items[i].Risk = &ex
		}
	}
	return nil
}

// fillDetail turns nil lists into empty ones, so clients always see arrays.
func fillDetail(d *casework.IncidentDetail) {
	if d.Nodes == nil {
		d.Nodes = []incident.Node{}
	}
	if d.Edges == nil {
		d.Edges = []incident.Edge{}
	}
	if d.Timeline == nil {
		d.Timeline = []incident.TimelineEntry{}
	}
	if d.Alerts == nil {
		d.Alerts = []alert.Alert{}
	}
	if d.Evidence == nil {
		d.Evidence = []casework.Evidence{}
	}
}

// etag identifies the version of an incident a client has seen: the
// correlator's version and the analyst workflow's version.
func etag(in casework.Incident) string {
	return fmt.Sprintf(`"%d.%d"`, in.Version, in.Workflow.Version)
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) *problem {
	if errs := unknownParams(r.URL.Query()); len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	p := principalFrom(r.Context())
	rs := s.opts.Rules.Rules()
	if rs == nil {
		rs = []RuleInfo{}
	}
	if !p.all {
		// The counters mix every tenant's activity.
		for i := range rs {
			rs[i].Evaluations, rs[i].Matches, rs[i].Errors = 0, 0, 0
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rs, "stats": p.all})
	return nil
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	if !p.all {
		prob := &problem{Status: http.StatusForbidden, Title: "Forbidden", Detail: "reloading rules changes them for every tenant; it needs an admin token of every tenant (\"*\")"}
		s.auditDenied(r, p, "POST /-/reload", prob)
		return prob
	}
	before := len(s.opts.Rules.Rules())
	if err := s.opts.Rules.Reload(); err != nil {
		prob := &problem{Status: http.StatusUnprocessableEntity, Title: "Rule set rejected", Detail: "the running rules stay loaded: " + err.Error()}
		_ = s.audit(r, p, p.auditTenant(), actionReload, "", auditDetails{Status: prob.Status, Reason: prob.Detail})
		return prob
	}
	after := len(s.opts.Rules.Rules())
	_ = s.audit(r, p, p.auditTenant(), actionReload, "", auditDetails{Status: http.StatusOK,
		Before: map[string]int{"rules": before}, After: map[string]int{"rules": after}})
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded", "rules": after})
	return nil
}
