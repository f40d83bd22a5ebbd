package rules

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"

	"github.com/musubi-xdr/musubi/ocsf"
)

// Prefilter is what an event must carry for a condition to be true: the
// comparisons of a typed event field with literals (event.class_uid == 4001,
// event.api.operation in ["PutObject", "CopyObject"], event.status_id != 2)
// and the literal prefixes of anchored regular expressions
// (event.actor.session.name.matches('^i-[0-9a-f]{8,17}$') needs "i-")
// among the condition's top-level conjuncts. CEL's && is false as soon as one side is false, even
// if the other side errs, so an event that fails one of them cannot satisfy
// the condition: checking these in Go first spares the program's evaluation
// (its activation, cost tracking and interpretation) for most events.
//
// The zero Prefilter admits every event. Only fields with a Go accessor
// below are used; everything else is left to the program.
type Prefilter struct {
	checks []literalCheck
}

// literalCheck is one conjunct: the field equals one of the literals (or,
// negated, none of them), or, with isPrefix, the string field starts with
// prefix. The accessor is resolved when the check is built, so Admits does
// no map lookups.
type literalCheck struct {
	path     string // the field, as the condition names it (event.api.operation)
	neg      bool
	isPrefix bool
	prefix   string
	intf     func(*ocsf.Event) int64
	strf     func(*ocsf.Event) string
	ints     []int64
	strs     []string
}

// admits reports whether ev passes the check.
func (c *literalCheck) admits(ev *ocsf.Event) bool {
	if c.isPrefix {
		return strings.HasPrefix(c.strf(ev), c.prefix)
	}
	var in bool
	if c.intf != nil {
		in = slices.Contains(c.ints, c.intf(ev))
	} else {
		in = slices.Contains(c.strs, c.strf(ev))
	}
	return in != c.neg
}

// fieldAccessors are the typed event fields a prefilter may read. Each
// returns the field as CEL sees it: ints as int, strings as string.
var (
	intFields = map[string]func(*ocsf.Event) int64{
		"event.class_uid":                    func(e *ocsf.Event) int64 { return int64(e.ClassUID) },
		"event.category_uid":                 func(e *ocsf.Event) int64 { return int64(e.CategoryUID) },
		"event.activity_id":                  func(e *ocsf.Event) int64 { return int64(e.ActivityID) },
		"event.type_uid":                     func(e *ocsf.Event) int64 { return int64(e.TypeUID) },
		"event.severity_id":                  func(e *ocsf.Event) int64 { return int64(e.SeverityID) },
		"event.status_id":                    func(e *ocsf.Event) int64 { return int64(e.StatusID) },
		"event.action_id":                    func(e *ocsf.Event) int64 { return int64(e.ActionID) },
		"event.disposition_id":               func(e *ocsf.Event) int64 { return int64(e.DispositionID) },
		"event.dst_endpoint.port":            func(e *ocsf.Event) int64 { return int64(e.DstEndpoint.Port) },
		"event.connection_info.direction_id": func(e *ocsf.Event) int64 { return int64(e.ConnectionInfo.DirectionID) },
		"event.connection_info.protocol_num": func(e *ocsf.Event) int64 { return int64(e.ConnectionInfo.ProtocolNum) },
	}
	strFields = map[string]func(*ocsf.Event) string{
		"event.metadata.log_name":     func(e *ocsf.Event) string { return e.Metadata.LogName },
		"event.api.operation":         func(e *ocsf.Event) string { return e.API.Operation },
		"event.api.service.name":      func(e *ocsf.Event) string { return e.API.Service.Name },
		"event.actor.user.type":       func(e *ocsf.Event) string { return e.Actor.User.Type },
		"event.actor.invoked_by":      func(e *ocsf.Event) string { return e.Actor.InvokedBy },
		"event.src_endpoint.ip":       func(e *ocsf.Event) string { return e.SrcEndpoint.IP },
		"event.dst_endpoint.ip":       func(e *ocsf.Event) string { return e.DstEndpoint.IP },
		"event.cloud.account.uid":     func(e *ocsf.Event) string { return e.Cloud.Account.UID },
		"event.user.name":             func(e *ocsf.Event) string { return e.User.Name },
		"event.metadata.tenant_uid":   func(e *ocsf.Event) string { return e.Metadata.TenantUID },
		"event.metadata.product.name": func(e *ocsf.Event) string { return e.Metadata.Product.Name },
		"event.actor.user.name":       func(e *ocsf.Event) string { return e.Actor.User.Name },
		"event.actor.session.name":    func(e *ocsf.Event) string { return e.Actor.Session.Name },
		"event.status":                func(e *ocsf.Event) string { return e.Status },
		"event.finding_info.uid":      func(e *ocsf.Event) string { return e.FindingInfo.UID },
		"event.process.name":          func(e *ocsf.Event) string { return e.Process.Name },
		"event.actor.process.name":    func(e *ocsf.Event) string { return e.Actor.Process.Name },
	}
)

