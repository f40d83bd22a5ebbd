package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// Workflow statuses, in the order an incident usually goes through them.
var statuses = []string{"new", "in_progress", "on_hold", "resolved", "closed"}

// transitions is the table of allowed status changes. Staying in the same
// status is always allowed (it changes nothing). Reopening takes a resolved
// or closed incident back to in_progress. A merged incident is final.
var transitions = map[string][]string{
	"new":         {"in_progress", "on_hold", "resolved", "closed"},
	"in_progress": {"on_hold", "resolved", "closed"},
	"on_hold":     {"in_progress", "resolved", "closed"},
	"resolved":    {"in_progress", "closed"},
	"closed":      {"in_progress"},
}

// Verdicts an analyst gives when closing an incident.
var verdicts = []string{"true_positive", "benign_positive", "false_positive", "undetermined", "duplicate"}

// classifications are the reasons a verdict may give (Sentinel's
// classification reasons), by verdict; "other" goes with any verdict.
var classifications = map[string][]string{
	"true_positive":   {"suspicious_activity", "other"},
	"benign_positive": {"suspicious_but_expected", "other"},
	"false_positive":  {"incorrect_alert_logic", "inaccurate_data", "other"},
	"undetermined":    {"other"},
	"duplicate":       {"other"},
}

// allClassifications lists every classification once.
var allClassifications = []string{"suspicious_activity", "suspicious_but_expected", "incorrect_alert_logic", "inaccurate_data", "other"}

// impacts are the values of an incident's impact assessment.
var impacts = []string{"none", "low", "medium", "high", "critical"}

// tagPattern is what a tag may look like.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

const maxTags = 32

// currentStatus maps the effective status of an incident onto the
// workflow's: the correlator calls an untouched incident "new" (older rows
// say "open").
func currentStatus(s string) string {
	if s == "open" || s == "" {
		return "new"
	}
	return s
}

// incidentPatch is a validated JSON merge patch (RFC 7396) of an incident's
// workflow. A nil field is absent from the patch.
type incidentPatch struct {
	Status           *string
	Assignee         *string
	SeverityOverride *int
	Tags             *[]string
	Verdict          *string
	Reason           *string
	Classification   *string
	Impact           *string
	Team             *string
}

// patchFields are the members a patch may have.
var patchFields = []string{"status", "assignee", "team", "severity_override", "tags", "verdict", "reason", "classification", "impact"}

