package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
)

// TestShadowAlerts: a fresh database gets the shadow column by migration;
// shadow alerts round-trip with their flag, stay out of the alert queue and
// are counted per rule, per tenant, within the range.
func TestShadowAlerts(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	if n := count(t, s, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = 'shadow' AND type = 'UInt8'", s.cfg.Database, TableAlerts); n != 1 {
		t.Fatalf("alerts.shadow UInt8: got %d columns, want 1", n)
	}
	shadow := func(tenant, id, rule string, at time.Duration) alert.Alert {
		a := testAlert(tenant, id, at)
		a.RuleID, a.Title, a.Shadow = rule, "title of "+rule, true
		return a
	}
	live := testAlert("t1", "live-1", time.Minute)
	b := Batch{Alerts: []alert.Alert{
		live,
		shadow("t1", "sh-1", "exp.a", 2*time.Minute),
		shadow("t1", "sh-2", "exp.a", 3*time.Minute),
		shadow("t1", "sh-3", "exp.b", 4*time.Minute),
		shadow("t2", "sh-4", "exp.a", 5*time.Minute), // another tenant
		shadow("t1", "sh-5", "exp.a", 3*time.Hour),   // out of range
	}}
	// Written twice (a replay): rewritten rows count once.
	for range 2 {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ShadowMatches(ctx, casework.ShadowQuery{Tenants: []string{"t1"}, From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []casework.ShadowCount{
		{RuleID: "exp.a", Title: "title of exp.a", Alerts: 2, LastSeen: ms(3 * time.Minute)},
		{RuleID: "exp.b", Title: "title of exp.b", Alerts: 1, LastSeen: ms(4 * time.Minute)},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ShadowMatches(t1): got %+v, want %+v", got, want)
	}
	got, err = s.ShadowMatches(ctx, casework.ShadowQuery{Tenants: []string{"t1", "t2"}, From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Alerts != 3 {
		t.Errorf("ShadowMatches(t1, t2): got %+v, want exp.a with 3 alerts", got)
	}
	page, err := s.ListAlerts(ctx, casework.AlertQuery{Tenants: []string{"t1"}, From: t0, To: t0.Add(4 * time.Hour), HighSeverity: 4, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != "live-1" || page.Items[0].Shadow {
		t.Errorf("alert queue: got %+v, want only live-1", page.Items)
	}
	// The flag round-trips where alerts are read back: the correlator's
	// restore must see it to leave them out.
	st, err := s.LoadOpenState(ctx, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var shadows []string
	for _, a := range st.Alerts {
		if a.Shadow {
			shadows = append(shadows, a.ID)
		}
	}
	slices.Sort(shadows)
	if !slices.Equal(shadows, []string{"sh-1", "sh-2", "sh-3", "sh-4", "sh-5"}) {
		t.Errorf("restored shadow alerts: got %v, want sh-1 … sh-5", shadows)
	}
}
