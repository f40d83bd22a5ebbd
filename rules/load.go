package rules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/ocsf"
)

// Limits on rule directories, so a runaway ConfigMap cannot exhaust memory.
const (
	MaxFileSize = 1 << 20
	MaxFiles    = 10000
	maxDirDepth = 16
)

// Problem is one thing wrong with a rule file, located as file:line:col.
type Problem struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Col    int    `json:"col"`
	RuleID string `json:"rule_id,omitempty"`
	Msg    string `json:"message"`
}

// Error formats the problem as "file:line:col: rule <id>: message".
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
	}
	if p.RuleID != "" {
		fmt.Fprintf(&b, ": rule %s", p.RuleID)
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Problems returns every *Problem joined in err (as returned by Load).
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if p, ok := err.(*Problem); ok {
			out = append(out, p)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		out = append(out, &Problem{Msg: err.Error()})
	}
	walk(err)
	return out
}

// Set is an immutable, compiled rule set.
type Set struct {
	rules []*Rule
	byID  map[string]*Rule
	index index
	// Dir is the directory the set was loaded from; Hash the content hash
	// of its rule files; Commit the git commit, if any.
	Dir    string
	Hash   string
	Commit string
	// Skipped lists files of another kind (correlation) that Load left to
	// their owner.
	Skipped []string

	exceptions []*Exception
	excepts    map[*Rule][]*Exception // rule → the exceptions naming it
	warnings   []*Problem             // see Warnings
	unmatched  []*Problem             // exception rule patterns naming no rule

	adapter types.Adapter
}

// Rules returns the rules in load order (by file path, then position).
func (s *Set) Rules() []*Rule {
	if s == nil {
		return nil
	}
	return s.rules
}

// Rule returns the rule with the given id, or nil.
func (s *Set) Rule(id string) *Rule {
	if s == nil {
		return nil
	}
	return s.byID[id]
}

// Len returns the number of rules.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

var sharedEnv = sync.OnceValues(func() (*cel.Env, error) { return NewEnv() })

// Env returns the one CEL environment detection rules are compiled in.
func Env() (*cel.Env, error) { return sharedEnv() }

// File is one rule file's path and content.
type File struct {
	Path string
	Data []byte
}

// Load reads every *.yaml and *.yml file under dir (following symbolic
// links, skipping hidden entries such as a Kubernetes ConfigMap's ..data),
// parses, type-checks and compiles every detection rule, and returns the set.
// Files whose kind is correlation are skipped. If any rule is broken, Load
// returns no set and an error joining every problem (see Problems).
func Load(dir string) (*Set, error) {
	files, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	return LoadDirFiles(dir, files)
}

// LoadDirFiles compiles the files read from dir (by ReadDir) and records
// the directory and its git commit in the set, as Load does. The manager
// reads a directory once and hands the same files to every rule kind.
func LoadDirFiles(dir string, files []File) (*Set, error) {
	s, err := LoadFiles(files)
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	s.Commit = gitCommit(dir)
	for _, r := range s.rules {
		r.Commit = s.Commit
		r.alertRev = r.Version
		if s.Commit != "" {
			r.alertRev += "@" + s.Commit[:min(12, len(s.Commit))]
		}
	}
	return s, nil
}

