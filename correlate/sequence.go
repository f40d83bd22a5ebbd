package correlate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
//	status: test                  # stable | test | experimental (shadow mode)
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
	// Status is stable, test or experimental ("" reads as stable); see
	// Shadow.
	Status string
	// Span bounds first to last stage in event time (0: the sum of the gaps).
	Span   time.Duration
	Stages []*SequenceStage
	// File and Line locate the rule.
	File string
	Line int

	// sum is a content hash of the rule's document: a reload keeps the
	// in-flight state of a rule whose document did not change.
	sum string
}

// Shadow reports whether the rule runs in shadow mode, like an
// experimental detection rule: its correlated alerts are stored with
// alert.Alert.Shadow and counted, but never join or open an incident, so
// they never reach a webhook or the queues.
func (r *SequenceRule) Shadow() bool { return r.Status == rules.StatusExperimental }

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
	cond       *rules.Condition
	alertPre   alertFilter // of an alert condition
	// alertReads are the fields of `alert` the condition reads; with
	// alertAll it needs every field.
	alertReads []string
	alertAll   bool
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
// kind: correlation) under dir, read by rules.ReadDir — the one walker of
// rule directories: recursively, following symbolic links, skipping hidden
// entries and testdata folders. It returns every problem at once, each a
// *rules.Problem located as file:line:col.
func LoadRules(dir string) ([]*SequenceRule, error) {
	files, err := rules.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	return LoadFiles(files)
}

// LoadFiles compiles the correlation rules of files already read; documents
// of other kinds are skipped. A rule id used twice is a problem.
func LoadFiles(files []rules.File) ([]*SequenceRule, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("correlate: CEL environment: %w", err)
	}
	var out []*SequenceRule
	var errs []error
	seen := map[string]string{}
	for _, f := range files {
		rs, perr := parseRules(env, f.Path, f.Data)
		errs = append(errs, perr...)
		for _, r := range rs {
			if other, dup := seen[r.ID]; dup {
				errs = append(errs, &rules.Problem{File: f.Path, Line: r.Line, Col: 1, RuleID: r.ID, Msg: "duplicate rule id (first defined in " + other + ")"})
				continue
			}
			seen[r.ID] = fmt.Sprintf("%s:%d", f.Path, r.Line)
			out = append(out, r)
		}
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
	lines := strings.Split(string(data), "\n")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if !errors.Is(err, io.EOF) {
				errs = append(errs, rules.YAMLProblem(file, err))
			}
			break
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue // not a rule; the detection loader reports it
		}
		root := doc.Content[0]
		var head struct {
			Kind string `yaml:"kind"`
			ID   string `yaml:"id"`
		}
		_ = root.Decode(&head)
		if head.Kind != rules.KindCorrelation {
			continue
		}
		if probs := rules.StrictKeys(file, head.ID, root, ruleFile{}); len(probs) > 0 {
			errs = append(errs, probs...)
			continue
		}
		var rf ruleFile
		if p := rules.DecodeDoc(file, head.ID, root, &rf); p != nil {
			errs = append(errs, p)
			continue
		}
		r, rerrs := compileRule(env, file, lines, root, rf)
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