// decodePatch parses body as a merge patch. JSON null removes a value
// (unassigns, clears the override or the tags). Every problem is reported.
func decodePatch(body []byte, p *principal) (incidentPatch, []string, *problem) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return incidentPatch{}, nil, badRequest("the body is not a JSON object: " + jsonError(err))
	}
	if dec.More() {
		return incidentPatch{}, nil, badRequest("the body holds more than one JSON value")
	}
	if len(raw) == 0 {
		return incidentPatch{}, []string{"the patch is empty; set at least one of " + strings.Join(patchFields, ", ")}, nil
	}
	var out incidentPatch
	var errs []string
	isNull := func(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }
	str := func(name string, b json.RawMessage) (string, bool) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			errs = append(errs, name+" must be a string")
			return "", false
		}
		return s, true
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// required reads a string member that null may not remove (instead
	// tells the client what to do); nullable reads one that null removes
	// (""), passing a string to check, which may rewrite it.
	required := func(k string, b json.RawMessage, instead string) *string {
		if isNull(b) {
			errs = append(errs, k+" cannot be removed"+instead)
			return nil
		}
		s, ok := str(k, b)
		if !ok {
			return nil
		}
		return &s
	}
	nullable := func(k string, b json.RawMessage, check func(s *string)) *string {
		s := ""
		if !isNull(b) {
			var ok bool
			if s, ok = str(k, b); !ok {
				return nil
			}
			check(&s)
		}
		return &s
	}
	oneOf := func(k, s string, allowed []string, hint string) {
		if !slices.Contains(allowed, s) {
			errs = append(errs, fmt.Sprintf("%s %s is not one of %s%s", k, quote(s), strings.Join(allowed, ", "), hint))
		}
	}
	const reopen = "; reopen the incident instead"
	for _, k := range keys {
		b := raw[k]
		switch k {
		case "status":
			if out.Status = required(k, b, ""); out.Status != nil {
				oneOf(k, *out.Status, statuses, "")
			}
		case "verdict":
			if out.Verdict = required(k, b, reopen); out.Verdict != nil {
				oneOf(k, *out.Verdict, verdicts, "")
			}
		case "classification":
			if out.Classification = required(k, b, reopen); out.Classification != nil {
				oneOf(k, *out.Classification, allClassifications, "")
			}
		case "reason":
			if out.Reason = required(k, b, ""); out.Reason != nil {
				errs = checkReason("reason", *out.Reason, errs)
			}
		case "assignee":
			out.Assignee = nullable(k, b, func(s *string) {
				if *s == "me" {
					*s = p.name
				}
				if !assigneePattern.MatchString(*s) {
					errs = append(errs, fmt.Sprintf("assignee %s is not me or a name of letters, digits and . _ : @ + - (1 to 128); null unassigns", quote(*s)))
				}
			})
		case "team":
			out.Team = nullable(k, b, func(s *string) {
				if !assigneePattern.MatchString(*s) {
					errs = append(errs, fmt.Sprintf("team %s is not a name of letters, digits and . _ : @ + - (1 to 128); null removes the team", quote(*s)))
				}
			})
		case "impact":
			out.Impact = nullable(k, b, func(s *string) { oneOf(k, *s, impacts, "; null clears it") })
		case "severity_override":
			n := 0
			if !isNull(b) {
				if err := json.Unmarshal(b, &n); err != nil || n < 1 || n > 6 {
					errs = append(errs, fmt.Sprintf("severity_override %s is not an OCSF severity id 1..6; null clears it", quote(string(b))))
					continue
				}
			}
			out.SeverityOverride = &n
		case "tags":
			tags := []string{}
			if !isNull(b) {
				if err := json.Unmarshal(b, &tags); err != nil {
					errs = append(errs, "tags must be an array of strings; null clears them")
					continue
				}
			}
			if len(tags) > maxTags {
				errs = append(errs, fmt.Sprintf("tags has %d entries, at most %d are allowed", len(tags), maxTags))
			}
			var clean []string
			for _, t := range tags {
				if !tagPattern.MatchString(t) {
					errs = append(errs, fmt.Sprintf("tag %s may hold only letters, digits and . _ : - (1 to 64)", quote(t)))
				} else if !slices.Contains(clean, t) {
					clean = append(clean, t)
				}
			}
			if clean == nil {
				clean = []string{}
			}
			out.Tags = &clean
		default:
			errs = append(errs, fmt.Sprintf("unknown field %s; a patch may set %s", quote(k), strings.Join(patchFields, ", ")))
		}
	}
	return out, errs, nil
}

