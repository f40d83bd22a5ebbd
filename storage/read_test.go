package storage

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

func write(t testing.TB, s *Store, b Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// TestFoldedAlertRewrittenInPlace: a folded alert written again with a
// higher count and an earlier first match is one row, read at its latest.
func TestFoldedAlertRewrittenInPlace(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	a := testAlert("t1", "fold-1", 20*time.Minute, "ev-1")
	a.Count, a.LastSeen = 2, ms(25*time.Minute)
	in := testIncident("t1", "inc-1", 1, a)
	write(t, s, Batch{Alerts: []alert.Alert{a}, Incidents: []incident.Incident{in}})
	later := a
	later.Count, later.Time, later.FirstSeen, later.LastSeen = 7, ms(5*time.Minute), ms(5*time.Minute), ms(40*time.Minute)
	later.EventIDs = []string{"ev-0", "ev-1", "ev-9"}
	in2 := testIncident("t1", "inc-1", 2, later)
	write(t, s, Batch{Alerts: []alert.Alert{later}, Incidents: []incident.Incident{in2}})
	d, err := s.GetIncident(ctx, []string{"t1"}, "inc-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Alerts) != 1 || !reflect.DeepEqual(d.Alerts[0], later) {
		t.Errorf("got alerts %+v, want the latest fold %+v", d.Alerts, later)
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableAlerts)+" FINAL"); n != 1 {
		t.Errorf("got %d alert rows after FINAL, want 1", n)
	}
}

func TestGetIncidentRoundTrip(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	e1, e2, e3 := testEvent("t1", "ev-1", 0), testEvent("t1", "ev-2", time.Minute), testEvent("t1", "ev-3", 2*time.Minute)
	a1 := testAlert("t1", "al-1", time.Minute, "ev-1", "ev-2")
	a2 := testAlert("t1", "al-2", 2*time.Minute, "ev-3")
	a2.Correlated, a2.Stage, a2.Title = true, "distribution", "bundle deployed"
	v1 := testIncident("t1", "inc-1", 1, a1)
	v1.Nodes = append(v1.Nodes, incident.Node{ID: "ip:203.0.113.7", Kind: incident.NodeEntity, Entity: ocsf.EntityIP, Value: "203.0.113.7", Title: "203.0.113.7"})
	v2 := testIncident("t1", "inc-1", 2, a1, a2)
	v2.Stages, v2.Tactics, v2.Techniques = []string{"tampering", "distribution"}, []string{"TA0040"}, []string{"T1565"}
	write(t, s, Batch{Events: []ocsf.Event{e1, e2, e3}, Alerts: []alert.Alert{a1, a2}, Incidents: []incident.Incident{v1}})
	write(t, s, Batch{Incidents: []incident.Incident{v2}})

	d, err := s.GetIncident(ctx, []string{"t0", "t1"}, "inc-1", "")
	if err != nil {
		t.Fatal(err)
	}
	got := d.Incident.Incident
	if !reflect.DeepEqual(got, v2) {
		t.Errorf("incident round trip:\ngot  %+v\nwant %+v", got, v2)
	}
	if d.Workflow.Version != 0 || d.EffectiveStatus != "open" || d.EffectiveSeverity != ocsf.SeverityHigh {
		t.Errorf("got workflow %+v, status %q, severity %d; want none, open, high", d.Workflow, d.EffectiveStatus, d.EffectiveSeverity)
	}
	if !reflect.DeepEqual(d.Alerts, []alert.Alert{a1, a2}) {
		t.Errorf("alerts:\ngot  %+v\nwant %+v", d.Alerts, []alert.Alert{a1, a2})
	}
	if len(d.Evidence) != 3 || d.NextEvidenceCursor != "" {
		t.Fatalf("got %d evidence events (cursor %q), want 3 and no cursor", len(d.Evidence), d.NextEvidenceCursor)
	}
	for i, want := range []ocsf.Event{e1, e2, e3} {
		ev, err := d.Evidence[i].Event()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ev, want) {
			t.Errorf("evidence %d:\ngot  %+v\nwant %+v", i, ev, want)
		}
	}
}

