package rules

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// ruleYAML returns a minimal valid rule with the given id and condition.
func ruleYAML(id, cond string, extra ...string) string {
	return "id: " + id + `
title: test rule ` + id + `
severity: high
sources: {log_names: [cloudtrail]}
condition: ` + cond + "\n" + strings.Join(extra, "\n") + "\n"
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func loadString(t testing.TB, files map[string]string) (*Set, error) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return Load(dir)
}

func mustLoad(t testing.TB, files map[string]string) *Set {
	t.Helper()
	s, err := loadString(t, files)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func ctEvent(op string, req string) *ocsf.Event {
	ev := &ocsf.Event{ClassUID: ocsf.ClassAPIActivity, Time: 1_700_000_000_000}
	ev.Metadata.LogName = "cloudtrail"
	ev.Metadata.UID = "uid-" + op
	ev.API.Operation = op
	if req != "" {
		ev.API.Request.Data = json.RawMessage(req)
	}
	return ev
}

func TestLibrary(t *testing.T) {
	env, err := NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want bool
	}{
		{`cidr_match("10.1.2.3", "10.0.0.0/8")`, true},
		{`cidr_match("11.1.2.3", "10.0.0.0/8")`, false},
		{`cidr_match("10.1.2.3", ["192.168.0.0/16", "10.0.0.0/8"])`, true},
		{`cidr_match("not-an-ip", "10.0.0.0/8")`, false},
		{`cidr_match("fd00:ec2::254", "fd00::/8")`, true},
		{`cidr_match("10.1.2.3", "10.1.2.3")`, true},
		{`is_public_ip("8.8.8.8")`, true},
		{`is_public_ip("10.0.0.1")`, false},
		{`is_public_ip("169.254.169.254")`, false},
		{`is_public_ip("100.64.1.1")`, false},
		{`is_public_ip("ec2.amazonaws.com")`, false},
		{`is_public_ip("2600:1f18::1")`, true},
		{`is_private_ip("172.16.3.4")`, true},
		{`is_private_ip("fd00:ec2::254")`, true},
		{`is_private_ip("8.8.8.8")`, false},
		{`is_ip("::1") && !is_ip("x")`, true},
		{`"AdministratorAccess".iequals("administratoraccess")`, true},
		{`"abc".iequals(["x", "ABC"])`, true},
		{`"Hello World".icontains("WORLD")`, true},
		{`"Hello".icontains("xyz")`, false},
		{`"/Var/WWW/x".istartsWith("/var/www")`, true},
		{`"shell.PHP".iendsWith([".jsp", ".php"])`, true},
		{`"/var/www/html/a.php".glob("/var/www/*.php")`, true},
		{`"/var/www/html/a.php".glob("/var/www/?.php")`, false},
		{`"/VAR/www/a.php".iglob("/var/*/a.p?p")`, true},
		{`base64_decode("aGVsbG8=") == "hello"`, true},
		{`base64_decode("aGVsbG8") == "hello"`, true},
		{`base64_decode("!!!") == ""`, true},
		{`basename("/usr/sbin/nginx") == "nginx"`, true},
		{`basename("") == ""`, true},
		{`"abc".matches("^a.c$")`, true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			ast, iss := env.Compile(tt.expr)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			prg, err := env.Program(ast)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := prg.Eval(map[string]any{})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Value(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAbsentKeyPolicy pins how request/response lookups of absent keys
// behave, including under negation.
func TestAbsentKeyPolicy(t *testing.T) {
	tests := []struct {
		cond string
		req  string
		want bool
		err  bool
	}{
		{`request.name == "a"`, `{"name":"a"}`, true, false},
		{`request.name == "a"`, `{}`, false, false},
		{`request.name != "a"`, `{}`, true, false},
		{`!(request.name == "a")`, `{}`, true, false},
		{`!(request.deep.er.key == "a")`, `{}`, true, false},
		{`request.name in ["a", "b"]`, `{}`, false, false},
		{`has(request.name)`, `{}`, false, false},
		{`has(request.a.b)`, `{"a":{"b":1}}`, true, false},
		{`has(request.a.c)`, `{"a":{"b":1}}`, false, false},
		{`request.?name.orValue("x") == "x"`, `{}`, true, false},
		{`request.?a.?b.orValue(0) == 1`, `{"a":{"b":1}}`, true, false},
		{`request.items.exists(i, i.v == 2)`, `{"items":[{"v":1},{"v":2}]}`, true, false},
		{`request.items.exists(i, i.missing == 2)`, `{"items":[{"v":1}]}`, false, false},
		{`request.n == 3`, `{"n":3}`, true, false},
		{`request.f == 1.5`, `{"f":1.5}`, true, false},
		{`request.b == true`, `{"b":true}`, true, false},
		{`request.name == "a"`, ``, false, false},
		{`request.name == "a"`, `not json`, false, false},
		{`request.name.startsWith("a")`, `{}`, false, true},
		{`response.id == "d-1"`, ``, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.cond+" "+tt.req, func(t *testing.T) {
			s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.absent", "'"+tt.cond+"'")})
			e := NewEngine(nil, nil)
			e.Swap(s)
			got, _, err := e.eval(s.Rules()[0], newActivation(ctEvent("X", tt.req), s.adapter), nil)
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("got %v (err %v), want %v (err %v)", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestActivationDecodesLazilyOnce(t *testing.T) {
	ev := ctEvent("X", `{"a":1}`)
	act := newActivation(ev, types.DefaultTypeAdapter)
	calls := 0
	act.decodeFn = func(raw json.RawMessage) (ref.Val, bool) {
		calls++
		return decodeBody(raw)
	}
	if _, ok := act.ResolveName("event"); !ok || calls != 0 {
		t.Fatalf("resolving event decoded the body: calls=%d", calls)
	}
	act.ResolveName("request")
	act.ResolveName("request")
	if calls != 1 {
		t.Errorf("got %d decodes, want 1", calls)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := loadString(t, map[string]string{
		"a/typo.yaml": `id: t.typo
title: typo
severity: high
sources: {log_names: [cloudtrail]}
condition: |
  event.api.operation == "X" &&
    event.api.operatoin == "Y"
`,
		"b/unknown_key.yaml": ruleYAML("t.key", "'true'", "severty: high"),
		"c/not_bool.yaml":    ruleYAML("t.notbool", "event.api.operation"),
		"d/dup1.yaml":        ruleYAML("t.dup", "'true'"),
		"d/dup2.yaml":        ruleYAML("t.dup", "'true'"),
		"e/bad.yaml":         "id: [unclosed\n",
		"f/regex.yaml":       ruleYAML("t.regex", "'event.api.operation.matches(event.message)'"),
		"g/entity.yaml":      ruleYAML("t.entity", "'true'", "entities: [instance, nonsense]"),
		"h/severity.yaml":    strings.Replace(ruleYAML("t.sev", "'true'"), "severity: high", "severity: huge", 1),
		"i/window.yaml":      ruleYAML("t.win", "'true'", "suppression: {key: event.message, window: forever}"),
		"j/test.yaml":        ruleYAML("t.test", "'true'", "tests: [{match: true, event: {class_uid: 6003, clas_name: x}}]"),
		"k/corr.yaml":        "kind: correlation\nid: c.1\nsequence: whatever\n",
	})
	if err == nil {
		t.Fatal("Load: got nil error, want problems")
	}
	probs := Problems(err)
	want := []string{
		"a/typo.yaml:7:14: rule t.typo: condition: undefined field 'operatoin'",
		"b/unknown_key.yaml:6:1: rule t.key: unknown key \"severty\"",
		"c/not_bool.yaml:5:12: rule t.notbool: condition: must be of type bool, got string",
		"rule t.dup: duplicate rule id",
		"e/bad.yaml",
		"rule t.regex: condition: the pattern of matches() must be a constant string",
		"rule t.entity: unknown entity kind \"nonsense\"",
		"rule t.sev: severity \"huge\"",
		"rule t.win: suppression window",
		"rule t.test: test \"test 1\": event: json: unknown field \"clas_name\"",
	}
	all := err.Error()
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("problems do not mention %q; got:\n%s", w, all)
		}
	}
	if strings.Contains(all, "c.1") || strings.Contains(all, "corr.yaml") {
		t.Errorf("correlation file was not skipped:\n%s", all)
	}
	if len(probs) < len(want) {
		t.Errorf("got %d problems, want at least %d", len(probs), len(want))
	}
}

func TestLoadSkipsCorrelationAndHidden(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"det.yaml":              ruleYAML("t.one", "'true'") + "---\n" + ruleYAML("t.two", "'true'"),
		"corr.yml":              "kind: correlation\nid: c\nanything: [goes]\n",
		".hidden/x.yaml":        "not: [valid",
		"testdata/fixture.yaml": "not: [valid",
		"README.md":             "# not a rule",
	})
	var ids []string
	for _, r := range s.Rules() {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"t.one", "t.two"}) {
		t.Errorf("got rules %v, want [t.one t.two]", ids)
	}
	if len(s.Skipped) != 1 {
		t.Errorf("got skipped %v, want the correlation file", s.Skipped)
	}
}

func TestHostileRules(t *testing.T) {
	long := "'" + strings.Repeat("event.message == \"x\" || ", 1000) + "true'"
	deep := "'" + strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200) + "'"
	tests := []struct {
		name, cond, want string
	}{
		{"enormous expression", long, "expression"},
		{"deep nesting", deep, "recursion"},
		{"triple nested comprehension", `'event.observables.exists(a, event.observables.exists(b, event.observables.exists(c, a.value + b.value == c.value)))'`, "nest"},
		{"quadratic over observables with regex", `'event.observables.all(a, event.observables.all(b, (a.value + b.value).matches("(a+)+$")))'`, "cost"},
		{"huge regex", `'event.message.matches("` + strings.Repeat("(a|b|c|d)", 400) + `")'`, "regex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(t, map[string]string{"h.yaml": ruleYAML("t.hostile", tt.cond)})
			if err == nil {
				t.Fatal("got nil error, want the rule rejected")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("got %v, want a problem mentioning %q", err, tt.want)
			}
		})
	}
}

// TestHostileEvaluationIsStopped checks that a rule that passes the load
// checks but is expensive on a specific event is stopped by the cost limit,
// counted, and does not keep the other rules of the event from matching.
func TestHostileEvaluationIsStopped(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"slow.yaml": ruleYAML("t.slow", `'event.observables.exists(a, event.observables.exists(b, a.type_id == b.type_id + 1000))'`),
		"ok.yaml":   ruleYAML("t.ok", `'event.api.operation == "X"'`),
	})
	reg := prometheus.NewRegistry()
	e := NewEngine(reg, nil)
	e.Swap(s)
	ev := ctEvent("X", "")
	for i := range 3000 {
		ev.Observables = append(ev.Observables, ocsf.Observable{Value: strings.Repeat("v", i%64), Entity: ocsf.EntityIP})
	}
	alerts := e.Evaluate(ev)
	if len(alerts) != 1 || alerts[0].RuleID != "t.ok" {
		t.Fatalf("got alerts %v, want one from t.ok", alerts)
	}
	got := counterValue(t, e.metrics.errors.WithLabelValues("t.slow", ReasonCostLimit)) +
		counterValue(t, e.metrics.errors.WithLabelValues("t.slow", ReasonTimeout))
	if got != 1 {
		t.Errorf("got %v errors for t.slow, want 1", got)
	}
}

// TestHugeFieldHitsCostLimit checks that scanning functions over a huge
// field are priced by size, so they are stopped like matches() is.
func TestHugeFieldHitsCostLimit(t *testing.T) {
	tests := []string{
		`'event.message.icontains(["needle", "other"])'`,
		`'event.message.matches("needle")'`,
		`'event.message.iglob("*a*b*c*needle")'`,
	}
	for _, cond := range tests {
		t.Run(cond, func(t *testing.T) {
			s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.huge", cond)})
			e := NewEngine(nil, nil)
			ev := ctEvent("X", "")
			ev.Message = strings.Repeat("haystack ", 4<<20)
			_, reason, err := e.eval(s.Rules()[0], newActivation(ev, s.adapter), nil)
			if reason != ReasonCostLimit {
				t.Errorf("got reason %q (err %v), want %q", reason, err, ReasonCostLimit)
			}
		})
	}
}

func TestDeadlineStopsEvaluation(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"slow.yaml": ruleYAML("t.slow", `'event.observables.exists(a, event.observables.exists(b, a.type_id == b.type_id + 1000))'`),
	})
	e := NewEngine(nil, nil)
	e.EvalTimeout = time.Nanosecond
	e.Swap(s)
	ev := ctEvent("X", "")
	// More observables than the strict estimate's size hints, so the rule
	// runs tracked, under the deadline (an untracked evaluation has none).
	for range untrackedMaxList + 44 {
		ev.Observables = append(ev.Observables, ocsf.Observable{Value: "xxxxxxxx"})
	}
	_, reason, err := e.eval(s.Rules()[0], newActivation(ev, s.adapter), nil)
	if err == nil || (reason != ReasonTimeout && reason != ReasonCostLimit) {
		t.Errorf("got reason %q err %v, want a timeout", reason, err)
	}
}

