package correlate

import (
	"slices"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/musubi-xdr/musubi/alert"
)

// alertFilter is the literal prerequisites of an alert stage's condition:
// the conjuncts `alert.F == "lit"`, `alert.F != "lit"` and
// `alert.F in ["a", "b"]` over string fields. An alert that fails one
// cannot satisfy the condition, so its activation (a map of every field,
// several allocations) is not built for the stage. Detection rules and
// event stages have the same in rules.Prefilter.
type alertFilter []alertCheck

type alertCheck struct {
	field func(*alert.Alert) string
	neg   bool
	lits  []string
}

// alertStrFields are the string fields of `alert` a filter may read.
var alertStrFields = map[string]func(*alert.Alert) string{
	"id":           func(a *alert.Alert) string { return a.ID },
	"tenant_uid":   func(a *alert.Alert) string { return a.TenantUID },
	"rule_id":      func(a *alert.Alert) string { return a.RuleID },
	"rule_version": func(a *alert.Alert) string { return a.RuleVersion },
	"title":        func(a *alert.Alert) string { return a.Title },
	"stage":        func(a *alert.Alert) string { return a.Stage },
	"account_uid":  func(a *alert.Alert) string { return a.AccountUID },
	"region":       func(a *alert.Alert) string { return a.Region },
	"source":       func(a *alert.Alert) string { return a.Source },
	"summary":      func(a *alert.Alert) string { return a.Summary },
}

// newAlertFilter derives the filter of an alert condition; a condition it
// cannot parse gets none (the condition's own compile reports why).
func newAlertFilter(env *cel.Env, expr string) alertFilter {
	ast, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil
	}
	var f alertFilter
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.LogicalAnd:
			for _, x := range args {
				walk(x)
			}
		case operators.Equals, operators.NotEquals:
			if len(args) != 2 {
				return
			}
			c, ok := alertLiterals(args[0], []celast.Expr{args[1]})
			if !ok {
				c, ok = alertLiterals(args[1], []celast.Expr{args[0]})
			}
			if ok {
				c.neg = call.FunctionName() == operators.NotEquals
				f = append(f, c)
			}
		case operators.In:
			if len(args) == 2 && args[1].Kind() == celast.ListKind && len(args[1].AsList().OptionalIndices()) == 0 {
				if c, ok := alertLiterals(args[0], args[1].AsList().Elements()); ok {
					f = append(f, c)
				}
			}
		}
	}
	walk(ast.NativeRep().Expr())
	return f
}

// alertLiterals reads alert.F compared with string literals.
func alertLiterals(sel celast.Expr, lits []celast.Expr) (alertCheck, bool) {
	if sel.Kind() != celast.SelectKind || sel.AsSelect().IsTestOnly() {
		return alertCheck{}, false
	}
	s := sel.AsSelect()
	if op := s.Operand(); op.Kind() != celast.IdentKind || op.AsIdent() != "alert" {
		return alertCheck{}, false
	}
	c := alertCheck{field: alertStrFields[s.FieldName()]}
	if c.field == nil {
		return alertCheck{}, false
	}
	for _, l := range lits {
		if l.Kind() != celast.LiteralKind {
			return alertCheck{}, false
		}
		v, ok := l.AsLiteral().(types.String)
		if !ok {
			return alertCheck{}, false
		}
		c.lits = append(c.lits, string(v))
	}
	return c, true
}

// admits reports whether a passes every check: false means the condition
// is certainly false for a.
func (f alertFilter) admits(a *alert.Alert) bool {
	for i := range f {
		if slices.Contains(f[i].lits, f[i].field(a)) == f[i].neg {
			return false
		}
	}
	return true
}

// alertReads returns the fields of `alert` the condition expr reads, and
// false when it reads the variable otherwise than field by field (or
// cannot be parsed): then it needs every field.
func alertReads(env *cel.Env, expr string) ([]string, bool) {
	ast, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, false
	}
	var fields []string
	idents, selects := 0, 0
	celast.PostOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.IdentKind:
			if e.AsIdent() == "alert" {
				idents++
			}
		case celast.SelectKind:
			s := e.AsSelect()
			if op := s.Operand(); op.Kind() == celast.IdentKind && op.AsIdent() == "alert" {
				selects++
				if !slices.Contains(fields, s.FieldName()) {
					fields = append(fields, s.FieldName())
				}
			}
		}
	}))
	return fields, idents == selects
}