// summary is what the audit log keeps of a refused patch: the fields that
// were valid, never the raw body (which may be up to 1 MiB of anything).
func (p incidentPatch) summary() map[string]any {
	out := map[string]any{}
	if p.Status != nil {
		out["status"] = *p.Status
	}
	if p.Assignee != nil {
		out["assignee"] = *p.Assignee
	}
	if p.SeverityOverride != nil {
		out["severity_override"] = *p.SeverityOverride
	}
	if p.Tags != nil {
		out["tags"] = *p.Tags
	}
	if p.Verdict != nil {
		out["verdict"] = *p.Verdict
	}
	if p.Reason != nil && len(*p.Reason) <= maxReasonBytes {
		out["reason"] = *p.Reason
	}
	for k, v := range map[string]*string{"classification": p.Classification, "impact": p.Impact, "team": p.Team} {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func checkReason(name, s string, errs []string) []string {
	switch {
	case strings.TrimSpace(s) == "":
		errs = append(errs, name+" must not be empty")
	case len(s) > maxReasonBytes:
		errs = append(errs, fmt.Sprintf("%s is longer than %d bytes", name, maxReasonBytes))
	case !printable(s, true):
		errs = append(errs, name+" holds invalid UTF-8 or control characters")
	}
	return errs
}

// checkTransition validates the patch against the incident's current state
// and returns the workflow update to apply.
func checkTransition(cur casework.Workflow, from string, patch incidentPatch) (casework.WorkflowUpdate, []string) {
	var errs []string
	u := casework.WorkflowUpdate{Assignee: patch.Assignee, SeverityOverride: patch.SeverityOverride, Tags: patch.Tags,
		Impact: patch.Impact, Team: patch.Team}
	from = currentStatus(from)
	to := from
	if patch.Status != nil {
		to = *patch.Status
	}
	if from == "merged" {
		return u, []string{"the incident was merged into " + quote(cur.MergedInto) + "; it cannot be changed"}
	}
	if patch.Status != nil && to != from && slices.Contains(statuses, to) && !slices.Contains(transitions[from], to) {
		errs = append(errs, fmt.Sprintf("status cannot go from %s to %s; from %s it may go to %s", from, to, from, strings.Join(transitions[from], ", ")))
	}
	if patch.Status != nil && to != from {
		u.Status = patch.Status
	}
	closing := to == "closed" && from != "closed"
	resolving := to == "resolved" && from != "resolved"
	reopening := to == "in_progress" && (from == "closed" || from == "resolved")
	switch {
	case closing:
		if patch.Verdict == nil {
			errs = append(errs, "closing needs a verdict: one of "+strings.Join(verdicts, ", "))
		}
		if patch.Reason == nil {
			errs = append(errs, "closing needs a reason")
		}
		u.Verdict, u.Reason = patch.Verdict, patch.Reason
	case resolving:
		// A verdict and a reason are welcome when resolving, not required.
		u.Verdict, u.Reason = patch.Verdict, patch.Reason
	case reopening:
		if patch.Verdict != nil {
			errs = append(errs, "a verdict is given only when closing or resolving")
		}
		// The old verdict no longer holds; the reason says why it reopened.
		empty := ""
		u.Verdict, u.Reason = &empty, patch.Reason
		if u.Reason == nil {
			u.Reason = &empty
		}
	default:
		if patch.Verdict != nil || patch.Reason != nil {
			if to != "closed" && to != "resolved" {
				errs = append(errs, "verdict and reason are given only when closing or resolving")
			} else {
				// Correcting the verdict or reason of a closed/resolved incident.
				u.Verdict, u.Reason = patch.Verdict, patch.Reason
			}
		}
	}
	// The classification goes with the verdict it explains.
	verdict := cur.Verdict
	if u.Verdict != nil {
		verdict = *u.Verdict
	}
	switch {
	case patch.Classification != nil && (u.Verdict != nil || patch.Verdict == nil) && (to == "closed" || to == "resolved"):
		if verdict != "" && !slices.Contains(classifications[verdict], *patch.Classification) {
			errs = append(errs, fmt.Sprintf("classification %s does not go with verdict %s; it may be %s", quote(*patch.Classification), verdict, strings.Join(classifications[verdict], ", ")))
		}
		u.Classification = patch.Classification
	case patch.Classification != nil:
		errs = append(errs, "a classification is given only when closing or resolving, with the verdict")
	case u.Verdict != nil && *u.Verdict != cur.Verdict:
		// A new verdict (or none, reopening) drops the old classification
		// unless it still fits.
		if !slices.Contains(classifications[*u.Verdict], cur.Classification) {
			empty := ""
			u.Classification = &empty
		}
	}
	return u, errs
}

// ifMatch is a parsed If-Match header: the strong ETags it lists and
// whether it listed weak ones.
type ifMatch struct {
	strong []string
	weak   bool
}

// parseIfMatch reads If-Match: a comma-separated list of ETags of this API
// ("<incident version>.<workflow version>"). A weak ETag (W/"…") is
// well-formed but never matches: RFC 9110 requires strong comparison for
// If-Match. "*" and anything that is not an ETag of this API are 400.
func parseIfMatch(r *http.Request) (ifMatch, *problem) {
	return parseETags(r.Header.Get("If-Match"), "If-Match")
}

// parseETags reads a list of ETags given as name (the If-Match header, or
// the etag of a bulk item).
func parseETags(h, name string) (ifMatch, *problem) {
	if h == "" {
		return ifMatch{}, &problem{Status: http.StatusPreconditionRequired, Title: "Precondition Required",
			Detail: "send If-Match with the ETag of the incident you read (GET /v1/incidents/{id}), so concurrent changes are not lost"}
	}
	var m ifMatch
	for _, part := range strings.Split(h, ",") {
		tag := strings.TrimSpace(part)
		weak := strings.HasPrefix(tag, "W/")
		tag = strings.TrimPrefix(tag, "W/")
		inner, ok := strings.CutPrefix(tag, `"`)
		if ok {
			inner, ok = strings.CutSuffix(inner, `"`)
		}
		if ok {
			iv, wv, found := strings.Cut(inner, ".")
			_, err1 := strconv.ParseUint(iv, 10, 64)
			_, err2 := strconv.ParseUint(wv, 10, 64)
			ok = found && err1 == nil && err2 == nil
		}
		if !ok || len(m.strong) >= 16 {
			return ifMatch{}, badRequest(fmt.Sprintf("%s %s is not an ETag of this API, like \"3.1\" (at most 16, comma-separated)", name, quote(h)))
		}
		if weak {
			m.weak = true
			continue
		}
		m.strong = append(m.strong, tag)
	}
	return m, nil
}

// check compares the ETag of in with the header: nil when it matches, else
// the 412 to answer (carrying the current ETag).
func (m ifMatch) check(in casework.Incident) *problem {
	cur := etag(in)
	if slices.Contains(m.strong, cur) {
		return nil
	}
	detail := fmt.Sprintf("the incident changed since you read it (its ETag is now %s); reload it and retry", cur)
	if m.weak && len(m.strong) == 0 {
		detail = fmt.Sprintf("a weak ETag (W/\"…\") never matches If-Match, which compares strongly (RFC 9110); send the ETag as GET answers it: %s", cur)
	}
	return &problem{Status: http.StatusPreconditionFailed, Title: "Precondition Failed", Detail: detail, etag: cur}
}

// stale reports whether the header cannot match the incident whose row
// this store last wrote is last, whatever the correlator wrote since:
// each ETag names an incident or a workflow version below last's (both
// only grow), or the header has only weak ones. last's incident version
// may be behind the database's, so an ETag naming a newer one is not
// stale here; the row read decides it. The 412 answered for a stale
// request carries last's ETag, whose incident half may then be behind
// too: a retry with it is refused after a read, with the current one.
func (m ifMatch) stale(last casework.Incident) bool {
	for _, tag := range m.strong {
		iv, wv, _ := strings.Cut(strings.Trim(tag, `"`), ".")
		i, err1 := strconv.ParseUint(iv, 10, 64)
		w, err2 := strconv.ParseUint(wv, 10, 64)
		if err1 != nil || err2 != nil || (i >= last.Version && w >= last.Workflow.Version) {
			return false
		}
	}
	return true
}

// readJSONBody reads a JSON request body: the content type must be one of
// types, the size at most maxBodyBytes.
func readJSONBody(r *http.Request, types ...string) ([]byte, *problem) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(types, mt) {
		return nil, &problem{Status: http.StatusUnsupportedMediaType, Title: "Unsupported Media Type",
			Detail: fmt.Sprintf("Content-Type %s is not one of %s", quote(ct), strings.Join(types, ", "))}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &problem{Status: http.StatusRequestEntityTooLarge, Title: "Content Too Large",
				Detail: fmt.Sprintf("the body is larger than %d bytes", maxBodyBytes)}
		}
		return nil, badRequest("the body could not be read: " + err.Error())
	}
	return body, nil
}