func TestEngineIndexAndAlerts(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"r.yaml": `id: t.stop
title: stop
severity: critical
stage: defense_evasion
attack: {tactics: [TA0005], techniques: [T1562.008]}
sources: {log_names: [cloudtrail], operations: [StopLogging]}
condition: 'true'
entities: [ip]
---
id: t.agent
title: agent
severity: low
sources: {log_names: [agent], classes: [1007]}
condition: 'true'
---
id: t.class
title: class
severity: low
sources: {classes: [6003]}
condition: 'request.name == "keep"'
`,
	})
	reg := prometheus.NewRegistry()
	e := NewEngine(reg, nil)
	e.Swap(s)
	ev := ctEvent("StopLogging", `{"name":"keep"}`)
	ev.Cloud.Account.UID = "111122223333"
	ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", "198.51.100.1")
	ev.AddObservable(ocsf.EntityAccount, "cloud.account.uid", "111122223333")
	alerts := e.Evaluate(ev)
	var ids []string
	for _, a := range alerts {
		ids = append(ids, a.RuleID)
	}
	if !slices.Equal(ids, []string{"t.stop", "t.class"}) {
		t.Fatalf("got alerts from %v, want [t.stop t.class]", ids)
	}
	a := alerts[0]
	if a.Severity != ocsf.SeverityCritical || a.Stage != "defense_evasion" || a.AccountUID != "111122223333" ||
		len(a.Entities) != 1 || a.Entities[0].Entity != ocsf.EntityIP || !slices.Equal(a.EventIDs, []string{"uid-StopLogging"}) {
		t.Errorf("got alert %+v", a)
	}
	if want := alertID("t.stop", "event", "uid-StopLogging"); a.ID != want {
		t.Errorf("got id %s, want %s", a.ID, want)
	}
	if !strings.HasPrefix(a.RuleVersion, s.Rule("t.stop").Version) {
		t.Errorf("got version %q, want prefix %q", a.RuleVersion, s.Rule("t.stop").Version)
	}
	if got := counterValue(t, e.metrics.evals.WithLabelValues("t.agent")); got != 0 {
		t.Errorf("agent rule evaluated %v times on a CloudTrail event, want 0", got)
	}
	if got := counterValue(t, e.metrics.matches.WithLabelValues("t.stop")); got != 1 {
		t.Errorf("got %v matches, want 1", got)
	}
	// Same event again: same deterministic id.
	if again := e.Evaluate(ev); again[0].ID != a.ID {
		t.Errorf("got id %s on re-evaluation, want %s", again[0].ID, a.ID)
	}
}

