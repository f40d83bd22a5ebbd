package storage

import (
	"context"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// inSubqueryRe matches an IN or NOT IN over a subquery, with its GLOBAL.
var inSubqueryRe = regexp.MustCompile(`(?i)(\bGLOBAL\s+)?(?:\bNOT\s+)?\bIN\s*\(\s*SELECT\b`)

// TestSubqueryInFollowsTheDialect runs the reads whose IN or NOT IN takes
// a subquery (the incident queue's free-text search, the alert queue, an
// incident's detail with merges, moves and evidence, the correlator's
// restore, an alert's incident) once as one server and once as a cluster
// (dialect.globalIn), against this one server. On a cluster every such IN
// must be GLOBAL: Distributed tables refuse a plain one. On one server none
// may be: 18.16 uses the primary key for a plain IN and not for GLOBAL IN.
// Both answer the same.
func TestSubqueryInFollowsTheDialect(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	tenants := []string{"t1"}
	var evs []ocsf.Event
	var als []alert.Alert
	for i, id := range []string{"al-1", "al-2", "al-3", "al-4", "al-5"} {
		ev := "ev-" + id[3:]
		evs = append(evs, testEvent("t1", ev, time.Duration(i)*time.Minute))
		als = append(als, testAlert("t1", id, time.Duration(i)*time.Minute, ev))
	}
	// al-4 is in no incident: the alert queue's.
	write(t, s, Batch{Events: evs, Alerts: als, Incidents: []incident.Incident{
		testIncident("t1", "inc-a", 1, als[0], als[1]), testIncident("t1", "inc-b", 1, als[2]), testIncident("t1", "inc-c", 1, als[4])}})
	// An analyst moved al-2 to inc-b, merged inc-c into inc-a and
	// commented on inc-a.
	if err := s.insertMoves(ctx, "t1", "bob", "r", time.Now(), "inc-b", []string{"al-2"}, []string{"inc-a"}, []int64{als[1].Time}, []uint64{0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordMerge(ctx, tenants, "inc-c", "inc-a", "alice", "same actor"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddComment(ctx, tenants, casework.Comment{IncidentID: "inc-a", Author: "alice", Body: "zebra-77", Time: t0}); err != nil {
		t.Fatal(err)
	}

	reads := []struct {
		name string
		read func() (any, error)
	}{
		{"incident queue, free-text search", func() (any, error) {
			p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Text: "ev-1", FullText: true, Limit: 10})
			if err == nil && (len(p.Items) != 1 || p.Items[0].ID != "inc-a") {
				t.Errorf("search for ev-1 (evidence of al-1): got %v, want [inc-a]", ids(p.Items))
			}
			return p, err
		}},
		{"alert queue", func() (any, error) {
			p, err := s.ListAlerts(ctx, casework.AlertQuery{Tenants: tenants, From: t0.Add(-time.Hour), To: t0.Add(time.Hour), HighSeverity: 4, Limit: 10})
			if err == nil && (len(p.Items) != 1 || p.Items[0].ID != "al-4") {
				t.Errorf("alert queue: got %+v, want only al-4", p.Items)
			}
			return p, err
		}},
		{"incident detail", func() (any, error) {
			d, err := s.GetIncident(ctx, tenants, "inc-a", "")
			if want := []string{"al-1", "al-5"}; err == nil && !reflect.DeepEqual(d.AlertIDs, want) {
				t.Errorf("inc-a's alerts: got %v, want %v (al-2 moved out, al-5 merged in)", d.AlertIDs, want)
			}
			return d, err
		}},
		{"open state", func() (any, error) {
			st, err := s.LoadOpenState(ctx, t0.Add(-time.Hour))
			if err == nil && len(st.Incidents) == 0 {
				t.Error("open state: no incident")
			}
			return st, err
		}},
		{"alert's incident", func() (any, error) {
			inc, _, err := s.alertIncident(ctx, "t1", "al-3")
			if err == nil && inc != "inc-b" {
				t.Errorf("al-3's incident: got %q, want inc-b", inc)
			}
			return inc, err
		}},
	}
	answers := map[string]any{}
	defer func() { s.dialect.cluster = "" }()
	for _, cluster := range []string{"", "musubi_cluster"} {
		s.dialect.cluster = cluster
		for _, r := range reads {
			cc, stop := watch(s)
			got, err := r.read()
			stop()
			if err != nil {
				t.Fatalf("%s (cluster %q): %v", r.name, cluster, err)
			}
			var ins, global int
			for _, st := range cc.sent() {
				for _, m := range inSubqueryRe.FindAllStringSubmatch(st.sql, -1) {
					ins++
					if m[1] != "" {
						global++
					}
				}
			}
			switch {
			case ins == 0:
				t.Errorf("%s: no IN over a subquery: the test checks nothing", r.name)
			case cluster != "" && global != ins:
				t.Errorf("%s on a cluster: %d of %d INs over a subquery are GLOBAL, want all:\n%s", r.name, global, ins, sqlOf(cc.sent(), "\n"))
			case cluster == "" && global != 0:
				t.Errorf("%s on one server: %d of %d INs over a subquery are GLOBAL, want none:\n%s", r.name, global, ins, sqlOf(cc.sent(), "\n"))
			}
			if cluster == "" {
				answers[r.name] = got
			} else if want := answers[r.name]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: the cluster's SQL answers\n%+v\nthe single server's\n%+v", r.name, got, want)
			}
		}
	}
}
