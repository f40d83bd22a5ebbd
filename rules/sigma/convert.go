package sigma

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/rules/attack"
)

// Result is the outcome of converting one Sigma rule.
type Result struct {
	File    string `json:"file"`
	SigmaID string `json:"sigma_id,omitempty"`
	Title   string `json:"title,omitempty"`
	// RuleID and Out are set when the rule was converted and written.
	RuleID string `json:"rule_id,omitempty"`
	Out    string `json:"out,omitempty"`
	// Unsupported lists every construct that kept the rule from being
	// converted; a rule is converted whole or not at all.
	Unsupported []string `json:"unsupported,omitempty"`
	// Notes are changes made on the way (ATT&CK tags corrected, ...).
	Notes []string `json:"notes,omitempty"`
	YAML  []byte   `json:"-"`
}

// OK reports whether the rule converted.
func (r *Result) OK() bool { return len(r.Unsupported) == 0 && r.YAML != nil }

// ruleID is the pattern of a Musubi rule id.
var ruleID = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{2,127}$`)

var levels = map[string]string{"informational": "informational", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}

// Convert translates one Sigma rule document into a Musubi rule file with
// generated inline tests, each checked by compiling the rule and running
// them. license is recorded when the rule names none (DRL-1.1 for SigmaHQ's
// rules).
func Convert(file string, data []byte, license string) *Result {
	res := &Result{File: file}
	var d sigmaDoc
	if err := yaml.Unmarshal(data, &d); err != nil {
		res.Unsupported = append(res.Unsupported, "YAML: "+err.Error())
		return res
	}
	res.SigmaID, res.Title = d.ID, d.Title
	t := targetFor(d.Logsource)
	if t == nil {
		res.Unsupported = append(res.Unsupported, fmt.Sprintf("logsource product=%q service=%q category=%q is not one Musubi normalizes", d.Logsource.Product, d.Logsource.Service, d.Logsource.Category))
		return res
	}
	c := &converter{t: t}
	cond, names := c.parseDetection(&d.Detection)
	var tree *node
	if len(c.unsupported) == 0 {
		var err error
		if tree, err = parseCondition(cond, names); err != nil {
			c.unsup("%v", err)
		}
	}
	sev, ok := levels[strings.ToLower(d.Level)]
	if !ok {
		c.unsup("level %q is not one of informational, low, medium, high, critical", d.Level)
	}
	status := strings.ToLower(d.Status)
	switch {
	case status == "":
		status = "experimental"
	case !slices.Contains(rules.Statuses, status):
		c.unsup("status %q is not supported", d.Status)
	}
	id := "sigma." + strings.ToLower(d.ID)
	if !ruleID.MatchString(id) || d.ID == "" {
		c.unsup("id %q cannot name a Musubi rule", d.ID)
	}
	var condCEL string
	if len(c.unsupported) == 0 {
		condCEL = c.condCEL(tree)
	}
	if len(c.unsupported) > 0 {
		res.Unsupported = c.unsupported
		return res
	}
	tactics, techniques, notes := mapTags(d.Tags)
	res.Notes = append(res.Notes, notes...)

	out := map[string]any{}
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v any) {
		var n yaml.Node
		_ = n.Encode(v)
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &n)
		out[k] = v
	}
	add("id", id)
	add("title", strings.TrimSpace(d.Title))
	desc := strings.TrimSpace(d.Description)
	if desc == "" {
		desc = strings.TrimSpace(d.Title)
	}
	add("description", desc)
	add("status", status)
	add("severity", sev)
	if len(tactics) > 0 {
		stage := stageOf(tactics[0])
		add("stage", stage)
		add("attack", map[string][]string{"tactics": tactics, "techniques": techniques})
	} else {
		res.Notes = append(res.Notes, "no ATT&CK tags: the rule has no stage and lint will ask for one")
	}
	src := map[string]any{"log_names": t.logNames}
	if len(t.classes) > 0 {
		src["classes"] = t.classes
	}
	ops := c.operations(tree)
	if t == cloudtrail && ops != nil {
		slices.Sort(ops)
		src["operations"] = slices.Compact(ops)
	}
	add("sources", src)
	add("condition", condCEL)
	add("entities", t.entities)
	if fp := falsePositives(&d.FalsePositives); len(fp) > 0 {
		add("falsepositives", fp)
	}
	if len(d.References) > 0 {
		add("references", d.References)
	}
	if d.Author != "" {
		add("author", d.Author)
	}
	if d.Date != "" {
		add("date", d.Date)
	}
	if d.Modified != "" {
		add("modified", d.Modified)
	}
	if len(d.Tags) > 0 {
		add("tags", d.Tags)
	}
	lic := d.License
	if lic == "" {
		lic = license
	}
	if lic != "" {
		add("license", lic)
	}
	add("sigma_id", d.ID)
	// The condition as a literal block, so it reads as written.
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "condition" || doc.Content[i].Value == "description" {
			doc.Content[i+1].Style = yaml.LiteralStyle
		}
	}

	b, err := c.withTests(tree, doc)
	if err != nil {
		res.Unsupported = append(res.Unsupported, err.Error())
		return res
	}
	res.RuleID, res.YAML = id, b
	return res
}

func render(doc *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// check compiles a rule file and runs its tests; it returns what failed.
func check(b []byte) string {
	s, err := rules.LoadFiles([]rules.File{{Path: "generated.yaml", Data: b}})
	if err != nil {
		return "the converted rule does not compile: " + err.Error()
	}
	for _, r := range s.Rules() {
		for _, t := range r.RunTests() {
			if !t.Pass {
				return fmt.Sprintf("generated test %q: got match=%v, want %v %s", t.Name, t.Got, t.Want, t.Error)
			}
		}
	}
	return ""
}

// stageOf is the kill-chain stage of an ATT&CK tactic id: its Navigator
// short name, spelled as rules.Stages spell it.
func stageOf(tactic string) string {
	ta, _ := attack.LookupTactic(tactic)
	return strings.ReplaceAll(ta.ShortName, "-", "_")
}

// falsePositives reads Sigma's falsepositives: a list or one string.
func falsePositives(n *yaml.Node) []string {
	switch n.Kind {
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, strings.TrimSpace(c.Value))
		}
		return out
	case yaml.ScalarNode:
		if s := strings.TrimSpace(n.Value); s != "" {
			return []string{s}
		}
	}
	return nil
}

// --- test generation ---

// plan is a set of atoms that must hold (pos) and must not hold (neg).
type plan struct{ pos, neg []*atom }

// satisfy returns the ways to make n true (want) or false (!want), at most
// limit of them.
func (c *converter) satisfy(n *node, want bool, limit int) []plan {
	switch n.op {
	case "not":
		return c.satisfy(n.kids[0], !want, limit)
	case "sel":
		s := c.sels[n.name]
		if want { // any map, all its atoms
			var out []plan
			for _, m := range s {
				out = append(out, plan{pos: m})
			}
			return out
		}
		// every map fails: one atom of each
		out := []plan{{}}
		for _, m := range s {
			if len(m) == 0 {
				return nil
			}
			var next []plan
			for _, p := range out {
				for _, a := range m {
					next = append(next, plan{pos: p.pos, neg: append(slices.Clip(p.neg), a)})
					if len(next) >= limit {
						break
					}
				}
			}
			out = next
		}
		return out
	}
	conj := (n.op == "and") == want
	if !conj { // any child
		var out []plan
		for _, k := range n.kids {
			out = append(out, c.satisfy(k, want, limit)...)
		}
		return out
	}
	out := []plan{{}}
	for _, k := range n.kids {
		var next []plan
		for _, p := range out {
			for _, q := range c.satisfy(k, want, limit) {
				next = append(next, plan{pos: append(slices.Clip(p.pos), q.pos...), neg: append(slices.Clip(p.neg), q.neg...)})
				if len(next) >= limit {
					break
				}
			}
		}
		out = next
	}
	return out
}

// value returns a value that satisfies every positive atom on one field.
func value(as []*atom) (string, bool) {
	var eq, pre, suf string
	var mid []string
	for _, a := range as {
		if a.has("exists") {
			if len(a.values) == 1 && strings.EqualFold(a.values[0], "true") {
				mid = append(mid, "present")
			}
			continue
		}
		if a.null && len(a.values) == 0 {
			return "", true
		}
		vals := a.values
		if !a.all && len(vals) > 0 {
			vals = vals[:1]
		}
		for _, v := range vals {
			switch {
			case a.has("cidr"):
				p, err := netip.ParsePrefix(v)
				if err != nil {
					return "", false
				}
				eq = p.Masked().Addr().Next().String()
			case a.has("re"):
				lit := regexLiteral(v)
				if lit == "" {
					return "", false
				}
				eq = lit
			case a.has("gt") || a.has("gte") || a.has("lt") || a.has("lte"):
				var n int
				fmt.Sscan(v, &n)
				switch {
				case a.has("gt"):
					n++
				case a.has("lt"):
					n--
				}
				eq = fmt.Sprint(n)
			default:
				vv := v
				if a.has("windash") {
					vv = windash(v)[0]
				}
				if a.has("base64offset") {
					vv = base64Offsets(vv)[0]
				} else if a.has("base64") {
					vv = windash(vv)[0]
					vv = b64(vv)
				}
				g, lit, isGlob := wildcard(vv)
				if isGlob && strings.Trim(g, "*") == "" {
					lit = "present"
				} else if isGlob {
					lit = strings.NewReplacer("*", "", "?", "x").Replace(g)
				}
				switch {
				case a.has("contains"):
					mid = append(mid, lit)
				case a.has("startswith"):
					pre = lit + pre
				case a.has("endswith"):
					suf += lit
				default:
					eq = lit
				}
			}
		}
	}
	if eq != "" {
		return eq, true
	}
	return pre + strings.Join(mid, " ") + suf, true
}

// regexLiteral derives a string a simple regular expression matches: the
// pattern without anchors, with .*, .+ and . replaced; "" when the pattern
// is not that simple.
func regexLiteral(p string) string {
	p = strings.TrimPrefix(p, "^")
	p = strings.TrimSuffix(p, "$")
	p = strings.NewReplacer(".*", "", ".+", "x", `\.`, "\x00", `\/`, "/", `\-`, "-").Replace(p)
	p = strings.ReplaceAll(p, ".", "x")
	p = strings.ReplaceAll(p, "\x00", ".")
	if strings.ContainsAny(p, `\[](){}|*+?^$`) {
		return ""
	}
	return p
}

// withTests generates a matching and a non-matching event and returns the
// rule file with the first pair the compiled rule agrees with: the file as
// written loads and passes its tests.
func (c *converter) withTests(tree *node, doc *yaml.Node) ([]byte, error) {
	for i, p := range c.satisfy(tree, true, 16) {
		ev, ok := c.event(p, fmt.Sprintf("sigma-match-%d", i+1))
		if !ok {
			continue
		}
		// A non-matching event: the match with one of its fields changed,
		// trying fields other than the operation first.
		for _, a := range orderForMutation(p.pos) {
			nm := clone(ev)
			nm["metadata"].(map[string]any)["uid"] = "sigma-nomatch"
			a.f.set(nm, "musubi-benign-value")
			if a.ref != nil {
				a.ref.set(nm, "musubi-other-value")
			}
			tests := []map[string]any{
				{"name": "generated from the detection: matches", "match": true, "event": ev},
				{"name": fmt.Sprintf("generated: %s differs", a.name), "match": false, "event": nm},
			}
			var tn yaml.Node
			_ = tn.Encode(tests)
			d2 := &yaml.Node{Kind: yaml.MappingNode, Content: append(slices.Clip(doc.Content), &yaml.Node{Kind: yaml.ScalarNode, Value: "tests"}, &tn)}
			b, err := render(d2)
			if err != nil {
				return nil, err
			}
			if check(b) == "" {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("could not generate a matching and a non-matching event that the converted condition agrees with")
}

func orderForMutation(as []*atom) []*atom {
	out := slices.Clone(as)
	slices.SortStableFunc(out, func(x, y *atom) int {
		rank := func(a *atom) int {
			if a.name == "eventName" || a.name == "eventSource" {
				return 1
			}
			return 0
		}
		return rank(x) - rank(y)
	})
	return out
}

// event builds a test event from a plan: every positively tested field set
// to a value that satisfies it, fields only tested negatively left absent
// (or set, for an absence test).
func (c *converter) event(p plan, uid string) (map[string]any, bool) {
	ev := map[string]any{"class_uid": c.t.class, "metadata": map[string]any{"log_name": c.t.logNames[0], "uid": uid}}
	if c.t == cloudtrail {
		ev["cloud"] = map[string]any{"provider": "AWS", "region": "us-east-1", "account": map[string]any{"uid": "111122223333"}}
	}
	byField := map[string][]*atom{}
	var order []string
	for _, a := range p.pos {
		if _, ok := byField[a.name]; !ok {
			order = append(order, a.name)
		}
		byField[a.name] = append(byField[a.name], a)
	}
	for _, name := range order {
		as := byField[name]
		v, ok := value(as)
		if !ok {
			return nil, false
		}
		if v == "" {
			continue
		}
		as[0].f.set(ev, v)
		for _, a := range as {
			if a.ref != nil {
				a.ref.set(ev, v)
			}
		}
	}
	for _, a := range p.neg {
		if _, pos := byField[a.name]; pos {
			continue
		}
		if a.has("exists") && !(len(a.values) == 1 && strings.EqualFold(a.values[0], "true")) {
			a.f.set(ev, "present")
		}
		if a.null {
			a.f.set(ev, "present")
		}
		if a.ref != nil { // two fields that must differ; empty ones are equal
			a.f.set(ev, "sigma-value-a")
			a.ref.set(ev, "sigma-value-b")
		}
	}
	return ev, true
}

func clone(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if mm, ok := v.(map[string]any); ok {
			out[k] = clone(mm)
		} else {
			out[k] = v
		}
	}
	return out
}

// Report is what Import returns.
type Report struct {
	Results   []*Result `json:"results"`
	Converted int       `json:"converted"`
	Skipped   int       `json:"skipped"`
}

// Import converts every Sigma rule (*.yml, *.yaml) in path (a file or a
// directory tree) and writes each converted rule to outDir as
// sigma_<name>.yaml. Rules that cannot be converted are listed with the
// reasons and not written.
func Import(path, outDir, license string) (*Report, error) {
	var files []string
	err := filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return nil, err
		}
	}
	rep := &Report{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		res := Convert(f, data, license)
		if res.OK() {
			rep.Converted++
			if outDir != "" {
				name := "sigma_" + strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)) + ".yaml"
				res.Out = filepath.Join(outDir, name)
				if err := os.WriteFile(res.Out, res.YAML, 0o644); err != nil {
					return nil, err
				}
			}
		} else {
			rep.Skipped++
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}
