package sigma

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/rules/attack"
)

// sigmaDoc is the YAML shape of a Sigma rule (the parts Musubi reads).
type sigmaDoc struct {
	Title          string    `yaml:"title"`
	ID             string    `yaml:"id"`
	Status         string    `yaml:"status"`
	Description    string    `yaml:"description"`
	References     []string  `yaml:"references"`
	Author         string    `yaml:"author"`
	Date           string    `yaml:"date"`
	Modified       string    `yaml:"modified"`
	Tags           []string  `yaml:"tags"`
	Logsource      logsource `yaml:"logsource"`
	Detection      yaml.Node `yaml:"detection"`
	FalsePositives yaml.Node `yaml:"falsepositives"`
	Level          string    `yaml:"level"`
	License        string    `yaml:"license"`
}

type logsource struct {
	Product  string `yaml:"product"`
	Service  string `yaml:"service"`
	Category string `yaml:"category"`
}

// atom is one field test of a selection: the field, its modifiers and the
// values (any of them, or all with the all modifier).
type atom struct {
	name   string // the Sigma field
	f      field
	mods   []string
	values []string // nil value: the field must be absent (null)
	null   bool
	all    bool
	ref    *field // fieldref: the other field
	refNm  string
}

// selection is a Sigma detection item: OR over maps, each an AND of atoms.
type selection [][]*atom

// converter holds the state of one rule's conversion.
type converter struct {
	t           *target
	sels        map[string]selection
	unsupported []string
}

func (c *converter) unsup(format string, args ...any) {
	c.unsupported = append(c.unsupported, fmt.Sprintf(format, args...))
}

// parseDetection reads the selections of a detection block.
func (c *converter) parseDetection(det *yaml.Node) (cond string, names []string) {
	c.sels = map[string]selection{}
	if det.Kind != yaml.MappingNode {
		c.unsup("detection is not a mapping")
		return "", nil
	}
	for i := 0; i+1 < len(det.Content); i += 2 {
		k, v := det.Content[i].Value, det.Content[i+1]
		switch k {
		case "condition":
			if v.Kind == yaml.SequenceNode {
				c.unsup("a list of conditions is not supported")
				continue
			}
			cond = v.Value
		case "timeframe":
			c.unsup("timeframe (aggregation window) is not supported; use a correlation rule")
		default:
			names = append(names, k)
			c.sels[k] = c.parseSelection(k, v)
		}
	}
	return cond, names
}

func (c *converter) parseSelection(name string, v *yaml.Node) selection {
	switch v.Kind {
	case yaml.MappingNode:
		return selection{c.parseMap(name, v)}
	case yaml.SequenceNode:
		var out selection
		for _, item := range v.Content {
			if item.Kind != yaml.MappingNode {
				c.unsup("selection %s: keyword (full-text) search is not supported: Musubi matches fields", name)
				return nil
			}
			out = append(out, c.parseMap(name, item))
		}
		return out
	}
	c.unsup("selection %s: keyword (full-text) search is not supported: Musubi matches fields", name)
	return nil
}

var knownMods = []string{"contains", "startswith", "endswith", "all", "re", "i", "m", "s", "cidr", "base64", "base64offset",
	"windash", "exists", "fieldref", "cased", "lt", "lte", "gt", "gte"}

func (c *converter) parseMap(sel string, m *yaml.Node) []*atom {
	var out []*atom
	for i := 0; i+1 < len(m.Content); i += 2 {
		parts := strings.Split(m.Content[i].Value, "|")
		a := &atom{name: parts[0], mods: parts[1:]}
		for _, md := range a.mods {
			if !slices.Contains(knownMods, md) {
				c.unsup("selection %s: field %s: modifier %q is not supported", sel, a.name, md)
				return nil
			}
			a.all = a.all || md == "all"
		}
		if a.name == "" {
			c.unsup("selection %s: a modifier without a field is not supported", sel)
			return nil
		}
		f, ok := c.t.field(a.name)
		if !ok {
			c.unsup("selection %s: field %s has no OCSF mapping for %s", sel, a.name, c.t.name)
			return nil
		}
		a.f = f
		v := m.Content[i+1]
		var vals []*yaml.Node
		if v.Kind == yaml.SequenceNode {
			vals = v.Content
		} else {
			vals = []*yaml.Node{v}
		}
		for _, n := range vals {
			if n.Kind != yaml.ScalarNode {
				c.unsup("selection %s: field %s: nested values are not supported", sel, a.name)
				return nil
			}
			if n.Tag == "!!null" {
				a.null = true
				continue
			}
			a.values = append(a.values, n.Value)
		}
		if a.has("fieldref") {
			if len(a.values) != 1 {
				c.unsup("selection %s: field %s: fieldref needs one field name", sel, a.name)
				return nil
			}
			rf, ok := c.t.field(a.values[0])
			if !ok {
				c.unsup("selection %s: fieldref %s has no OCSF mapping", sel, a.values[0])
				return nil
			}
			a.ref, a.refNm = &rf, a.values[0]
		}
		out = append(out, a)
	}
	return out
}