// NewPrefilter derives the prefilter of a checked boolean condition over
// `event`.
func NewPrefilter(a *celast.AST) Prefilter {
	var p Prefilter
	if a == nil {
		return p
	}
	WalkConjuncts(a.Expr(), func(call celast.CallExpr) {
		if cmp, ok := ReadLiteralComparison(call); ok {
			if path, ok := eventPath(cmp.Operand); ok {
				if c, ok := checkOf(path, cmp.Literals); ok {
					c.neg = cmp.Neg
					p.checks = append(p.checks, c)
				}
			}
			return
		}
		if call.FunctionName() != overloads.Matches {
			return
		}
		// field.matches("^lit…") or matches(field, "^lit…")
		args := call.Args()
		if call.IsMemberFunction() && len(args) == 1 {
			args = []celast.Expr{call.Target(), args[0]}
		}
		if len(args) == 2 {
			if c, ok := regexPrefixCheck(args[0], args[1]); ok {
				p.checks = append(p.checks, c)
			}
		}
	})
	return p
}

// WalkConjuncts calls visit with each call among the top-level conjuncts
// of e: the operands of && (nested ones too), or e itself. CEL's && is
// false as soon as one operand is, so each is a prerequisite of e.
func WalkConjuncts(e celast.Expr, visit func(call celast.CallExpr)) {
	if e.Kind() != celast.CallKind {
		return
	}
	call := e.AsCall()
	if call.FunctionName() != operators.LogicalAnd {
		visit(call)
		return
	}
	for _, x := range call.Args() {
		WalkConjuncts(x, visit)
	}
}

// LiteralComparison is a conjunct comparing an operand with literals:
// `x == lit` or `lit == x`, `x != lit` (Neg), `x in [lit, …]`.
type LiteralComparison struct {
	Operand  celast.Expr
	Literals []celast.Expr
	Neg      bool
}

// ReadLiteralComparison reads call as a LiteralComparison; false when it
// is another call or a side is not made of literals.
func ReadLiteralComparison(call celast.CallExpr) (LiteralComparison, bool) {
	args := call.Args()
	if len(args) != 2 {
		return LiteralComparison{}, false
	}
	switch call.FunctionName() {
	case operators.Equals, operators.NotEquals:
		neg := call.FunctionName() == operators.NotEquals
		switch {
		case args[1].Kind() == celast.LiteralKind:
			return LiteralComparison{Operand: args[0], Literals: args[1:], Neg: neg}, true
		case args[0].Kind() == celast.LiteralKind:
			return LiteralComparison{Operand: args[1], Literals: args[:1], Neg: neg}, true
		}
	case operators.In:
		if args[1].Kind() != celast.ListKind || len(args[1].AsList().OptionalIndices()) > 0 {
			return LiteralComparison{}, false
		}
		lits := args[1].AsList().Elements()
		for _, l := range lits {
			if l.Kind() != celast.LiteralKind {
				return LiteralComparison{}, false
			}
		}
		return LiteralComparison{Operand: args[0], Literals: lits}, true
	}
	return LiteralComparison{}, false
}

// Admits reports whether ev passes every check: false means the condition
// is certainly false for ev.
func (p Prefilter) Admits(ev *ocsf.Event) bool {
	for i := range p.checks {
		if !p.checks[i].admits(ev) {
			return false
		}
	}
	return true
}

