package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Truth is a scenario's expected.json as the scorecard reads it. It is a
// superset of correlate.Expectation (the format `musubi rules test
// -scenarios` checks): every field added here is optional, so a hand-written
// expectation scores as it is, and a generated one still loads there when
// it has an attack.
type Truth struct {
	Description string `json:"description"`
	// Variant and Seed name how a generated scenario was made.
	Variant string `json:"variant,omitempty"`
	Seed    uint64 `json:"seed,omitempty"`
	// HubIPs are configured as hub addresses for the replay, as an operator
	// would configure a shared NAT address.
	HubIPs        []string `json:"hub_ips"`
	HighIncidents *int     `json:"high_incidents,omitempty"`
	// Attack is the multi-stage attack that must be found as one incident;
	// nil on a benign-only day.
	Attack *Attack `json:"attack,omitempty"`
	// Unrelated are attacks that must each be found in an incident of their
	// own, holding none of Attack's entities.
	Unrelated []Unrelated `json:"unrelated,omitempty"`
	Benign    Benign      `json:"benign"`
}

// Attack is the ground truth of the main attack.
type Attack struct {
	MinSeverity int `json:"min_severity"`
	// Entities are node ids ("kind:value") that one incident of at least
	// MinSeverity must hold.
	Entities         []string `json:"entities"`
	Stages           []string `json:"stages,omitempty"`
	CorrelationRules []string `json:"correlation_rules,omitempty"`
	NotEntities      []string `json:"not_entities,omitempty"`
	// EventUIDs are the metadata.uid of every event the attack caused; when
	// present, the purity of the attack incident is measured.
	EventUIDs []string `json:"event_uids,omitempty"`
}

// Unrelated is an attack that has nothing to do with the main one.
type Unrelated struct {
	Name        string   `json:"name"`
	MinSeverity int      `json:"min_severity"`
	Entities    []string `json:"entities"`
	EventUIDs   []string `json:"event_uids,omitempty"`
}

// Benign lists entities of benign activity that must never be in a high
// or critical incident.
type Benign struct {
	Entities    []string `json:"entities"`
	MaxSeverity int      `json:"max_severity,omitempty"`
}

// LoadTruth reads and validates an expected.json.
func LoadTruth(path string) (Truth, error) {
	var t Truth
	data, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Validate reports every inconsistency of the truth.
func (t Truth) Validate() error {
	var errs []error
	if t.Attack != nil {
		if len(t.Attack.Entities) == 0 {
			errs = append(errs, errors.New("attack.entities is empty"))
		}
		if t.Attack.MinSeverity < 1 || t.Attack.MinSeverity > 6 {
			errs = append(errs, fmt.Errorf("attack.min_severity %d is not an OCSF severity id", t.Attack.MinSeverity))
		}
	}
	for i, u := range t.Unrelated {
		if u.Name == "" {
			errs = append(errs, fmt.Errorf("unrelated[%d] has no name", i))
		}
		if len(u.Entities) == 0 {
			errs = append(errs, fmt.Errorf("unrelated %q has no entities", u.Name))
		}
	}
	if t.Attack == nil && len(t.Unrelated) == 0 && len(t.Benign.Entities) == 0 {
		errs = append(errs, errors.New("neither an attack, unrelated attacks nor benign entities"))
	}
	return errors.Join(errs...)
}

// Marshal renders the truth as an indented expected.json.
func (t Truth) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
