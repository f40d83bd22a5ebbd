package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/musubi-xdr/musubi/config"
)

// TestKafkaTLSConfig checks the TLS settings reach the client: the CA file
// becomes the only trusted root, a file without a certificate is refused,
// and skipping verification is warned about.
func TestKafkaTLSConfig(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	if tc, err := (config.TLS{}).Client("kafka", logger); tc != nil || err != nil {
		t.Errorf("TLS off: got %v, %v; want nil, nil", tc, err)
	}
	tc, err := (config.TLS{Enabled: true, CAFile: ca, ServerName: "b-1.msk.example"}).Client("kafka", logger)
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || tc.ServerName != "b-1.msk.example" || tc.InsecureSkipVerify {
		t.Errorf("got roots %v, server name %q, skip-verify %v; want the CA, the name, verification on", tc.RootCAs, tc.ServerName, tc.InsecureSkipVerify)
	}
	if _, err := (config.TLS{Enabled: true, CAFile: junk}).Client("kafka", logger); err == nil || !strings.Contains(err.Error(), "kafka.tls.ca_file") {
		t.Errorf("a CA file without a certificate: got %v, want an error naming kafka.tls.ca_file", err)
	}
	if logs.Len() != 0 {
		t.Errorf("warned without skip-verify: %s", logs.String())
	}
	if _, err := (config.TLS{Enabled: true, InsecureSkipVerify: true}).Client("kafka", logger); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "insecure_skip_verify") {
		t.Errorf("skip-verify without a warning (log %q)", logs.String())
	}
}

// TestKafkaSASLSecrets checks the SASL password comes from the file, the
// environment or the value, and that a missing secret is an error.
func TestKafkaSASLSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MUSUBI_TEST_SASL_PASSWORD", "from-env")
	for _, tc := range []struct{ password, want string }{
		{"literal", "literal"}, {"env:MUSUBI_TEST_SASL_PASSWORD", "from-env"}, {"file:" + file, "from-file"},
	} {
		m, err := saslMechanism(context.Background(), config.SASL{Mechanism: "PLAIN", Username: "musubi", Password: tc.password})
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := m.(plain.Mechanism); !ok || p.Password != tc.want || p.Username != "musubi" {
			t.Errorf("password %q: got %+v, want PLAIN musubi/%s", tc.password, m, tc.want)
		}
	}
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		m, err := saslMechanism(context.Background(), config.SASL{Mechanism: mech, Username: "musubi", Password: "x"})
		if err != nil || m == nil || m.Name() != mech {
			t.Errorf("%s: got %v, %v", mech, m, err)
		}
	}
	if _, err := saslMechanism(context.Background(), config.SASL{Mechanism: "PLAIN", Username: "u", Password: "env:MUSUBI_TEST_UNSET_VARIABLE"}); err == nil {
		t.Error("an empty environment variable was accepted as the password")
	}
	if m, err := saslMechanism(context.Background(), config.SASL{}); m != nil || err != nil {
		t.Errorf("SASL off: got %v, %v", m, err)
	}
}
