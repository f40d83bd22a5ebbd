package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// exceptionYAML returns an exception document; fields replace the
// defaults (an empty value drops the key).
func exceptionYAML(fields map[string]string) string {
	keys := []string{"kind", "id", "rules", "owner", "reason", "expires", "condition", "fields"}
	vals := map[string]string{
		"kind": "exception", "id": "x.ci", "rules": "[t.put]", "owner": "secops@example.com",
		"reason": "the CI user uploads bundles", "expires": "2099-12-31",
		"condition": `event.actor.user.name == "ci"`,
	}
	for k, v := range fields {
		vals[k] = v
	}
	var b strings.Builder
	for _, k := range keys {
		if v := vals[k]; v != "" {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	return b.String()
}

func putRule() string {
	return ruleYAML("t.put", `event.api.operation == "PutObject"`)
}

func putEvent(user string) *ocsf.Event {
	ev := ctEvent("PutObject", "")
	ev.Actor.User.Name = user
	ev.Metadata.UID = "uid-" + user
	return ev
}

func TestExceptionLoad(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]string
		// want is a substring of the one problem, located at wantLine
		// ("" means the set loads).
		want     string
		wantLine int
	}{
		{name: "cel condition"},
		{name: "field equals", fields: map[string]string{"condition": "", "fields": `{actor.user.name: ci, class_uid: 6003}`}},
		{name: "global", fields: map[string]string{"rules": `["*"]`}},
		{name: "glob", fields: map[string]string{"rules": `["t.*"]`}},
		{name: "missing owner", fields: map[string]string{"owner": ""}, want: "owner is required", wantLine: 1},
		{name: "missing reason", fields: map[string]string{"reason": ""}, want: "reason is required", wantLine: 1},
		{name: "missing expires", fields: map[string]string{"expires": ""}, want: "expires is required", wantLine: 1},
		{name: "bad expires", fields: map[string]string{"expires": "next year"}, want: `expires "next year" is not a date`, wantLine: 6},
		{name: "missing rules", fields: map[string]string{"rules": ""}, want: "rules is required", wantLine: 1},
		{name: "bad cel", fields: map[string]string{"condition": `event.actor.user.nme == "ci"`}, want: "exception condition: undefined field 'nme'", wantLine: 7},
		{name: "cel not bool", fields: map[string]string{"condition": `event.actor.user.name`}, want: "must be of type bool", wantLine: 7},
		{name: "field of the wrong type", fields: map[string]string{"condition": "", "fields": `{class_uid: "6003"}`}, want: "exception fields: found no matching overload", wantLine: 7},
		{name: "unknown field", fields: map[string]string{"condition": "", "fields": `{actor.user.nme: ci}`}, want: "undefined field 'nme'", wantLine: 7},
		{name: "both", fields: map[string]string{"fields": `{actor.user.name: ci}`}, want: "either condition or fields", wantLine: 7},
		{name: "neither", fields: map[string]string{"condition": ""}, want: "condition (CEL) or fields", wantLine: 1},
		{name: "unknown key", fields: map[string]string{"kind": "exception\nowners: x"}, want: `unknown key "owners"`, wantLine: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadString(t, map[string]string{"r.yaml": putRule(), "exceptions/ci.yml": exceptionYAML(tt.fields)})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got := len(s.ExceptionsFor(s.Rule("t.put"))); got != 1 {
					t.Fatalf("got %d exceptions for t.put, want 1", got)
				}
				return
			}
			probs := Problems(err)
			if len(probs) != 1 {
				t.Fatalf("got problems %v, want one with %q", probs, tt.want)
			}
			p := probs[0]
			if !strings.Contains(p.Msg, tt.want) || !strings.HasSuffix(p.File, "ci.yml") || p.Line != tt.wantLine || p.RuleID != "x.ci" {
				t.Errorf("got %s (line %d), want %q in ci.yml line %d for x.ci", p.Error(), p.Line, tt.want, tt.wantLine)
			}
		})
	}
}

func TestExceptionDuplicateID(t *testing.T) {
	_, err := loadString(t, map[string]string{"r.yaml": putRule(), "a.yml": exceptionYAML(nil), "b.yml": exceptionYAML(nil)})
	if probs := Problems(err); len(probs) != 1 || !strings.Contains(probs[0].Msg, "duplicate exception id") {
		t.Errorf("got %v, want one duplicate exception id problem", probs)
	}
}

