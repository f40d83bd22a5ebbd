package pipeline

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/storage"
)

// testPKI returns a broker TLS configuration with a certificate for
// 127.0.0.1 signed by a fresh CA, and a client TLS configuration that
// trusts only that CA.
func testPKI(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "musubi test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kafka"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// recordingWriter counts the events of every batch written.
type recordingWriter struct{ events chan int }

func (w recordingWriter) Write(_ context.Context, b storage.Batch) error {
	w.events <- len(b.Events)
	return nil
}

// TestConsumerOverTLSAndSASL runs the consumer against a broker that
// accepts only TLS connections authenticated with SASL (as Amazon MSK and
// Confluent Cloud do), for PLAIN and SCRAM: it must read every record,
// commit, and read its lag from the brokers over the same secured
// connections. A wrong password must be refused.
func TestConsumerOverTLSAndSASL(t *testing.T) {
	const secTopic = "musubi.raw.secure"
	for _, tc := range []struct {
		method string
		mech   func(user, pass string) (sasl.Mechanism, error)
	}{
		{"PLAIN", func(u, p string) (sasl.Mechanism, error) { return plain.Mechanism{Username: u, Password: p}, nil }},
		{"SCRAM-SHA-256", func(u, p string) (sasl.Mechanism, error) { return scram.Mechanism(scram.SHA256, u, p) }},
		{"SCRAM-SHA-512", func(u, p string) (sasl.Mechanism, error) { return scram.Mechanism(scram.SHA512, u, p) }},
	} {
		t.Run(tc.method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), testBudget)
			defer cancel()
			serverTLS, clientTLS := testPKI(t)
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, secTopic),
				kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser(tc.method, "musubi", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			brokers := cluster.ListenAddrs()
			mech, err := tc.mech("musubi", "s3cret")
			if err != nil {
				t.Fatal(err)
			}

			wrong, err := tc.mech("musubi", "wrong")
			if err != nil {
				t.Fatal(err)
			}
			bad := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{TLS: clientTLS, SASL: wrong}}
			if _, err := bad.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{secTopic}}); err == nil {
				t.Error("the broker accepted a wrong password")
			}
			plainText := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second, Transport: &kafka.Transport{SASL: mech}}
			if _, err := plainText.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{secTopic}}); err == nil {
				t.Error("the broker answered a connection without TLS")
			}

			tr := &kafka.Transport{TLS: clientTLS, SASL: mech}
			defer tr.CloseIdleConnections()
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: secTopic, Transport: tr, BatchTimeout: time.Millisecond}
			defer w.Close()
			const n = 5
			msgs := make([]kafka.Message, n)
			for i := range msgs {
				msgs[i] = kafka.Message{Value: []byte(`{"Records":[]}`)}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(err)
			}

			reg := prometheus.NewRegistry()
			logger := slog.New(slog.DiscardHandler)
			proc := NewProcessor(ingest.NewDecoder(ingest.DefaultLimits()), lagNoRules{}, noCorrelation{}, func(string) string { return "default" }, false, logger, reg)
			rw := recordingWriter{events: make(chan int, 100)}
			c := NewConsumer(ConsumerConfig{
				Brokers: brokers, GroupID: "secure", Topics: map[string]ingest.Source{secTopic: ingest.SourceCloudTrail},
				BatchSize: 100, FlushInterval: 20 * time.Millisecond, MaxWait: testMaxWait, QueueCapacity: 100,
				LagInterval: 20 * time.Millisecond, TLS: clientTLS, SASL: mech,
			}, proc, rw, logger)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(runCtx) }()
			defer func() {
				stop()
				if err := <-done; err != nil {
					t.Errorf("consumer: %v", err)
				}
			}()

			admin := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				resp, err := admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "secure", Topics: map[string][]int{secTopic: {0}}})
				committed := int64(-1)
				if err == nil && len(resp.Topics[secTopic]) == 1 {
					committed = resp.Topics[secTopic][0].CommittedOffset
				}
				lag := lagByPartition(t, reg)
				if l, ok := lag[secTopic+"/0"]; committed == n && ok && l == 0 {
					return
				}
				select {
				case <-ctx.Done():
					t.Fatalf("got committed offset %d (%v) and lag %v, want %d and 0 over TLS and %s", committed, err, lag, n, tc.method)
				case <-tick.C:
				}
			}
		})
	}
}