func (a *atom) has(mod string) bool { return slices.Contains(a.mods, mod) }

// cel returns the CEL expression of a selection.
func (c *converter) selCEL(name string) string {
	s := c.sels[name]
	var ors []string
	for _, m := range s {
		var ands []string
		for _, a := range m {
			ands = append(ands, c.atomCEL(a))
		}
		if len(ands) == 0 {
			ands = []string{"true"}
		}
		ors = append(ors, join(ands, " && "))
	}
	if len(ors) == 0 {
		return "false"
	}
	return join(ors, " || ")
}

func join(parts []string, sep string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	for i, p := range parts {
		if strings.Contains(p, " ") && !strings.HasPrefix(p, "(") {
			parts[i] = "(" + p + ")"
		}
	}
	return strings.Join(parts, sep)
}

func quote(s string) string { return strconv.Quote(s) }

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// atomCEL translates one field test.
func (c *converter) atomCEL(a *atom) string {
	f := a.f
	if a.has("exists") {
		want := len(a.values) == 1 && strings.EqualFold(a.values[0], "true")
		if want {
			return f.has
		}
		return "!(" + f.has + ")"
	}
	if a.ref != nil {
		other := a.ref.expr
		switch {
		case a.has("contains"):
			return f.expr + ".icontains(" + other + ")"
		case a.has("startswith"):
			return f.expr + ".istartsWith(" + other + ")"
		case a.has("endswith"):
			return f.expr + ".iendsWith(" + other + ")"
		}
		return f.expr + ".iequals(" + other + ")"
	}
	var parts []string
	if a.null {
		parts = append(parts, "!("+f.has+")")
	}
	if len(a.values) > 0 {
		parts = append(parts, c.valuesCEL(a))
	}
	if len(parts) == 0 {
		return "false"
	}
	return join(parts, " || ")
}