// LoadFiles compiles rules from files already read (see Load).
func LoadFiles(files []File) (*Set, error) {
	env, err := Env()
	if err != nil {
		return nil, fmt.Errorf("rules: CEL environment: %w", err)
	}
	s := &Set{byID: map[string]*Rule{}, Hash: hashFiles(files), adapter: env.CELTypeAdapter()}
	var problems []error
	seen, seenExc := map[string]string{}, map[string]string{}
	for _, f := range files {
		rules, excs, skipped, probs := parseFile(env, f)
		problems = append(problems, probs...)
		if skipped {
			s.Skipped = append(s.Skipped, f.Path)
		}
		for _, x := range excs {
			if prev, dup := seenExc[x.ID]; dup {
				problems = append(problems, &Problem{File: f.Path, Line: x.Line, Col: 1, RuleID: x.ID, Msg: "exception: duplicate exception id (first defined in " + prev + ")"})
				continue
			}
			seenExc[x.ID] = fmt.Sprintf("%s:%d", f.Path, x.Line)
			s.exceptions = append(s.exceptions, x)
		}
		for _, r := range rules {
			if prev, dup := seen[r.ID]; dup {
				problems = append(problems, &Problem{File: f.Path, Line: r.Line, Col: 1, RuleID: r.ID, Msg: "duplicate rule id (first defined in " + prev + ")"})
				continue
			}
			seen[r.ID] = fmt.Sprintf("%s:%d", f.Path, r.Line)
			s.rules = append(s.rules, r)
			s.byID[r.ID] = r
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	for _, r := range s.rules {
		if r.alertRev == "" {
			r.alertRev = r.Version
		}
	}
	s.index = buildIndex(s.rules)
	s.resolveExceptions(time.Now())
	return s, nil
}

// ReadDir reads the rule files under dir in a stable order.
func ReadDir(dir string) ([]File, error) {
	var files []File
	var walk func(path string, depth int) error
	walk = func(path string, depth int) error {
		if depth > maxDirDepth {
			return fmt.Errorf("rules: %s: directories nested too deep", path)
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || name == "testdata" {
				continue
			}
			p := filepath.Join(path, name)
			fi, err := os.Stat(p) // follows symbolic links
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // a dangling link mid-swap
				}
				return fmt.Errorf("rules: %w", err)
			}
			if fi.IsDir() {
				if err := walk(p, depth+1); err != nil {
					return err
				}
				continue
			}
			if ext := filepath.Ext(name); ext != ".yaml" && ext != ".yml" {
				continue
			}
			if fi.Size() > MaxFileSize {
				return fmt.Errorf("rules: %s: file larger than %d bytes", p, MaxFileSize)
			}
			if len(files) >= MaxFiles {
				return fmt.Errorf("rules: %s: more than %d rule files", dir, MaxFiles)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("rules: %w", err)
			}
			files = append(files, File{Path: p, Data: data})
		}
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// hashFiles is the content hash of a rule directory: paths and contents.
func hashFiles(files []File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Path, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// gitCommit returns the HEAD commit of the git checkout dir is in, or "".
func gitCommit(dir string) string {
	if _, err := exec.LookPath("git"); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// parseFile parses and compiles every YAML document of one file.
func parseFile(env *cel.Env, f File) (rules []*Rule, excs []*Exception, skipped bool, problems []error) {
	lines := strings.Split(string(f.Data), "\n")
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return rules, excs, skipped, problems
		}
		if err != nil {
			return rules, excs, skipped, append(problems, YAMLProblem(f.Path, err))
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue // an empty document
		}
		if root.Kind != yaml.MappingNode {
			problems = append(problems, &Problem{File: f.Path, Line: root.Line, Col: root.Column, Msg: "a rule must be a YAML mapping"})
			continue
		}
		if k := MapValue(root, "kind"); k != nil && k.Value == KindCorrelation {
			skipped = true
			continue
		}
		if k := MapValue(root, "kind"); k != nil && k.Value == KindException {
			x, probs := compileException(env, f.Path, lines, root)
			problems = append(problems, probs...)
			if x != nil {
				excs = append(excs, x)
			}
			continue
		}
		r, probs := compileDoc(env, f.Path, lines, root)
		problems = append(problems, probs...)
		if r != nil {
			rules = append(rules, r)
		}
	}
}

// YAMLProblem turns a YAML decoding error into a Problem in file, at the
// line yaml.v3 names. Every rule format's loader reports YAML errors with it.
func YAMLProblem(file string, err error) *Problem {
	p := &Problem{File: file, Msg: "YAML: " + err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		p.Msg = "YAML: " + strings.Join(te.Errors, "; ")
	}
	// yaml.v3 messages start with "yaml: line N:"; lift N into the position.
	var line int
	if _, e := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); e == nil {
		p.Line, p.Col = line, 1
	}
	return p
}

// DecodeDoc decodes the document root of file (the rule or exception id)
// into v; a failure is a Problem at the YAML error's line, else at the
// document.
func DecodeDoc(file, id string, root *yaml.Node, v any) *Problem {
	err := root.Decode(v)
	if err == nil {
		return nil
	}
	p := YAMLProblem(file, err)
	p.RuleID = id
	if p.Line == 0 {
		p.Line, p.Col = root.Line, root.Column
	}
	return p
}

// MapValue returns the value node of key in the mapping node m, or nil
// (also when m is nil or not a mapping): rule loaders locate problems at
// the key's value with it.
func MapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// checkKeys reports keys that are not allowed in a mapping.
func checkKeys(file, id string, m *yaml.Node, where string, add func(*Problem)) {
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	allowed := allowedKeys[where]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if !slices.Contains(allowed, k.Value) {
			name := k.Value
			if where != "" {
				name = strings.TrimSuffix(where, "[]") + "." + name
			}
			add(&Problem{File: file, Line: k.Line, Col: k.Column, RuleID: id, Msg: fmt.Sprintf("unknown key %q", name)})
		}
	}
}