func TestExceptionWarningsAndLint(t *testing.T) {
	dir := t.TempDir()
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	soon := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	writeFiles(t, dir, map[string]string{
		"r.yaml":      putRule(),
		"expired.yml": exceptionYAML(map[string]string{"id": "x.old", "expires": yesterday}),
		"soon.yml":    exceptionYAML(map[string]string{"id": "x.soon", "expires": soon}),
		"stale.yml":   exceptionYAML(map[string]string{"id": "x.stale", "rules": "[t.gone, t.put]"}),
	})
	s, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: got %v, want expired and stale exceptions to load", err)
	}
	var got []string
	for _, w := range s.Warnings() {
		got = append(got, w.RuleID+": "+w.Msg)
	}
	want := []string{
		`x.stale: exception: rules: "t.gone" names no loaded rule`,
		"x.old: exception: expired on " + yesterday + ": it no longer suppresses; renew or remove it",
		"x.soon: exception: expires on " + soon + ", in less than 14 days",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rep := Lint(dir)
	var errs, warns []string
	for _, p := range rep.Problems {
		if strings.HasPrefix(p.Msg, "exception") {
			errs = append(errs, p.RuleID)
		}
	}
	for _, w := range rep.Warnings {
		if !strings.Contains(w.Msg, "exception: tests:") { // none of these has tests
			warns = append(warns, w.RuleID)
		}
	}
	if strings.Join(errs, ",") != "x.stale" || strings.Join(warns, ",") != "x.old,x.soon" || rep.OK || rep.Exceptions != 3 {
		t.Errorf("lint: got exception errors %v, warnings %v, ok %v, %d exceptions; want [x.stale], [x.old x.soon], false, 3", errs, warns, rep.OK, rep.Exceptions)
	}
}

func TestEngineExceptionSuppresses(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		fields map[string]string
		wantCI string // the alerts of the excepted upload
	}{
		{"cel", nil, "t.other"},
		{"fields", map[string]string{"condition": "", "fields": "{actor.user.name: ci}"}, "t.other"},
		{"global", map[string]string{"rules": `["*"]`}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]string{"expires": "2026-06-01"}
			for k, v := range tt.fields {
				fields[k] = v
			}
			s := mustLoad(t, map[string]string{"r.yaml": putRule(), "o.yaml": ruleYAML("t.other", `event.api.operation == "PutObject"`), "x.yml": exceptionYAML(fields)})
			reg := prometheus.NewRegistry()
			e := NewEngine(reg, nil)
			e.Now = func() time.Time { return now }
			e.Swap(s)
			if got := ruleIDsOf(e.Evaluate(putEvent("ci"))); got != tt.wantCI {
				t.Errorf("ci upload: got alerts of [%s], want [%s]", got, tt.wantCI)
			}
			if got := ruleIDsOf(e.Evaluate(putEvent("mallory"))); got != "t.other,t.put" {
				t.Errorf("mallory upload: got alerts of [%s], want [t.other,t.put]", got)
			}
			if got := counterValue(t, e.metrics.excepted.WithLabelValues("t.put", "x.ci")); got != 1 {
				t.Errorf("got %v excepted matches of t.put, want 1", got)
			}
			if got := counterValue(t, e.metrics.matches.WithLabelValues("t.put")); got != 2 {
				t.Errorf("got %v matches of t.put, want 2 (excepted matches are matches)", got)
			}
			// The day after the expiry date the exception no longer applies.
			now = now.Add(12 * time.Hour)
			ev := putEvent("ci")
			ev.Metadata.UID = "uid-ci-2"
			if got := ruleIDsOf(e.Evaluate(ev)); got != "t.other,t.put" {
				t.Errorf("after expiry: got alerts of [%s], want [t.other,t.put]", got)
			}
			if got := counterValue(t, e.metrics.excepted.WithLabelValues("t.put", "x.ci")); got != 1 {
				t.Errorf("after expiry: got %v excepted matches, want still 1", got)
			}
			now = now.Add(-12 * time.Hour)
		})
	}
}

// ruleIDsOf lists the rule ids of alerts, sorted, comma-separated.
func ruleIDsOf(as []alert.Alert) string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.RuleID)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

