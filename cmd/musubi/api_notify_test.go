package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/notify"
)

// TestNotifierFromConfig: a configured webhook with its secret in the
// environment receives a signed notification of a new incident, linked to
// the API.
func TestNotifierFromConfig(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a very secret signing key!!"))
	t.Setenv("MUSUBI_TEST_WEBHOOK_SECRET", secret)
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer srv.Close()

	cfg := config.Default()
	cfg.API.PublicURL = "https://soc.example/"
	cfg.API.Webhooks = []config.Webhook{{Name: "soc", URL: srv.URL, Secret: "env:MUSUBI_TEST_WEBHOOK_SECRET", Format: "generic", MinSeverity: 3}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := newNotifier(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = n.Run(ctx) }()
	n.Observe([]incident.Incident{
		{ID: "inc-low", TenantUID: "default", Version: 1, Title: "low", Severity: 2, Status: "new"},
		{ID: "inc-1", TenantUID: "default", Version: 1, Title: "Pipeline poisoning", Severity: 4, Status: "new"},
	})
	select {
	case r := <-got:
		body := <-bodies
		if err := notify.Verify(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		var g notify.Generic
		_ = json.Unmarshal(body, &g)
		if g.Data.ID != "inc-1" || g.Data.URL != "https://soc.example/v1/incidents/inc-1" {
			t.Errorf("got %+v, want inc-1 linked to the API (inc-low is below min_severity)", g.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived")
	}

	// Without webhooks there is no notifier; a missing secret is an error.
	cfg.API.Webhooks = nil
	if n, err := newNotifier(cfg, nil, nil); n != nil || err != nil {
		t.Errorf("without webhooks: got %v, %v; want nil, nil", n, err)
	}
	cfg.API.Webhooks = []config.Webhook{{Name: "soc", URL: srv.URL, Secret: "env:MUSUBI_TEST_UNSET_SECRET", Format: "slack"}}
	if _, err := newNotifier(cfg, nil, nil); err == nil {
		t.Errorf("with an unset secret variable: got no error")
	}
}