var numericOps = map[string]string{"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

func (c *converter) valuesCEL(a *atom) string {
	f := a.f
	for m, op := range numericOps {
		if a.has(m) {
			var parts []string
			for _, v := range a.values {
				n, err := strconv.Atoi(v)
				if err != nil {
					c.unsup("field %s|%s: %q is not an integer", a.name, m, v)
					return "false"
				}
				e := f.expr
				if !f.num {
					e = "int(" + strings.TrimSuffix(strings.TrimPrefix(e, "string("), ")") + ")"
					if f.json {
						c.unsup("field %s|%s: numeric comparison of a JSON member is not supported", a.name, m)
						return "false"
					}
				}
				parts = append(parts, fmt.Sprintf("%s %s %d", e, op, n))
			}
			return a.combine(parts)
		}
	}
	if f.num {
		var ns []string
		for _, v := range a.values {
			if _, err := strconv.Atoi(v); err != nil {
				c.unsup("field %s: %q is not an integer", a.name, v)
				return "false"
			}
			ns = append(ns, v)
		}
		if len(a.mods) > 0 && !a.has("all") {
			c.unsup("field %s: modifiers %v on an integer field are not supported", a.name, a.mods)
			return "false"
		}
		if len(ns) == 1 {
			return f.expr + " == " + ns[0]
		}
		return f.expr + " in [" + strings.Join(ns, ", ") + "]"
	}
	if a.has("cidr") {
		for _, v := range a.values {
			if _, err := netip.ParsePrefix(v); err != nil {
				c.unsup("field %s|cidr: %q is not a CIDR block", a.name, v)
				return "false"
			}
		}
		if a.all {
			var parts []string
			for _, v := range a.values {
				parts = append(parts, "cidr_match("+f.expr+", "+quote(v)+")")
			}
			return join(parts, " && ")
		}
		return "cidr_match(" + f.expr + ", " + quoteList(a.values) + ")"
	}
	if a.has("re") {
		flags := ""
		for _, fl := range []string{"i", "m", "s"} {
			if a.has(fl) {
				flags += fl
			}
		}
		var parts []string
		for _, v := range a.values {
			p := v
			if flags != "" {
				p = "(?" + flags + ")" + p
			}
			if _, err := regexp.Compile(p); err != nil {
				c.unsup("field %s|re: %v", a.name, err)
				return "false"
			}
			parts = append(parts, f.expr+".matches("+quote(p)+")")
		}
		return a.combine(parts)
	}
	// Value transformations: base64, base64offset, windash.
	vals := slices.Clone(a.values)
	if a.has("windash") {
		var out []string
		for _, v := range vals {
			out = append(out, windash(v)...)
		}
		vals = out
	}
	switch {
	case a.has("base64offset"):
		var out []string
		for _, v := range vals {
			out = append(out, base64Offsets(v)...)
		}
		vals = out
		if !a.has("contains") {
			c.unsup("field %s: base64offset needs contains", a.name)
			return "false"
		}
	case a.has("base64"):
		for i, v := range vals {
			vals[i] = b64(v)
		}
	}
	cased := a.has("cased") || a.has("base64") || a.has("base64offset")
	var fn string
	switch {
	case a.has("contains"):
		fn = "contains"
	case a.has("startswith"):
		fn = "startsWith"
	case a.has("endswith"):
		fn = "endsWith"
	default:
		fn = "equals"
	}
	// Wildcards: * and ? (unescaped) make a glob.
	var plain, globs, parts []string
	for _, v := range vals {
		g, lit, isGlob := wildcard(v)
		if isGlob && strings.Trim(g, "*") == "" && !cased {
			// "*" alone (with or without contains): any value, as Sigma
			// backends read it: the field is present
			parts = append(parts, f.has)
			continue
		}
		if isGlob && !cased {
			switch fn {
			case "contains":
				g = "*" + g + "*"
			case "startsWith":
				g += "*"
			case "endsWith":
				g = "*" + g
			}
			globs = append(globs, g)
		} else {
			plain = append(plain, lit)
		}
	}
	if a.all {
		for _, v := range plain {
			parts = append(parts, strCall(f.expr, fn, cased, quote(v)))
		}
		for _, g := range globs {
			parts = append(parts, f.expr+".iglob("+quote(g)+")")
		}
		return join(parts, " && ")
	}
	switch len(plain) {
	case 0:
	case 1:
		parts = append(parts, strCall(f.expr, fn, cased, quote(plain[0])))
	default:
		if cased {
			for _, v := range plain {
				parts = append(parts, strCall(f.expr, fn, true, quote(v)))
			}
		} else {
			parts = append(parts, strCall(f.expr, fn, false, quoteList(plain)))
		}
	}
	switch len(globs) {
	case 0:
	case 1:
		parts = append(parts, f.expr+".iglob("+quote(globs[0])+")")
	default:
		parts = append(parts, f.expr+".iglob("+quoteList(globs)+")")
	}
	return join(parts, " || ")
}

// combine joins per-value tests with && (all) or ||.
func (a *atom) combine(parts []string) string {
	if a.all {
		return join(parts, " && ")
	}
	return join(parts, " || ")
}

func strCall(expr, fn string, cased bool, arg string) string {
	if cased {
		if fn == "equals" {
			return expr + " == " + arg
		}
		return expr + "." + fn + "(" + arg + ")"
	}
	switch fn {
	case "equals":
		return expr + ".iequals(" + arg + ")"
	case "contains":
		return expr + ".icontains(" + arg + ")"
	case "startsWith":
		return expr + ".istartsWith(" + arg + ")"
	}
	return expr + ".iendsWith(" + arg + ")"
}

// wildcard interprets Sigma's * and ? wildcards and \ escapes: the glob
// pattern, the literal string, and whether it has unescaped wildcards.
func wildcard(v string) (glob, lit string, isGlob bool) {
	var g, l strings.Builder
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch {
		case ch == '\\' && i+1 < len(v) && (v[i+1] == '*' || v[i+1] == '?' || v[i+1] == '\\'):
			i++
			l.WriteByte(v[i])
			g.WriteByte(v[i]) // our glob has no escapes: a literal * in a glob also matches runs
		case ch == '*' || ch == '?':
			isGlob = true
			g.WriteByte(ch)
		default:
			g.WriteByte(ch)
			l.WriteByte(ch)
		}
	}
	return g.String(), l.String(), isGlob
}

// windash returns a command-line flag value with its leading dash in each
// form Windows programs accept: -, /, en dash, em dash, horizontal bar.
func windash(v string) []string {
	if !strings.Contains(v, "-") {
		return []string{v}
	}
	var out []string
	for _, d := range []string{"-", "/", "\u2013", "\u2014", "\u2015"} {
		out = append(out, strings.ReplaceAll(v, "-", d))
	}
	return out
}

// base64Offsets returns the three base64 encodings of v as it may appear
// inside a longer encoded string (at byte offsets 0, 1 and 2 mod 3), with
// the characters that depend on the unknown neighbours removed.
func base64Offsets(v string) []string {
	starts := []int{0, 2, 3}
	ends := []int{0, 3, 2} // characters to drop at the end, by (offset+len)%3
	var out []string
	for i := 0; i < 3; i++ {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, i), v...))
		enc = strings.TrimRight(enc, "=")
		s := enc[starts[i]:]
		if e := ends[(i+len(v))%3]; e > 0 && len(s) > e {
			s = s[:len(s)-e]
		}
		out = append(out, s)
	}
	return out
}