func TestExceptionEvalErrorRaisesAlert(t *testing.T) {
	// A condition that fails at evaluation (a function on an absent key)
	// must not silence the rule.
	s := mustLoad(t, map[string]string{"r.yaml": putRule(), "x.yml": exceptionYAML(map[string]string{"condition": `request.bucket.startsWith("ci-")`})})
	e := NewEngine(prometheus.NewRegistry(), nil)
	e.Swap(s)
	if got := len(e.Evaluate(putEvent("ci"))); got != 1 {
		t.Fatalf("got %d alerts, want 1", got)
	}
	if got := counterValue(t, e.metrics.errors.WithLabelValues("t.put", "exception_eval")); got != 1 {
		t.Errorf("got %v exception errors, want 1", got)
	}
}

func TestRuleTestsHonourExceptions(t *testing.T) {
	rule := putRule() + `tests:
  - {name: mallory, match: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail}, api: {operation: PutObject}, actor: {user: {name: mallory}}}}
  - {name: ci, match: false, excepted: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail}, api: {operation: PutObject}, actor: {user: {name: ci}}}}
`
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"r.yaml": rule, "x.yml": exceptionYAML(nil)})
	rep := Test(dir)
	if !rep.OK || rep.Passed != 2 {
		t.Fatalf("with the exception: got ok %v, %d passed, %+v; want both tests to pass", rep.OK, rep.Passed, rep.Rules)
	}
	if got := rep.Rules[0].Tests[1].ExceptedBy; got != "x.ci" {
		t.Errorf("got excepted_by %q, want x.ci", got)
	}
	// Without the exception the excepted test fails: the rule would alert.
	writeFiles(t, dir, map[string]string{"x.yml": exceptionYAML(map[string]string{"condition": `event.actor.user.name == "someone else"`})})
	rep = Test(dir)
	if rep.OK || rep.Failed != 1 || !strings.Contains(rep.Rules[0].Tests[1].Error, "no active exception") {
		t.Errorf("without a covering exception: got ok %v, %d failed, %+v; want the excepted test to fail", rep.OK, rep.Failed, rep.Rules[0].Tests[1])
	}
	// An exception that silences a true positive fails its test.
	writeFiles(t, dir, map[string]string{"x.yml": exceptionYAML(map[string]string{"condition": `true`})})
	if rep = Test(dir); rep.OK || rep.Failed != 1 || rep.Rules[0].Tests[0].ExceptedBy != "x.ci" {
		t.Errorf("with a too broad exception: got ok %v, %d failed, %+v; want the mallory test to fail", rep.OK, rep.Failed, rep.Rules[0].Tests[0])
	}
	// excepted with match: true contradicts itself.
	_, err := loadString(t, map[string]string{"r.yaml": strings.Replace(rule, "match: false, excepted", "match: true, excepted", 1)})
	if probs := Problems(err); len(probs) != 1 || !strings.Contains(probs[0].Msg, "say match: false") {
		t.Errorf("got %v, want one problem about excepted with match: true", probs)
	}
}

func TestManagerReloadsExceptionFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"r.yaml": putRule()})
	e := NewEngine(prometheus.NewRegistry(), nil)
	m := NewManager(dir, e, nil)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := len(e.Evaluate(putEvent("ci"))); got != 1 {
		t.Fatalf("before the exception: got %d alerts, want 1", got)
	}
	writeFiles(t, dir, map[string]string{"exceptions/ci.yml": exceptionYAML(nil)})
	m.poll()
	ev := putEvent("ci")
	ev.Metadata.UID = "uid-ci-2"
	if got := len(e.Evaluate(ev)); got != 0 {
		t.Errorf("after adding the exception: got %d alerts, want 0", got)
	}
	// A broken exception file rejects the reload whole; the running
	// exception stays.
	writeFiles(t, dir, map[string]string{"exceptions/ci.yml": exceptionYAML(map[string]string{"owner": ""})})
	m.poll()
	if m.LastError() == nil || !strings.Contains(m.LastError().Error(), "owner is required") {
		t.Fatalf("got reload error %v, want the missing owner", m.LastError())
	}
	ev.Metadata.UID = "uid-ci-3"
	if got := len(e.Evaluate(ev)); got != 0 {
		t.Errorf("after a broken exception file: got %d alerts, want 0 (the running exception stays)", got)
	}
	// Removing it restores the alert.
	writeFiles(t, dir, map[string]string{"exceptions/ci.yml": "# none\n"})
	m.poll()
	ev.Metadata.UID = "uid-ci-4"
	if got := len(e.Evaluate(ev)); got != 1 {
		t.Errorf("after removing the exception: got %d alerts, want 1", got)
	}
	if got := len(e.Set().Exceptions()); got != 0 {
		t.Errorf("got %d exceptions loaded, want 0", got)
	}
}

