package rules

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"unsafe"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"

	"github.com/musubi-xdr/musubi/ocsf"
)

// Untracked evaluation.
//
// Cost tracking is a large share of a rule's evaluation: the tracker is
// cloned for every evaluation and charged at every step. A rule whose cost
// is provably under CostLimit on an event gains nothing from it, so each
// condition is compiled twice: the tracked program, with the cost limit and
// Musubi's function prices, and, when the condition qualifies, an untracked
// one. The engine runs the untracked program only when both hold:
//
//   - the condition's worst-case cost, estimated by cel-go's checker with
//     the strict size hints of sizeEstimator (every string, including list
//     elements and JSON values, at most untrackedMaxString bytes; every
//     list and map at most untrackedMaxList entries; a value of unknown
//     size is unbounded), is at most CostLimit — decided once, at load;
//   - the event is within those hints for every variable the condition
//     reads — checked once per event (eventFits for `event`, jsonFits for
//     the raw request and response bodies), and only when a rule that could
//     take the untracked path runs.
//
// Under both, the tracked program could not have reached CostLimit (the
// estimator prices each of Musubi's functions at least as high as
// CostTrackers charges it at run time, and cel-go's own estimates bound its
// trackers), so both programs return the same result. Every other
// evaluation — a rule whose estimate is above the limit or unbounded, or an
// event with a longer string or list (ingest lets records of up to 1 MiB
// through) — runs the tracked program under the cost limit as before.
//
// The untracked path has no deadline either. The deadline of a tracked
// evaluation that iterates guards against work the cost limit has not yet
// stopped; an untracked evaluation's work is bounded before it starts, by
// the strict estimate (at most CostLimit, the most a tracked evaluation may
// spend), so a per-evaluation context and timer would buy nothing and cost
// about a seventh of Evaluate (profile of BenchmarkEvaluatePack). A rule
// that iterates over an event beyond the size hints runs tracked, under
// both the cost limit and the deadline.
const (
	untrackedMaxString = estimatedMaxString
	untrackedMaxList   = estimatedMaxList
)

// Variables a condition reads, for activation.fits.
const (
	readsEvent uint8 = 1 << iota
	readsRequest
	readsResponse
)

// untrackedProgram returns the untracked program of a detection rule's
// checked condition, its strict estimate and the variables it reads, or a
// nil program when the strict estimate is above CostLimit or unbounded;
// why then says which (for `musubi rules lint -cost`). Its options are the
// tracked program's without the cost limit and trackers (evalOptions).
// Only detection conditions get one: exceptions, suppression keys and
// correlation stages run tracked.
func untrackedProgram(env *cel.Env, ast *cel.Ast) (prg cel.Program, strict uint64, reads uint8, why string) {
	est, err := env.EstimateCost(ast, sizeEstimator{strict: true})
	switch {
	case err != nil:
		return nil, math.MaxUint64, 0, "strict cost estimate failed: " + err.Error()
	case est.Max == math.MaxUint64:
		why = "unbounded strict estimate (a value of unknown size)"
		nav := celast.NavigateAST(ast.NativeRep())
		if len(celast.MatchDescendants(nav, celast.FunctionMatcher("json_text"))) > 0 {
			why = "unbounded strict estimate (json_text output has no size bound)"
		}
		return nil, est.Max, 0, why
	case est.Max > CostLimit:
		return nil, est.Max, 0, fmt.Sprintf("strict estimate above the cost limit %d", CostLimit)
	}
	prg, err = env.Program(ast, evalOptions()...)
	if err != nil {
		// the tracked program, built with the same options, compiled
		return nil, est.Max, 0, "untracked program: " + err.Error()
	}
	return prg, est.Max, variablesRead(ast.NativeRep()), ""
}

// variablesRead is the set of variables (readsEvent, …) that expression a
// names. A comprehension variable that shadows one only adds to the set.
func variablesRead(a *celast.AST) uint8 {
	var reads uint8
	nav := celast.NavigateAST(a)
	for _, id := range celast.MatchDescendants(nav, celast.KindMatcher(celast.IdentKind)) {
		switch id.AsIdent() {
		case "event":
			reads |= readsEvent
		case "request":
			reads |= readsRequest
		case "response":
			reads |= readsResponse
		}
	}
	return reads
}

// sizePlan lists the fields of a struct type that eventFits measures, as
// byte offsets: its strings and slices, those of nested structs flattened
// in, so a check is one pass over a flat list. ok is false when the type
// holds a kind the plan cannot measure (a map, a pointer, an interface);
// such a type never fits.
//
// The plan is read with unsafe pointer arithmetic instead of reflect:
// BenchmarkEventFits measured about 1.5 µs per event walking ocsf.Event
// with reflect.Value, as much as the cost tracking the check saves; the
// offsets come from reflect once, at init, so the layout cannot drift.
type sizePlan struct {
	ok     bool
	fields []sizeField
}