// compileDoc turns one YAML rule document into a compiled Rule.
func compileDoc(env *cel.Env, file string, lines []string, root *yaml.Node) (*Rule, []error) {
	var problems []error
	id := ""
	if n := MapValue(root, "id"); n != nil {
		id = n.Value
	}
	at := func(n *yaml.Node, format string, args ...any) {
		p := &Problem{File: file, Line: root.Line, Col: root.Column, RuleID: id, Msg: fmt.Sprintf(format, args...)}
		if n != nil {
			p.Line, p.Col = n.Line, n.Column
		}
		problems = append(problems, p)
	}
	add := func(p *Problem) { problems = append(problems, p) }

	checkKeys(file, id, root, "", add)
	for _, k := range []string{"attack", "sources", "suppression"} {
		checkKeys(file, id, MapValue(root, k), k, add)
	}
	if t := MapValue(root, "tests"); t != nil && t.Kind == yaml.SequenceNode {
		for _, c := range t.Content {
			checkKeys(file, id, c, "tests[]", add)
		}
	}

	var d ruleDoc
	if p := DecodeDoc(file, id, root, &d); p != nil {
		return nil, append(problems, p)
	}
	r := &Rule{
		ID: d.ID, Title: strings.TrimSpace(d.Title), Description: strings.TrimSpace(d.Description),
		Status: d.Status, Stage: d.Stage, Tactics: d.Attack.Tactics, Techniques: d.Attack.Techniques,
		Sources: d.Sources, Condition: d.Condition, SuppressionKey: strings.TrimSpace(d.Suppression.Key),
		FalsePositives: d.FalsePos, References: d.References, File: file, Line: root.Line,
		Meta:     ruleMeta(d),
		logNames: d.Sources.LogNames, classUIDs: d.Sources.Classes, operations: d.Sources.Operations,
	}

	switch {
	case d.Kind != "" && d.Kind != KindDetection:
		at(MapValue(root, "kind"), "unknown kind %q (want %s, %s or %s)", d.Kind, KindDetection, KindCorrelation, KindException)
	}
	if !idPattern.MatchString(d.ID) {
		at(MapValue(root, "id"), "id %q must be 3-128 characters of a-z 0-9 _ . - starting with a letter or digit", d.ID)
	}
	if r.Title == "" {
		at(MapValue(root, "title"), "title is required")
	}
	if d.Status != "" && !slices.Contains(Statuses, d.Status) {
		at(MapValue(root, "status"), "status %q is not one of %s", d.Status, strings.Join(Statuses, ", "))
	}
	d.Severity = severityOrLevel(d, func(msg string) { at(MapValue(root, "level"), "%s", msg) })
	sev, ok := ocsf.SeverityID(d.Severity)
	if !ok || sev == ocsf.SeverityUnknown {
		at(MapValue(root, "severity"), "severity %q is not one of informational, low, medium, high, critical", d.Severity)
	}
	r.Severity = sev
	if d.Stage != "" && StageOrder(d.Stage) < 0 {
		at(MapValue(root, "stage"), "stage %q is not one of %s", d.Stage, strings.Join(Stages, ", "))
	}
	for _, t := range d.Attack.Tactics {
		if _, ok := tacticNames[t]; !ok {
			at(MapValue(root, "attack"), "unknown ATT&CK tactic %q (want an id such as TA0006)", t)
		}
	}
	for _, t := range d.Attack.Techniques {
		if !techniquePattern.MatchString(t) {
			at(MapValue(root, "attack"), "ATT&CK technique %q is not an id such as T1552 or T1552.005", t)
		}
	}
	for _, c := range d.Sources.Classes {
		if _, ok := ocsf.Classes[c]; !ok {
			at(MapValue(root, "sources"), "unknown OCSF class %d", c)
		}
	}
	for _, e := range d.Entities {
		if !ocsf.Entity(e).Valid() {
			at(MapValue(root, "entities"), "unknown entity kind %q", e)
		}
		r.Entities = append(r.Entities, ocsf.Entity(e))
	}
	if d.Suppression.Window != "" || d.Suppression.Key != "" {
		w, err := parseWindow(d.Suppression.Window)
		switch {
		case err != nil:
			at(MapValue(MapValue(root, "suppression"), "window"), "suppression window: %v", err)
		case w <= 0 || w > 30*24*time.Hour:
			at(MapValue(MapValue(root, "suppression"), "window"), "suppression window must be between 1s and 30d")
		case r.SuppressionKey == "":
			at(MapValue(root, "suppression"), "suppression needs a key")
		}
		r.SuppressionWindow = w
	}

	// The condition: parsed, type-checked against the OCSF event, required
	// to be boolean, and bounded.
	condNode := MapValue(root, "condition")
	if strings.TrimSpace(d.Condition) == "" {
		at(condNode, "condition is required")
	} else {
		ce, probs := compileExpr(env, d.Condition, cel.BoolType, func(line, col int) (int, int) {
			return exprPos(condNode, lines, line, col)
		}, file, id, "condition")
		problems = append(problems, probs...)
		r.prg, r.iterates, r.pre, r.estimate = ce.prg, ce.iterates, ce.pre, ce.estimate
		if ce.ast != nil {
			u := untrackedProgram(env, ce.ast)
			r.fast, r.fastTier, r.fastBound, r.strict, r.reads, r.trackedWhy = u.prg, u.tier, u.bound, u.strict, u.reads, u.why
		}
		r.fields = append(r.fields, ce.refs...)
	}
	if r.SuppressionKey != "" {
		keyNode := MapValue(MapValue(root, "suppression"), "key")
		ce, probs := compileExpr(env, r.SuppressionKey, cel.StringType, func(line, col int) (int, int) {
			return exprPos(keyNode, lines, line, col)
		}, file, id, "suppression key")
		problems = append(problems, probs...)
		r.suppress = ce.prg
		r.fields = append(r.fields, ce.refs...)
	}

	for i, t := range d.Tests {
		var node *yaml.Node
		if tn := MapValue(root, "tests"); tn != nil && i < len(tn.Content) {
			node = tn.Content[i]
		}
		rt := RuleTest{Name: t.Name, Line: root.Line}
		if node != nil {
			rt.Line = node.Line
		}
		if rt.Name == "" {
			rt.Name = fmt.Sprintf("test %d", i+1)
		}
		if t.Match == nil {
			at(node, "test %q: match (true or false) is required", rt.Name)
		} else {
			rt.Match = *t.Match
		}
		rt.Excepted = t.Excepted
		if t.Excepted && rt.Match {
			at(MapValue(node, "excepted"), "test %q: an excepted match raises no alert; say match: false", rt.Name)
		}
		var ok bool
		rt.Event, rt.Source, ok = decodeTestEvent(node, rt.Name, t.Event, t.Raw, t.Source, at)
		if en := MapValue(node, "event"); ok && t.Event != nil && en != nil && en.Kind == yaml.MappingNode {
			for k := 0; k+1 < len(en.Content); k += 2 {
				key := en.Content[k]
				r.fields = append(r.fields, fieldRef{attr: key.Value, path: key.Value,
					what: fmt.Sprintf("test %q: event", rt.Name), line: key.Line, col: key.Column, class: rt.Event.ClassUID})
			}
		}
		r.Tests = append(r.Tests, rt)
	}

	sum, _ := json.Marshal(d)
	h := sha256.Sum256(sum)
	r.Version = hex.EncodeToString(h[:])[:12]
	if len(problems) > 0 {
		return nil, problems
	}
	return r, nil
}

