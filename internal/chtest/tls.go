package chtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TLSServer is a ClickHouse server of a test's own that listens only on a
// TLS native port (tcp_port_secure), with the certificate the test made.
type TLSServer struct {
	// Addr is the secure native port's host:port on loopback.
	Addr string
}

// TLSOptions configures StartTLS.
type TLSOptions struct {
	// CertFile and KeyFile are the server's PEM certificate and key.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the server require a client
	// certificate signed by this CA (mutual TLS).
	ClientCAFile string
	// Password is the default user's password (empty: none).
	Password string
}

// serverBinary finds clickhouse-server as deployments/local/clickhouse.sh
// does; args are the arguments that precede --config-file.
func serverBinary() (bin string, args []string, ok bool) {
	for _, b := range []string{"/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"} {
		if _, err := os.Stat(b); err == nil {
			return b, nil, true
		}
	}
	if b, err := exec.LookPath("clickhouse-server"); err == nil {
		return b, nil, true
	}
	if b, err := exec.LookPath("clickhouse"); err == nil {
		return b, []string{"server"}, true
	}
	return "", nil, false
}

// StartTLS starts a ClickHouse server (the binary `make test` uses) whose
// only port is a TLS native port, and stops it when the test ends. The
// server is the test's: its data lives in a temporary directory. It skips
// the test when no ClickHouse binary is installed, unless ClickHouse is
// required.
func StartTLS(t testing.TB, o TLSOptions) TLSServer {
	t.Helper()
	bin, args, ok := serverBinary()
	if !ok {
		if Required() {
			t.Fatal("clickhouse-server is required (MUSUBI_REQUIRE_CLICKHOUSE=1) but not installed")
		}
		t.Skip("clickhouse-server is not installed; run `make test` to install it")
	}
	dir := t.TempDir()
	for _, d := range []string{"data", "tmp", "log", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	verify := "<verificationMode>none</verificationMode>"
	if o.ClientCAFile != "" {
		verify = "<verificationMode>strict</verificationMode><caConfig>" + o.ClientCAFile + "</caConfig>"
	}
	config := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port_secure>%[2]d</tcp_port_secure>
  <openSSL><server>
    <certificateFile>%[3]s</certificateFile>
    <privateKeyFile>%[4]s</privateKeyFile>
    %[5]s
    <loadDefaultCAFile>false</loadDefaultCAFile>
    <cacheSessions>true</cacheSessions>
    <disableProtocols>sslv2,sslv3</disableProtocols>
    <preferServerCiphers>true</preferServerCiphers>
  </server></openSSL>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>16777216</mark_cache_size>
  <uncompressed_cache_size>16777216</uncompressed_cache_size>
</yandex>
`, dir, port, o.CertFile, o.KeyFile, verify)
	users := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <profiles><default><allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type></default></profiles>
  <users><default>
    <password>%s</password>
    <networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota>
  </default></users>
  <quotas><default></default></quotas>
</yandex>
`, o.Password)
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "log", "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, "--config-file="+filepath.Join(dir, "config.xml"))...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = out.Close()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// The server is up when its port accepts connections.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return TLSServer{Addr: addr}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "log", "server.err.log"))
			stdout, _ := os.ReadFile(filepath.Join(dir, "log", "stdout.log"))
			t.Fatalf("clickhouse-server exited before it listened on %s: %s%s", addr, tail(log), tail(stdout))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("clickhouse-server did not listen on %s within 60s", addr)
		}
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