type sizeField struct {
	off      uintptr
	kind     reflect.Kind // String or Slice
	strs     bool         // a slice of strings
	bytes    bool         // a []byte, sized like a string
	elem     *sizePlan    // the plan of a slice's struct elements
	elemSize uintptr
}

// eventPlan is the plan of ocsf.Event: every field a condition can read
// (all but those tagged cel:"-").
var eventPlan = newSizePlan(reflect.TypeFor[ocsf.Event]())

func newSizePlan(t reflect.Type) *sizePlan {
	p := &sizePlan{ok: true}
	p.add(t, 0)
	return p
}

func (p *sizePlan) add(t reflect.Type, base uintptr) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || strings.Split(f.Tag.Get("cel"), ",")[0] == "-" {
			continue
		}
		off := base + f.Offset
		switch f.Type.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
		case reflect.String:
			p.fields = append(p.fields, sizeField{off: off, kind: reflect.String})
		case reflect.Struct:
			p.add(f.Type, off)
		case reflect.Slice:
			sf := sizeField{off: off, kind: reflect.Slice}
			switch e := f.Type.Elem(); e.Kind() {
			case reflect.String:
				sf.strs = true
			case reflect.Uint8:
				sf.bytes = true
			case reflect.Struct:
				sf.elem, sf.elemSize = newSizePlan(e), e.Size()
				p.ok = p.ok && sf.elem.ok
			default:
				p.ok = false
			}
			p.fields = append(p.fields, sf)
		default:
			p.ok = false
		}
	}
}

// eventFits reports whether every string of ev that a condition can read
// is at most untrackedMaxString bytes and every list at most
// untrackedMaxList entries: the size hints of the strict cost estimate.
func eventFits(ev *ocsf.Event) bool {
	return eventPlan.ok && eventPlan.fits(unsafe.Pointer(ev))
}

// fits measures the struct at base, whose type is the plan's.
func (p *sizePlan) fits(base unsafe.Pointer) bool {
	for i := range p.fields {
		f := &p.fields[i]
		ptr := unsafe.Add(base, f.off)
		if f.kind == reflect.String {
			if len(*(*string)(ptr)) > untrackedMaxString {
				return false
			}
			continue
		}
		switch {
		case f.bytes:
			if len(*(*[]byte)(ptr)) > untrackedMaxString {
				return false
			}
		case f.strs:
			ss := *(*[]string)(ptr)
			if len(ss) > untrackedMaxList {
				return false
			}
			for _, s := range ss {
				if len(s) > untrackedMaxString {
					return false
				}
			}
		default:
			// Every slice header has the same layout; only the element
			// size differs.
			hdr := *(*[]byte)(ptr)
			if len(hdr) > untrackedMaxList {
				return false
			}
			data := unsafe.Pointer(unsafe.SliceData(hdr))
			for j := range len(hdr) {
				if !f.elem.fits(unsafe.Add(data, uintptr(j)*f.elemSize)) {
					return false
				}
			}
		}
	}
	return true
}

// jsonFits reports whether the JSON body raw, decoded as decodeBody does,
// holds no string (key or value) longer than untrackedMaxString bytes and
// no array or object of more than untrackedMaxList entries. It scans the
// bytes without decoding them. A decoded string's length is bounded from
// above: a byte of a multi-byte sequence counts 3 (an invalid byte decodes
// to U+FFFD, 3 bytes), an escape \uXXXX counts 3 and any other escape 1.
// The entries of a container are bounded by its top-level commas plus one.
// On invalid JSON the answer does not matter: decodeBody reads it as an
// empty object, which fits.
func jsonFits(raw []byte) bool {
	if len(raw) <= untrackedMaxString/3 && len(raw) < 2*untrackedMaxList {
		// Too short for a long string or a long container.
		return true
	}
	var stack [64]int
	counts := stack[:0]
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '"':
			n := 0
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				switch b := raw[i]; {
				case b == '\\':
					if i+1 < len(raw) && raw[i+1] == 'u' {
						n += 3
						i += 5
					} else {
						n++
						i++
					}
				case b >= 0x80:
					n += 3
				default:
					n++
				}
			}
			if n > untrackedMaxString {
				return false
			}
		case '[', '{':
			counts = append(counts, 1)
		case ',':
			if k := len(counts); k > 0 {
				counts[k-1]++
				if counts[k-1] > untrackedMaxList {
					return false
				}
			}
		case ']', '}':
			if k := len(counts); k > 0 {
				counts = counts[:k-1]
			}
		}
	}
	return true
}