// decodeTestEvent reads the event of an inline test (of a rule or an
// exception) at node: an OCSF event, or a raw record of source normalized
// as the engine would. Problems are reported through bad.
func decodeTestEvent(node *yaml.Node, name string, event, raw any, source string, bad func(n *yaml.Node, format string, args ...any)) (ocsf.Event, string, bool) {
	switch {
	case raw != nil && event != nil:
		bad(node, "test %q: give either event or raw, not both", name)
	case raw != nil:
		ev, err := rawTestEvent(source, raw)
		if err != nil {
			bad(MapValue(node, "raw"), "test %q: %v", name, err)
			return ev, source, false
		}
		return ev, source, true
	case source != "":
		bad(MapValue(node, "source"), "test %q: source is given without raw", name)
	case event == nil:
		bad(node, "test %q: event or raw is required", name)
	default:
		ev, err := decodeEvent(event)
		if err != nil {
			bad(node, "test %q: event: %v", name, err)
			return ev, "", false
		}
		return ev, "", true
	}
	return ocsf.Event{}, "", false
}

// exprPos maps a position inside a CEL expression (1-based line, 0-based
// column) to a position in the YAML file.
func exprPos(n *yaml.Node, lines []string, line, col int) (int, int) {
	if n == nil {
		return 0, 0
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The block's indentation is that of its first content line.
		indent := 0
		if n.Line < len(lines) {
			indent = len(lines[n.Line]) - len(strings.TrimLeft(lines[n.Line], " "))
		}
		return n.Line + line, indent + col + 1
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 1 {
			return n.Line, n.Column + col + 1
		}
		return n.Line + line - 1, col + 1
	default:
		if line == 1 {
			return n.Line, n.Column + col
		}
		return n.Line + line - 1, col + 1
	}
}

