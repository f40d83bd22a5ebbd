package alert

import "github.com/musubi-xdr/musubi/ocsf"

// Alert is what a detection or correlation rule raises: an OCSF Detection
// Finding in Musubi's shape. Its ID is deterministic (rule id and evidence),
// so re-processing the same events after a crash yields the same alert.
type Alert struct {
	ID          string `json:"id"`
	TenantUID   string `json:"tenant_uid"`
	RuleID      string `json:"rule_id"`
	RuleVersion string `json:"rule_version"`
	Title       string `json:"title"`
	// Severity is an OCSF severity id (1 informational … 5 critical).
	Severity int `json:"severity_id"`
	// Stage is the kill-chain stage the rule detects (initial_access,
	// discovery, credential_access, ...).
	Stage      string   `json:"stage,omitempty"`
	Tactics    []string `json:"tactics,omitempty"`    // ATT&CK tactic ids, e.g. TA0006
	Techniques []string `json:"techniques,omitempty"` // ATT&CK technique ids, e.g. T1552.005
	// Time is the event time of the (last) evidence event, ms since epoch.
	Time       int64  `json:"time"`
	AccountUID string `json:"account_uid,omitempty"`
	Region     string `json:"region,omitempty"`
	// Source is the log name of the evidence (cloudtrail, agent, ...).
	Source string `json:"source,omitempty"`
	// Entities are the observables the alert carries and may be joined on.
	Entities []ocsf.Observable `json:"entities,omitempty"`
	// EventIDs are the metadata.uid of the evidence events, oldest first.
	EventIDs []string `json:"event_ids"`
	// Correlated is set on alerts raised by correlation rules.
	Correlated bool `json:"correlated,omitempty"`
	// Shadow is set on alerts of experimental rules, which run in shadow
	// mode: the alert is stored and counted ("would have fired"), but it
	// never enters an incident, the alert queue or a webhook.
	Shadow  bool   `json:"shadow,omitempty"`
	Summary string `json:"summary,omitempty"`
	// Count is how many matches of the rule on the same entities within
	// the correlator's fold window this alert stands for (0 or 1: one).
	// FirstSeen and LastSeen are the event times of the earliest and the
	// latest of them, ms since epoch; EventIDs then holds a bounded sample
	// of their evidence (the earliest and the latest).
	Count     int   `json:"count,omitempty"`
	FirstSeen int64 `json:"first_seen,omitempty"`
	LastSeen  int64 `json:"last_seen,omitempty"`
	// Keyed is set when the rule's suppression named the alert (its id is
	// the suppression key and window, whichever match came first): the
	// correlator keeps that id instead of folding it, so the id does not
	// depend on which match arrived first.
	Keyed bool `json:"-"`
	// Origins are where the alert's input was read from, for counting a
	// match replayed after a crash once. A detection alert carries the
	// position of the record its event came from (none when its input has
	// no ordered positions, such as files); a folded alert carries, per
	// topic and partition, the highest position among the matches it
	// counted.
	Origins []Origin `json:"-"`
	// Unheld is set on an alert the correlator stores as informational
	// because its source is expected (an instance role used from the
	// instance's own address): the severity and summary its rule gave it,
	// which it takes back when later evidence releases it into an
	// incident, also after a restart.
	Unheld *Unheld `json:"-"`
}

// Unheld is what a held alert's rule gave it.
type Unheld struct {
	Severity int
	Summary  string
}

// Origin is a position in an ordered input: a Kafka topic, partition and
// offset.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}