// decodeStrict decodes a JSON object into v, rejecting unknown fields and
// trailing data.
func decodeStrict(body []byte, v any) *problem {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("the body is not valid: " + jsonError(err))
	}
	if dec.More() {
		return badRequest("the body holds more than one JSON value")
	}
	return nil
}

// jsonError describes a decoding error without echoing the input.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &pe):
		return "a time is not RFC 3339, like 2026-11-20T10:00:00Z"
	case err == nil:
		return "null"
	case errors.Is(err, io.EOF):
		return "it is empty"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be a %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

func unprocessable(detail string, errs []string) *problem {
	return &problem{Status: http.StatusUnprocessableEntity, Title: "Unprocessable Content", Detail: detail, Errors: errs}
}

// refusal is what the audit log keeps of a refused change: the incident
// (when the path named a valid id), the tenant the entry is filed under and
// the valid part of the request.
type refusal struct {
	incidentID string
	tenant     string
	summary    any
}

// audited runs h, the handler of a state-changing request on an incident,
// and audits its refusal under action: so every answer is audited (a
// change by the store, with the change). h fills in ref as it learns the
// incident, its tenant and the valid part of the request.
func (s *Server) audited(r *http.Request, action string, h func(p *principal, ref *refusal) *problem) *problem {
	p := principalFrom(r.Context())
	ref := refusal{tenant: p.auditTenant()}
	prob := h(p, &ref)
	if prob != nil {
		s.auditRefusal(r, p, action, ref, prob)
	}
	return prob
}