// compileExpr compiles one CEL expression that must have type want, and
// checks Musubi's load-time bounds: constant regular expressions, and a
// worst-case cost estimate under MaxEstimatedCost. It also returns the
// top-level event attributes the expression reads, for the class check of
// Lint.
// compiledExpr is a compiled rule expression: its program, whether it has
// comprehensions, the event fields it reads and its prefilter; ast is the
// checked expression, for untrackedProgram.
type compiledExpr struct {
	prg      cel.Program
	ast      *cel.Ast
	iterates bool
	refs     []fieldRef
	pre      Prefilter
	estimate uint64 // the load-time worst-case estimate
}

func compileExpr(env *cel.Env, expr string, want *cel.Type, pos func(line, col int) (int, int), file, id, what string) (compiledExpr, []error) {
	var problems []error
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		for _, e := range iss.Errors() {
			l, c := pos(e.Location.Line(), e.Location.Column())
			problems = append(problems, &Problem{File: file, Line: l, Col: c, RuleID: id, Msg: what + ": " + e.Message})
		}
		return compiledExpr{}, problems
	}
	l0, c0 := pos(1, 0)
	bad := func(format string, args ...any) {
		problems = append(problems, &Problem{File: file, Line: l0, Col: c0, RuleID: id, Msg: what + ": " + fmt.Sprintf(format, args...)})
	}
	if !ast.OutputType().IsExactType(want) {
		bad("must be of type %s, got %s", want, ast.OutputType())
		return compiledExpr{}, problems
	}
	nav := celast.NavigateAST(ast.NativeRep())
	for _, call := range celast.MatchDescendants(nav, celast.FunctionMatcher("matches")) {
		args := call.AsCall().Args()
		if len(args) == 0 || args[len(args)-1].Kind() != celast.LiteralKind {
			l, c := pos(ast.NativeRep().SourceInfo().GetStartLocation(call.ID()).Line(), ast.NativeRep().SourceInfo().GetStartLocation(call.ID()).Column())
			problems = append(problems, &Problem{File: file, Line: l, Col: c, RuleID: id, Msg: what + ": the pattern of matches() must be a constant string"})
		}
	}
	iterates := len(celast.MatchDescendants(nav, celast.KindMatcher(celast.ComprehensionKind))) > 0
	est, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		bad("cost estimate: %v", err)
	} else if est.Max > MaxEstimatedCost {
		bad("estimated worst-case cost %d exceeds the limit %d (nested comprehensions or scans of large fields?)", est.Max, MaxEstimatedCost)
	}
	if len(problems) > 0 {
		return compiledExpr{}, problems
	}
	prg, err := env.Program(ast, ProgramOptions()...)
	if err != nil {
		bad("%v", err)
		return compiledExpr{}, problems
	}
	return compiledExpr{prg: prg, ast: ast, iterates: iterates, estimate: est.Max,
		refs: eventFields(ast.NativeRep(), pos, what), pre: NewPrefilter(ast.NativeRep())}, nil
}

