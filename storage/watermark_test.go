package storage

import (
	"context"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
)

func TestWatermark(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	got, err := s.Watermark(ctx)
	if err != nil || !got.IsZero() {
		t.Fatalf("empty store: got %v, %v; want the zero time", got, err)
	}
	newest := time.Date(2026, 3, 2, 7, 30, 0, 123e6, time.UTC)
	older := newest.Add(-50 * time.Hour) // another daily partition
	var alerts []alert.Alert
	for i, at := range []time.Time{older, newest, newest.Add(-time.Minute)} {
		alerts = append(alerts, alert.Alert{
			ID: "a" + string(rune('0'+i)), TenantUID: "t1", RuleID: "r", RuleVersion: "v", Title: "x",
			Severity: 3, Time: at.UnixMilli(), EventIDs: []string{"e"},
		})
	}
	if err := s.Write(ctx, Batch{Alerts: alerts}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Watermark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(newest) {
		t.Errorf("got watermark %v, want %v", got, newest)
	}
}