// auditRefusal records a refused state-changing request on an incident.
// A 5xx (or a client that hung up) is no refusal: storage failed, and the
// audit log lives in the same database, so the server log has it instead.
func (s *Server) auditRefusal(r *http.Request, p *principal, action string, ref refusal, prob *problem) {
	if prob.Status >= 500 || prob.Status == 499 {
		return
	}
	reason := prob.Detail
	if len(prob.Errors) > 0 {
		reason += ": " + strings.Join(prob.Errors, "; ")
	}
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes] + "…"
	}
	d := auditDetails{Status: prob.Status, Reason: reason}
	if ref.summary != nil {
		d.After = ref.summary
	}
	_ = s.audit(r, p, ref.tenant, action, ref.incidentID, d)
}

// patchIncident serves PATCH /v1/incidents/{id}. Every answer is audited,
// refusals included. It reads the incident's queue row (one query), checks
// the whole ETag and the transition, and writes the new workflow version
// with compare-and-set on both versions; the graph is neither read nor
// returned (it cannot have changed: the incident version is checked).
func (s *Server) patchIncident(w http.ResponseWriter, r *http.Request) *problem {
	return s.audited(r, actionPatch, func(p *principal, ref *refusal) *problem { return s.patch(w, r, p, ref) })
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, p *principal, ref *refusal) *problem {
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	ref.incidentID = id
	cond, prob := parseIfMatch(r)
	if prob != nil {
		return prob
	}
	body, prob := readJSONBody(r, "application/merge-patch+json", "application/json")
	if prob != nil {
		return prob
	}
	patch, errs, prob := decodePatch(body, p)
	if prob != nil {
		return prob
	}
	ref.summary = patch.summary()
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	next, prob := s.applyPatch(ctx, r, p, id, cond, patch, errs, ref)
	if prob != nil {
		return prob
	}
	w.Header().Set("ETag", etag(next))
	writeJSON(w, http.StatusOK, next)
	return nil
}

