// Package tlsconf is the TLS client setting shared by the connections to
// Kafka and to ClickHouse: its YAML shape, its validation and the
// crypto/tls configuration it builds.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Config configures TLS to a server.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs to trust; empty trusts the
	// system's roots (right for MSK, Confluent Cloud and ClickHouse Cloud).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key, for
	// mutual TLS. Being files, they come from a mounted Secret.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server's certificate is checked
	// against (default: the host of the address dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For a lab only:
	// Client warns when it is on.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate reports every inconsistency of c, each error naming the key
// below the TLS section ("cert_file", "enabled").
func (c Config) Validate() []error {
	var errs []error
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file go together"))
	}
	if !c.Enabled && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify) {
		errs = append(errs, errors.New("enabled is false although other tls keys are set"))
	}
	return errs
}

// Client builds the client TLS configuration; nil when TLS is off. what
// names the section in errors and in the warning about skipped
// verification ("kafka", "clickhouse").
func (c Config) Client(what string, logger *slog.Logger) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.InsecureSkipVerify && logger != nil {
		logger.Warn(what + ".tls.insecure_skip_verify is on: any server certificate is accepted, so the connection can be intercepted; use it in a lab only")
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.tls.ca_file: %w", what, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.tls.ca_file: %s holds no PEM certificate", what, c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.tls.cert_file/key_file: %w", what, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
