package incident

import "github.com/musubi-xdr/musubi/ocsf"

// Incident is a multi-stage incident graph: the alerts that belong together,
// the entities that tie them, and the edges that explain every link. Every
// change produces a new, higher Version (at least the wall clock in
// microseconds, so it also grows across restarts); storage keeps the
// highest. Everything else is derived from the input alone.
type Incident struct {
	ID        string `json:"id"`
	Version   uint64 `json:"version"`
	TenantUID string `json:"tenant_uid"`
	Title     string `json:"title"`
	// Severity is an OCSF severity id; RiskScore is 0–100.
	Severity  int    `json:"severity_id"`
	RiskScore int    `json:"risk_score"`
	Status    string `json:"status"`
	FirstSeen int64  `json:"first_seen"` // ms since epoch, event time
	LastSeen  int64  `json:"last_seen"`
	// Stages, Tactics and Techniques are in kill-chain order of first sight.
	Stages     []string        `json:"stages"`
	Tactics    []string        `json:"tactics"`
	Techniques []string        `json:"techniques"`
	Accounts   []string        `json:"accounts"`
	RuleIDs    []string        `json:"rule_ids"`
	AlertIDs   []string        `json:"alert_ids"`
	Nodes      []Node          `json:"nodes"`
	Edges      []Edge          `json:"edges"`
	Timeline   []TimelineEntry `json:"timeline"`
	// MergedInto names the incident this one was merged into, if any.
	MergedInto string `json:"merged_into,omitempty"`
	// Risk explains RiskScore when the incident's assets were scored
	// (package exposure): the correlator's part and each asset factor's
	// contribution. Nil when no inventory was consulted.
	Risk *RiskExplanation `json:"risk_explanation,omitempty"`
}

// RiskExplanation says how an incident's RiskScore is made: RiskScore is
// Correlation plus the Points of every factor, at most 100.
type RiskExplanation struct {
	// Correlation is the correlator's risk, from the alerts alone
	// (kill-chain coverage, tactics, sources, join confidence).
	Correlation int `json:"correlation"`
	// Factors are the asset factors found, each with what it adds.
	Factors []RiskFactor `json:"factors"`
	// InventoryAsOf is the time (ms since epoch) of the inventory the
	// factors were read from: the incident's first event.
	InventoryAsOf int64 `json:"inventory_as_of"`
	// InventoryTruncated: the tenant's inventory had more resources than
	// one read returns, so factors on the rest may be missing.
	InventoryTruncated bool `json:"inventory_truncated,omitempty"`
	// Unavailable says why the inventory could not be read; the score is
	// then the correlator's alone.
	Unavailable string `json:"unavailable,omitempty"`
}

// RiskFactor is one asset factor of an incident's risk.
type RiskFactor struct {
	// Name is the factor (internet_facing, imdsv1_allowed,
	// exploitable_vulnerability, role_writes_deployment_source,
	// production_target, crown_jewel, on_predicted_path).
	Name string `json:"name"`
	// Weight is the factor's weight, 0–100; Points what it adds to the
	// score: Weight scaled by the room the correlator's risk leaves.
	Weight int `json:"weight"`
	Points int `json:"points"`
	// Asset is the incident entity (kind:value) the factor was found on;
	// Evidence what the inventory shows.
	Asset    string `json:"asset"`
	Evidence string `json:"evidence"`
}

// NodeKind says whether a node is an entity or an alert.
type NodeKind string

// Node kinds.
const (
	NodeEntity NodeKind = "entity"
	NodeAlert  NodeKind = "alert"
)

// Node is one vertex of an incident graph, shaped for Grafana's Node Graph
// panel (id, title, subtitle, mainstat).
type Node struct {
	ID        string      `json:"id"`
	Kind      NodeKind    `json:"kind"`
	Entity    ocsf.Entity `json:"entity,omitempty"`
	Value     string      `json:"value"`
	Title     string      `json:"title"`
	Subtitle  string      `json:"subtitle,omitempty"`
	MainStat  string      `json:"mainstat,omitempty"`
	Severity  int         `json:"severity_id,omitempty"`
	FirstSeen int64       `json:"first_seen"`
}

// Edge is one link of an incident graph, with everything an analyst needs to
// trust it: the relation, the rule and version that made it, the join key, the
// event-time gap between its ends and the evidence events.
type Edge struct {
	ID          string   `json:"id"`
	Source      string   `json:"source"`
	Target      string   `json:"target"`
	Relation    string   `json:"relation"`
	RuleID      string   `json:"rule_id,omitempty"`
	RuleVersion string   `json:"rule_version,omitempty"`
	JoinKey     string   `json:"join_key,omitempty"`
	GapMS       int64    `json:"gap_ms"`
	Time        int64    `json:"time"`
	EventIDs    []string `json:"event_ids,omitempty"`
}

// TimelineEntry is one alert on the incident's timeline. With the alert's
// "observed" edges it carries everything the correlator needs to rebuild
// the alert after a restart when the alert itself is older than the
// restored window.
type TimelineEntry struct {
	Time     int64  `json:"time"`
	AlertID  string `json:"alert_id"`
	RuleID   string `json:"rule_id"`
	Title    string `json:"title"`
	Stage    string `json:"stage,omitempty"`
	Severity int    `json:"severity_id"`
	// RuleVersion, Source, Tactics, Techniques and Correlated are the
	// alert's.
	RuleVersion string   `json:"rule_version,omitempty"`
	Source      string   `json:"source,omitempty"`
	Tactics     []string `json:"tactics,omitempty"`
	Techniques  []string `json:"techniques,omitempty"`
	Correlated  bool     `json:"correlated,omitempty"`
	// Count is how many matches the alert folds; LastSeen is the time of
	// the latest.
	Count    int   `json:"count,omitempty"`
	LastSeen int64 `json:"last_seen,omitempty"`
	// Why says why the alert is in the incident: the links that joined it
	// to other alerts of the incident. Empty for the alert the incident
	// started from.
	Why []Reason `json:"why,omitempty"`
}

// Reason is one link that put an alert into its incident.
type Reason struct {
	// Relation is shared (an identical entity), lineage (a path of linked
	// entities), sequence (a stage of a correlation rule) or grouped (kept
	// together after the link expired).
	Relation string `json:"relation"`
	// Via is the other alert of the link.
	Via string `json:"via"`
	// Strength is strong (entities that name one actor or activity) or
	// weak (a place: a host, an address, an object); see join.go.
	Strength string `json:"strength,omitempty"`
	RuleID   string `json:"rule_id,omitempty"` // the correlation rule, for sequence
	JoinKey  string `json:"join_key,omitempty"`
	// GapMS is this alert's time less the other's.
	GapMS int64 `json:"gap_ms"`
	// Path lists the entities of a lineage link from this alert's side,
	// each with when and by which event its link was first seen.
	Path     []PathStep `json:"path,omitempty"`
	EventIDs []string   `json:"event_ids,omitempty"`
}

// PathStep is one entity of a lineage path.
type PathStep struct {
	Entity  string `json:"entity"` // node id, kind:value
	Time    int64  `json:"time"`   // when the link to it was first seen (ms)
	EventID string `json:"event_id,omitempty"`
}
