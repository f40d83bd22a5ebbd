package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	celast "cel.dev/cel-go/common/ast"

	"github.com/musubi-xdr/musubi/ocsf"
)

// fieldRef is a top-level OCSF attribute a rule reads, or a test event
// carries, located in the rule file.
type fieldRef struct {
	attr      string // top-level attribute: "process", "api"
	path      string // as written: "event.process.name", "request"
	what      string // "condition", "suppression key", `test "name": event`
	line, col int
	class     int // for a test event, its class_uid (0: none given)
}

// eventFields lists the top-level event attributes an expression reads:
// every event.<attr> selection, and request/response, which are
// api.request.data and api.response.data.
func eventFields(a *celast.AST, pos func(line, col int) (int, int), what string) []fieldRef {
	var out []fieldRef
	at := func(id int64) (int, int) {
		loc := a.SourceInfo().GetStartLocation(id)
		return pos(loc.Line(), loc.Column())
	}
	nav := celast.NavigateAST(a)
	for _, e := range celast.MatchDescendants(nav, celast.KindMatcher(celast.IdentKind)) {
		switch name := e.AsIdent(); name {
		case "request", "response":
			l, c := at(e.ID())
			out = append(out, fieldRef{attr: "api", path: name, what: what, line: l, col: c})
		}
	}
	for _, e := range celast.MatchDescendants(nav, celast.KindMatcher(celast.SelectKind)) {
		op := e.AsSelect().Operand()
		if op.Kind() != celast.IdentKind || op.AsIdent() != "event" {
			continue
		}
		// The full path as written, for the message: climb while the parent
		// selects a field of this node.
		path := []string{"event", e.AsSelect().FieldName()}
		for n := e; ; {
			p, ok := n.Parent()
			if !ok || p.Kind() != celast.SelectKind || p.AsSelect().Operand().ID() != n.ID() {
				break
			}
			path = append(path, p.AsSelect().FieldName())
			n = p
		}
		l, c := at(op.ID())
		out = append(out, fieldRef{attr: e.AsSelect().FieldName(), path: strings.Join(path, "."), what: what, line: l, col: c})
	}
	slices.SortFunc(out, func(x, y fieldRef) int {
		if x.line != y.line {
			return x.line - y.line
		}
		return x.col - y.col
	})
	return out
}

// checkClassFields reports every attribute the rule reads, and every
// top-level attribute of a test event, that none of the classes it applies
// to defines (ocsf.Defines). The rule's classes are its sources.classes, or
// every class Musubi uses when it declares none; a test event is checked
// against its own class_uid.
func (r *Rule) checkClassFields() []*Problem {
	var out []*Problem
	classes := r.Sources.Classes
	for _, f := range r.fields {
		cs := classes
		if f.class != 0 {
			cs = []int{f.class}
		}
		if len(cs) == 0 {
			if len(ocsf.DefiningClasses(f.attr)) == 0 {
				out = append(out, r.fieldProblem(f, "no OCSF class Musubi reads defines %s", f.attr))
			}
			continue
		}
		if slices.ContainsFunc(cs, func(c int) bool { return ocsf.Defines(c, f.attr) }) {
			continue
		}
		msg := fmt.Sprintf("%s is not defined by %s", f.attr, classList(cs))
		if f.attr == "process" {
			msg += "; the process that acted is actor.process (only Process Activity 1007 has a top-level process: the process acted on)"
		} else if d := ocsf.DefiningClasses(f.attr); len(d) > 0 {
			msg += " (defined by " + classList(d) + ")"
		}
		out = append(out, r.fieldProblem(f, "%s", msg))
	}
	return out
}

func (r *Rule) fieldProblem(f fieldRef, format string, args ...any) *Problem {
	return &Problem{File: r.File, Line: f.line, Col: f.col, RuleID: r.ID,
		Msg: f.what + ": " + f.path + ": " + fmt.Sprintf(format, args...)}
}

// classList names classes as "4001 Network Activity" or "class 1007
// Process Activity or 2004 Detection Finding".
func classList(cs []int) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = strconv.Itoa(c) + " " + ocsf.Classes[c].Name
	}
	if len(parts) == 1 {
		return "class " + parts[0]
	}
	return "classes " + strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}