// applyPatch applies a decoded patch (errs are its decoding errors) to
// incident id if it still matches cond: the one path of PATCH and of each
// item of a bulk action. The change's audit entry is written with it; a
// refusal is the caller's to audit.
func (s *Server) applyPatch(ctx context.Context, r *http.Request, p *principal, id string, cond ifMatch, patch incidentPatch,
	errs []string, ref *refusal) (casework.Incident, *problem) {
	// The ETag and the transition are checked by the store under the
	// incident's lock, against the row it reads there: one read, and the
	// request's audit entry goes with the store's in one insert.
	var cur casework.Incident
	u := casework.WorkflowUpdate{Tenants: p.tenants, IncidentID: id, Actor: p.name}
	u.Decide = func(row casework.Incident) (casework.WorkflowUpdate, error) {
		row = row.Effective()
		cur = row
		ref.tenant = row.TenantUID
		if prob := cond.check(row); prob != nil {
			if len(errs) == 0 && cond.replays(row, p.name, patch) {
				return casework.WorkflowUpdate{}, errReplayed
			}
			return casework.WorkflowUpdate{}, refusedError{prob}
		}
		d, terrs := checkTransition(row.Workflow, row.Workflow.Status, patch)
		terrs = append(terrs, s.checkPrincipals(patch, row.TenantUID)...)
		if all := append(slices.Clone(errs), terrs...); len(all) > 0 {
			return casework.WorkflowUpdate{}, refusedError{unprocessable("the patch is not valid for this incident", all)}
		}
		return d, nil
	}
	u.Stale = func(last casework.Incident) error {
		// A retry of the change this process last wrote is decided on the
		// row read (Decide), not refused here.
		if cond.stale(last) && !cond.replays(last.Effective(), p.name, patch) {
			cur = last.Effective()
			ref.tenant = last.TenantUID
			return refusedError{cond.check(last)}
		}
		return nil
	}
	u.Audit = func(after casework.Workflow) casework.AuditEntry {
		return s.auditEntry(r, p, cur.TenantUID, actionPatch, id, auditDetails{Status: http.StatusOK, Before: cur.Workflow, After: withTags(after)})
	}
	next, err := s.opts.Store.UpdateIncidentWorkflow(ctx, u)
	if err != nil {
		var refused refusedError
		if errors.As(err, &refused) {
			return casework.Incident{}, refused.prob
		}
		if errors.Is(err, errReplayed) {
			return s.replayed(ctx, r, p, cur)
		}
		return casework.Incident{}, s.storeError(r, err, "incident")
	}
	s.audits.WithLabelValues("written").Inc()
	next = next.Effective()
	next.Timing = timing(next, s.opts.SLA, s.opts.Now())
	return next, nil
}

// replays reports whether a patch whose If-Match does not match row is
// the retry of the change that made row's workflow version: its one
// strong ETag names row's incident version and the workflow version just
// before row's, row's version was written by actor, and row already holds
// every value the patch sets. That is what a client sees whose PATCH
// landed but was answered 503 (or whose answer was lost): its retry
// carries the ETag it read before its own change. Such a retry is
// answered 200 with the current incident and ETag, writing nothing; any
// other change behind it, another principal's version or a different
// change is 412 as before.
func (m ifMatch) replays(row casework.Incident, actor string, patch incidentPatch) bool {
	w := row.Workflow
	if w.Version == 0 || w.UpdatedBy != actor || len(m.strong) != 1 ||
		m.strong[0] != fmt.Sprintf(`"%d.%d"`, row.Version, w.Version-1) {
		return false
	}
	return patch.holds(w)
}

// holds reports whether w already has every value p sets.
func (p incidentPatch) holds(w casework.Workflow) bool {
	eq := func(v *string, have string) bool { return v == nil || *v == have }
	tags := w.Tags
	if tags == nil {
		tags = []string{}
	}
	return (p.Status == nil || *p.Status == currentStatus(w.Status)) &&
		eq(p.Assignee, w.Assignee) && eq(p.Team, w.Team) && eq(p.Impact, w.Impact) &&
		eq(p.Verdict, w.Verdict) && eq(p.Reason, w.Reason) && eq(p.Classification, w.Classification) &&
		(p.SeverityOverride == nil || *p.SeverityOverride == w.SeverityOverride) &&
		(p.Tags == nil || slices.Equal(*p.Tags, tags))
}

// errReplayed is how Decide tells applyPatch that the patch is a retry of
// the change already made (ifMatch.replays): nothing is written.
var errReplayed = errors.New("the change is already made")

// replayed answers the retry of a change already made (cur is the row
// Decide saw): the incident's current queue row, and an audit entry
// saying the retry wrote nothing.
func (s *Server) replayed(ctx context.Context, r *http.Request, p *principal, cur casework.Incident) (casework.Incident, *problem) {
	in, err := s.opts.Store.IncidentRow(ctx, []string{cur.TenantUID}, cur.ID)
	if err != nil {
		return casework.Incident{}, s.storeError(r, err, "incident")
	}
	in = in.Effective()
	in.Workflow = withTags(in.Workflow)
	_ = s.audit(r, p, in.TenantUID, actionPatch, in.ID, auditDetails{Status: http.StatusOK,
		Reason: fmt.Sprintf("a retry of the change that made workflow version %d; nothing was written", in.Workflow.Version)})
	in.Timing = timing(in, s.opts.SLA, s.opts.Now())
	return in, nil
}

