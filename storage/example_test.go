package storage_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// Example shows the pipeline's use: open, migrate, write a batch, and only
// then commit the Kafka offsets it came from.
func Example() {
	ctx := context.Background()
	cfg := storage.Default()
	cfg.Addr = []string{"127.0.0.1:19000"}
	s, err := storage.Open(ctx, cfg, slog.Default(), prometheus.NewRegistry())
	if err != nil {
		return
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return
	}
	var ev ocsf.Event
	ev.SetClass(ocsf.ClassAPIActivity, 1, "Create")
	ev.Metadata.UID, ev.Metadata.TenantUID, ev.Time = "evt-1", "acme", time.Now().UnixMilli()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Write(wctx, storage.Batch{Events: []ocsf.Event{ev}}); err != nil {
		return // do not commit: the records will be fetched again
	}
	// commit offsets here
}