func TestDeprecatedRulesAreNotEvaluated(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.old", "'true'", "status: deprecated")})
	e := NewEngine(nil, nil)
	e.Swap(s)
	if got := e.Evaluate(ctEvent("X", "")); len(got) != 0 {
		t.Errorf("got %d alerts from a deprecated rule, want 0", len(got))
	}
	if s.Len() != 1 {
		t.Errorf("got %d rules in the set, want the deprecated rule kept", s.Len())
	}
}

func TestSuppression(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.sup", "'true'", "suppression: {key: event.actor.user.name, window: 1h}")})
	e := NewEngine(prometheus.NewRegistry(), nil)
	e.Swap(s)
	mk := func(user string, ms int64, uid string) *ocsf.Event {
		ev := ctEvent("X", "")
		ev.Actor.User.Name, ev.Time, ev.Metadata.UID = user, ms, uid
		return ev
	}
	base := int64(1_700_000_000_000) / 3_600_000 * 3_600_000
	first := e.Evaluate(mk("alice", base+1000, "a"))
	second := e.Evaluate(mk("alice", base+2000, "b"))
	other := e.Evaluate(mk("bob", base+3000, "c"))
	later := e.Evaluate(mk("alice", base+3_600_000+1, "d"))
	if len(first) != 1 || len(second) != 0 || len(other) != 1 || len(later) != 1 {
		t.Fatalf("got %d/%d/%d/%d alerts, want 1/0/1/1", len(first), len(second), len(other), len(later))
	}
	if first[0].ID == later[0].ID || first[0].ID == other[0].ID {
		t.Errorf("distinct windows or keys share an id")
	}
	// A fresh engine (a replay after a restart) yields the same id.
	e2 := NewEngine(nil, nil)
	e2.Swap(s)
	if again := e2.Evaluate(mk("alice", base+2000, "b")); again[0].ID != first[0].ID {
		t.Errorf("got id %s after restart, want %s", again[0].ID, first[0].ID)
	}
	if got := counterValue(t, e.metrics.suppressed.WithLabelValues("t.sup")); got != 1 {
		t.Errorf("got %v suppressed, want 1", got)
	}
}