func TestEvidencePages(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	var evs []ocsf.Event
	var ids []string
	for i := range 250 {
		id := fmt.Sprintf("ev-%03d", i)
		// Two events per second, some sharing a millisecond.
		evs = append(evs, testEvent("t1", id, time.Duration(i/3)*time.Second))
		ids = append(ids, id)
	}
	a := testAlert("t1", "al-1", 100*time.Second, ids...)
	write(t, s, Batch{Events: evs, Alerts: []alert.Alert{a}, Incidents: []incident.Incident{testIncident("t1", "inc", 1, a)}})
	write(t, s, Batch{Events: evs[:40]}) // duplicates must not show
	var got []string
	cur := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("evidence paging does not end")
		}
		d, err := s.GetIncident(ctx, []string{"t1"}, "inc", cur)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range d.Evidence {
			got = append(got, e.ID)
		}
		if cur = d.NextEvidenceCursor; cur == "" {
			break
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("got %d evidence ids, want the %d in time order without duplicates", len(got), len(ids))
	}
}

func TestTenantIsolation(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	a := testAlert("t2", "al-x", 0, "ev-x")
	write(t, s, Batch{Events: []ocsf.Event{testEvent("t2", "ev-x", 0)}, Alerts: []alert.Alert{a}, Incidents: []incident.Incident{testIncident("t2", "inc-x", 1, a)},
		DeadLetters: []DeadLetter{{TenantUID: "t2", Source: "agent", Topic: "raw.agent", Raw: []byte("x"), Reason: "bad_json", Time: t0}}})
	mine := []string{"t1"}
	if dls, err := s.ListDeadLetters(ctx, DeadLetterQuery{Tenants: mine}); err != nil || len(dls) != 0 {
		t.Errorf("ListDeadLetters for t1: got %d, err %v; want none", len(dls), err)
	}
	if _, err := s.ListAudit(ctx, casework.AuditQuery{}); !errors.Is(err, casework.ErrInvalidArgument) {
		t.Errorf("ListAudit without tenants: got %v, want casework.ErrInvalidArgument", err)
	}
	if _, err := s.GetIncident(ctx, mine, "inc-x", ""); !errors.Is(err, casework.ErrNotFound) {
		t.Errorf("GetIncident of another tenant: got %v, want casework.ErrNotFound", err)
	}
	if _, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: mine, IncidentID: "inc-x", Status: ptr("closed")}); !errors.Is(err, casework.ErrNotFound) {
		t.Errorf("UpdateIncidentWorkflow of another tenant: got %v, want casework.ErrNotFound", err)
	}
	if _, err := s.AddComment(ctx, mine, casework.Comment{IncidentID: "inc-x", Body: "hi"}); !errors.Is(err, casework.ErrNotFound) {
		t.Errorf("AddComment of another tenant: got %v, want casework.ErrNotFound", err)
	}
	p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: mine})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 0 || len(p.CountsByStatus) != 0 {
		t.Errorf("ListIncidents for t1: got %d items, counts %v; want none", len(p.Items), p.CountsByStatus)
	}
	act, err := s.EntityPivot(ctx, casework.EntityQuery{Tenants: mine, Type: "bucket", Value: "artifacts", From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(act.Incidents)+len(act.Alerts)+len(act.Events) != 0 {
		t.Errorf("EntityPivot for t1 sees t2's data: %+v", act)
	}
	if _, err := s.ListIncidents(ctx, casework.IncidentQuery{}); !errors.Is(err, casework.ErrInvalidArgument) {
		t.Errorf("ListIncidents without tenants: got %v, want casework.ErrInvalidArgument", err)
	}
	act, err = s.EntityPivot(ctx, casework.EntityQuery{Tenants: []string{"t2"}, Type: "bucket", Value: "artifacts", From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(act.Incidents) != 1 || len(act.Alerts) != 1 || len(act.Events) != 1 {
		t.Errorf("EntityPivot for t2: got %d incidents, %d alerts, %d events; want 1 each", len(act.Incidents), len(act.Alerts), len(act.Events))
	}
}

func ptr[T any](v T) *T { return &v }

// queueFixture writes 12 incidents in two tenants with varied attributes
// and returns them.
func queueFixture(t *testing.T, s *Store) []incident.Incident {
	ctx := context.Background()
	var incs []incident.Incident
	for i := range 12 {
		tenant := "t1"
		if i%4 == 3 {
			tenant = "t2"
		}
		a := testAlert(tenant, fmt.Sprintf("al-%02d", i), time.Duration(i)*time.Hour, "ev")
		if i%3 == 0 {
			a.RuleID = "aws.imds.credential_read"
		}
		in := testIncident(tenant, fmt.Sprintf("inc-%02d", i), uint64(1+i%2), a)
		in.Severity = 1 + i%5
		in.RiskScore = (i * 37) % 100
		in.FirstSeen = ms(time.Duration(i) * time.Hour / 2)
		if i%2 == 0 {
			in.Accounts = []string{"999988887777"}
			in.Nodes = append(in.Nodes, incident.Node{ID: "ip", Kind: incident.NodeEntity, Entity: ocsf.EntityIP, Value: "198.51.100.9"})
		}
		if i == 5 {
			in.Title = "Web shell on frontend"
		}
		incs = append(incs, in)
		// Older versions must never show.
		old := in
		old.Version = 0
		old.Severity, old.Title, old.RuleIDs = 6, "stale", []string{"stale"}
		write(t, s, Batch{Incidents: []incident.Incident{old}})
	}
	write(t, s, Batch{Incidents: incs})
	for _, u := range []casework.WorkflowUpdate{
		{IncidentID: "inc-00", Status: ptr("in_progress"), Assignee: ptr("alice"), Tags: &[]string{"apt"}},
		{IncidentID: "inc-01", Status: ptr("closed"), Verdict: ptr("false_positive"), Assignee: ptr("bob")},
		{IncidentID: "inc-02", SeverityOverride: ptr(5), Tags: &[]string{"apt", "ransomware"}},
	} {
		u.Tenants, u.Actor = []string{"t1"}, "tester"
		if _, err := s.UpdateIncidentWorkflow(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return incs
}

func ids(items []casework.Incident) []string {
	out := []string{}
	for _, in := range items {
		out = append(out, in.ID)
	}
	return out
}

func TestListIncidentsFilters(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	queueFixture(t, s)
	t1 := []string{"t1"}
	for _, tc := range []struct {
		name string
		q    casework.IncidentQuery
		want []string
	}{
		{"all of t1", casework.IncidentQuery{}, []string{"inc-00", "inc-01", "inc-02", "inc-04", "inc-05", "inc-06", "inc-08", "inc-09", "inc-10"}},
		{"both tenants", casework.IncidentQuery{Tenants: []string{"t1", "t2"}, Status: []string{"open"}}, []string{"inc-02", "inc-03", "inc-04", "inc-05", "inc-06", "inc-07", "inc-08", "inc-09", "inc-10", "inc-11"}},
		{"status", casework.IncidentQuery{Status: []string{"closed", "in_progress"}}, []string{"inc-00", "inc-01"}},
		{"min severity (override counts)", casework.IncidentQuery{MinSeverity: 5}, []string{"inc-02", "inc-04", "inc-09"}},
		{"assignee", casework.IncidentQuery{Assignee: "alice"}, []string{"inc-00"}},
		{"unassigned", casework.IncidentQuery{Assignee: "none"}, []string{"inc-02", "inc-04", "inc-05", "inc-06", "inc-08", "inc-09", "inc-10"}},
		{"tag", casework.IncidentQuery{Tag: "apt"}, []string{"inc-00", "inc-02"}},
		{"rule", casework.IncidentQuery{RuleID: "aws.imds.credential_read"}, []string{"inc-00", "inc-06", "inc-09"}},
		{"stale version's rule", casework.IncidentQuery{RuleID: "stale"}, []string{}},
		{"entity", casework.IncidentQuery{EntityType: "ip", EntityValue: "198.51.100.9"}, []string{"inc-00", "inc-02", "inc-04", "inc-06", "inc-08", "inc-10"}},
		{"entity type", casework.IncidentQuery{EntityType: "ip"}, []string{"inc-00", "inc-02", "inc-04", "inc-06", "inc-08", "inc-10"}},
		{"entity value", casework.IncidentQuery{EntityValue: "artifacts"}, []string{"inc-00", "inc-01", "inc-02", "inc-04", "inc-05", "inc-06", "inc-08", "inc-09", "inc-10"}},
		{"account", casework.IncidentQuery{Account: "111122223333"}, []string{"inc-01", "inc-05", "inc-09"}},
		{"time range", casework.IncidentQuery{From: t0.Add(4 * time.Hour), To: t0.Add(4*time.Hour + 30*time.Minute)}, []string{"inc-04", "inc-05", "inc-06", "inc-08", "inc-09"}},
		{"text", casework.IncidentQuery{Text: "web SHELL"}, []string{"inc-05"}},
		{"text id", casework.IncidentQuery{Text: "inc-08"}, []string{"inc-08"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			if q.Tenants == nil {
				q.Tenants = t1
			}
			q.Sort, q.Limit = "first_seen", 100
			p, err := s.ListIncidents(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p.Items); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: t1, Status: []string{"closed"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"open": 7, "closed": 1, "in_progress": 1}
	if !reflect.DeepEqual(p.CountsByStatus, want) {
		t.Errorf("counts by status: got %v, want %v", p.CountsByStatus, want)
	}
	if got := p.Items[0]; got.Workflow.Verdict != "false_positive" || got.Workflow.Version != 1 || got.Workflow.UpdatedBy != "tester" {
		t.Errorf("workflow of inc-01: got %+v", got.Workflow)
	}
	if _, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: t1, Sort: "title; DROP TABLE x"}); !errors.Is(err, casework.ErrInvalidArgument) {
		t.Errorf("unknown sort: got %v, want casework.ErrInvalidArgument", err)
	}
	if _, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: t1, Cursor: "!!"}); !errors.Is(err, casework.ErrInvalidArgument) {
		t.Errorf("bad cursor: got %v, want casework.ErrInvalidArgument", err)
	}
}

func TestListIncidentsSortAndPages(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	queueFixture(t, s)
	tenants := []string{"t1", "t2"}
	all, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 12 {
		t.Fatalf("got %d incidents, want 12", len(all.Items))
	}
	for _, sortKey := range SortKeys() {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s desc=%v", sortKey, desc), func(t *testing.T) {
				want := slices.Clone(all.Items)
				sort.SliceStable(want, func(i, j int) bool {
					a, b := sortValue(sortKey, want[i]), sortValue(sortKey, want[j])
					if a != b {
						return (a < b) != desc
					}
					if want[i].TenantUID != want[j].TenantUID {
						return want[i].TenantUID < want[j].TenantUID
					}
					return want[i].ID < want[j].ID
				})
				var got []casework.Incident
				cur := ""
				for pages := 0; ; pages++ {
					if pages > 5 {
						t.Fatal("paging does not end")
					}
					p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Sort: sortKey, Desc: desc, Limit: 5, Cursor: cur})
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Items) > 5 {
						t.Fatalf("page of %d items, want at most 5", len(p.Items))
					}
					got = append(got, p.Items...)
					if cur = p.NextCursor; cur == "" {
						break
					}
				}
				if g, w := ids(got), ids(want); !slices.Equal(g, w) {
					t.Errorf("got %v, want %v", g, w)
				}
			})
		}
	}
	p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Sort: "severity", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Sort: "risk_score", Cursor: p.NextCursor}); !errors.Is(err, casework.ErrInvalidArgument) {
		t.Errorf("cursor of another sort: got %v, want casework.ErrInvalidArgument", err)
	}
}

