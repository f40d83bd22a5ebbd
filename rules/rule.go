package rules

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/musubi-xdr/musubi/ocsf"
)

// Kinds of rule files. Files of kind correlation belong to the correlation
// engine and are skipped by Load.
const (
	KindDetection   = "detection"
	KindCorrelation = "correlation"
)

// StatusExperimental is the status of a rule that runs in shadow mode (see
// Rule.Shadow).
const StatusExperimental = "experimental"

// Statuses a rule may have.
var Statuses = []string{"stable", "test", StatusExperimental, "deprecated"}

// Stages lists the kill-chain stages, in kill-chain order. They follow the
// ATT&CK enterprise tactics.
var Stages = []string{
	"reconnaissance", "resource_development", "initial_access", "execution",
	"persistence", "privilege_escalation", "defense_evasion", "credential_access",
	"discovery", "lateral_movement", "collection", "command_and_control",
	"exfiltration", "impact",
}

// StageOrder returns the position of a stage in Stages, or -1.
func StageOrder(stage string) int { return slices.Index(Stages, stage) }

// tacticNames maps ATT&CK enterprise tactic ids to their Navigator short
// names.
var tacticNames = map[string]string{
	"TA0043": "reconnaissance", "TA0042": "resource-development",
	"TA0001": "initial-access", "TA0002": "execution", "TA0003": "persistence",
	"TA0004": "privilege-escalation", "TA0005": "defense-evasion",
	"TA0006": "credential-access", "TA0007": "discovery",
	"TA0008": "lateral-movement", "TA0009": "collection",
	"TA0011": "command-and-control", "TA0010": "exfiltration", "TA0040": "impact",
}