func TestShadowRule(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": putRule() + "status: experimental\n"})
	e := NewEngine(prometheus.NewRegistry(), nil)
	e.Swap(s)
	as := e.Evaluate(putEvent("mallory"))
	if len(as) != 1 || !as[0].Shadow {
		t.Fatalf("got %+v, want one shadow alert", as)
	}
	if got := counterValue(t, e.metrics.shadow.WithLabelValues("t.put")); got != 1 {
		t.Errorf("got %v shadow matches, want 1", got)
	}
	// Promoted to test: no longer a shadow.
	e.Swap(mustLoad(t, map[string]string{"r.yaml": putRule() + "status: test\n"}))
	ev := putEvent("mallory")
	ev.Metadata.UID = "uid-2"
	if as := e.Evaluate(ev); len(as) != 1 || as[0].Shadow {
		t.Errorf("after promotion: got %+v, want one alert that is not a shadow", as)
	}
}

// putTest is an exception test of rule t.put: a PutObject by user.
func putTest(name, suppressed, user string, extra ...string) string {
	return "  - name: " + name + "\n    suppressed: " + suppressed + "\n" + strings.Join(extra, "") +
		"    event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: " + name + "}, api: {operation: " + cmpOr(user == "", "GetObject", "PutObject") + "}, actor: {user: {name: " + cmpOr(user == "", "ci", user) + "}}}\n"
}

