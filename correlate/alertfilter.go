package correlate

import (
	"slices"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/rules"
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

// newAlertFilter derives the filter of a parsed alert condition.
func newAlertFilter(e celast.Expr) alertFilter {
	var f alertFilter
	rules.WalkConjuncts(e, func(call celast.CallExpr) {
		if cmp, ok := rules.ReadLiteralComparison(call); ok {
			if c, ok := alertLiterals(cmp.Operand, cmp.Literals); ok {
				c.neg = cmp.Neg
				f = append(f, c)
			}
		}
	})
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

// alertReads returns the fields of `alert` the parsed condition e reads,
// and false when it reads the variable otherwise than field by field: then
// it needs every field.
func alertReads(e celast.Expr) ([]string, bool) {
	var fields []string
	idents, selects := 0, 0
	celast.PostOrderVisit(e, celast.NewExprVisitor(func(e celast.Expr) {
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
