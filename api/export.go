package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// Bounds of an export: an incident bundle reads at most maxExportEvidencePages
// pages of evidence and the newest maxExportAudit audit entries; a CSV
// queue export at most maxCSVRows rows (then a Link to the rest).
const (
	maxExportEvidencePages = 20
	maxExportComments      = 5000
	maxExportAudit         = 500
	maxCSVRows             = 10000
	exportFormatVersion    = "musubi.incident-export/v1"
)

// incidentExport is the self-contained bundle of one incident.
type incidentExport struct {
	Format     string                  `json:"format"`
	ExportedAt time.Time               `json:"exported_at"`
	ExportedBy string                  `json:"exported_by"`
	Incident   casework.IncidentDetail `json:"incident"`
	ETag       string                  `json:"etag"`
	Comments   []casework.Comment      `json:"comments"`
	Audit      []casework.AuditEntry   `json:"audit"`
	// Truncated names the parts cut at the export's bounds.
	Truncated []string `json:"truncated,omitempty"`
}

// exportIncident serves GET /v1/incidents/{id}/export?format=json|markdown.
func (s *Server) exportIncident(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	v := r.URL.Query()
	errs := unknownParams(v, "format")
	format := v.Get("format")
	switch format {
	case "":
		format = "json"
	case "json", "markdown":
	default:
		errs = append(errs, fmt.Sprintf("format %s is not json or markdown", quote(format)))
	}
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	ex, err := s.collectExport(ctx, p, id)
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	name := id
	if ex.Incident.Number != "" {
		name = ex.Incident.Number + "-" + id
	}
	w.Header().Set("ETag", ex.ETag)
	if format == "markdown" {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.md"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(markdownReport(ex)))
		return nil
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
	writeJSON(w, http.StatusOK, ex)
	return nil
}

// collectExport reads everything of one incident: the detail with every
// page of evidence, every comment and the incident's audit trail.
func (s *Server) collectExport(ctx context.Context, p *principal, id string) (incidentExport, error) {
	ex := incidentExport{Format: exportFormatVersion, ExportedAt: s.opts.Now().UTC(), ExportedBy: p.name}
	d, err := s.opts.Store.GetIncident(ctx, p.tenants, id, "")
	if err != nil {
		return ex, err
	}
	for page := 1; d.NextEvidenceCursor != ""; page++ {
		if page >= maxExportEvidencePages {
			ex.Truncated = append(ex.Truncated, "evidence")
			break
		}
		more, err := s.opts.Store.GetIncident(ctx, p.tenants, id, d.NextEvidenceCursor)
		if err != nil {
			return ex, err
		}
		d.Evidence, d.NextEvidenceCursor = append(d.Evidence, more.Evidence...), more.NextEvidenceCursor
	}
	d.NextEvidenceCursor = ""
	d.Incident = d.Incident.Effective()
	d.Timing = timing(d.Incident, s.opts.SLA, s.opts.Now())
	fillDetail(&d)
	ex.Incident, ex.ETag = d, etag(d.Incident)
	cursor := ""
	for {
		cs, next, err := s.opts.Store.CommentPage(ctx, p.tenants, id, cursor, maxPageSize)
		if err != nil {
			return ex, err
		}
		ex.Comments = append(ex.Comments, cs...)
		if next == "" {
			break
		}
		if len(ex.Comments) >= maxExportComments {
			ex.Truncated = append(ex.Truncated, "comments")
			break
		}
		cursor = next
	}
	if ex.Comments == nil {
		ex.Comments = []casework.Comment{}
	}
	ex.Audit, err = s.opts.Store.ListAudit(ctx, casework.AuditQuery{Tenants: []string{d.TenantUID}, IncidentID: id, Limit: maxExportAudit})
	if err != nil {
		return ex, err
	}
	if len(ex.Audit) >= maxExportAudit {
		ex.Truncated = append(ex.Truncated, "audit")
	}
	if ex.Audit == nil {
		ex.Audit = []casework.AuditEntry{}
	}
	return ex, nil
}

// md makes text safe inside a Markdown table cell or line: no line breaks,
// no HTML, no Markdown syntax of its own.
func md(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case strings.ContainsRune("\\`*_{}[]|~#", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// markdownReport renders an export as a report a person reads.
func markdownReport(ex incidentExport) string {
	d := ex.Incident
	wf := d.Workflow
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	title := md(d.Title)
	if d.Number != "" {
		title = md(d.Number) + ": " + title
	}
	line("# %s", title)
	line("")
	line("Exported %s by %s from Musubi (%s, ETag %s).", ex.ExportedAt.Format(time.RFC3339), md(ex.ExportedBy), md(d.ID), md(ex.ETag))
	line("")
	line("| | |")
	line("|---|---|")
	row := func(k, v string) {
		if v != "" {
			line("| %s | %s |", k, v)
		}
	}
	row("Tenant", md(d.TenantUID))
	row("Status", md(currentStatus(wf.Status)))
	row("Severity", strconv.Itoa(d.Severity))
	row("Risk score", strconv.Itoa(d.RiskScore))
	row("Assignee", md(wf.Assignee))
	row("Team", md(wf.Team))
	row("Verdict", md(wf.Verdict))
	row("Classification", md(wf.Classification))
	row("Impact", md(wf.Impact))
	row("Reason", md(wf.Reason))
	row("Tags", md(strings.Join(wf.Tags, ", ")))
	row("First seen", msTime(d.FirstSeen))
	row("Last seen", msTime(d.LastSeen))
	if t := d.Timing; t != nil {
		if !t.SLADue.IsZero() {
			row("SLA due", t.SLADue.UTC().Format(time.RFC3339)+map[bool]string{true: " (breached)", false: ""}[t.SLABreached])
		}
		if t.TimeToAcknowledge != nil {
			row("Time to acknowledge", (time.Duration(*t.TimeToAcknowledge) * time.Second).String())
		}
		if t.TimeToResolve != nil {
			row("Time to resolve", (time.Duration(*t.TimeToResolve) * time.Second).String())
		}
	}
	row("Accounts", md(strings.Join(d.Accounts, ", ")))
	row("Tactics", md(strings.Join(d.Tactics, ", ")))
	row("Techniques", md(strings.Join(d.Techniques, ", ")))
	if len(ex.Truncated) > 0 {
		line("")
		line("**Truncated at the export's bounds:** %s.", md(strings.Join(ex.Truncated, ", ")))
	}
	line("")
	line("## Timeline")
	line("")
	line("| Time | Stage | Rule | Alert | Severity |")
	line("|---|---|---|---|---|")
	for _, t := range d.Timeline {
		line("| %s | %s | %s | %s | %d |", msTime(t.Time), md(t.Stage), md(t.RuleID), md(t.Title), t.Severity)
	}
	line("")
	line("## Alerts")
	line("")
	line("| Time | Id | Rule | Title | Severity | Events |")
	line("|---|---|---|---|---|---|")
	for _, a := range d.Alerts {
		line("| %s | %s | %s | %s | %d | %s |", msTime(a.Time), md(a.ID), md(a.RuleID+" v"+a.RuleVersion), md(a.Title), a.Severity, md(strings.Join(a.EventIDs, ", ")))
	}
	line("")
	line("## Graph")
	line("")
	line("| From | Relation | To | Rule | Join key | Gap |")
	line("|---|---|---|---|---|---|")
	for _, e := range d.Edges {
		line("| %s | %s | %s | %s | %s | %s |", md(e.Source), md(e.Relation), md(e.Target), md(e.RuleID), md(e.JoinKey), (time.Duration(e.GapMS) * time.Millisecond).String())
	}
	line("")
	line("## Evidence")
	line("")
	line("| Time | Event | Source | Operation |")
	line("|---|---|---|---|")
	for _, e := range d.Evidence {
		line("| %s | %s | %s | %s |", msTime(e.Time), md(e.ID), md(e.Source), md(e.Operation))
	}
	line("")
	line("## Comments")
	for _, c := range ex.Comments {
		if c.Deleted {
			continue
		}
		line("")
		line("**%s**, %s:", md(c.Author), c.Time.UTC().Format(time.RFC3339))
		line("")
		for _, l := range strings.Split(c.Body, "\n") {
			line("> %s", md(l))
		}
	}
	line("")
	line("## Audit")
	line("")
	line("| Time | Actor | Action |")
	line("|---|---|---|")
	for _, a := range ex.Audit {
		line("| %s | %s | %s |", a.Time.UTC().Format(time.RFC3339), md(a.Actor), md(a.Action))
	}
	return b.String()
}

// csvCell neutralises a cell a spreadsheet would run as a formula: one
// starting with = + - @ tab or carriage return gets a leading quote.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

var csvHeader = []string{"id", "number", "tenant_uid", "title", "status", "severity_id", "risk_score", "assignee", "team",
	"verdict", "classification", "impact", "tags", "first_seen", "last_seen", "created_at", "acknowledged_at", "resolved_at",
	"closed_at", "time_to_acknowledge_seconds", "time_to_resolve_seconds", "sla_due", "sla_breached", "rule_ids", "accounts"}

// incidentsCSV serves GET /v1/incidents.csv: the queue, with the queue's
// filters, sort and order, as CSV; up to limit rows (default and most
// maxCSVRows), then a Link header to the rest.
func (s *Server) incidentsCSV(w http.ResponseWriter, r *http.Request) *problem {
	p := principalFrom(r.Context())
	v := r.URL.Query()
	var errs []string
	limit := maxCSVRows
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxCSVRows {
			errs = append(errs, fmt.Sprintf("limit %s is not 1..%d", quote(l), maxCSVRows))
		}
		limit = n
	}
	rest := url.Values{}
	for k, vs := range v {
		if k != "limit" {
			rest[k] = vs
		}
	}
	q, prob := parseIncidentQuery(rest, p, s.opts.Now())
	if prob != nil {
		prob.Errors = append(prob.Errors, errs...)
		return prob
	}
	if len(errs) > 0 {
		return badRequest("invalid query parameters", errs...)
	}
	scope := queueScope("incidents", v, p.tenants)
	pos, ok := s.cursors.open(scope, q.Cursor)
	if !ok {
		return badRequest("invalid cursor", "cursor is not a cursor this API returned for this query (same filters, sort and order, same tenants)")
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	now := s.opts.Now()
	q.SLAMillis, q.NowMillis, q.Cursor = slaMillis(s.opts.SLA), now.UnixMilli(), pos
	var rows []casework.Incident
	for {
		q.Limit = min(maxPageSize, limit-len(rows))
		page, err := s.opts.Store.ListIncidents(ctx, q)
		if err != nil {
			return s.storeError(r, err, "incident")
		}
		rows = append(rows, page.Items...)
		q.Cursor = page.NextCursor
		if q.Cursor == "" || len(rows) >= limit {
			break
		}
	}
	if q.Cursor != "" {
		next := url.Values{}
		for k, vs := range v {
			next[k] = vs
		}
		next.Set("cursor", s.cursors.sign(scope, q.Cursor))
		w.Header().Set("Link", "</v1/incidents.csv?"+next.Encode()+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="incidents.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	rfc := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	opt := func(n *int64) string {
		if n == nil {
			return ""
		}
		return strconv.FormatInt(*n, 10)
	}
	for _, in := range rows {
		in = in.Effective()
		t := timing(in, s.opts.SLA, now)
		wf := in.Workflow
		rec := []string{in.ID, in.Number, in.TenantUID, in.Title, currentStatus(wf.Status), strconv.Itoa(in.Severity),
			strconv.Itoa(in.RiskScore), wf.Assignee, wf.Team, wf.Verdict, wf.Classification, wf.Impact, strings.Join(wf.Tags, " "),
			msTime(in.FirstSeen), msTime(in.LastSeen), rfc(t.CreatedAt), rfc(wf.AcknowledgedAt), rfc(wf.ResolvedAt), rfc(wf.ClosedAt),
			opt(t.TimeToAcknowledge), opt(t.TimeToResolve), rfc(t.SLADue), strconv.FormatBool(t.SLABreached),
			strings.Join(in.RuleIDs, " "), strings.Join(in.Accounts, " ")}
		for i := range rec {
			rec[i] = csvCell(rec[i])
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return nil
}
