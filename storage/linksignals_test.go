package storage

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

func linkSignal(tenant, uid string, at time.Duration) LinkSignal {
	ev := LinkSignal{ClassUID: ocsf.ClassAPIActivity, Time: ms(at), UID: uid, TenantUID: tenant, LogName: "cloudtrail", Operation: "AssumeRole"}
	ev.Observables = []ocsf.Observable{
		ocsf.NewObservable(ocsf.EntitySession, "actor.session.uid", "arn:aws:sts::111122223333:assumed-role/web/i-0"+uid),
		ocsf.NewObservable(ocsf.EntityIP, "src_endpoint.ip", "203.0.113.10"),
		ocsf.NewObservable(ocsf.EntityInstance, "actor.session.name", "i-0"+uid),
	}
	return ev
}

// TestLoadState: the restore reads the link signals of the window once
// each (a replayed batch writes them again), of repeated activity only the
// earliest and the latest, the latest counts of the
// folded alerts stored before the window, and only the tenants asked for.
func TestLoadState(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	since := t0.Add(-time.Hour)
	l1, l2, lOld := linkSignal("t1", "l1", 0), linkSignal("t2", "l2", time.Minute), linkSignal("t1", "l-old", -2*time.Hour)
	a1, a2 := testAlert("t1", "al-1", 0, "ev"), testAlert("t2", "al-2", time.Minute, "ev")
	// A folded alert before the window, rewritten with a higher count;
	// another one older than FoldsSince; a plain alert before the window.
	f1 := testAlert("t1", "fold-1", -3*time.Hour, "ev")
	f1b := f1
	f1.Origins = []alert.Origin{{Topic: "agent", Partition: 0, Offset: 5}}
	f1b.Count, f1b.LastSeen = 12, ms(-150*time.Minute)
	f1b.Origins = []alert.Origin{{Topic: "agent", Partition: 0, Offset: 9}, {Topic: "agent-2", Partition: 3, Offset: 1 << 40}}
	a1.Origins = []alert.Origin{{Topic: "cloudtrail", Partition: 2, Offset: 7}}
	a2.Severity, a2.Unheld = ocsf.SeverityInformational, &alert.Unheld{Severity: ocsf.SeverityHigh, Summary: "the rule's summary"}
	fOld := testAlert("t1", "fold-old", -30*time.Hour, "ev")
	f2 := testAlert("t2", "fold-2", -3*time.Hour, "ev")
	plain := testAlert("t1", "al-before", -3*time.Hour, "ev")
	write(t, s, Batch{Alerts: []alert.Alert{a1, a2, f1, fOld, f2, plain}, Links: []LinkSignal{l1, l2, lOld},
		Incidents: []incident.Incident{testIncident("t1", "open-1", 1, a1), testIncident("t2", "open-2", 1, a2)}})
	write(t, s, Batch{Alerts: []alert.Alert{f1b}, Links: []LinkSignal{l1}}) // a replay, then a repeat
	// Repeats of l2's activity: of the group only the earliest and the
	// latest come back.
	var repeats []LinkSignal
	for i := range 5 {
		r := linkSignal("t2", fmt.Sprint("l2-", i), time.Duration(2+i)*time.Minute)
		r.Observables = l2.Observables
		repeats = append(repeats, r)
	}
	write(t, s, Batch{Links: repeats})
	// Stage inputs: one written twice (a replayed batch), one of another
	// stage of the same event, one before the window, one of tenant t2.
	key := []ocsf.Observable{ocsf.NewObservable(ocsf.EntityAccessKey, "actor.user.credential_uid", "AKIA1")}
	s1 := StageInput{TenantUID: "t1", RuleID: "r.seq", RuleSum: "abc", Stage: 0, UID: "ev-s1", Time: ms(time.Minute), Observables: key}
	s1b := s1
	s1b.Stage = 1
	sOld := StageInput{TenantUID: "t1", RuleID: "r.seq", RuleSum: "abc", UID: "ev-old", Time: ms(-2 * time.Hour), Observables: key}
	s2 := StageInput{TenantUID: "t2", RuleID: "r.seq", RuleSum: "abc", UID: "ev-s2", Time: ms(2 * time.Minute), Observables: key}
	write(t, s, Batch{Stages: []StageInput{s1, sOld, s2}})
	write(t, s, Batch{Stages: []StageInput{s1, s1b}})

	st, err := s.LoadState(ctx, StateQuery{Since: since, FoldsSince: since.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []LinkSignal{l1, l2, repeats[4]}; !reflect.DeepEqual(st.Links, want) {
		t.Errorf("link signals:\ngot  %+v\nwant %+v", st.Links, want)
	}
	if want := []StageInput{s1, s1b, s2}; !reflect.DeepEqual(st.Stages, want) {
		t.Errorf("stage inputs:\ngot  %+v\nwant %+v", st.Stages, want)
	}
	var folds []string
	for _, a := range st.Folds {
		folds = append(folds, a.ID)
		if a.ID == "fold-1" && (a.Count != 12 || a.FirstSeen != f1.FirstSeen || a.LastSeen != f1b.LastSeen) {
			t.Errorf("fold-1: count %d, seen %d–%d; want 12, %d–%d", a.Count, a.FirstSeen, a.LastSeen, f1.FirstSeen, f1b.LastSeen)
		}
		if a.ID == "fold-1" && !reflect.DeepEqual(a.Origins, f1b.Origins) {
			t.Errorf("fold-1 origins: got %v, want those of its latest count %v", a.Origins, f1b.Origins)
		}
		if a.ID == "fold-2" && a.Origins != nil {
			t.Errorf("fold-2 origins: got %v, want none", a.Origins)
		}
	}
	slices.Sort(folds)
	if want := []string{"fold-1", "fold-2"}; !slices.Equal(folds, want) {
		t.Errorf("folded alerts before the window: got %v, want %v", folds, want)
	}
	if len(st.Incidents) != 2 || len(st.Alerts) != 2 {
		t.Errorf("every tenant: got %d incidents and %d alerts, want 2 and 2", len(st.Incidents), len(st.Alerts))
	}
	for _, a := range st.Alerts {
		if a.ID == "al-1" && (!reflect.DeepEqual(a.Origins, a1.Origins) || a.Unheld != nil) {
			t.Errorf("al-1: got origins %v, unheld %v; want %v, none", a.Origins, a.Unheld, a1.Origins)
		}
		if a.ID == "al-2" && (a.Severity != ocsf.SeverityInformational || !reflect.DeepEqual(a.Unheld, a2.Unheld)) {
			t.Errorf("al-2 (held): got severity %d, unheld %+v; want informational, %+v", a.Severity, a.Unheld, a2.Unheld)
		}
	}

	st, err = s.LoadState(ctx, StateQuery{Since: since, FoldsSince: since.Add(-24 * time.Hour), Tenants: []string{"t2"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Incidents) != 1 || st.Incidents[0].ID != "open-2" || len(st.Alerts) != 1 || st.Alerts[0].ID != "al-2" ||
		len(st.Links) != 2 || st.Links[0].UID != "l2" || st.Links[1].UID != "l2-4" || len(st.Folds) != 1 || st.Folds[0].ID != "fold-2" ||
		len(st.Stages) != 1 || st.Stages[0].UID != "ev-s2" {
		t.Errorf("tenant t2 only: got incidents %v, alerts %v, links %v, folds %v, stages %v", st.Incidents, st.Alerts, st.Links, st.Folds, st.Stages)
	}
	st, err = s.LoadState(ctx, StateQuery{Since: since, Tenants: []string{}})
	if err != nil || len(st.Incidents)+len(st.Alerts)+len(st.Links)+len(st.Folds)+len(st.Stages) != 0 {
		t.Errorf("no tenant: got %+v, err %v; want nothing", st, err)
	}
}