// condCEL translates the condition tree.
func (c *converter) condCEL(n *node) string {
	switch n.op {
	case "sel":
		return "(" + c.selCEL(n.name) + ")"
	case "not":
		return "!" + c.condCEL(n.kids[0])
	}
	var parts []string
	for _, k := range n.kids {
		parts = append(parts, c.condCEL(k))
	}
	sep := " && "
	if n.op == "or" {
		sep = " || "
	}
	return "(" + strings.Join(parts, sep) + ")"
}

// operations returns the eventName values every match must have, or nil.
func (c *converter) operations(n *node) []string {
	switch n.op {
	case "sel":
		var all []string
		for _, m := range c.sels[n.name] {
			var ops []string
			for _, a := range m {
				if a.name == "eventName" && len(a.mods) == 0 && !a.null {
					ok := true
					for _, v := range a.values {
						if _, _, g := wildcard(v); g {
							ok = false
						}
					}
					if ok {
						ops = a.values
					}
				}
			}
			if ops == nil {
				return nil
			}
			all = append(all, ops...)
		}
		return all
	case "and":
		for _, k := range n.kids {
			if ops := c.operations(k); ops != nil {
				return ops
			}
		}
		return nil
	case "or":
		var all []string
		for _, k := range n.kids {
			ops := c.operations(k)
			if ops == nil {
				return nil
			}
			all = append(all, ops...)
		}
		return all
	}
	return nil
}

// splitTactics maps tactics of ATT&CK releases newer than the bundled
// matrix to the bundled tactic they were split from. ATT&CK v19 split
// Defense Evasion (TA0005) into Stealth and Defense Impairment, and Sigma
// rules written since tag the new names; until the bundled matrix is v19
// such a rule keeps Defense Evasion, its stage in Musubi's kill chain.
var splitTactics = map[string]string{
	"stealth":            "TA0005",
	"defense-impairment": "TA0005",
}

// mapTags reads ATT&CK from Sigma tags: attack.tNNNN[.NNN] techniques and
// attack.<tactic name> tactics. Notes name tags left out.
func mapTags(tags []string) (tactics, techniques []string, notes []string) {
	for _, t := range tags {
		rest, ok := strings.CutPrefix(strings.ToLower(t), "attack.")
		if !ok {
			continue
		}
		switch {
		case len(rest) > 1 && rest[0] == 't' && rest[1] >= '0' && rest[1] <= '9':
			id := strings.ToUpper(rest)
			if _, ok := attack.LookupTechnique(id); !ok {
				notes = append(notes, fmt.Sprintf("tag %s: no such ATT&CK technique (revoked or deprecated?); left out", t))
				continue
			}
			if !slices.Contains(techniques, id) {
				techniques = append(techniques, id)
			}
		case len(rest) > 1 && (rest[0] == 'g' || rest[0] == 's') && rest[1] >= '0' && rest[1] <= '9':
			// groups and software: not part of a rule's mapping
		default:
			ta, ok := attack.TacticByShortName(rest)
			if !ok {
				parent, split := splitTactics[strings.ReplaceAll(rest, "_", "-")]
				if !split {
					notes = append(notes, fmt.Sprintf("tag %s: not an ATT&CK tactic; left out", t))
					continue
				}
				ta, _ = attack.LookupTactic(parent)
				notes = append(notes, fmt.Sprintf("tag %s: ATT&CK v19 split %s (%s) into stealth and defense-impairment; the bundled matrix is ATT&CK %s, so the rule keeps %s", t, ta.ID, ta.ShortName, attack.Version, ta.ID))
			}
			if !slices.Contains(tactics, ta.ID) {
				tactics = append(tactics, ta.ID)
			}
		}
	}
	// Pair them as the matrix does: a tactic none of the techniques
	// belongs to is dropped, a technique in none of the tactics brings its
	// own first tactic.
	var kept []string
	for _, ta := range tactics {
		in := len(techniques) == 0
		for _, te := range techniques {
			in = in || attack.InTactic(te, ta)
		}
		if in {
			kept = append(kept, ta)
		} else {
			notes = append(notes, fmt.Sprintf("ATT&CK: none of %v belongs to tactic %s; tactic left out", techniques, ta))
		}
	}
	for _, te := range techniques {
		covered := false
		for _, ta := range kept {
			covered = covered || attack.InTactic(te, ta)
		}
		if !covered {
			t, _ := attack.LookupTechnique(te)
			ta, _ := attack.TacticByShortName(t.Tactics[0])
			kept = append(kept, ta.ID)
			notes = append(notes, fmt.Sprintf("ATT&CK: technique %s belongs to none of the tagged tactics; added its tactic %s (%s)", te, ta.ID, ta.ShortName))
		}
	}
	return kept, techniques, notes
}
