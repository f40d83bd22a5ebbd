// Package attack is the MITRE ATT&CK Enterprise matrix that Musubi checks
// rules against: every tactic, technique and sub-technique id with its name
// and the tactics it belongs to. The data is a compact extract of MITRE's
// STIX enterprise-attack bundle (enterprise-attack.tsv, embedded; version in
// Version), kept under MITRE's ATT&CK Terms of Use (see NOTICE.md).
//
// Lint uses it to reject a technique that does not exist (or was revoked or
// deprecated) and a technique listed under a tactic it does not belong to;
// the coverage command uses it to place each technique in its Navigator
// column. The package imports only the standard library.
package attack

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Version is the ATT&CK Enterprise release the embedded data comes from.
const Version = "18.0"

//go:embed enterprise-attack.tsv
var data string

// Tactic is one ATT&CK tactic.
type Tactic struct {
	ID        string // TA0006
	ShortName string // credential-access (the Navigator's and STIX kill-chain phase name)
	Name      string // Credential Access
}

// Technique is one ATT&CK technique or sub-technique.
type Technique struct {
	ID      string   // T1552.005
	Name    string   // Cloud Instance Metadata API
	Tactics []string // Navigator short names: credential-access
}

type matrix struct {
	tactics    map[string]Tactic // by id
	byShort    map[string]Tactic // by short name
	techniques map[string]Technique
}

var load = sync.OnceValues(func() (*matrix, error) { return parse(data) })

// parse reads the TSV extract: id, tactics, name; a sub-technique with no
// tactics inherits its parent's.
func parse(s string) (*matrix, error) {
	m := &matrix{tactics: map[string]Tactic{}, byShort: map[string]Tactic{}, techniques: map[string]Technique{}}
	for i, line := range strings.Split(s, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("attack: line %d: want 3 tab-separated fields, got %d", i+1, len(f))
		}
		id, tactics, name := f[0], f[1], f[2]
		switch {
		case strings.HasPrefix(id, "TA"):
			t := Tactic{ID: id, ShortName: tactics, Name: name}
			m.tactics[id], m.byShort[tactics] = t, t
		case strings.HasPrefix(id, "T"):
			t := Technique{ID: id, Name: name}
			if tactics != "" {
				t.Tactics = strings.Split(tactics, ",")
			} else if parent, ok := m.techniques[Parent(id)]; ok && Parent(id) != id {
				t.Tactics = parent.Tactics
			} else {
				return nil, fmt.Errorf("attack: line %d: %s has no tactics and no parent before it", i+1, id)
			}
			m.techniques[id] = t
		default:
			return nil, fmt.Errorf("attack: line %d: unknown id %q", i+1, id)
		}
	}
	for _, t := range m.techniques {
		for _, ta := range t.Tactics {
			if _, ok := m.byShort[ta]; !ok {
				return nil, fmt.Errorf("attack: technique %s names unknown tactic %q", t.ID, ta)
			}
		}
	}
	return m, nil
}

func get() *matrix {
	m, err := load()
	if err != nil {
		panic(err) // the embedded data is checked by the package's tests
	}
	return m
}

// Parent returns the technique id of a sub-technique (T1552 for T1552.005),
// or id itself.
func Parent(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}

// LookupTactic returns the tactic with the given id (TA0006).
func LookupTactic(id string) (Tactic, bool) {
	t, ok := get().tactics[id]
	return t, ok
}

// TacticByShortName returns the tactic with the given Navigator short name
// (credential-access) or, leniently, its underscore spelling
// (credential_access, as Sigma tags and Musubi stages write it).
func TacticByShortName(name string) (Tactic, bool) {
	t, ok := get().byShort[strings.ReplaceAll(strings.ToLower(name), "_", "-")]
	return t, ok
}

// LookupTechnique returns the technique or sub-technique with the given id.
func LookupTechnique(id string) (Technique, bool) {
	t, ok := get().techniques[id]
	return t, ok
}

// Tactics returns every tactic, ordered by id.
func Tactics() []Tactic {
	var out []Tactic
	for _, t := range get().tactics {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Tactic) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Len returns the number of techniques and sub-techniques.
func Len() int { return len(get().techniques) }

// InTactic reports whether the technique belongs to the tactic (an id such
// as TA0006).
func InTactic(technique, tacticID string) bool {
	t, ok := get().techniques[technique]
	ta, ok2 := get().tactics[tacticID]
	return ok && ok2 && slices.Contains(t.Tactics, ta.ShortName)
}
