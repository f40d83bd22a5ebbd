package api

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/casework"
)

func ptr[T any](v T) *T { return &v }

// TestTransitions walks the whole transition table.
func TestTransitions(t *testing.T) {
	all := slices.Concat(statuses, []string{"merged"})
	allowed := map[[2]string]bool{}
	for from, tos := range transitions {
		for _, to := range tos {
			allowed[[2]string{from, to}] = true
		}
	}
	want := map[[2]string]bool{
		{"new", "in_progress"}: true, {"new", "on_hold"}: true, {"new", "resolved"}: true, {"new", "closed"}: true,
		{"in_progress", "on_hold"}: true, {"in_progress", "resolved"}: true, {"in_progress", "closed"}: true,
		{"on_hold", "in_progress"}: true, {"on_hold", "resolved"}: true, {"on_hold", "closed"}: true,
		{"resolved", "in_progress"}: true, {"resolved", "closed"}: true,
		{"closed", "in_progress"}: true,
	}
	for _, from := range all {
		for _, to := range statuses {
			t.Run(from+"→"+to, func(t *testing.T) {
				p := incidentPatch{Status: ptr(to)}
				if to == "closed" {
					p.Verdict, p.Reason = ptr("false_positive"), ptr("scanner noise")
				}
				_, errs := checkTransition(casework.Workflow{Status: from, MergedInto: "inc-x"}, from, p)
				got := len(errs) == 0
				w := from != "merged" && (from == to || want[[2]string{from, to}])
				if got != w {
					t.Errorf("got allowed=%v (%v), want %v", got, errs, w)
				}
			})
		}
	}
	if len(allowed) != len(want) {
		t.Errorf("the table has %d transitions, want %d", len(allowed), len(want))
	}
}

func TestCheckTransitionFields(t *testing.T) {
	cases := []struct {
		name        string
		from        string
		patch       incidentPatch
		wantErrs    []string
		wantVerdict *string
	}{
		{"close needs verdict and reason", "in_progress", incidentPatch{Status: ptr("closed")}, []string{"verdict", "reason"}, nil},
		{"close with verdict", "new", incidentPatch{Status: ptr("closed"), Verdict: ptr("duplicate"), Reason: ptr("dup of inc-1")}, nil, ptr("duplicate")},
		{"old rows say open", "open", incidentPatch{Status: ptr("in_progress")}, nil, nil},
		{"reopen clears the verdict", "closed", incidentPatch{Status: ptr("in_progress")}, nil, ptr("")},
		{"reopen with a verdict", "resolved", incidentPatch{Status: ptr("in_progress"), Verdict: ptr("true_positive")}, []string{"only when closing"}, ptr("")},
		{"verdict on an open incident", "on_hold", incidentPatch{Verdict: ptr("true_positive")}, []string{"only when closing or resolving"}, nil},
		{"correct the verdict of a closed incident", "closed", incidentPatch{Verdict: ptr("benign_positive")}, nil, ptr("benign_positive")},
		{"merged is final", "merged", incidentPatch{Tags: &[]string{"x"}}, []string{"merged into"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, errs := checkTransition(casework.Workflow{Status: c.from}, c.from, c.patch)
			all := strings.Join(errs, "\n")
			if len(errs) != len(c.wantErrs) {
				t.Errorf("got errors %q, want %d errors", errs, len(c.wantErrs))
			}
			for _, w := range c.wantErrs {
				if !strings.Contains(all, w) {
					t.Errorf("got errors %q, want one containing %q", errs, w)
				}
			}
			if len(c.wantErrs) == 0 {
				switch {
				case (u.Verdict == nil) != (c.wantVerdict == nil):
					t.Errorf("got verdict %v, want %v", u.Verdict, c.wantVerdict)
				case u.Verdict != nil && *u.Verdict != *c.wantVerdict:
					t.Errorf("got verdict %q, want %q", *u.Verdict, *c.wantVerdict)
				}
			}
		})
	}
}

func TestDecodePatch(t *testing.T) {
	me := &principal{name: "alice"}
	cases := []struct {
		body     string
		wantErrs int
		bad      bool // a 400 rather than field errors
		check    func(incidentPatch) bool
	}{
		{`{"status":"in_progress","assignee":"me"}`, 0, false, func(p incidentPatch) bool { return *p.Status == "in_progress" && *p.Assignee == "alice" }},
		{`{"assignee":null,"tags":null,"severity_override":null}`, 0, false, func(p incidentPatch) bool {
			return *p.Assignee == "" && len(*p.Tags) == 0 && *p.SeverityOverride == 0
		}},
		{`{"tags":["a","a","b"]}`, 0, false, func(p incidentPatch) bool { return len(*p.Tags) == 2 }},
		{`{"status":null,"verdict":null,"reason":null}`, 3, false, nil},
		{`{"status":"x","assignee":"a b","severity_override":0,"tags":["ok","bad tag"],"verdict":"x","reason":"","zzz":1}`, 7, false, nil},
		{`{"tags":[` + strings.Repeat(`"t",`, 40) + `"t"]}`, 1, false, nil},
		{`{"severity_override":"5"}`, 1, false, nil},
		{`{}`, 1, false, nil},
		{`null`, 0, true, nil},
		{`[]`, 0, true, nil},
		{`{"status":"new"} {}`, 0, true, nil},
		{`{"status":`, 0, true, nil},
	}
	for _, c := range cases {
		t.Run(c.body[:min(len(c.body), 40)], func(t *testing.T) {
			p, errs, prob := decodePatch([]byte(c.body), me)
			if (prob != nil) != c.bad {
				t.Fatalf("got problem %v, want a 400: %v", prob, c.bad)
			}
			if len(errs) != c.wantErrs {
				t.Errorf("got %d errors %q, want %d", len(errs), errs, c.wantErrs)
			}
			if c.check != nil && len(errs) == 0 && !c.check(p) {
				t.Errorf("got patch %+v, not what the body says", p)
			}
		})
	}
}

