package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/internal/chtest"
)

// deadBroker returns the address of a port nothing listens on.
func deadBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestReadinessPerRole checks what /readyz depends on in each role: a
// process serving the API (all, api) only on ClickHouse, so a Kafka outage
// keeps the API and console in their Service; a data-path role (detect,
// correlate) on ClickHouse and Kafka.
func TestReadinessPerRole(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	for _, tc := range []struct {
		role       string
		store      func(context.Context) error
		wantErrors []string // substrings; none means ready
	}{
		{config.RoleAll, up, nil},
		{config.RoleAPI, up, nil},
		{config.RoleDetect, up, []string{"kafka"}},
		{config.RoleCorrelate, up, []string{"kafka"}},
		{config.RoleAPI, down, []string{"clickhouse"}},
		{config.RoleAll, down, []string{"clickhouse"}},
		{config.RoleDetect, down, []string{"clickhouse", "kafka"}},
	} {
		cfg := config.Default()
		cfg.Role = tc.role
		cfg.Kafka.Brokers = []string{deadBroker(t)}
		err := readiness(cfg, tc.store)(context.Background())
		if len(tc.wantErrors) == 0 {
			if err != nil {
				t.Errorf("role %s with Kafka down: got not ready (%v), want ready", tc.role, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("role %s: got ready, want not ready on %v", tc.role, tc.wantErrors)
			continue
		}
		for _, w := range tc.wantErrors {
			if !strings.Contains(err.Error(), w+":") {
				t.Errorf("role %s: got %q, want it to name %s", tc.role, err, w)
			}
		}
	}
}

// TestAPIRoleServesWithoutKafka starts `serve -role api` with no Kafka
// broker reachable: it must start, answer /readyz with 200 from ClickHouse
// alone, serve the API, and not consume.
func TestAPIRoleServesWithoutKafka(t *testing.T) {
	db, _ := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.Role = config.RoleAPI
	cfg.Kafka.Brokers = []string{deadBroker(t)}
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = []string{chtest.Addr()}, db
	cfg.Rules.Dir = "testdata/rules"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.API.Tokens = []config.Token{{Name: "viewer", Secret: "viewer-token", Role: "viewer", Tenants: []string{"*"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.listener.Close()
	defer e.store.Close()
	if e.consumer != nil || e.corr != nil {
		t.Error("the api role built a consumer or a correlator; it must not touch Kafka")
	}
	srv := httptest.NewServer(e.server.Handler)
	defer srv.Close()
	for _, path := range []string{"/readyz", "/v1/incidents"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer viewer-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with Kafka down: got %d, want 200", path, resp.StatusCode)
		}
	}
}