// Len is the number of checks.
func (p Prefilter) Len() int { return len(p.checks) }

// Checks describes each check as CEL-like text (event.class_uid == 4001,
// event.api.operation in ["A", "B"], event.actor.session.name starts with
// "i-"), in the order of the condition.
func (p Prefilter) Checks() []string {
	out := make([]string, 0, len(p.checks))
	for i := range p.checks {
		out = append(out, p.checks[i].String())
	}
	return out
}

// Narrows reports whether a check reads a field other than the class and
// log name that a rule's sources already index: the prefilter then rules
// out events of the rule's own classes.
func (p Prefilter) Narrows() bool {
	for i := range p.checks {
		switch p.checks[i].path {
		case "event.class_uid", "event.category_uid", "event.metadata.log_name":
		default:
			return true
		}
	}
	return false
}

func (c *literalCheck) String() string {
	if c.isPrefix {
		return fmt.Sprintf("%s starts with %q", c.path, c.prefix)
	}
	var lits []string
	for _, v := range c.ints {
		lits = append(lits, strconv.FormatInt(v, 10))
	}
	for _, v := range c.strs {
		lits = append(lits, strconv.Quote(v))
	}
	if len(lits) == 1 {
		op := " == "
		if c.neg {
			op = " != "
		}
		return c.path + op + lits[0]
	}
	op := " in "
	if c.neg {
		op = " not in "
	}
	return c.path + op + "[" + strings.Join(lits, ", ") + "]"
}

// regexPrefixCheck reads `field.matches(pattern)` where pattern is a
// constant regular expression anchored at the start of the text and
// followed by a literal (case-sensitive): a field that does not start with
// that literal cannot match. The regexp package parses the pattern as
// cel-go's matches() compiles it (RE2 syntax, Perl flags).
func regexPrefixCheck(f, pat celast.Expr) (literalCheck, bool) {
	path, ok := eventPath(f)
	if !ok || pat.Kind() != celast.LiteralKind {
		return literalCheck{}, false
	}
	strf := strFields[path]
	lit, ok := pat.AsLiteral().(types.String)
	if strf == nil || !ok {
		return literalCheck{}, false
	}
	re, err := syntax.Parse(string(lit), syntax.Perl)
	if err != nil {
		return literalCheck{}, false
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText ||
		re.Sub[1].Op != syntax.OpLiteral || re.Sub[1].Flags&syntax.FoldCase != 0 {
		return literalCheck{}, false
	}
	return literalCheck{path: path, isPrefix: true, prefix: string(re.Sub[1].Rune), strf: strf}, true
}

// checkOf builds a check when the field has an accessor and every literal
// has the field's own type (CEL's heterogeneous equality, 2 == 2.0, is left
// to the program).
func checkOf(path string, lits []celast.Expr) (literalCheck, bool) {
	c := literalCheck{path: path, intf: intFields[path], strf: strFields[path]}
	isInt, isStr := c.intf != nil, c.strf != nil
	if !isInt && !isStr {
		return c, false
	}
	for _, l := range lits {
		if l.Kind() != celast.LiteralKind {
			return c, false
		}
		switch v := l.AsLiteral().(type) {
		case types.Int:
			if !isInt {
				return c, false
			}
			c.ints = append(c.ints, int64(v))
		case types.String:
			if !isStr {
				return c, false
			}
			c.strs = append(c.strs, string(v))
		default:
			return c, false
		}
	}
	return c, true
}

// eventPath is the dotted path of a plain selection chain from `event`
// (event.api.operation), with no presence test or optional selection.
func eventPath(e celast.Expr) (string, bool) {
	var parts []string
	for e.Kind() == celast.SelectKind {
		s := e.AsSelect()
		if s.IsTestOnly() {
			return "", false
		}
		parts = append(parts, s.FieldName())
		e = s.Operand()
	}
	if e.Kind() != celast.IdentKind || e.AsIdent() != "event" || len(parts) == 0 {
		return "", false
	}
	slices.Reverse(parts)
	path := "event"
	for _, p := range parts {
		path += "." + p
	}
	return path, true
}