func compileRule(env *cel.Env, file string, lines []string, root *yaml.Node, rf ruleFile) (*SequenceRule, []error) {
	var errs []error
	// at reports a problem at node n, or at the rule when n is nil.
	at := func(n *yaml.Node, format string, args ...any) {
		p := &rules.Problem{File: file, Line: root.Line, Col: root.Column, RuleID: rf.ID, Msg: fmt.Sprintf(format, args...)}
		if n != nil {
			p.Line, p.Col = n.Line, n.Column
		}
		errs = append(errs, p)
	}
	if !idPattern.MatchString(rf.ID) {
		at(rules.MapValue(root, "id"), "id must match %s", idPattern)
	}
	if rf.Title == "" {
		at(rules.MapValue(root, "title"), "title is required")
	}
	if rf.Version == "" {
		rf.Version = "1"
	}
	sev, ok := ocsf.SeverityID(rf.Severity)
	if !ok || sev < ocsf.SeverityInformational || sev > ocsf.SeverityCritical {
		at(rules.MapValue(root, "severity"), "severity %q must be informational, low, medium, high or critical", rf.Severity)
	}
	switch rf.Status {
	case "", "stable", "test", rules.StatusExperimental:
	case "deprecated":
		at(rules.MapValue(root, "status"), "status deprecated is not supported for correlation rules: delete the rule, or make it experimental to keep it in shadow mode")
	default:
		at(rules.MapValue(root, "status"), "status %q must be stable, test or experimental (shadow mode)", rf.Status)
	}
	span, err := parseDuration(rf.Span)
	if err != nil || span < 0 {
		at(rules.MapValue(root, "span"), "span %q: not a duration", rf.Span)
	}
	if len(rf.Stages) == 0 {
		at(rules.MapValue(root, "stages"), "at least one stage is required")
	}
	sum, _ := json.Marshal(rf)
	h := sha256.Sum256(sum)
	r := &SequenceRule{ID: rf.ID, Version: rf.Version, Title: rf.Title, Description: rf.Description, Severity: sev,
		Stage: rf.Stage, Tactics: rf.Attack.Tactics, Techniques: rf.Attack.Techniques, Status: rf.Status, Span: span, File: file,
		Line: root.Line, sum: hex.EncodeToString(h[:])}
	stagesNode := rules.MapValue(root, "stages")
	for i, sp := range rf.Stages {
		var sn *yaml.Node
		if stagesNode != nil && i < len(stagesNode.Content) {
			sn = stagesNode.Content[i]
		}
		st := &SequenceStage{Name: sp.Name, LogNames: sp.LogNames, Operations: sp.Operations, On: sp.On, Key: sp.Key,
			Count: sp.Count, Distinct: sp.Distinct, Absent: sp.Absent}
		where := fmt.Sprintf("stage %d (%s)", i+1, sp.Name)
		bad := func(key, format string, args ...any) {
			n := rules.MapValue(sn, key)
			if n == nil {
				n = sn
			}
			at(n, where+": "+format, args...)
		}
		if st.Name == "" {
			st.Name = fmt.Sprintf("stage%d", i+1)
		}
		exprKey := ""
		switch {
		case sp.Alert != "" && sp.Event != "":
			bad("event", "alert and event are exclusive")
		case sp.Alert != "":
			st.OnAlerts, st.Expr, exprKey = true, sp.Alert, "alert"
			for _, m := range alertSelect.FindAllStringSubmatch(sp.Alert, -1) {
				if !slices.Contains(alertFields, m[1]) {
					bad("alert", "alert has no field %q (fields: %s)", m[1], strings.Join(alertFields, ", "))
				}
			}
		case sp.Event != "":
			st.Expr, exprKey = sp.Event, "event"
		default:
			bad("", "alert or event condition is required")
		}
		for key, f := range map[string]*FieldSpec{"on": sp.On, "key": sp.Key, "distinct": sp.Distinct} {
			if f != nil && ((f.Entity == "" && f.Name == "") || (f.Entity != "" && !f.Entity.Valid())) {
				bad(key, "field spec needs a known entity kind and/or a name, got %q/%q", f.Entity, f.Name)
			}
		}
		if st.MaxGap, err = parseDuration(sp.MaxGap); err != nil || st.MaxGap < 0 {
			bad("max_gap", "max_gap %q: not a duration", sp.MaxGap)
		}
		if st.Within, err = parseDuration(sp.Within); err != nil || st.Within < 0 {
			bad("within", "within %q: not a duration", sp.Within)
		}
		if st.Count < 0 || (st.Count > 1 || st.Distinct != nil) && st.Within == 0 {
			bad("count", "a threshold (count, distinct) needs a positive count and within")
		}
		if st.Distinct != nil && st.Count < 1 {
			st.Count = 2
		}
		if st.Absent {
			if i == 0 || i != len(rf.Stages)-1 {
				bad("absent", "only the last stage (not the first) may be absent")
			}
			if st.Within == 0 {
				bad("absent", "an absent stage needs within")
			}
			if st.Count > 1 {
				bad("absent", "an absent stage cannot have a threshold")
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
			// The same compiler, bounds and program options as a
			// detection rule's condition.
			cond, probs := rules.CompileCondition(env, st.Expr, rules.ExprAt{
				File: file, RuleID: rf.ID, What: where, Node: rules.MapValue(sn, exprKey), Lines: lines})
			errs = append(errs, probs...)
			st.cond = cond
			if st.OnAlerts && cond != nil {
				// It compiled, so it parses.
				if ast, iss := env.Parse(st.Expr); iss.Err() == nil {
					e := ast.NativeRep().Expr()
					st.alertPre = newAlertFilter(e)
					var only bool
					st.alertReads, only = alertReads(e)
					st.alertAll = !only
				} else {
					st.alertAll = true
				}
			}
		}
		r.Stages = append(r.Stages, st)
	}
	if r.Span == 0 {
		for _, st := range r.Stages {
			r.Span += max(st.MaxGap, st.Within)
		}
		if r.Span == 0 {
			at(rules.MapValue(root, "span"), "span or per-stage max_gap is required")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// alertActivation is the `alert` variable of a stage condition: the
// fields in reads, or every field when all is set (building every field
// for every alert was most of what sequence rules allocated, see bench/stage
// BenchmarkCorrelate).
func alertActivation(a *alert.Alert, reads []string, all bool) map[string]any {
	n := len(reads)
	if all {
		n = len(alertFields)
	}
	m := make(map[string]any, n)
	for _, f := range alertFields {
		if !all && !slices.Contains(reads, f) {
			continue
		}
		switch f {
		case "id":
			m[f] = a.ID
		case "tenant_uid":
			m[f] = a.TenantUID
		case "rule_id":
			m[f] = a.RuleID
		case "rule_version":
			m[f] = a.RuleVersion
		case "title":
			m[f] = a.Title
		case "severity", "severity_id":
			m[f] = int64(a.Severity)
		case "stage":
			m[f] = a.Stage
		case "tactics":
			m[f] = orEmpty(a.Tactics)
		case "techniques":
			m[f] = orEmpty(a.Techniques)
		case "time":
			m[f] = a.Time
		case "account_uid":
			m[f] = a.AccountUID
		case "region":
			m[f] = a.Region
		case "source":
			m[f] = a.Source
		case "entities":
			ents := make([]any, 0, len(a.Entities))
			for _, o := range a.Entities {
				ents = append(ents, map[string]any{"name": o.Name, "entity": string(o.Entity), "value": o.Value, "type": o.Type})
			}
			m[f] = ents
		case "event_ids":
			m[f] = orEmpty(a.EventIDs)
		case "correlated":
			m[f] = a.Correlated
		case "summary":
			m[f] = a.Summary
		}
	}
	return map[string]any{"alert": m}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mayMatchEvent reports whether the stage may match the plain event ev: it
// is an event stage whose sources, operations and literal prerequisites
// admit ev. Only then is its condition evaluated.
func (st *SequenceStage) mayMatchEvent(ev *ocsf.Event) bool {
	return !st.OnAlerts && (len(st.LogNames) == 0 || slices.Contains(st.LogNames, ev.Metadata.LogName)) &&
		(len(st.Operations) == 0 || slices.Contains(st.Operations, ev.API.Operation)) && (st.cond == nil || st.cond.Admits(ev))
}

// Cost reports the static cost and the gating of each stage condition of
// the rule, for `musubi rules lint -cost`. An alert stage's condition runs
// for every alert of its log names (alerts have no prefilter).
func (r *SequenceRule) Cost() []rules.RuleCost {
	var out []rules.RuleCost
	for i, st := range r.Stages {
		if st.cond == nil {
			continue
		}
		name := st.Name
		if name == "" {
			name = fmt.Sprintf("stage %d", i+1)
		}
		c := st.cond.Cost(r.ID, name, r.File, r.Line, st.LogNames, st.Operations)
		if st.OnAlerts {
			c.Prefiltered, c.Prefilter = false, nil
			c.Gate = "evaluated for every alert"
			if len(st.LogNames) > 0 {
				c.Gate += " of log " + strings.Join(st.LogNames, "/")
			}
		}
		out = append(out, c)
	}
	return out
}
