package storage

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/testpki"
	"github.com/musubi-xdr/musubi/internal/tlsconf"
)

// TestOpenTLS connects to a ClickHouse server of the test's own that
// listens only on a TLS native port (tcp_port_secure), requires a client
// certificate and a password: the store migrates through it when the
// settings are right, and every wrong setting fails to connect.
func TestOpenTLS(t *testing.T) {
	ca := testpki.New(t, "musubi test CA")
	// The server's certificate names clickhouse.test only, not the
	// address dialled, so verification needs tls.server_name.
	serverCert, serverKey := ca.Server(t, []string{"clickhouse.test"}, nil)
	clientCert, clientKey := ca.Client(t, "musubi")
	srv := chtest.StartTLS(t, chtest.TLSOptions{CertFile: serverCert, KeyFile: serverKey, ClientCAFile: ca.File, Password: "s3cret"})

	passwordFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passwordFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MUSUBI_TEST_CLICKHOUSE_PASSWORD", "s3cret")
	good := tlsconf.Config{Enabled: true, CAFile: ca.File, ServerName: "clickhouse.test", CertFile: clientCert, KeyFile: clientKey}
	other := testpki.New(t, "another CA")

	for _, tc := range []struct {
		name     string
		tls      func(*tlsconf.Config)
		password string
		ok       bool
		warn     bool
		// fails is what the error says when ok is false (the server
		// resets a connection without a client certificate or TLS,
		// at a moment that varies, so those say less).
		fails string
	}{
		{name: "verified, password from file", password: "file:" + passwordFile, ok: true},
		{name: "verified, password from env", password: "env:MUSUBI_TEST_CLICKHOUSE_PASSWORD", ok: true},
		{name: "skip verify warns", tls: func(c *tlsconf.Config) { c.CAFile, c.ServerName, c.InsecureSkipVerify = "", "", true }, password: "s3cret", ok: true, warn: true},
		{name: "wrong password", password: "wrong", fails: "code: 193"},
		{name: "CA not trusted", tls: func(c *tlsconf.Config) { c.CAFile = other.File }, password: "s3cret", fails: "unknown authority"},
		{name: "system roots", tls: func(c *tlsconf.Config) { c.CAFile = "" }, password: "s3cret", fails: "unknown authority"},
		{name: "address not in certificate", tls: func(c *tlsconf.Config) { c.ServerName = "" }, password: "s3cret", fails: "doesn't contain any IP SANs"},
		{name: "wrong server name", tls: func(c *tlsconf.Config) { c.ServerName = "other.test" }, password: "s3cret", fails: "not other.test"},
		{name: "no client certificate", tls: func(c *tlsconf.Config) { c.CertFile, c.KeyFile = "", "" }, password: "s3cret", fails: "127.0.0.1"},
		{name: "TLS off", tls: func(c *tlsconf.Config) { *c = tlsconf.Config{} }, password: "s3cret", fails: "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.Addr = []string{srv.Addr}
			cfg.Database = "musubi_tls"
			cfg.Password = tc.password
			cfg.DialTimeout = 2 * time.Second
			cfg.TLS = good
			if tc.tls != nil {
				tc.tls(&cfg.TLS)
			}
			var logs bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
			if !tc.ok {
				if err == nil {
					_ = s.Close()
					t.Fatal("connected; want an error")
				}
				if !strings.Contains(err.Error(), tc.fails) {
					t.Fatalf("got %v, want an error with %q", err, tc.fails)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s.Close()
			// DDL and a read over the encrypted connection.
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrate over TLS: %v", err)
			}
			var n uint64
			if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = 'musubi_tls'").Scan(&n); err != nil || n == 0 {
				t.Fatalf("tables after migrate: got %d, %v; want the schema", n, err)
			}
			if warned := strings.Contains(logs.String(), "clickhouse.tls.insecure_skip_verify"); warned != tc.warn {
				t.Errorf("warning about skipped verification: got %v, want %v (log %q)", warned, tc.warn, logs.String())
			}
		})
	}
}

// TestTLSConfigValidate checks the clickhouse.tls keys are validated with
// the rest of the store's configuration.
func TestTLSConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  tlsconf.Config
		want string
	}{
		{"off", tlsconf.Config{}, ""},
		{"on", tlsconf.Config{Enabled: true, CAFile: "ca.pem"}, ""},
		{"keys without enabled", tlsconf.Config{CAFile: "ca.pem"}, "tls.enabled is false"},
		{"certificate without key", tlsconf.Config{Enabled: true, CertFile: "c.pem"}, "tls.cert_file and key_file go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.TLS = tc.tls
			err := cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
