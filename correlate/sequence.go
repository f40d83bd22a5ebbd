package correlate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

// A correlation rule file (kind: correlation) in YAML:
//
//	kind: correlation
//	id: chain.instance_credentials_to_deployment   # stable, [a-z0-9_.-]
//	version: "1"
//	title: Stolen instance credentials shipped a deployment
//	severity: critical            # of the correlated alert
//	stage: impact
//	attack: {tactics: [TA0006, TA0008], techniques: [T1552.005, T1072]}
//	span: 6h                      # first to last stage, at most
//	stages:
//	  - name: stolen
//	    alert: alert.stage == "credential_access"      # CEL over the alert
//	    key: {entity: instance}                        # what the next stage matches
//	  - name: used
//	    alert: alert.rule_id.startsWith("guardduty.")
//	    on: {entity: instance, name: "*session*"}      # equals the previous key
//	    key: {entity: access_key}                      # hand-off on a different field
//	    max_gap: 2h
//	  - name: deployed
//	    event: event.api.operation == "CreateDeployment" # CEL over an OCSF event
//	    operations: [CreateDeployment]                 # optional prefilter
//	    on: {entity: object}
//	    key: {entity: deployment}
//	  - name: threshold example
//	    alert: alert.stage == "impact"
//	    on: {entity: deployment}
//	    count: 2                                       # at least 2 matches ...
//	    distinct: {entity: host}                       # ... with 2 distinct hosts
//	    within: 30m                                    # inside 30 minutes
//	  - name: absence example
//	    event: event.api.operation == "StopDeployment"
//	    on: {entity: deployment}
//	    absent: true                                   # fire if none within 1h
//	    within: 1h
//
// A field spec picks values from an alert's entities or an event's
// observables: entity (an ocsf.Entity kind) and/or name (the attribute the
// value was found in; * is a wildcard). A stage without on matches the
// previous stage on the previous stage's key spec (A.x = B.x); a stage
// without key hands its on values to the next. Only the last stage may be
// absent. Unknown keys are errors.
type ruleFile struct {
	Kind        string      `yaml:"kind"`
	ID          string      `yaml:"id"`
	Version     string      `yaml:"version"`
	Title       string      `yaml:"title"`
	Description string      `yaml:"description"`
	Status      string      `yaml:"status"`
	Severity    string      `yaml:"severity"`
	Stage       string      `yaml:"stage"`
	Attack      attackSpec  `yaml:"attack"`
	Span        string      `yaml:"span"`
	Stages      []stageSpec `yaml:"stages"`
	References  []string    `yaml:"references"`
}

type attackSpec struct {
	Tactics    []string `yaml:"tactics"`
	Techniques []string `yaml:"techniques"`
}

type stageSpec struct {
	Name       string     `yaml:"name"`
	Alert      string     `yaml:"alert"`
	Event      string     `yaml:"event"`
	LogNames   []string   `yaml:"log_names"`
	Operations []string   `yaml:"operations"`
	On         *FieldSpec `yaml:"on"`
	Key        *FieldSpec `yaml:"key"`
	MaxGap     string     `yaml:"max_gap"`
	Count      int        `yaml:"count"`
	Distinct   *FieldSpec `yaml:"distinct"`
	Within     string     `yaml:"within"`
	Absent     bool       `yaml:"absent"`
}

// FieldSpec selects values of an alert's entities or an event's
// observables by entity kind and/or attribute name (glob with *).
type FieldSpec struct {
	Entity ocsf.Entity `yaml:"entity" json:"entity,omitempty"`
	Name   string      `yaml:"name" json:"name,omitempty"`
}

func (f *FieldSpec) String() string {
	if f == nil {
		return "tenant"
	}
	switch {
	case f.Entity != "" && f.Name != "":
		return string(f.Entity) + "@" + f.Name
	case f.Entity != "":
		return string(f.Entity)
	}
	return f.Name
}

func (f *FieldSpec) values(obs []ocsf.Observable) []string {
	if f == nil {
		return []string{""}
	}
	var out []string
	for _, o := range obs {
		if o.Value == "" || (f.Entity != "" && o.Entity != f.Entity) || (f.Name != "" && !rules.Glob(o.Name, f.Name)) {
			continue
		}
		if !slices.Contains(out, o.Value) {
			out = append(out, o.Value)
		}
	}
	return out
}

// SequenceRule is a compiled correlation rule.
type SequenceRule struct {
	ID          string
	Version     string
	Title       string
	Description string
	Severity    int
	Stage       string
	Tactics     []string
	Techniques  []string
	// Span bounds first to last stage in event time (0: the sum of the gaps).
	Span   time.Duration
	Stages []*SequenceStage
	File   string
}