// TestDecodePatchMessages: each member's problem names the member and
// what may be sent instead; null removes the team and the impact.
func TestDecodePatchMessages(t *testing.T) {
	me := &principal{name: "alice"}
	for _, c := range []struct {
		body string
		want []string
	}{
		{`{"status":null,"verdict":null,"classification":null,"reason":null}`, []string{
			"classification cannot be removed; reopen the incident instead",
			"reason cannot be removed",
			"status cannot be removed",
			"verdict cannot be removed; reopen the incident instead",
		}},
		{`{"status":"x","verdict":"x","classification":"x","impact":"x","team":"a b","assignee":"a b"}`, []string{
			`assignee "a b" is not me or a name of letters, digits and . _ : @ + - (1 to 128); null unassigns`,
			`classification "x" is not one of ` + strings.Join(allClassifications, ", "),
			`impact "x" is not one of none, low, medium, high, critical; null clears it`,
			`status "x" is not one of ` + strings.Join(statuses, ", "),
			`team "a b" is not a name of letters, digits and . _ : @ + - (1 to 128); null removes the team`,
			`verdict "x" is not one of ` + strings.Join(verdicts, ", "),
		}},
		{`{"team":1,"impact":2,"classification":3}`, []string{"classification must be a string", "impact must be a string", "team must be a string"}},
	} {
		_, errs, prob := decodePatch([]byte(c.body), me)
		if prob != nil || !slices.Equal(errs, c.want) {
			t.Errorf("%s: got %q (%v), want %q", c.body, errs, prob, c.want)
		}
	}
	p, errs, _ := decodePatch([]byte(`{"team":null,"impact":null,"classification":"other"}`), me)
	if len(errs) > 0 || p.Team == nil || *p.Team != "" || p.Impact == nil || *p.Impact != "" || *p.Classification != "other" {
		t.Errorf("got patch %+v, errors %q; want team and impact removed, classification other", p, errs)
	}
}

// TestParseIfMatch checks If-Match against an incident at ETag "3.7":
// both halves must match, weak ETags never do, and malformed ones are 400.
func TestParseIfMatch(t *testing.T) {
	cases := []struct {
		header string
		status int // 0: the change may go ahead
	}{
		{`"3.7"`, 0},
		{` "3.7" `, 0},
		{`"2.7", "3.7"`, 0},
		{`"2.7"`, 412}, // an older incident version (the correlator extended it)
		{`"3.6"`, 412}, // an older workflow version
		{`"4.7"`, 412},
		{`W/"3.7"`, 412}, // weak: strong comparison never matches it
		{`W/"3.7", "3.6"`, 412},
		{``, 428},
		{`*`, 400},
		{`"3"`, 400},
		{`3.7`, 400},
		{`"3.-1"`, 400},
		{`"3.99999999999999999999999"`, 400},
		{`"3.7",`, 400},
	}
	var in casework.Incident
	in.Version, in.Workflow.Version = 3, 7
	for _, c := range cases {
		r := httptest.NewRequest("PATCH", "/v1/incidents/x", nil)
		if c.header != "" {
			r.Header.Set("If-Match", c.header)
		}
		m, prob := parseIfMatch(r)
		if prob == nil {
			prob = m.check(in)
		}
		status := 0
		if prob != nil {
			status = prob.Status
		}
		if status != c.status {
			t.Errorf("If-Match %q: got status %d, want %d", c.header, status, c.status)
		}
		if status == 412 {
			w := httptest.NewRecorder()
			writeProblem(w, r, prob)
			if w.Header().Get("ETag") != `"3.7"` {
				t.Errorf("If-Match %q: got ETag %q on the 412, want the current \"3.7\"", c.header, w.Header().Get("ETag"))
			}
		}
	}
}

// TestIfMatchStale: a request queued behind a write is refused without a
// read only when its If-Match cannot match whatever the correlator wrote
// since that write (the incident version may have grown, the workflow
// version not).
func TestIfMatchStale(t *testing.T) {
	var last casework.Incident
	last.Version = 4
	last.Workflow.Version = 7
	for _, c := range []struct {
		header string
		want   bool
	}{
		{`"4.7"`, false},          // the last write's own
		{`"5.7"`, false},          // the correlator may be at 5
		{`"4.6"`, true},           // an older workflow
		{`"3.7"`, true},           // an older incident
		{`"3.7", "9.7"`, false},   // one of them may match
		{`"4.6", "3.9"`, true},    // none can
		{`W/"4.7"`, true},         // weak never matches
		{`W/"4.7", "4.7"`, false}, // the strong one may
		{`"18446744073709551615.8"`, false},
	} {
		m, prob := parseETags(c.header, "If-Match")
		if prob != nil {
			t.Fatalf("%s: %s", c.header, prob.Detail)
		}
		if got := m.stale(last); got != c.want {
			t.Errorf("%s against 4.7: stale %v, want %v", c.header, got, c.want)
		}
	}
}