var (
	idPattern        = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{2,127}$`)
	techniquePattern = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
)

// Rule is one compiled detection rule.
type Rule struct {
	ID          string
	Title       string
	Description string
	Status      string
	// Severity is an OCSF severity id.
	Severity int
	// Stage is the kill-chain stage (see Stages).
	Stage      string
	Tactics    []string // ATT&CK tactic ids (TA0006)
	Techniques []string // ATT&CK technique ids (T1552.005)
	Sources    Sources
	Condition  string
	// Entities are the observable kinds the alert carries; empty means all
	// observables of the event.
	Entities          []ocsf.Entity
	SuppressionKey    string
	SuppressionWindow time.Duration
	FalsePositives    []string
	References        []string
	Tests             []RuleTest
	// Meta is the Sigma-style metadata of the rule file, if any.
	Meta Meta

	// Version is a content hash of the rule's YAML document. Commit is the
	// git commit of the rule directory, when it is a git checkout.
	Version string
	Commit  string
	// File is the path of the rule file; Line the line the rule starts on.
	File string
	Line int

	prg        cel.Program
	fast       cel.Program // the untracked program, or nil; see untracked.go
	fastTier   int8        // the tier of untrackedTiers an event must be within for fast
	fastBound  uint64      // fast's worst-case cost on events within that tier (its strict estimate there)
	strict     uint64      // the strict estimate over the widest size hints; MaxUint64 when unbounded
	trackedWhy string      // why fast is nil (the strict estimate is unbounded, or above CostLimit over every tier)
	estimate   uint64      // the load-time worst-case estimate, checked against MaxEstimatedCost
	reads      uint8       // the variables the condition reads (readsEvent, …)
	suppress   cel.Program
	iterates   bool      // the condition has comprehensions: evaluate under a deadline
	pre        Prefilter // the condition's literal prerequisites, checked before it runs
	alertRev   string
	logNames   []string
	classUIDs  []int
	operations []string
	fields     []fieldRef // top-level attributes read and tested, for Lint
}

// Shadow reports whether the rule runs in shadow mode: an experimental
// rule's alerts are stored and counted, but never enter incidents and never
// reach webhooks.
func (r *Rule) Shadow() bool { return r.Status == StatusExperimental }

// AlertVersion is the version string alerts carry: the content hash, plus
// "@" and the short git commit when known.
func (r *Rule) AlertVersion() string { return r.alertRev }

// Sources says which events a rule can match. Every non-empty list must
// contain the event's value; the engine's index uses them so that an event
// meets only the rules that can match it.
type Sources struct {
	LogNames   []string `yaml:"log_names" json:"log_names,omitempty"`
	Classes    []int    `yaml:"classes" json:"classes,omitempty"`
	Operations []string `yaml:"operations" json:"operations,omitempty"`
}

// accepts reports whether ev passes the rule's source filter.
func (r *Rule) accepts(ev *ocsf.Event) bool {
	return (len(r.logNames) == 0 || slices.Contains(r.logNames, ev.Metadata.LogName)) &&
		(len(r.classUIDs) == 0 || slices.Contains(r.classUIDs, ev.ClassUID)) &&
		(len(r.operations) == 0 || slices.Contains(r.operations, ev.API.Operation))
}

// RuleTest is one inline test of a rule: an OCSF event and whether the rule
// must match it.
type RuleTest struct {
	Name  string
	Match bool
	Event ocsf.Event
	Line  int
	// Source is set when the test gave a raw record of that source
	// (Event is then the record as the ingest code normalized it).
	Source string
	// Excepted asserts that the condition matches the event and a tuning
	// exception covers the match (Match is then false: no alert).
	Excepted bool
}

// ruleDoc is the YAML shape of a rule file.
type ruleDoc struct {
	Kind        string      `yaml:"kind"`
	ID          string      `yaml:"id"`
	Title       string      `yaml:"title"`
	Description string      `yaml:"description"`
	Status      string      `yaml:"status"`
	Severity    string      `yaml:"severity"`
	Stage       string      `yaml:"stage"`
	Attack      attackDoc   `yaml:"attack"`
	Sources     Sources     `yaml:"sources"`
	Condition   string      `yaml:"condition"`
	Entities    []string    `yaml:"entities"`
	Suppression suppressDoc `yaml:"suppression"`
	FalsePos    []string    `yaml:"falsepositives"`
	References  []string    `yaml:"references"`
	Tests       []testDoc   `yaml:"tests"`

	// Sigma metadata, accepted so Sigma-style files and imported rules
	// load (see sigma_meta.go).
	Author   any      `yaml:"author" json:",omitempty"`
	Date     string   `yaml:"date" json:",omitempty"`
	Modified string   `yaml:"modified" json:",omitempty"`
	Tags     []string `yaml:"tags" json:",omitempty"`
	Level    string   `yaml:"level" json:",omitempty"`
	License  string   `yaml:"license" json:",omitempty"`
	SigmaID  string   `yaml:"sigma_id" json:",omitempty"`
}

type attackDoc struct {
	Tactics    []string `yaml:"tactics"`
	Techniques []string `yaml:"techniques"`
}

type suppressDoc struct {
	Key    string `yaml:"key"`
	Window string `yaml:"window"`
}

type testDoc struct {
	Name   string `yaml:"name"`
	Match  *bool  `yaml:"match"`
	Event  any    `yaml:"event"`
	Source string `yaml:"source"`
	Raw    any    `yaml:"raw"`
	// Excepted: the condition matches and an exception covers the match.
	Excepted bool `yaml:"excepted" json:",omitempty"`
}

// allowedKeys lists the keys each YAML mapping of a rule may have; anything
// else is an error (a misspelled key must not silently disable a feature).
var allowedKeys = map[string][]string{
	"": {"kind", "id", "title", "description", "status", "severity", "stage", "attack", "sources", "condition", "entities", "suppression", "falsepositives", "references", "tests",
		"author", "date", "modified", "tags", "level", "license", "sigma_id"},
	"attack":      {"tactics", "techniques"},
	"sources":     {"log_names", "classes", "operations"},
	"suppression": {"key", "window"},
	"tests[]":     {"name", "match", "event", "source", "raw", "excepted"},
}

// parseWindow parses a suppression window: a Go duration or a number of days
// ("1d").
func parseWindow(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && fmt.Sprint(n) == d {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(s)
}

// decodeEvent decodes a test event given as YAML into an OCSF event,
// rejecting unknown fields.
func decodeEvent(v any) (ocsf.Event, error) {
	var ev ocsf.Event
	b, err := json.Marshal(v)
	if err != nil {
		return ev, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ev, err
	}
	return ev, nil
}