// TestMatchThenSuppressedEqualsEvaluate evaluates events concurrently with
// Match and applies Suppressed in event-time order afterwards: the alerts
// are those Evaluate returns in order — the first event of a window keeps
// it, whatever order the matches were computed in.
func TestMatchThenSuppressedEqualsEvaluate(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"r.yaml": ruleYAML("t.sup", "'true'", "suppression: {key: event.actor.user.name, window: 1h}"),
		"p.yaml": ruleYAML("t.plain", "event.actor.user.name == 'bob'"),
	})
	base := int64(1_700_000_000_000) / 3_600_000 * 3_600_000
	var events []*ocsf.Event
	for i, user := range []string{"alice", "alice", "bob", "alice", "bob", "carol", "alice"} {
		ev := ctEvent("X", "")
		ev.Actor.User.Name, ev.Time, ev.Metadata.UID = user, base+int64(i)*1_000_000, string(rune('a'+i))
		events = append(events, ev)
	}
	inOrder := NewEngine(nil, nil)
	inOrder.Swap(s)
	var want []alert.Alert
	for _, ev := range events {
		want = append(want, inOrder.Evaluate(ev)...)
	}

	e := NewEngine(prometheus.NewRegistry(), nil)
	e.Swap(s)
	matches := make([][]Match, len(events))
	done := make(chan struct{})
	for i := len(events) - 1; i >= 0; i-- { // computed in reverse, concurrently
		go func() {
			matches[i] = e.Match(events[i])
			done <- struct{}{}
		}()
	}
	for range events {
		<-done
	}
	var got []alert.Alert
	for _, ms := range matches {
		for _, m := range ms {
			if !e.Suppressed(m) {
				got = append(got, m.Alert)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d alerts, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Time != want[i].Time || got[i].RuleID != want[i].RuleID {
			t.Errorf("alert %d: got %s %s at %d, want %s %s at %d", i, got[i].RuleID, got[i].ID, got[i].Time, want[i].RuleID, want[i].ID, want[i].Time)
		}
	}
	// alice's second and third events fall in her first event's window.
	if n := counterValue(t, e.metrics.suppressed.WithLabelValues("t.sup")); n != 2 {
		t.Errorf("got %v suppressed, want 2", n)
	}
}

// TestMatchChecksPrefilter: Match, like Evaluate, never runs a condition
// whose literal prerequisites the event lacks.
func TestMatchChecksPrefilter(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.op", `'event.api.operation == "Y" && event.actor.user.name != ""'`)})
	for name, run := range map[string]func(*Engine, *ocsf.Event) int{
		"Evaluate": func(e *Engine, ev *ocsf.Event) int { return len(e.Evaluate(ev)) },
		"Match":    func(e *Engine, ev *ocsf.Event) int { return len(e.Match(ev)) },
	} {
		t.Run(name, func(t *testing.T) {
			e := NewEngine(prometheus.NewRegistry(), nil)
			e.Swap(s)
			if n := run(e, ctEvent("X", "")); n != 0 {
				t.Errorf("got %d results for operation X, want 0", n)
			}
			if got := counterValue(t, e.metrics.evals.WithLabelValues("t.op")); got != 0 {
				t.Errorf("condition evaluated %v times on an event its prefilter rejects, want 0", got)
			}
			ev := ctEvent("Y", "")
			ev.Actor.User.Name = "bob"
			if n := run(e, ev); n != 1 {
				t.Errorf("got %d results for operation Y, want 1", n)
			}
			if got := counterValue(t, e.metrics.evals.WithLabelValues("t.op")); got != 1 {
				t.Errorf("got %v evaluations, want 1", got)
			}
		})
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.c", `'request.n == 1 && event.api.operation == "X"'`)})
	e := NewEngine(prometheus.NewRegistry(), nil)
	e.Swap(s)
	done := make(chan int)
	for range 8 {
		go func() {
			n := 0
			for range 200 {
				n += len(e.Evaluate(ctEvent("X", `{"n":1}`)))
			}
			done <- n
		}()
	}
	for range 8 {
		if n := <-done; n != 200 {
			t.Errorf("got %d alerts, want 200", n)
		}
	}
}

func TestEvaluateNilAndEmpty(t *testing.T) {
	e := NewEngine(nil, nil)
	if got := e.Evaluate(ctEvent("X", "")); got != nil {
		t.Errorf("got %v before any set, want nil", got)
	}
	e.Swap(mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.x", "'true'")}))
	if got := e.Evaluate(nil); got != nil {
		t.Errorf("got %v for a nil event, want nil", got)
	}
	e.Swap(nil)
	if got := e.Evaluate(ctEvent("X", "")); got != nil {
		t.Errorf("got %v after swapping in no set, want nil", got)
	}
}

func TestNewEngineTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewEngine(reg, nil)
	e := NewEngine(reg, nil) // must not panic
	e.Swap(mustLoad(t, map[string]string{"r.yaml": ruleYAML("t.x", "'true'")}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() == "musubi_rules_loaded" {
			n += len(mf.GetMetric())
		}
	}
	if n != 1 {
		t.Errorf("got %d musubi_rules_loaded series, want 1", n)
	}
}

func counterValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

func TestAlertTakesFindingAttacks(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": `id: t.gd
title: finding
severity: high
attack: {tactics: [TA0002], techniques: [T1204]}
sources: {classes: [2004]}
condition: 'true'
`})
	ev := &ocsf.Event{ClassUID: ocsf.ClassDetectionFinding}
	ev.FindingInfo.Attacks = []ocsf.Attack{
		{Tactic: ocsf.AttackRef{Name: "CredentialAccess"}},
		{Tactic: ocsf.AttackRef{Name: "credential access"}},
		{Technique: ocsf.AttackRef{UID: "T1552.005"}},
		{Technique: ocsf.AttackRef{UID: "T1204"}},
		{Technique: ocsf.AttackRef{Name: "not an id"}},
	}
	a := NewAlert(s.Rules()[0], ev)
	if !slices.Equal(a.Tactics, []string{"TA0002", "TA0006"}) || !slices.Equal(a.Techniques, []string{"T1204", "T1552.005"}) {
		t.Errorf("got tactics %v techniques %v, want [TA0002 TA0006] [T1204 T1552.005]", a.Tactics, a.Techniques)
	}
	if r := s.Rules()[0]; len(r.Tactics) != 1 || len(r.Techniques) != 1 {
		t.Errorf("the rule's own lists were modified: %v %v", r.Tactics, r.Techniques)
	}
}

func TestLint(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"good.yaml": `id: t.good
title: good
description: d
status: stable
severity: low
stage: discovery
attack: {tactics: [TA0007], techniques: [T1619]}
sources: {log_names: [cloudtrail], operations: [ListBuckets]}
condition: event.api.operation == "ListBuckets" && event.status_id != 2
entities: [principal]
tests:
  - {name: hit, match: true, event: {class_uid: 6003, metadata: {log_name: cloudtrail}, api: {operation: ListBuckets}}}
  - {name: miss, match: false, event: {class_uid: 6003, metadata: {log_name: cloudtrail}, api: {operation: ListBuckets}, status_id: 2}}
`,
		"bare.yaml": ruleYAML("t.bare", `'event.api.operation == "X"'`),
	})
	rep := Lint(dir)
	if rep.OK || rep.Rules != 2 {
		t.Fatalf("got ok=%v rules=%d, want a failing report over 2 rules", rep.OK, rep.Rules)
	}
	var msgs []string
	for _, p := range rep.Problems {
		if p.RuleID != "t.bare" {
			t.Errorf("got a problem for %s: %v", p.RuleID, p)
		}
		msgs = append(msgs, p.Msg)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"description", "status", "stage", "attack", "sources.operations", "entities", "tests"} {
		if !strings.Contains(all, want) {
			t.Errorf("lint problems do not mention %q:\n%s", want, all)
		}
	}
	// The good rule's tests pass, the bare rule has none.
	if tr := Test(dir); tr.Failed != 0 {
		t.Errorf("got %d failing inline tests, want 0", tr.Failed)
	}
}

// TestIndexLimitsCandidates checks that an event meets only the rules whose
// sources can match it, however many rules are loaded.
func TestIndexLimitsCandidates(t *testing.T) {
	for _, n := range []int{10, 1000} {
		s, err := LoadFiles(syntheticRules(n))
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		e := NewEngine(reg, nil)
		e.Swap(s)
		e.Evaluate(syntheticEvents(n)[0])
		var evals float64
		for _, r := range s.Rules() {
			evals += counterValue(t, e.metrics.evals.WithLabelValues(r.ID))
		}
		if evals != 2 {
			t.Errorf("%d rules: got %v evaluations for one event, want 2", n, evals)
		}
	}
}