// ProgramOptions are the options every rule program is built with: constant
// folding and regex precompilation (with the literal guard of
// guardedMatches), the cost limit with Musubi's function
// prices, and interrupt checks so a deadline can stop comprehensions.
// Correlation stage conditions get them through CompileCondition.
func ProgramOptions() []cel.ProgramOption {
	return append(evalOptions(), cel.CostLimit(CostLimit), cel.CostTrackerOptions(CostTrackers()...))
}

// evalOptions are the options of every program, tracked or not (see
// untrackedProgram): constant folding, regex precompilation with the
// literal guard, interrupt checks.
func evalOptions() []cel.ProgramOption {
	return []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), guardedMatches(), cel.InterruptCheckFrequency(64)}
}

// sizeEstimator bounds the sizes of event fields for the worst-case cost
// estimate: strings up to estimatedMaxString (list elements up to
// estimatedMaxItem), lists and maps up to estimatedMaxList entries. The
// load-time check uses it as is. With hints set it is a strict estimate,
// which the untracked fast path relies on (see untracked.go): every
// string, list element and JSON value up to hints.maxString, every list
// and map up to hints.maxList, the very hints the engine checks on each
// event before it takes that path; a value it cannot size is unbounded.
type sizeEstimator struct {
	hints *sizeHints
}

// strict reports whether this is a strict estimate.
func (e sizeEstimator) strict() bool { return e.hints != nil }

// A value without a path comes from a variable bound by cel.bind (the
// subject process of a rule that reads Process Activity and findings alike:
// cel.bind(proc, event.class_uid == 1007 ? event.process :
// event.actor.process, ...)); everything a rule reads derives from the
// event, so it gets the same bounds, its list elements those of a list.
func (e sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		if len(p) > 0 && p[len(p)-1] == "@items" && !e.strict() {
			// elements of lists: paths, names, observable values
			s := cost.RangedSizeEstimate(0, estimatedMaxItem)
			return &s
		}
		s := cost.RangedSizeEstimate(0, e.maxString())
		return &s
	case types.ListKind, types.MapKind:
		s := cost.RangedSizeEstimate(0, e.maxList())
		return &s
	case types.DynKind:
		if p == nil {
			return nil
		}
		s := cost.RangedSizeEstimate(0, e.maxDyn())
		return &s
	}
	return nil
}

func (e sizeEstimator) maxString() uint64 {
	if e.strict() {
		return e.hints.maxString
	}
	return estimatedMaxString
}

func (e sizeEstimator) maxList() uint64 {
	if e.strict() {
		return e.hints.maxList
	}
	return estimatedMaxList
}

// maxDyn bounds a value of unknown type: a string, or a list or map, of a
// JSON body. The load-time estimate sizes it as a string; the strict one as
// the larger of a string and a list.
func (e sizeEstimator) maxDyn() uint64 {
	if e.strict() {
		return max(e.hints.maxString, e.hints.maxList)
	}
	return estimatedMaxString
}