func TestWorkflowCompareAndSet(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	a := testAlert("t1", "al", 0, "ev")
	write(t, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc", 1, a)}})
	tenants := []string{"t1"}
	in, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: tenants, IncidentID: "inc", Assignee: ptr("alice"), Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	w := in.Workflow
	if w.Version != 1 || w.Status != "open" || w.Assignee != "alice" {
		t.Errorf("first update: got %+v, want version 1, status open (the correlator's), assignee alice", w)
	}
	if _, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: tenants, IncidentID: "inc", Status: ptr("closed")}); !errors.Is(err, casework.ErrConflict) {
		t.Fatalf("stale expected version: got %v, want casework.ErrConflict", err)
	}
	// Concurrent updates from the same version: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: tenants, IncidentID: "inc", ExpectedVersion: 1,
				Status: ptr("in_progress"), Assignee: ptr(fmt.Sprint("analyst-", i)), Actor: "x"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, casework.ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Errorf("got %d wins and %d conflicts, want 1 and 7", wins, conflicts)
	}
	d, err := s.GetIncident(ctx, tenants, "inc", "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Workflow.Version != 2 || d.EffectiveStatus != "in_progress" || d.Status != "open" {
		t.Errorf("got workflow %+v, effective %q, correlator status %q", d.Workflow, d.EffectiveStatus, d.Status)
	}
	// A new correlator version does not touch the analyst's state.
	write(t, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc", 2, a)}})
	d, err = s.GetIncident(ctx, tenants, "inc", "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 2 || d.Workflow.Version != 2 || d.EffectiveStatus != "in_progress" {
		t.Errorf("after a correlator update: incident v%d, workflow v%d, status %q; want 2, 2, in_progress", d.Version, d.Workflow.Version, d.EffectiveStatus)
	}
	audit, err := s.ListAudit(ctx, casework.AuditQuery{Tenants: tenants, IncidentID: "inc", Action: "incident.workflow"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 {
		t.Errorf("got %d workflow audit entries, want 2", len(audit))
	}
}

func TestCommentsAuditMerge(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	a := testAlert("t1", "al", 0, "ev")
	write(t, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc-a", 1, a), testIncident("t1", "inc-b", 1, a), testIncident("t2", "inc-c", 1, a)}})
	tenants := []string{"t1"}
	c1, err := s.AddComment(ctx, tenants, casework.Comment{IncidentID: "inc-a", Author: "alice", Body: "looking", Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	// A retried request with the same id folds.
	c2 := casework.Comment{ID: "req-7", IncidentID: "inc-a", Author: "bob", Body: "IMDS read confirmed", Time: t0.Add(time.Minute)}
	for range 2 {
		if _, err := s.AddComment(ctx, tenants, c2); err != nil {
			t.Fatal(err)
		}
	}
	cs, _, err := s.CommentPage(ctx, tenants, "inc-a", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].ID != c1.ID || cs[1].Body != c2.Body || !cs[1].Time.Equal(c2.Time) {
		t.Errorf("comments: got %+v", cs)
	}
	if _, err := s.RecordMerge(ctx, tenants, "inc-b", "inc-c", "alice", "same actor"); !errors.Is(err, casework.ErrNotFound) {
		t.Errorf("merge across tenants: got %v, want casework.ErrNotFound", err)
	}
	w, err := s.RecordMerge(ctx, tenants, "inc-b", "inc-a", "alice", "same actor")
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != "merged" || w.MergedInto != "inc-a" || w.Version != 1 {
		t.Errorf("merge: got %+v", w)
	}
	audit, err := s.ListAudit(ctx, casework.AuditQuery{Tenants: tenants, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var actions, merged []string
	for _, e := range audit {
		actions = append(actions, e.Action)
		if e.Action == "incident.merge" {
			merged = append(merged, e.IncidentID)
		}
	}
	slices.Sort(merged)
	// The merge is audited on both incidents.
	if want := []string{"incident.merge", "incident.merge", "incident.comment", "incident.comment"}; !slices.Equal(actions, want) ||
		!slices.Equal(merged, []string{"inc-a", "inc-b"}) {
		t.Errorf("audit actions newest first: got %v (merge on %v), want %v (merge on inc-a and inc-b)", actions, merged, want)
	}
	if err := s.AppendAudit(ctx, casework.AuditEntry{TenantUID: "t2", Actor: "system", Action: "rules.reload"}); err != nil {
		t.Fatal(err)
	}
	if audit, _ := s.ListAudit(ctx, casework.AuditQuery{Tenants: tenants, Action: "rules.reload"}); len(audit) != 0 {
		t.Errorf("t1 sees t2's audit entries: %+v", audit)
	}
}

func TestLoadOpenState(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	old := testAlert("t1", "al-old", -48*time.Hour, "ev")
	a1, a2 := testAlert("t1", "al-1", 0, "ev"), testAlert("t2", "al-2", time.Minute, "ev")
	open1 := testIncident("t1", "open-1", 3, a1)
	open2 := testIncident("t2", "open-2", 1, a2)
	closed := testIncident("t1", "closed", 1, a1)
	stale := testIncident("t1", "stale", 1, old)
	merged := testIncident("t1", "merged", 1, a1)
	merged.MergedInto = "open-1"
	prev := testIncident("t1", "open-1", 2, old) // an older version with other nodes
	write(t, s, Batch{Alerts: []alert.Alert{old, a1, a2}, Incidents: []incident.Incident{prev, open1, open2, closed, stale, merged}})
	if _, err := s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: []string{"t1"}, IncidentID: "closed", Status: ptr("closed")}); err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadOpenState(ctx, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Incidents) != 2 {
		t.Fatalf("got %d open incidents, want 2: %+v", len(st.Incidents), st.Incidents)
	}
	if !reflect.DeepEqual(st.Incidents[0], open1) || !reflect.DeepEqual(st.Incidents[1], open2) {
		t.Errorf("open incidents:\ngot  %+v\nwant %+v", st.Incidents, []incident.Incident{open1, open2})
	}
	var alertIDs []string
	for _, a := range st.Alerts {
		alertIDs = append(alertIDs, a.ID)
	}
	if want := []string{"al-1", "al-2"}; !slices.Equal(alertIDs, want) {
		t.Errorf("window alerts: got %v, want %v", alertIDs, want)
	}
}

func TestDropExpiredPartitions(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	s.cfg.Retention = map[string]time.Duration{TableEvents: 30 * 24 * time.Hour, TableAudit: 60 * 24 * time.Hour, TableIncidents: 30 * 24 * time.Hour}
	var evs []ocsf.Event
	for _, daysAgo := range []int{45, 31, 30, 29, 0} {
		e := testEvent("t1", fmt.Sprint("ev-", daysAgo), 0)
		e.Time = now.AddDate(0, 0, -daysAgo).UnixMilli()
		evs = append(evs, e)
	}
	a := testAlert("t1", "al", 0, "ev")
	a.Time = now.AddDate(0, 0, -45).UnixMilli()
	// An incident last seen 45 days ago expires with its graph; one with a
	// version 45 days ago and a newer one yesterday keeps the new version.
	gone := testIncident("t1", "gone", 1, a)
	fresh := testAlert("t1", "al-new", 0, "ev")
	fresh.Time = now.AddDate(0, 0, -1).UnixMilli()
	kept1, kept2 := testIncident("t1", "kept", 1, a), testIncident("t1", "kept", 2, a, fresh)
	write(t, s, Batch{Events: evs, Alerts: []alert.Alert{a}, Incidents: []incident.Incident{gone, kept1, kept2}})
	for _, at := range []time.Time{now.AddDate(0, -4, 0), now.AddDate(0, -2, 0), now.AddDate(0, -1, 0)} {
		if err := s.AppendAudit(ctx, casework.AuditEntry{TenantUID: "t1", Action: "x", Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	dropped, err := s.DropExpiredPartitions(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	// The cutoff is 2026-10-26 13:00: the day of 30 days ago still holds
	// younger rows and stays; months before 2026-09-26 13:00 go.
	want := []DroppedPartition{{TableEvents, "20261011"}, {TableEvents, "20261025"},
		{TableIncidents, "20261011"}, {TableNodes, "20261011"}, {TableEdges, "20261011"}, {TableLinks, "20261011"},
		{TableAudit, "202607"}}
	if !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped %v, want %v", dropped, want)
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableEvents)); n != 3 {
		t.Errorf("got %d events left, want 3", n)
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableAlerts)); n != 1 {
		t.Errorf("got %d alerts left, want 1 (no retention configured)", n)
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableAudit)); n != 2 {
		t.Errorf("got %d audit entries left, want 2", n)
	}
	p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p.Items); !slices.Equal(got, []string{"kept"}) || p.Items[0].Version != 2 {
		t.Errorf("incidents after retention: got %v, want [kept] at version 2", got)
	}
	if d, err := s.GetIncident(ctx, []string{"t1"}, "kept", ""); err != nil || len(d.Nodes) != 3 || len(d.Edges) != 2 {
		t.Errorf("kept incident: err %v, %d nodes, %d edges; want 3 and 2", err, len(d.Nodes), len(d.Edges))
	}
	if dropped, err := s.DropExpiredPartitions(ctx, now); err != nil || len(dropped) != 0 {
		t.Errorf("second run: dropped %v, err %v; want nothing", dropped, err)
	}
}

func TestResultRowCap(t *testing.T) {
	s := testStore(t)
	var alerts []alert.Alert
	for i := range 5 {
		alerts = append(alerts, testAlert("t1", fmt.Sprint("al-", i), 0, "ev"))
	}
	write(t, s, Batch{Alerts: alerts})
	s.cfg.MaxResultRows = 3
	if _, err := s.LoadOpenState(context.Background(), t0.Add(-time.Hour)); err == nil {
		t.Error("LoadOpenState over max_result_rows: got nil, want an error rather than a partial state")
	}
	s.cfg.MaxResultRows = 5
	st, err := s.LoadOpenState(context.Background(), t0.Add(-time.Hour))
	if err != nil || len(st.Alerts) != 5 {
		t.Errorf("got %d alerts, err %v; want 5", len(st.Alerts), err)
	}
}

// TestWorkflowQueuedBehindWriteAfterCorrelator: while requests queue for
// an incident's lock, the store keeps the row it last wrote so that stale
// ones are refused without a read. That row's incident version is the one
// read before the write; the correlator writes new incident versions
// without the lock, so a request carrying the newer, current ETag must
// still go through, and only what is stale whatever the correlator wrote
// since may be refused without a read.
func TestWorkflowQueuedBehindWriteAfterCorrelator(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	a := testAlert("t1", "al", 0, "ev")
	write(t, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc", 1, a)}})
	// Another request waits for the incident's lock all along (pinned
	// here), so the lock, and the row last written under it, stay.
	key := "t1\x00inc"
	s.wfMu.Lock()
	s.wfLocks[key] = &wfLock{refs: 1}
	s.wfMu.Unlock()
	defer func() {
		s.wfMu.Lock()
		defer s.wfMu.Unlock()
		l := s.wfLocks[key]
		if l.refs--; l.refs == 0 {
			delete(s.wfLocks, key)
		}
	}()
	decided := 0
	// update asks for a change of inc expecting incident version iv and
	// workflow version wv, as the API's If-Match does.
	update := func(iv, wv uint64) (casework.Incident, error) {
		return s.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{Tenants: []string{"t1"}, IncidentID: "inc", Actor: "alice",
			Decide: func(cur casework.Incident) (casework.WorkflowUpdate, error) {
				decided++
				if cur.Version != iv || cur.Workflow.Version != wv {
					return casework.WorkflowUpdate{}, fmt.Errorf("at %d.%d, not %d.%d: %w", cur.Version, cur.Workflow.Version, iv, wv, casework.ErrConflict)
				}
				return casework.WorkflowUpdate{Assignee: ptr("alice")}, nil
			},
			Stale: func(last casework.Incident) error {
				if iv < last.Version || wv < last.Workflow.Version {
					return fmt.Errorf("at %d.%d or later, not %d.%d: %w", last.Version, last.Workflow.Version, iv, wv, casework.ErrConflict)
				}
				return nil
			},
		})
	}
	if _, err := update(1, 0); err != nil {
		t.Fatal(err)
	}
	// The correlator extends the incident; the analyst reads "2.1".
	write(t, s, Batch{Incidents: []incident.Incident{testIncident("t1", "inc", 2, a)}})
	in, err := update(2, 1)
	if err != nil {
		t.Fatalf("update with the current ETag 2.1 after a correlator write: got %v, want success", err)
	}
	if in.Version != 2 || in.Workflow.Version != 2 {
		t.Errorf("got incident %d, workflow %d; want 2, 2", in.Version, in.Workflow.Version)
	}
	// Stale whatever the correlator wrote: refused without a read (Decide
	// is not called). An incident version beyond the last write's may be
	// the database's: the row read decides.
	for _, c := range []struct {
		iv, wv  uint64
		decided int
	}{{2, 1, 0}, {1, 2, 0}, {3, 2, 1}} {
		before := decided
		if _, err := update(c.iv, c.wv); !errors.Is(err, casework.ErrConflict) {
			t.Errorf("update expecting %d.%d at 2.2: got %v, want casework.ErrConflict", c.iv, c.wv, err)
		}
		if got := decided - before; got != c.decided {
			t.Errorf("update expecting %d.%d at 2.2: Decide called %d times, want %d", c.iv, c.wv, got, c.decided)
		}
	}
}
