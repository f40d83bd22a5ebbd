package main

import (
	"testing"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/ingest"
)

// TestIngestLimitsFromConfig checks that the default configuration gives
// the decoder its documented default limits and that each ingest key
// reaches the decoder.
func TestIngestLimitsFromConfig(t *testing.T) {
	if got, want := ingestLimits(config.Default()), ingest.DefaultLimits(); got != want {
		t.Errorf("default configuration gives limits %+v, want ingest.DefaultLimits %+v", got, want)
	}
	cfg := config.Default()
	cfg.Ingest = config.Ingest{MaxRecordBytes: 1, MaxDepth: 2, MaxMessageBytes: 3, MaxRecords: 4}
	if got, want := ingestLimits(cfg), (ingest.Limits{MaxRecordBytes: 1, MaxDepth: 2, MaxMessageBytes: 3, MaxRecords: 4}); got != want {
		t.Errorf("got limits %+v, want %+v", got, want)
	}
}