// EstimateCallCost prices Musubi's library functions as scans of their
// string operand, at least as high as CostTrackers charges them at run
// time; basename and base64_decode return at most their input.
func (e sizeEstimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	var operand cost.AstNode
	switch {
	case target != nil:
		operand = *target
	case len(args) > 0:
		operand = args[0]
	default:
		return nil
	}
	switch function {
	case "string":
		if k := operand.Type().Kind(); k == types.IntKind || k == types.UintKind || k == types.DoubleKind || k == types.BoolKind {
			sz := cost.RangedSizeEstimate(1, 32)
			return cost.NewCallEstimate(cost.FixedCostEstimate(1), &sz)
		}
		sz := sizeOrMax(e, operand)
		return cost.NewCallEstimate(cost.FixedCostEstimate(1), &sz)
	case "orValue", "value", "_?._", "_[?_]", "dyn":
		// optional access into request/response: a JSON value whose size
		// we cannot know; bounded like a list of the event (the cost limit
		// still applies at evaluation). The strict estimate bounds it as
		// any JSON value of a body that fits.
		sz := cost.RangedSizeEstimate(0, estimatedMaxList)
		if e.strict() {
			sz = cost.RangedSizeEstimate(0, e.maxDyn())
		}
		return cost.NewCallEstimate(cost.FixedCostEstimate(1), &sz)
	case "basename", "base64_decode":
		c, sz := cost.EstimateStringScan(sizeOrMax(e, operand))
		return cost.NewCallEstimate(c.Add(cost.FixedCostEstimate(1)), sz)
	case "json_text":
		// CostTrackers charges a fixed price; the text can be longer than
		// any field (a body re-encoded), so the strict estimate cannot size
		// it and whatever scans it is unbounded.
		c := cost.FixedCostEstimate(estimatedMaxString / 10)
		if e.strict() {
			sz := cost.UnknownSizeEstimate()
			return cost.NewCallEstimate(c, &sz)
		}
		return cost.NewCallEstimate(c, nil)
	case "cidr_match", "is_public_ip", "is_private_ip", "is_ip":
		return cost.NewCallEstimate(cost.FixedCostEstimate(2), nil)
	case "iequals", "icontains", "istartsWith", "iendsWith", "glob", "iglob":
		// CostTrackers: 1 + len(s)/10, plus len(p)/10 for one pattern or
		// times the number of patterns of a list; glob and iglob times the
		// stars of one pattern.
		c, _ := cost.EstimateStringScan(sizeOrMax(e, operand))
		c = c.Add(cost.FixedCostEstimate(1))
		if len(args) > 0 {
			pat := args[len(args)-1]
			if pat.Type().Kind() == types.ListKind {
				// a list argument multiplies the scans
				if n := cost.EstimateSize(e, pat); !n.IsUnknown() {
					c = n.MultiplyByCost(c)
				} else {
					c = cost.UnknownCostEstimate()
				}
			} else {
				psz := sizeOrMax(e, pat)
				pc, _ := cost.EstimateStringScan(psz)
				c = c.Add(pc)
				if function == "glob" || function == "iglob" {
					stars := psz
					if pat.Expr() != nil && pat.Expr().Kind() == celast.LiteralKind {
						if lit, ok := pat.Expr().AsLiteral().Value().(string); ok {
							stars = cost.FixedSizeEstimate(max(1, uint64(strings.Count(lit, "*"))))
						}
					}
					c = stars.MultiplyByCost(c)
				}
			}
		}
		return cost.NewCallEstimate(c, nil)
	}
	return nil
}

// sizeOrMax is the estimated size of n, or the largest string size when
// nothing better is known.
func sizeOrMax(e sizeEstimator, n cost.AstNode) cost.SizeEstimate {
	sz := cost.EstimateSize(e, n)
	if sz.IsUnknown() {
		return cost.RangedSizeEstimate(0, e.maxString())
	}
	return sz
}
