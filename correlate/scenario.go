package correlate

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Expectation is a scenario's expected.json: the multi-stage incident its
// telemetry must produce and the benign activity that must stay low.
// `musubi rules test -scenarios` and the correlator's own tests check
// scenarios against it.
type Expectation struct {
	Description string `json:"description"`
	// HubIPs are configured as hub addresses for the replay, as an operator
	// would configure a shared NAT address.
	HubIPs []string `json:"hub_ips"`
	// HighIncidents is how many open incidents of at least
	// Attack.MinSeverity the scenario produces.
	HighIncidents int `json:"high_incidents"`
	Attack        struct {
		MinSeverity int `json:"min_severity"`
		// Entities are node ids ("kind:value") the attack incident holds;
		// the first one identifies it.
		Entities []string `json:"entities"`
		// Stages appear in this order among the incident's stages (others
		// may come between).
		Stages           []string `json:"stages"`
		CorrelationRules []string `json:"correlation_rules"`
		NotEntities      []string `json:"not_entities"`
	} `json:"attack"`
	Benign struct {
		// Entities of benign activity, whose incidents stay at or below
		// MaxSeverity.
		Entities    []string `json:"entities"`
		MaxSeverity int      `json:"max_severity"`
	} `json:"benign"`
}

// LoadExpectation reads an expected.json.
func LoadExpectation(path string) (Expectation, error) {
	var x Expectation
	data, err := os.ReadFile(path)
	if err != nil {
		return x, err
	}
	if err := json.Unmarshal(data, &x); err != nil {
		return x, fmt.Errorf("%s: %w", path, err)
	}
	if len(x.Attack.Entities) == 0 {
		return x, fmt.Errorf("%s: attack.entities is empty", path)
	}
	return x, nil
}

// Check returns every way the latest incident versions differ from the
// expectation; none means the scenario passed. Merged-away incidents are
// ignored.
func (x Expectation) Check(incidents []incident.Incident) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var attack *incident.Incident
	high := 0
	for i := range incidents {
		in := &incidents[i]
		if in.MergedInto != "" {
			continue
		}
		if in.Severity >= x.Attack.MinSeverity {
			high++
		}
		if slices.Contains(nodeIDs(in), x.Attack.Entities[0]) {
			attack = in
		}
	}
	if high != x.HighIncidents {
		bad("got %d incidents of severity >= %d, want %d", high, x.Attack.MinSeverity, x.HighIncidents)
	}
	if attack == nil {
		bad("no incident holds %s", x.Attack.Entities[0])
		return problems
	}
	if attack.Severity < x.Attack.MinSeverity {
		bad("attack incident severity %s, want at least %s", ocsf.SeverityName(attack.Severity), ocsf.SeverityName(x.Attack.MinSeverity))
	}
	nodes := nodeIDs(attack)
	for _, e := range x.Attack.Entities {
		if !slices.Contains(nodes, e) {
			bad("attack incident lacks entity %s", e)
		}
	}
	for _, e := range x.Attack.NotEntities {
		if slices.Contains(nodes, e) {
			bad("attack incident holds %s, which belongs to unrelated activity", e)
		}
	}
	i := 0
	for _, s := range attack.Stages {
		if i < len(x.Attack.Stages) && s == x.Attack.Stages[i] {
			i++
		}
	}
	if i < len(x.Attack.Stages) {
		bad("attack incident stages %v do not contain %v in order", attack.Stages, x.Attack.Stages)
	}
	for _, r := range x.Attack.CorrelationRules {
		if !slices.Contains(attack.RuleIDs, r) {
			bad("correlation rule %s did not contribute to the attack incident (rules %v)", r, attack.RuleIDs)
		}
	}
	for i := range incidents {
		in := &incidents[i]
		if in.MergedInto != "" {
			continue
		}
		ids := nodeIDs(in)
		for _, e := range x.Benign.Entities {
			if slices.Contains(ids, e) && in.Severity > x.Benign.MaxSeverity {
				bad("benign %s is in incident %q of severity %s", e, in.Title, ocsf.SeverityName(in.Severity))
			}
		}
	}
	return problems
}

// nodeIDs returns the ids of an incident's nodes ("kind:value" for entities).
func nodeIDs(in *incident.Incident) []string {
	ids := make([]string, 0, len(in.Nodes))
	for _, n := range in.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}