// SequenceStage is one compiled stage.
type SequenceStage struct {
	Name       string
	OnAlerts   bool // the condition is over alerts, else over events
	Expr       string
	LogNames   []string
	Operations []string
	On, Key    *FieldSpec
	MaxGap     time.Duration
	Count      int
	Distinct   *FieldSpec
	Within     time.Duration
	Absent     bool
	prg        cel.Program
	// pre is what an event must carry for the condition to hold, checked
	// before the program runs (event stages only).
	pre rules.Prefilter
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// alertFields are the fields of `alert` in stage conditions.
var alertFields = []string{"id", "tenant_uid", "rule_id", "rule_version", "title", "severity", "severity_id", "stage",
	"tactics", "techniques", "time", "account_uid", "region", "source", "entities", "event_ids", "correlated", "summary"}

var alertSelect = regexp.MustCompile(`\balert\.([A-Za-z_][A-Za-z0-9_]*)`)

// celEnv is the detection rules' environment plus `alert`, built once:
// `event` is the typed OCSF event, `alert` a map of the alert's fields.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return rules.NewEnv(cel.Variable("alert", cel.MapType(cel.StringType, cel.DynType)))
})

// LoadRules loads every correlation rule (files whose documents say
// kind: correlation) under dir, recursively; hidden entries and testdata
// folders below dir are skipped. It returns every problem at once.
func LoadRules(dir string) ([]*SequenceRule, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("correlate: CEL environment: %w", err)
	}
	var out []*SequenceRule
	var errs []error
	seen := map[string]string{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && (strings.HasPrefix(name, ".") || (d.IsDir() && name == "testdata")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		rs, perr := parseRules(env, path, data)
		errs = append(errs, perr...)
		for _, r := range rs {
			if other, dup := seen[r.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: rule %s: id already used in %s", path, r.ID, other))
				continue
			}
			seen[r.ID] = path
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	slices.SortFunc(out, func(a, b *SequenceRule) int { return strings.Compare(a.ID, b.ID) })
	return out, errors.Join(errs...)
}

// ParseRules compiles the correlation rules of one YAML file's contents;
// documents of other kinds are skipped.
func ParseRules(file string, data []byte) ([]*SequenceRule, error) {
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	rs, errs := parseRules(env, file, data)
	return rs, errors.Join(errs...)
}

func parseRules(env *cel.Env, file string, data []byte) ([]*SequenceRule, []error) {
	var out []*SequenceRule
	var errs []error
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var node yaml.Node
		if err := dec.Decode(&node); err != nil {
			if !errors.Is(err, io.EOF) {
				errs = append(errs, fmt.Errorf("%s: %w", file, err))
			}
			break
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		_ = node.Decode(&head)
		if head.Kind != "correlation" {
			continue
		}
		var rf ruleFile
		// Strict: re-encode the node and decode with known fields only.
		b, _ := yaml.Marshal(&node)
		sd := yaml.NewDecoder(bytes.NewReader(b))
		sd.KnownFields(true)
		if err := sd.Decode(&rf); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, node.Line, err))
			continue
		}
		r, rerrs := compileRule(env, file, node.Line, rf)
		errs = append(errs, rerrs...)
		if r != nil {
			out = append(out, r)
		}
	}
	return out, errs
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && fmt.Sprint(n) == d {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(s)
}

