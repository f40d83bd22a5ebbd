// Package chtest connects tests to the real ClickHouse server that
// `make test` starts (deployments/local/clickhouse.sh) and gives each test a
// fresh database of its own.
//
// A test that needs ClickHouse skips when the server is absent, unless
// MUSUBI_REQUIRE_CLICKHOUSE=1 is set (as `make test` and CI do): then it
// fails, so a missing database can never pass as a green run.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Addr is the ClickHouse native address tests use: MUSUBI_CLICKHOUSE_ADDR or
// the local server's 127.0.0.1:19000.
func Addr() string {
	if a := os.Getenv("MUSUBI_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:19000"
}

// Required reports whether tests must fail rather than skip without ClickHouse.
func Required() bool { return os.Getenv("MUSUBI_REQUIRE_CLICKHOUSE") == "1" }

// Options returns client options for the test server and database db.
func Options(db string) *clickhouse.Options {
	return &clickhouse.Options{
		Addr:        []string{Addr()},
		Auth:        clickhouse.Auth{Database: db, Username: "default"},
		DialTimeout: 5 * time.Second,
		Settings:    clickhouse.Settings{"allow_experimental_low_cardinality_type": 1},
	}
}

// Database creates a fresh database for the test, drops it when the test
// ends, and returns its name and a connection to it.
func Database(t testing.TB) (string, driver.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := clickhouse.Open(Options("default"))
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		if Required() {
			t.Fatalf("ClickHouse at %s is required (MUSUBI_REQUIRE_CLICKHOUSE=1) but unreachable: %v", Addr(), err)
		}
		t.Skipf("ClickHouse at %s unreachable (%v); run `make test` to start it", Addr(), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "musubi_test_" + hex.EncodeToString(b[:])
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create database %s: %v", db, err)
	}
	conn, err := clickhouse.Open(Options(db))
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		_ = admin.Close()
	})
	return db, conn
}