// withTags returns w with an empty tag list for none, so clients always
// see an array.
func withTags(w casework.Workflow) casework.Workflow {
	if w.Tags == nil {
		w.Tags = []string{}
	}
	return w
}

// refusedError carries the problem a Decide function refuses a change with
// through the store.
type refusedError struct{ prob *problem }

func (e refusedError) Error() string { return e.prob.Detail }

// mergeRequest is the body of POST /v1/incidents/{id}/merge.
type mergeRequest struct {
	Into   string `json:"into"`
	Reason string `json:"reason"`
}

// mergeIncident serves POST /v1/incidents/{id}/merge. Every answer is
// audited, refusals included.
func (s *Server) mergeIncident(w http.ResponseWriter, r *http.Request) *problem {
	return s.audited(r, actionMerge, func(p *principal, ref *refusal) *problem { return s.merge(w, r, p, ref) })
}

func (s *Server) merge(w http.ResponseWriter, r *http.Request, p *principal, ref *refusal) *problem {
	id, prob := incidentID(r)
	if prob != nil {
		return prob
	}
	ref.incidentID = id
	var cond *ifMatch
	if r.Header.Get("If-Match") != "" {
		m, prob := parseIfMatch(r)
		if prob != nil {
			return prob
		}
		cond = &m
	}
	body, prob := readJSONBody(r, "application/json")
	if prob != nil {
		return prob
	}
	var req mergeRequest
	if prob := decodeStrict(body, &req); prob != nil {
		return prob
	}
	var errs []string
	if !idPattern.MatchString(req.Into) {
		errs = append(errs, fmt.Sprintf("into %s is not an incident id", quote(req.Into)))
	} else if req.Into == id {
		errs = append(errs, "an incident cannot be merged into itself")
	} else {
		ref.summary = map[string]string{"into": req.Into}
	}
	errs = checkReason("reason", req.Reason, errs)
	if len(errs) > 0 {
		return unprocessable("the merge request is not valid", errs)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	src, err := s.opts.Store.IncidentRow(ctx, p.tenants, id)
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	src = src.Effective()
	ref.tenant = src.TenantUID
	if cond != nil {
		if prob := cond.check(src); prob != nil {
			return prob
		}
	}
	if currentStatus(src.Workflow.Status) == "merged" {
		return &problem{Status: http.StatusConflict, Title: "Conflict", Detail: "the incident was already merged into " + src.Workflow.MergedInto}
	}
	// The target must be in the same tenant: another tenant's incident is
	// not found, exactly like one that does not exist.
	dst, err := s.opts.Store.IncidentRow(ctx, []string{src.TenantUID}, req.Into)
	if err != nil {
		if errors.Is(err, casework.ErrNotFound) {
			return unprocessable("the merge request is not valid", []string{fmt.Sprintf("into %s: no such incident in this incident's tenant", quote(req.Into))})
		}
		return s.storeError(r, err, "incident")
	}
	dst = dst.Effective()
	if currentStatus(dst.Workflow.Status) == "merged" {
		return unprocessable("the merge request is not valid", []string{"into " + quote(req.Into) + " was itself merged into " + dst.Workflow.MergedInto + "; merge into that one"})
	}
	wf, err := s.opts.Store.RecordMerge(ctx, []string{src.TenantUID}, id, req.Into, p.name, req.Reason)
	if err != nil {
		return s.storeError(r, err, "incident")
	}
	wf = withTags(wf)
	_ = s.audit(r, p, src.TenantUID, actionMerge, id, auditDetails{Status: http.StatusOK, Reason: req.Reason,
		Before: src.Workflow, After: wf})
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "merged_into": req.Into, "workflow": wf})
	return nil
}
