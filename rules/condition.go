package rules

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/ocsf"
)

// Condition is a compiled boolean CEL condition, bounded as every rule
// condition is: type-checked, regular expressions constant, the worst-case
// cost estimate under MaxEstimatedCost at load, and at evaluation the cost
// limit with Musubi's function prices and, when it iterates, a deadline.
// Detection rules and correlation stages are both compiled through it, so
// the bounds are set once, here.
type Condition struct {
	prg      cel.Program
	iterates bool
	pre      Prefilter
	estimate uint64 // the load-time worst-case estimate
	strict   uint64 // the strict estimate (see untracked.go); MaxUint64 when unbounded
}

// ExprAt locates a CEL expression in a rule file, so that its problems are
// reported as file:line:col. Node is the YAML value node of the
// expression; Lines the file's lines (for block scalars).
type ExprAt struct {
	File   string
	RuleID string
	// What names the expression in messages ("condition", "stage 2 (used)").
	What  string
	Node  *yaml.Node
	Lines []string
}

func (at ExprAt) pos(line, col int) (int, int) { return exprPos(at.Node, at.Lines, line, col) }

// CompileCondition compiles expr in env (an environment from NewEnv) as a
// boolean condition with the load-time bounds of every rule. The problems
// are *Problem values located in the file.
func CompileCondition(env *cel.Env, expr string, at ExprAt) (*Condition, []error) {
	ce, probs := compileExpr(env, expr, cel.BoolType, at.pos, at.File, at.RuleID, at.What)
	if len(probs) > 0 {
		return nil, probs
	}
	c := &Condition{prg: ce.prg, iterates: ce.iterates, pre: ce.pre, estimate: ce.estimate, strict: math.MaxUint64}
	if est, err := env.EstimateCost(ce.ast, sizeEstimator{hints: &untrackedTiers[0]}); err == nil {
		c.strict = est.Max
	}
	return c, nil
}

// Admits reports whether an event can satisfy the condition (a condition
// over `event`): false when one of its literal conjuncts rules ev out, so
// the program need not run. See Prefilter.
func (c *Condition) Admits(ev *ocsf.Event) bool { return c.pre.Admits(ev) }

// Iterates reports whether the condition has comprehensions (and so runs
// under the evaluation deadline).
func (c *Condition) Iterates() bool { return c.iterates }

// Eval evaluates the condition on act (a map of variables or a CEL
// activation) under the cost limit and, when it iterates, the deadline
// timeout (DefaultEvalTimeout when timeout <= 0). A non-boolean result is
// an error; ErrorReason classifies errors.
func (c *Condition) Eval(act any, timeout time.Duration) (bool, error) {
	out, _, err := evalProgram(c.prg, c.iterates, act, timeout)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("condition returned %s, not bool", out.Type().TypeName())
	}
	return b, nil
}

// ErrorReason classifies an evaluation error as counted in
// musubi_rules_errors_total: cost_limit, timeout or eval.
func ErrorReason(err error) string { return errorReason(err) }

// evalProgram runs prg on act under the cost limit the program was built
// with and, when it iterates, a deadline.
func evalProgram(prg cel.Program, iterates bool, act any, timeout time.Duration) (ref.Val, *cel.EvalDetails, error) {
	if !iterates {
		return prg.Eval(act)
	}
	if timeout <= 0 {
		timeout = DefaultEvalTimeout
	}
	d := deadlines.Get().(*deadline)
	defer deadlines.Put(d)
	ctx := d.start(timeout)
	defer d.stop()
	return prg.ContextEval(ctx, act)
}

// deadline is a reusable deadline for one evaluation at a time: a context
// that its timer cancels, with context.DeadlineExceeded as the cause, once
// the evaluation under way has run for its timeout. A context and a timer
// made for every evaluation (context.WithTimeout) were a tenth of the
// engine's allocations at 300 rules (the context, its timer, the done
// channel cel-go asks for and the map of children it registers in); this
// one is made again only after it fired.
type deadline struct {
	timer *time.Timer
	mu    sync.Mutex
	// ctx and cancel, running and until are guarded by mu, which fire
	// takes from the timer's goroutine.
	ctx     context.Context
	cancel  context.CancelCauseFunc
	running bool
	until   time.Time
}

var deadlines = sync.Pool{New: func() any {
	d := &deadline{}
	d.ctx, d.cancel = context.WithCancelCause(context.Background())
	d.timer = time.AfterFunc(time.Hour, d.fire)
	d.timer.Stop()
	return d
}}

// start arms the deadline for an evaluation of at most timeout and returns
// the context to evaluate under.
func (d *deadline) start(timeout time.Duration) context.Context {
	d.mu.Lock()
	if d.ctx.Err() != nil { // an earlier evaluation ran out of time
		d.ctx, d.cancel = context.WithCancelCause(context.Background())
	}
	d.running, d.until = true, time.Now().Add(timeout)
	ctx := d.ctx
	d.mu.Unlock()
	d.timer.Reset(timeout)
	return ctx
}

// stop ends the evaluation; a timer firing late finds none running.
func (d *deadline) stop() {
	d.timer.Stop()
	d.mu.Lock()
	d.running = false
	d.mu.Unlock()
}

// fire cancels the evaluation under way when its time is up. A firing
// meant for an evaluation that has ended finds none running, or the next
// one's later deadline, which it sets the timer for again.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return
	}
	if left := time.Until(d.until); left > 0 {
		d.timer.Reset(left)
		return
	}
	d.cancel(context.DeadlineExceeded)
}

// StrictKeys reports every key of the YAML mapping node that the struct v
// (or a pointer to it) does not declare in its yaml tags, recursing into
// nested structs, pointers to structs and slices of them, each as a
// *Problem at the key's position. Rule formats that decode into a struct use
// it instead of the decoder's KnownFields, which loses positions; a field
// added to the struct is accepted at once.
func StrictKeys(file, ruleID string, node *yaml.Node, v any) []error {
	var out []error
	strictKeys(file, ruleID, node, reflect.TypeOf(v), "", &out)
	return out
}

func strictKeys(file, id string, n *yaml.Node, t reflect.Type, where string, out *[]error) {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) {
		if t.Kind() == reflect.Slice {
			if n == nil || n.Kind != yaml.SequenceNode {
				return
			}
			for _, c := range n.Content {
				strictKeys(file, id, c, t.Elem(), where+"[]", out)
			}
			return
		}
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || n == nil || n.Kind != yaml.MappingNode {
		return
	}
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := fields[k.Value]
		name := strings.TrimPrefix(where+"."+k.Value, ".")
		if !ok {
			keys := make([]string, 0, len(fields))
			for f := range fields {
				keys = append(keys, f)
			}
			slices.Sort(keys)
			*out = append(*out, &Problem{File: file, Line: k.Line, Col: k.Column, RuleID: id,
				Msg: fmt.Sprintf("unknown key %q (want one of %s)", name, strings.Join(keys, ", "))})
			continue
		}
		strictKeys(file, id, n.Content[i+1], ft, name, out)
	}
}