func cmpOr(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// TestExceptionInlineTests runs exception tests through Test: each passes
// only when the rule matches the event and the exception covers it
// (suppressed: true) or leaves it alone (suppressed: false).
func TestExceptionInlineTests(t *testing.T) {
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	rawCI := `    source: cloudtrail
    raw: '{"eventVersion":"1.08","eventTime":"2026-01-02T03:04:05Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userIdentity":{"type":"IAMUser","userName":"ci","arn":"arn:aws:iam::111122223333:user/ci","accountId":"111122223333"},"requestParameters":{"bucketName":"b","key":"k.zip"},"eventID":"e1","recipientAccountId":"111122223333"}'
`
	for _, tt := range []struct {
		name    string
		expires string
		tests   string
		want    []string // per test: "pass", or a part of the failure
	}{
		{"suppresses ci, keeps mallory", "", putTest("ci", "true", "ci") + putTest("mallory", "false", "mallory"), []string{"pass", "pass"}},
		{"raw record", "", "  - name: raw ci upload\n    suppressed: true\n" + rawCI, []string{"pass"}},
		{"claims suppression it does not give", "", putTest("mallory", "true", "mallory"), []string{"no active exception does"}},
		{"suppresses what it must not", "", putTest("ci", "false", "ci"), []string{"got suppressed=true"}},
		{"rule does not match, kept", "", putTest("root", "false", "root"), []string{"the rule does not match the event"}},
		{"rule does not match, suppressed", "", putTest("root", "true", "root"), []string{"the condition does not match"}},
		{"event outside the rule's sources", "", putTest("get", "false", ""), []string{"does not pass the rule's sources"}},
		{"expired", yesterday, putTest("ci", "true", "ci"), []string{"no active exception does"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			x := exceptionYAML(map[string]string{"expires": cmpOr(tt.expires == "", "2099-12-31", tt.expires)}) + "tests:\n" + tt.tests
			rule := ruleYAML("t.put", `event.api.operation == "PutObject" && event.actor.user.name != "root"`)
			rule = strings.Replace(rule, "sources: {log_names: [cloudtrail]}", "sources: {log_names: [cloudtrail], operations: [PutObject]}", 1)
			writeFiles(t, dir, map[string]string{"r.yaml": rule, "x.yaml": x})
			rep := Test(dir)
			if len(rep.Problems) > 0 || len(rep.Exceptions) != 1 {
				t.Fatalf("got problems %v, %d exception reports; want 1 report", rep.Problems, len(rep.Exceptions))
			}
			res := rep.Exceptions[0].Tests
			if len(res) != len(tt.want) {
				t.Fatalf("got %d results, want %d", len(res), len(tt.want))
			}
			for i, w := range tt.want {
				c := TestCases(rep)
				if w == "pass" {
					if !res[i].Pass {
						t.Errorf("test %q: got fail (suppressed=%v, %s), want pass", res[i].Name, res[i].Got, res[i].Error)
					}
					continue
				}
				failure := ""
				for _, cc := range c {
					if cc.Name == "exception x.ci / "+res[i].Name {
						failure = cc.Failure
					}
				}
				if res[i].Pass || !strings.Contains(failure, w) {
					t.Errorf("test %q: got pass=%v failure %q, want a failure containing %q", res[i].Name, res[i].Pass, failure, w)
				}
			}
			if rep.OK != slices.Equal(tt.want, []string{"pass", "pass"}[:len(tt.want)]) {
				t.Errorf("got OK %v", rep.OK)
			}
		})
	}
}

// TestExceptionTestsChecked covers what load and lint say about exception
// tests: a rule is required when the exception names several rules or a
// glob, suppressed is required, a test's rule must be loaded and named by
// the exception (lint error, load warning), and an exception without both
// kinds of test is warned about.
func TestExceptionTestsChecked(t *testing.T) {
	other := ruleYAML("t.other", `event.api.operation == "GetObject"`)
	for _, tt := range []struct {
		name, x  string
		loadErr  string
		lintErr  string
		lintWarn bool
	}{
		{"no rule with a glob", exceptionYAML(map[string]string{"rules": `["t.*"]`}) + "tests:\n" + putTest("ci", "true", "ci"), "rule is required", "", false},
		{"no suppressed", exceptionYAML(nil) + "tests:\n  - name: ci\n    event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: a}}\n", "suppressed (true", "", false},
		{"no event", exceptionYAML(nil) + "tests:\n  - {name: ci, suppressed: true}\n", "event or raw is required", "", false},
		{"unknown key", exceptionYAML(nil) + "tests:\n  - {name: ci, suppressed: true, match: true, event: {class_uid: 6003}}\n", "match", "", false},
		{"rule not loaded", exceptionYAML(map[string]string{"rules": "[t.put, t.gone]"}) + "tests:\n" + putTest("ci", "true", "ci", "    rule: t.gone\n"), "", `rule "t.gone" is not loaded`, true},
		{"rule not named", exceptionYAML(nil) + "tests:\n" + putTest("ci", "true", "ci", "    rule: t.other\n"), "", `rule "t.other" is not one the exception names`, true},
		{"only suppressed", exceptionYAML(nil) + "tests:\n" + putTest("ci", "true", "ci"), "", "", true},
		{"both kinds", exceptionYAML(nil) + "tests:\n" + putTest("ci", "true", "ci") + putTest("m", "false", "m"), "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"r.yaml": putRule(), "o.yaml": other, "x.yaml": tt.x})
			_, err := Load(dir)
			if tt.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.loadErr) {
					t.Fatalf("Load: got %v, want an error containing %q", err, tt.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			rep := Lint(dir)
			var errs []string
			for _, p := range rep.Problems {
				if strings.HasPrefix(p.Msg, "exception") {
					errs = append(errs, p.Msg)
				}
			}
			if got := strings.Join(errs, "; "); tt.lintErr == "" && got != "" || tt.lintErr != "" && !strings.Contains(got, tt.lintErr) {
				t.Errorf("lint: got problems %q, want %q", got, tt.lintErr)
			}
			warned := slices.ContainsFunc(rep.Warnings, func(w *Problem) bool { return strings.Contains(w.Msg, "exception: tests: give at least one event") })
			if warned != tt.lintWarn {
				t.Errorf("lint: got tests warning %v, want %v (%v)", warned, tt.lintWarn, rep.Warnings)
			}
		})
	}
}

// TestRuleTestExceptedNeedsSources: a rule test that asserts an exception
// (excepted: true) fails when its event does not even pass the rule's
// sources, instead of passing because nothing matched.
func TestRuleTestExceptedNeedsSources(t *testing.T) {
	rule := strings.Replace(putRule(), "sources: {log_names: [cloudtrail]}", "sources: {log_names: [cloudtrail], operations: [PutObject]}", 1) +
		"tests:\n  - {name: wrong op, match: false, excepted: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail, uid: a}, api: {operation: GetObject}, actor: {user: {name: ci}}}}\n"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"r.yaml": rule, "x.yaml": exceptionYAML(nil)})
	rep := Test(dir)
	if rep.OK || rep.Failed != 1 || !strings.Contains(rep.Rules[0].Tests[0].Error, "does not pass the rule's sources") {
		t.Errorf("got %+v, want the excepted test failed for its sources", rep.Rules)
	}
}
