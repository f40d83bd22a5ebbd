package storage

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/faultproxy"
)

// TestCompressionOnTheWire writes the same batch of events with their raw
// records under every clickhouse.compression, through a proxy that counts
// the bytes on the wire: each reads back whole, none sends several times
// what lz4 sends, and zstd sends no more than lz4.
func TestCompressionOnTheWire(t *testing.T) {
	db, _ := chtest.Database(t)
	ctx := context.Background()
	events := benchEvents(2000, true)
	sent := map[string]int64{}
	for _, method := range []string{"none", "lz4", "lz4hc", "zstd"} {
		proxy, err := faultproxy.Start(chtest.Addr())
		if err != nil {
			t.Fatal(err)
		}
		cfg := Default()
		cfg.Addr, cfg.Database, cfg.StoreRaw, cfg.Compression = []string{proxy.Addr()}, db, true, method
		cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond
		s, err := Open(ctx, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// The batch's tenant names the method, so each read counts its
		// own rows.
		b := Batch{Events: benchEvents(len(events), true)}
		for i := range b.Events {
			b.Events[i].Metadata.TenantUID = "tenant-" + method
		}
		before := proxy.Bytes()
		if err := s.Write(ctx, b); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		sent[method] = proxy.Bytes() - before
		var rows uint64
		var raw string
		if err := s.conn.QueryRow(ctx, "SELECT count(), any(raw) FROM "+s.t(TableEvents)+" WHERE tenant_uid = ?", "tenant-"+method).Scan(&rows, &raw); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if rows != uint64(len(events)) || raw != string(events[0].Raw) {
			t.Errorf("%s: read back %d rows, raw %.60q; want %d rows, raw %.60q", method, rows, raw, len(events), events[0].Raw)
		}
		_ = s.Close()
		_ = proxy.Close()
	}
	t.Logf("bytes on the wire for %d events with raw records: %v", len(events), sent)
	if sent["none"] < 3*sent["lz4"] {
		t.Errorf("none sent %d bytes, lz4 %d: want none several times lz4", sent["none"], sent["lz4"])
	}
	if sent["zstd"] > sent["lz4"] {
		t.Errorf("zstd sent %d bytes, more than lz4's %d", sent["zstd"], sent["lz4"])
	}
}

func TestCompressionIsValidated(t *testing.T) {
	cfg := Default()
	cfg.Compression = "gzip" // HTTP only, not the native protocol
	err := cfg.Validate()
	if err == nil {
		t.Fatal("compression gzip was accepted")
	}
	if want := `compression "gzip": want one of lz4, lz4hc, none, zstd`; !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want it to say %s", err, want)
	}
}