func compileRule(env *cel.Env, file string, line int, rf ruleFile) (*SequenceRule, []error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: rule %s: %s", file, line, rf.ID, fmt.Sprintf(format, args...)))
	}
	if !idPattern.MatchString(rf.ID) {
		bad("id must match %s", idPattern)
	}
	if rf.Title == "" {
		bad("title is required")
	}
	if rf.Version == "" {
		rf.Version = "1"
	}
	sev, ok := ocsf.SeverityID(rf.Severity)
	if !ok || sev < ocsf.SeverityInformational || sev > ocsf.SeverityCritical {
		bad("severity %q must be informational, low, medium, high or critical", rf.Severity)
	}
	span, err := parseDuration(rf.Span)
	if err != nil || span < 0 {
		bad("span %q: not a duration", rf.Span)
	}
	if len(rf.Stages) == 0 {
		bad("at least one stage is required")
	}
	r := &SequenceRule{ID: rf.ID, Version: rf.Version, Title: rf.Title, Description: rf.Description, Severity: sev,
		Stage: rf.Stage, Tactics: rf.Attack.Tactics, Techniques: rf.Attack.Techniques, Span: span, File: file}
	for i, sp := range rf.Stages {
		st := &SequenceStage{Name: sp.Name, LogNames: sp.LogNames, Operations: sp.Operations, On: sp.On, Key: sp.Key,
			Count: sp.Count, Distinct: sp.Distinct, Absent: sp.Absent}
		where := fmt.Sprintf("stage %d (%s)", i+1, sp.Name)
		if st.Name == "" {
			st.Name = fmt.Sprintf("stage%d", i+1)
		}
		switch {
		case sp.Alert != "" && sp.Event != "":
			bad("%s: alert and event are exclusive", where)
		case sp.Alert != "":
			st.OnAlerts, st.Expr = true, sp.Alert
			for _, m := range alertSelect.FindAllStringSubmatch(sp.Alert, -1) {
				if !slices.Contains(alertFields, m[1]) {
					bad("%s: alert has no field %q (fields: %s)", where, m[1], strings.Join(alertFields, ", "))
				}
			}
		case sp.Event != "":
			st.Expr = sp.Event
		default:
			bad("%s: alert or event condition is required", where)
		}
		for _, f := range []*FieldSpec{sp.On, sp.Key, sp.Distinct} {
			if f != nil && ((f.Entity == "" && f.Name == "") || (f.Entity != "" && !f.Entity.Valid())) {
				bad("%s: field spec needs a known entity kind and/or a name, got %q/%q", where, f.Entity, f.Name)
			}
		}
		if st.MaxGap, err = parseDuration(sp.MaxGap); err != nil || st.MaxGap < 0 {
			bad("%s: max_gap %q: not a duration", where, sp.MaxGap)
		}
		if st.Within, err = parseDuration(sp.Within); err != nil || st.Within < 0 {
			bad("%s: within %q: not a duration", where, sp.Within)
		}
		if st.Count < 0 || (st.Count > 1 || st.Distinct != nil) && st.Within == 0 {
			bad("%s: a threshold (count, distinct) needs a positive count and within", where)
		}
		if st.Distinct != nil && st.Count < 1 {
			st.Count = 2
		}
		if st.Absent {
			if i == 0 || i != len(rf.Stages)-1 {
				bad("%s: only the last stage (not the first) may be absent", where)
			}
			if st.Within == 0 {
				bad("%s: an absent stage needs within", where)
			}
			if st.Count > 1 {
				bad("%s: an absent stage cannot have a threshold", where)
			}
		}
		if i > 0 && st.On == nil {
			st.On = r.Stages[i-1].Key
		}
		if st.Key == nil {
			st.Key = st.On
		}
		if i > 0 && st.MaxGap == 0 && !st.Absent {
			st.MaxGap = span
		}
		if st.Expr != "" {
			ast, iss := env.Compile(st.Expr)
			if iss.Err() != nil {
				bad("%s: %v", where, iss.Err())
			} else if !ast.OutputType().IsExactType(cel.BoolType) {
				bad("%s: condition must be bool, got %s", where, ast.OutputType())
			} else if st.prg, err = env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(rules.CostLimit), cel.InterruptCheckFrequency(64)); err != nil {
				bad("%s: %v", where, err)
			} else if !st.OnAlerts {
				st.pre = rules.NewPrefilter(ast.NativeRep())
			}
		}
		r.Stages = append(r.Stages, st)
	}
	if r.Span == 0 {
		for _, st := range r.Stages {
			r.Span += max(st.MaxGap, st.Within)
		}
		if r.Span == 0 {
			bad("span or per-stage max_gap is required")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// alertActivation is the `alert` variable of a stage condition.
func alertActivation(a *alert.Alert) map[string]any {
	ents := make([]any, 0, len(a.Entities))
	for _, o := range a.Entities {
		ents = append(ents, map[string]any{"name": o.Name, "entity": string(o.Entity), "value": o.Value, "type": o.Type})
	}
	return map[string]any{"alert": map[string]any{
		"id": a.ID, "tenant_uid": a.TenantUID, "rule_id": a.RuleID, "rule_version": a.RuleVersion, "title": a.Title,
		"severity": int64(a.Severity), "severity_id": int64(a.Severity), "stage": a.Stage,
		"tactics": orEmpty(a.Tactics), "techniques": orEmpty(a.Techniques), "time": a.Time,
		"account_uid": a.AccountUID, "region": a.Region, "source": a.Source, "entities": ents,
		"event_ids": orEmpty(a.EventIDs), "correlated": a.Correlated, "summary": a.Summary,
	}}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// eventActivation is `event` (typed) with request and response bodies.
// eventActivation is what an event stage's condition sees. The request and
// response bodies are decoded only if the condition reads them (cel-go
// resolves func values lazily): most events meet conditions that never do.
func eventActivation(ev *ocsf.Event) map[string]any {
	return map[string]any{"event": ev,
		"request":  func() any { return jsonBody(ev.API.Request.Data) },
		"response": func() any { return jsonBody(ev.API.Response.Data) }}
}

func jsonBody(raw json.RawMessage) map[string]any {
	m := map[string]any{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &m)
	}
	return m
}
