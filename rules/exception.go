package rules

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/ocsf"
)

// KindException marks a file (document) of tuning exceptions: matches that
// must raise no alert. See Exception.
const KindException = "exception"

// ExpiryWarning is how long before its expiry an exception is warned about
// by Lint and at load.
const ExpiryWarning = 14 * 24 * time.Hour

// Exception is one compiled tuning exception: a match of one of its rules
// on an event its condition accepts raises no alert and is counted in
// musubi_rules_excepted_total{rule,exception}. An exception suppresses
// until the end of its Expires day (UTC); after that it still loads, is
// warned about, and suppresses nothing, so a forgotten exception fails
// towards alerting.
type Exception struct {
	ID string
	// Rules are rule ids or globs (aws.iam.*); "*" makes the exception
	// global.
	Rules  []string
	Owner  string
	Reason string
	// Expires is the first instant the exception no longer applies: the
	// day after the expires date, 00:00 UTC.
	Expires time.Time
	// Condition is the CEL condition; for field-equals exceptions, the
	// condition generated from the pairs.
	Condition string
	File      string
	Line      int
	// Tests are the exception's inline tests (see ExceptionTest).
	Tests []ExceptionTest

	cond *Condition
}

// ExceptionTest is an inline test of an exception: an event that one rule
// the exception names matches, and whether the exception must suppress
// that match (Suppressed) or must leave its alert alone. Either way the
// rule must match the event, so the test says something about the
// exception and not about the rule.
type ExceptionTest struct {
	Name       string
	Rule       string
	Suppressed bool
	Event      ocsf.Event
	// Source is set when the test gave a raw record of that source.
	Source string
	Line   int
}

// Active reports whether the exception suppresses matches at now.
func (x *Exception) Active(now time.Time) bool { return now.Before(x.Expires) }

// Applies reports whether the exception names the rule id.
func (x *Exception) Applies(ruleID string) bool {
	for _, p := range x.Rules {
		if Glob(ruleID, p) {
			return true
		}
	}
	return false
}

// exceptionDoc is the YAML shape of an exception document.
type exceptionDoc struct {
	Kind      string               `yaml:"kind"`
	ID        string               `yaml:"id"`
	Rules     []string             `yaml:"rules"`
	Owner     string               `yaml:"owner"`
	Reason    string               `yaml:"reason"`
	Expires   string               `yaml:"expires"`
	Condition string               `yaml:"condition"`
	Fields    map[string]yaml.Node `yaml:"fields"`
	Tests     []exceptionTestDoc   `yaml:"tests"`
}

type exceptionTestDoc struct {
	Name       string `yaml:"name"`
	Rule       string `yaml:"rule"`
	Suppressed *bool  `yaml:"suppressed"`
	Event      any    `yaml:"event"`
	Source     string `yaml:"source"`
	Raw        any    `yaml:"raw"`
}

