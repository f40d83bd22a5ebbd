package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/internal/apitest"
)

// TestAPIEdgesNameJoinKeys (issue 18, D4): the attack chain, correlated
// from the bundled scenarios by the shipped rules and served by the API
// over HTTP from the real ClickHouse, names a join key on every edge, the
// first stage's edges of a correlation rule included.
func TestAPIEdgesNameJoinKeys(t *testing.T) {
	env := newUIEnv(t)
	req, err := http.NewRequest(http.MethodGet, env.url+"/v1/incidents/"+env.chainID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apitest.TokAcmeViewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the attack chain: got %d, want 200", resp.StatusCode)
	}
	var d casework.IncidentDetail
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if len(d.Edges) < 5 {
		t.Fatalf("the attack chain has %d edges, want a multi-stage graph", len(d.Edges))
	}
	rules := map[string]bool{}
	for _, e := range d.Edges {
		if e.JoinKey == "" {
			t.Errorf("edge %s (%s → %s, rule %s, %s) has no join_key", e.ID, e.Source, e.Target, e.RuleID, e.Relation)
		}
		if e.RuleID != "" {
			rules[e.RuleID] = true
		}
	}
	if len(rules) == 0 {
		t.Error("no edge names a rule")
	}
}
