package rules

import (
	"bytes"
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
//     strict size hints of sizeEstimator (every string, including list
//     elements and JSON values, at most untrackedMaxString bytes; every
//     list and map at most untrackedMaxList entries; a value of unknown
//     size is unbounded) or with narrower ones (below), is at most
//     CostLimit — decided once, at load;
//   - the event is within those hints for every variable the condition
//     reads — checked once per event (eventTier for `event`, jsonTier for
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
//
// The size hints come in tiers (untrackedTiers), widest first. A condition
// whose strict estimate over the widest hints is above CostLimit may still
// be within it over narrower ones — a regular expression or a scan over a
// list of strings costs in proportion to their sizes — and then runs
// untracked on the events within those narrower hints, which are most
// events (strings of at most 2 KiB, lists of at most 64 entries), and
// tracked on the others.
const (
	untrackedMaxString = estimatedMaxString
	untrackedMaxList   = estimatedMaxList
	narrowMaxString    = 2 << 10
	narrowMaxList      = 64
)

// sizeHints bound the strings (with list elements and JSON values) and
// the lists and maps of a strict estimate.
type sizeHints struct {
	maxString, maxList uint64
}

// untrackedTiers are the size hints an untracked program can be admitted
// under, widest first; each tier is within the one before it, so an event
// within a tier is within every wider one.
var untrackedTiers = [...]sizeHints{
	{maxString: untrackedMaxString, maxList: untrackedMaxList},
	{maxString: narrowMaxString, maxList: narrowMaxList},
}

// Variables a condition reads, for activation.fits.
const (
	readsEvent uint8 = 1 << iota
	readsRequest
	readsResponse
)

// untracked is what untrackedProgram decides for a condition.
type untracked struct {
	prg    cel.Program // nil when every evaluation runs tracked; why says why
	tier   int8        // the tier of untrackedTiers an event must be within for prg
	strict uint64      // the strict estimate over the widest hints; MaxUint64 when unbounded
	bound  uint64      // prg's strict estimate over its tier's hints
	reads  uint8       // the variables the condition reads (readsEvent, …)
	why    string
}

// untrackedProgram returns the untracked program of a detection rule's
// checked condition with the widest tier of size hints over which its
// strict estimate is at most CostLimit, or no program when it is above
// CostLimit or unbounded over every tier; why then says which (for `musubi
// rules lint -cost`). Its options are the tracked program's without the
// cost limit and trackers (evalOptions). Only detection conditions get
// one: exceptions, suppression keys and correlation stages run tracked.
func untrackedProgram(env *cel.Env, ast *cel.Ast) untracked {
	u := untracked{tier: -1, strict: math.MaxUint64}
	for i := range untrackedTiers {
		est, err := env.EstimateCost(ast, sizeEstimator{hints: &untrackedTiers[i]})
		if i == 0 {
			switch {
			case err != nil:
				u.why = "strict cost estimate failed: " + err.Error()
				return u
			case est.Max == math.MaxUint64:
				u.why = "unbounded strict estimate (a value of unknown size)"
				nav := celast.NavigateAST(ast.NativeRep())
				if len(celast.MatchDescendants(nav, celast.FunctionMatcher("json_text"))) > 0 {
					u.why = "unbounded strict estimate (json_text output has no size bound)"
				}
				return u
			}
			u.strict = est.Max
		}
		if err == nil && est.Max <= CostLimit {
			u.tier, u.bound = int8(i), est.Max
			break
		}
	}
	if u.tier < 0 {
		u.why = fmt.Sprintf("strict estimate above the cost limit %d", CostLimit)
		return u
	}
	prg, err := env.Program(ast, evalOptions()...)
	if err != nil {
		// the tracked program, built with the same options, compiled
		u.tier, u.why = -1, "untracked program: "+err.Error()
		return u
	}
	u.prg, u.reads = prg, variablesRead(ast.NativeRep())
	return u
}

// variablesRead is the set of variables (readsEvent, …) that expression a
// names. A comprehension variable that shadows one only adds to the set;
// the variable it shadows, still reachable as .event (the checker keeps the
// leading dot of such a reference), counts as read.
func variablesRead(a *celast.AST) uint8 {
	var reads uint8
	nav := celast.NavigateAST(a)
	for _, id := range celast.MatchDescendants(nav, celast.KindMatcher(celast.IdentKind)) {
		switch strings.TrimPrefix(id.AsIdent(), ".") {
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

// sizePlan lists the fields of a struct type that eventTier measures, as
// byte offsets: its strings and slices, those of nested structs flattened
// in, so a check is one pass over a flat list. ok is false when the type
// holds a kind the plan cannot measure (a map, a pointer, an interface);
// such a type never fits.
//
// The plan is read with unsafe pointer arithmetic instead of reflect:
// BenchmarkEventTier (then EventFits) measured about 1.5 µs per event walking ocsf.Event
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

// eventTier returns the narrowest tier of untrackedTiers that every string
// of ev a condition can read (list elements included) and every list are
// within, or -1 when it is above the widest.
func eventTier(ev *ocsf.Event) int8 {
	if !eventPlan.ok {
		return -1
	}
	return eventPlan.measure(unsafe.Pointer(ev), narrowest()).tier
}

// tierCheck is the narrowest tier that what was measured so far is within,
// with its limits.
type tierCheck struct {
	tier               int8
	maxString, maxList int
}

func narrowest() tierCheck { return tierAt(len(untrackedTiers) - 1) }

func tierAt(t int) tierCheck {
	h := untrackedTiers[t]
	return tierCheck{tier: int8(t), maxString: int(h.maxString), maxList: int(h.maxList)}
}

// widen moves c to the narrowest tier whose limits are at least str and
// list; its tier is -1 when there is none.
func (c tierCheck) widen(str, list int) tierCheck {
	for t := int(c.tier) - 1; t >= 0; t-- {
		if w := tierAt(t); str <= w.maxString && list <= w.maxList {
			return w
		}
	}
	return tierCheck{tier: -1}
}

// withString and withList widen c to hold a string of n bytes or a list
// of n entries; the tier is -1 when no tier does.
func (c tierCheck) withString(n int) tierCheck {
	if n > c.maxString {
		return c.widen(n, 0)
	}
	return c
}

func (c tierCheck) withList(n int) tierCheck {
	if n > c.maxList {
		return c.widen(0, n)
	}
	return c
}

// measure widens c to the tier the struct at base, whose type is the
// plan's, is within, and stops with tier -1 as soon as a string or list is
// above the widest. The limits are compared as the fields are read and the
// tier changes only on a longer one, so a walk over an event within the
// narrowest tier does what a single test would.
func (p *sizePlan) measure(base unsafe.Pointer, c tierCheck) tierCheck {
	for i := range p.fields {
		f := &p.fields[i]
		ptr := unsafe.Add(base, f.off)
		switch {
		case f.kind == reflect.String:
			c = c.withString(len(*(*string)(ptr)))
		case f.bytes:
			c = c.withString(len(*(*[]byte)(ptr)))
		case f.strs:
			ss := *(*[]string)(ptr)
			if c = c.withList(len(ss)); c.tier < 0 {
				return c
			}
			for _, v := range ss {
				if c = c.withString(len(v)); c.tier < 0 {
					return c
				}
			}
		default:
			// Every slice header has the same layout; only the element
			// size differs.
			hdr := *(*[]byte)(ptr)
			if c = c.withList(len(hdr)); c.tier < 0 {
				return c
			}
			data := unsafe.Pointer(unsafe.SliceData(hdr))
			for j := range len(hdr) {
				if c = f.elem.measure(unsafe.Add(data, uintptr(j)*f.elemSize), c); c.tier < 0 {
					return c
				}
			}
		}
		if c.tier < 0 {
			return c
		}
	}
	return c
}

// jsonTier returns the narrowest tier of untrackedTiers that the JSON body
// raw, decoded as decodeBody does, is within — its strings (keys and
// values) and its arrays and objects — or -1 when it is above the widest.
// It scans the bytes without decoding them. A decoded string's length is
// bounded from above: a byte of a multi-byte sequence counts 3 (an invalid
// byte decodes to U+FFFD, 3 bytes), an escape \uXXXX counts 3 and any
// other escape 1. The entries of a container are bounded by its top-level
// commas plus one. On invalid JSON the answer does not matter: decodeBody
// reads it as an empty object, which is within every tier.
func jsonTier(raw []byte) int8 {
	last := len(untrackedTiers) - 1
	if h := untrackedTiers[last]; uint64(len(raw)) <= h.maxString/3 && uint64(bytes.Count(raw, []byte{','})) < h.maxList {
		// Too short for a string above the narrowest tier, and too few
		// commas for a container above it.
		return int8(last)
	}
	t := narrowest()
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
			if t = t.withString(n); t.tier < 0 {
				return -1
			}
		case '[', '{':
			counts = append(counts, 1)
		case ',':
			if k := len(counts); k > 0 {
				counts[k-1]++
				if t = t.withList(counts[k-1]); t.tier < 0 {
					return -1
				}
			}
		case ']', '}':
			if k := len(counts); k > 0 {
				counts = counts[:k-1]
			}
		}
	}
	return t.tier
}