var (
	rulePatternRe = regexp.MustCompile(`^[a-z0-9_.*?-]{1,128}$`)
	fieldPathRe   = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$`)
)

// compileException turns one exception document into an Exception. Every
// problem is located in the file.
func compileException(env *cel.Env, file string, lines []string, root *yaml.Node) (*Exception, []error) {
	var problems []error
	id := ""
	if n := MapValue(root, "id"); n != nil {
		id = n.Value
	}
	at := func(n *yaml.Node, format string, args ...any) {
		p := &Problem{File: file, Line: root.Line, Col: root.Column, RuleID: id, Msg: "exception: " + fmt.Sprintf(format, args...)}
		if n != nil {
			p.Line, p.Col = n.Line, n.Column
		}
		problems = append(problems, p)
	}
	problems = append(problems, StrictKeys(file, id, root, exceptionDoc{})...)
	var d exceptionDoc
	if p := DecodeDoc(file, id, root, &d); p != nil {
		return nil, append(problems, p)
	}
	x := &Exception{ID: d.ID, Rules: d.Rules, Owner: strings.TrimSpace(d.Owner), Reason: strings.TrimSpace(d.Reason), File: file, Line: root.Line}
	if !idPattern.MatchString(d.ID) {
		at(MapValue(root, "id"), "id %q must be 3-128 characters of a-z 0-9 _ . - starting with a letter or digit", d.ID)
	}
	if len(d.Rules) == 0 {
		at(MapValue(root, "rules"), `rules is required: rule ids or globs, or ["*"] for every rule`)
	}
	for _, p := range d.Rules {
		if !rulePatternRe.MatchString(p) {
			at(MapValue(root, "rules"), "rules: %q is not a rule id or glob", p)
		}
	}
	if x.Owner == "" {
		at(MapValue(root, "owner"), "owner is required (who answers for this exception)")
	}
	if x.Reason == "" {
		at(MapValue(root, "reason"), "reason is required (why these matches are benign)")
	}
	if strings.TrimSpace(d.Expires) == "" {
		at(MapValue(root, "expires"), "expires is required (a date, YYYY-MM-DD)")
	} else if day, err := time.Parse(time.DateOnly, strings.TrimSpace(d.Expires)); err != nil {
		at(MapValue(root, "expires"), "expires %q is not a date YYYY-MM-DD", d.Expires)
	} else {
		x.Expires = day.AddDate(0, 0, 1)
	}

	cond, condNode := strings.TrimSpace(d.Condition), MapValue(root, "condition")
	switch {
	case cond != "" && len(d.Fields) > 0:
		at(condNode, "give either condition or fields, not both")
	case cond == "" && len(d.Fields) == 0:
		at(root, "condition (CEL) or fields (OCSF field: value pairs) is required")
	case cond != "":
		c, probs := CompileCondition(env, d.Condition, ExprAt{File: file, RuleID: id, What: "exception condition", Node: condNode, Lines: lines})
		problems = append(problems, probs...)
		x.cond, x.Condition = c, cond
	default:
		expr, probs := fieldsCondition(file, id, MapValue(root, "fields"))
		problems = append(problems, probs...)
		if len(probs) == 0 {
			fieldsNode := MapValue(root, "fields")
			// The generated condition is type-checked like a written one;
			// its problems are located at the fields mapping.
			c, cprobs := compileExpr(env, expr, cel.BoolType, func(int, int) (int, int) { return fieldsNode.Line, fieldsNode.Column }, file, id, "exception fields")
			problems = append(problems, cprobs...)
			if len(cprobs) == 0 {
				x.cond = &Condition{prg: c.prg, iterates: c.iterates, pre: c.pre}
			}
			x.Condition = expr
		}
	}
	x.Tests = compileExceptionTests(d, root, at)
	if len(problems) > 0 {
		return nil, problems
	}
	return x, nil
}

// compileExceptionTests reads the tests of an exception document. A test
// names its rule, unless the exception names exactly one rule id (no glob).
func compileExceptionTests(d exceptionDoc, root *yaml.Node, at func(n *yaml.Node, format string, args ...any)) []ExceptionTest {
	var out []ExceptionTest
	testsNode := MapValue(root, "tests")
	for i, t := range d.Tests {
		var node *yaml.Node
		if testsNode != nil && i < len(testsNode.Content) {
			node = testsNode.Content[i]
		}
		xt := ExceptionTest{Name: t.Name, Rule: t.Rule, Line: root.Line}
		if node != nil {
			xt.Line = node.Line
		}
		if xt.Name == "" {
			xt.Name = fmt.Sprintf("test %d", i+1)
		}
		if xt.Rule == "" {
			if len(d.Rules) == 1 && !strings.ContainsAny(d.Rules[0], "*?") {
				xt.Rule = d.Rules[0]
			} else {
				at(node, "test %q: rule is required: the exception names more than one rule or a glob", xt.Name)
			}
		}
		if t.Suppressed == nil {
			at(node, "test %q: suppressed (true: the exception must silence the rule's match; false: it must not) is required", xt.Name)
		} else {
			xt.Suppressed = *t.Suppressed
		}
		xt.Event, xt.Source, _ = decodeTestEvent(node, xt.Name, t.Event, t.Raw, t.Source, at)
		out = append(out, xt)
	}
	return out
}

// fieldsCondition turns field-equals pairs (OCSF attribute paths of the
// event, such as actor.user.name) into a CEL condition: every field equals
// its value. Values are strings, integers or booleans.
func fieldsCondition(file, id string, m *yaml.Node) (string, []error) {
	var problems []error
	var terms []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		bad := func(format string, args ...any) {
			problems = append(problems, &Problem{File: file, Line: k.Line, Col: k.Column, RuleID: id, Msg: "exception fields: " + fmt.Sprintf(format, args...)})
		}
		path := strings.TrimPrefix(k.Value, "event.")
		if !fieldPathRe.MatchString(path) {
			bad("%q is not an OCSF attribute path such as actor.user.name", k.Value)
			continue
		}
		if v.Kind != yaml.ScalarNode {
			bad("%s: the value must be a string, a number or a boolean", k.Value)
			continue
		}
		var lit string
		switch v.Tag {
		case "!!int":
			n, err := strconv.ParseInt(v.Value, 0, 64)
			if err != nil {
				bad("%s: %v", k.Value, err)
				continue
			}
			lit = strconv.FormatInt(n, 10)
		case "!!bool":
			lit = strconv.FormatBool(v.Value == "true")
		case "!!str":
			lit = strconv.Quote(v.Value)
		default:
			bad("%s: the value must be a string, a number or a boolean", k.Value)
			continue
		}
		terms = append(terms, "event."+path+" == "+lit)
	}
	sort.Strings(terms)
	return strings.Join(terms, " && "), problems
}

// matches reports whether the exception's condition holds on the event
// (act is its activation); an evaluation error is returned and the match
// then raises its alert.
func (x *Exception) matches(ev *ocsf.Event, act *activation, timeout time.Duration) (bool, error) {
	if !x.cond.Admits(ev) {
		return false, nil
	}
	return x.cond.Eval(act, timeout)
}

// resolveExceptions gives every rule of s the exceptions that name it and
// returns warnings: exceptions that have expired or expire within
// ExpiryWarning of now, and rule ids or globs that name no rule of the set.
func (s *Set) resolveExceptions(now time.Time) {
	s.warnings, s.unmatched = nil, nil
	for _, x := range s.exceptions {
		for _, p := range x.Rules {
			n := 0
			for _, r := range s.rules {
				if Glob(r.ID, p) {
					n++
				}
			}
			if n == 0 {
				s.unmatched = append(s.unmatched, &Problem{File: x.File, Line: x.Line, Col: 1, RuleID: x.ID,
					Msg: fmt.Sprintf("exception: rules: %q names no loaded rule", p)})
			}
		}
		for _, t := range x.Tests {
			msg := ""
			switch r := s.Rule(t.Rule); {
			case t.Rule == "":
			case r == nil:
				msg = fmt.Sprintf("exception: test %q: rule %q is not loaded", t.Name, t.Rule)
			case !x.Applies(r.ID):
				msg = fmt.Sprintf("exception: test %q: rule %q is not one the exception names", t.Name, t.Rule)
			}
			if msg != "" {
				s.unmatched = append(s.unmatched, &Problem{File: x.File, Line: t.Line, Col: 1, RuleID: x.ID, Msg: msg})
			}
		}
		s.warnings = append(s.warnings, x.expiryWarnings(now)...)
	}
	s.warnings = slices.Concat(s.unmatched, s.warnings)
	s.excepts = map[*Rule][]*Exception{}
	for _, r := range s.rules {
		for _, x := range s.exceptions {
			if x.Applies(r.ID) {
				s.excepts[r] = append(s.excepts[r], x)
			}
		}
	}
}

func (x *Exception) expiryWarnings(now time.Time) []*Problem {
	day := x.Expires.AddDate(0, 0, -1).Format(time.DateOnly)
	switch {
	case !x.Active(now):
		return []*Problem{{File: x.File, Line: x.Line, Col: 1, RuleID: x.ID,
			Msg: fmt.Sprintf("exception: expired on %s: it no longer suppresses; renew or remove it", day)}}
	case x.Expires.Sub(now) <= ExpiryWarning:
		return []*Problem{{File: x.File, Line: x.Line, Col: 1, RuleID: x.ID,
			Msg: fmt.Sprintf("exception: expires on %s, in less than %d days", day, int(ExpiryWarning.Hours()/24))}}
	}
	return nil
}

// RunExceptionTests runs the inline tests of exception x of the set at now.
// A test passes when its rule matches the event and x covers the match
// (suppressed: true) or does not (suppressed: false); x alone is applied, so
// other exceptions cannot make a test pass. Got is whether x suppressed.
func (s *Set) RunExceptionTests(x *Exception, now time.Time) []TestResult {
	var out []TestResult
	for _, t := range x.Tests {
		res := TestResult{Name: t.Name, Line: t.Line, Source: t.Source, Rule: t.Rule, Want: t.Suppressed}
		r := s.Rule(t.Rule)
		switch {
		case r == nil:
			res.Error = fmt.Sprintf("rule %q is not loaded", t.Rule)
		case !x.Applies(r.ID):
			res.Error = fmt.Sprintf("rule %q is not one the exception names", t.Rule)
		default:
			// As a rule test: a suppressed match is an excepted
			// non-match; an unsuppressed one, a match.
			rt := RuleTest{Name: t.Name, Match: !t.Suppressed, Excepted: t.Suppressed, Event: t.Event, Line: t.Line}
			got := r.runTests([]RuleTest{rt}, []*Exception{x}, now)[0]
			res.Got, res.Error = got.ExceptedBy == x.ID, got.Error
			if !t.Suppressed && !got.Got && got.ExceptedBy == "" && res.Error == "" {
				res.Error = "the rule does not match the event, so the test shows nothing about the exception; give an event the rule alerts on"
			}
		}
		res.Pass = res.Got == res.Want && res.Error == ""
		out = append(out, res)
	}
	return out
}

// Exceptions returns the tuning exceptions of the set, in load order.
func (s *Set) Exceptions() []*Exception {
	if s == nil {
		return nil
	}
	return s.exceptions
}

// Warnings returns what is wrong with the set but does not stop it from
// loading: exceptions that expired or expire soon, and exceptions naming
// rules the set does not have. The manager logs them at every reload.
func (s *Set) Warnings() []*Problem {
	if s == nil {
		return nil
	}
	return slices.Clone(s.warnings)
}

// ExceptionsFor returns the exceptions that name rule r (expired ones
// included).
func (s *Set) ExceptionsFor(r *Rule) []*Exception {
	if s == nil {
		return nil
	}
	return s.excepts[r]
}
