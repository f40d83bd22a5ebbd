// Package config holds Musubi's configuration: one YAML file, environment
// overrides and flags, in that order of precedence (flags win).
//
// Decoding is strict — an unknown key is an error — and Validate reports every
// problem at once. Defaults (in Default) let `musubi serve` run against the
// project's local ClickHouse and a Kafka broker on localhost without a file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/secret"
	"github.com/musubi-xdr/musubi/internal/tlsconf"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// Config is the whole configuration of the musubi binary.
type Config struct {
	// Role is what `musubi serve` runs: "all" (every stage and the API, the
	// default), "api" (the API and console only: no Kafka), "detect" (the
	// raw topics: events stored, signals published to
	// kafka.signals_topic) or "correlate" (the signals: alerts and
	// incidents stored). It also decides readiness: a process serving the
	// API is ready when ClickHouse answers, a data-path role also needs
	// Kafka.
	Role       string     `yaml:"role"`
	Kafka      Kafka      `yaml:"kafka"`
	ClickHouse ClickHouse `yaml:"clickhouse"`
	Rules      Rules      `yaml:"rules"`
	Correlate  Correlate  `yaml:"correlate"`
	Pipeline   Pipeline   `yaml:"pipeline"`
	API        API        `yaml:"api"`
	Ingest     Ingest     `yaml:"ingest"`
	Exposure   Exposure   `yaml:"exposure"`
	Tenants    []Tenant   `yaml:"tenants"`
	Log        Log        `yaml:"log"`
}

// Exposure is the exposure section, owned by the asset risk of incidents
// (package exposure): crown_jewel_tags marks crown-jewel assets.
type Exposure = exposure.RiskOptions

// Kafka is the kafka section, owned by the consumer (package pipeline).
type Kafka = pipeline.KafkaConfig

// SASL is kafka.sasl (package pipeline).
type SASL = pipeline.SASLConfig

// Topics is kafka.topics (package pipeline).
type Topics = pipeline.Topics

// TLS configures TLS to a server (package tlsconf).
type TLS = tlsconf.Config

// SASLMechanisms lists the valid values of SASL.Mechanism.
var SASLMechanisms = pipeline.SASLMechanisms

// SASLAWSMSKIAM is the SASL mechanism of Amazon MSK's IAM access control.
const SASLAWSMSKIAM = pipeline.SASLAWSMSKIAM

// ClickHouse configures storage.
type ClickHouse struct {
	Addr     []string `yaml:"addr"`
	Database string   `yaml:"database"`
	Username string   `yaml:"username"`
	// Password is the password, "env:NAME" or "file:PATH".
	Password string `yaml:"password"`
	// TLS encrypts the connections (tcp_port_secure; ClickHouse Cloud).
	TLS              TLS           `yaml:"tls"`
	Cluster          string        `yaml:"cluster"`
	MigrateOnStart   bool          `yaml:"migrate_on_start"`
	StoreRaw         bool          `yaml:"store_raw"`
	MaxExecutionTime time.Duration `yaml:"max_execution_time"`
	// Compression is the native protocol's block compression (none, lz4,
	// lz4hc, zstd; see storage.Config.Compression).
	Compression string `yaml:"compression"`
	// MaxOpenConns bounds the connection pool that the pipeline and the
	// API share. A query waits for a free connection at most
	// dial_timeout; the API answers 503 with Retry-After when it cannot get
	// one.
	MaxOpenConns int `yaml:"max_open_conns"`
	// DialTimeout bounds connecting to a server and waiting for a free
	// connection of the pool.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Retention per table (events, alerts, incidents, dead_letters, ...),
	// enforced by dropping daily partitions; tables not named keep their
	// default retention (README), 0 keeps a table forever.
	Retention map[string]time.Duration `yaml:"retention"`
	// IncidentNumbers splits incident numbering among engine replicas;
	// unset keeps storage's single allocator.
	IncidentNumbers storage.NumberConfig `yaml:"incident_numbers"`
}

// Rules configures detection and correlation rules.
type Rules struct {
	Dir string `yaml:"dir"`
	// ReloadInterval is how often the directory is checked for changes
	// (detection and correlation rules reload together).
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Correlate configures the correlator. Entity kinds not named in Windows
// keep the correlator's built-in windows (see docs/design.md).
type Correlate struct {
	// Windows is how far apart in event time two sightings of an entity
	// kind may be and still join, by kind (instance, ip, access_key, ...).
	Windows       map[string]time.Duration `yaml:"windows"`
	DefaultWindow time.Duration            `yaml:"default_window"`
	// AllowedLateness is how far behind the watermark input may arrive and
	// still count as on time; later input is counted and still attached.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// SourceDelay is how far behind the wall clock the slowest source
	// delivers (CloudTrail: up to about 15 minutes). While input is idle,
	// event time advances only to now minus this.
	SourceDelay time.Duration `yaml:"source_delay"`
	// FoldWindow is the window within which repeats of one detection on
	// the same entities fold into one alert with a count; 0 turns folding
	// off.
	FoldWindow time.Duration `yaml:"fold_window"`
	// HubPartnerLimit makes an entity with more distinct partners a hub
	// that no longer glues incidents together.
	HubPartnerLimit int `yaml:"hub_partner_limit"`
	// HubCIDRs are extra shared addresses (NAT gateways, VPC endpoints)
	// that never glue incidents together.
	HubCIDRs []string `yaml:"hub_cidrs"`
	// HubValues are extra entity values (a very common role, say) that
	// never glue incidents together.
	HubValues            []string `yaml:"hub_values"`
	MaxAlertsPerIncident int      `yaml:"max_alerts_per_incident"`
	MaxNodesPerIncident  int      `yaml:"max_nodes_per_incident"`
}

// Pipeline is the pipeline section, owned by the consumer (package
// pipeline).
type Pipeline = pipeline.BatchConfig

// API configures the HTTP server.
type API struct {
	Listen string `yaml:"listen"`
	// Tokens seeds API tokens at start; the secret may be given as
	// "env:NAME" to read it from the environment.
	Tokens []Token `yaml:"tokens"`
	// Webhooks announce new and escalated incidents (package notify).
	Webhooks []Webhook `yaml:"webhooks"`
	// PublicURL is the API's external base URL; webhooks link to
	// <public_url>/v1/incidents/<id> when it is set.
	PublicURL string `yaml:"public_url"`
	// CursorKey signs the paging cursors ("env:NAME" reads it from the
	// environment). API replicas behind one address need the same key;
	// empty means a random key per process.
	CursorKey string `yaml:"cursor_key"`
	// SLA is the time to resolve an incident by its effective severity
	// (informational, low, medium, high, critical, fatal), counted from
	// its first alert; severities not named keep the API's defaults, 0
	// means no SLA.
	SLA map[string]time.Duration `yaml:"sla"`
	// Analysts and Teams are who incidents may be assigned to besides
	// token names (api.Directory, which validates them; see
	// Config.APIDirectory).
	Analysts []string            `yaml:"analysts"`
	Teams    map[string][]string `yaml:"teams"`
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on this listener, without authentication like
	// /metrics. Off by default: a CPU profile costs the engine CPU while
	// it runs, and the profiles show the process's internals.
	Pprof bool `yaml:"pprof"`
}

// Webhook is one receiver of incident notifications.
type Webhook struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Secret is the Standard Webhooks signing secret ("whsec_<base64>"),
	// or "env:NAME" to read it from the environment. Required for the
	// generic and slack formats; optional for the others.
	Secret string `yaml:"secret"`
	// Key is the receiver's credential: the PagerDuty routing key or the
	// Opsgenie API key; "env:NAME" reads it from the environment.
	Key string `yaml:"key"`
	// Format is generic, slack, pagerduty, opsgenie, teams or alertmanager.
	Format string `yaml:"format"`
	// MinSeverity is the lowest OCSF severity id announced.
	MinSeverity int `yaml:"min_severity"`
	// Tenants limits the webhook to these tenants (empty: all).
	Tenants []string `yaml:"tenants"`
}

// WebhookFormats lists the payload formats of Webhook.Format.
var WebhookFormats = []string{"generic", "slack", "pagerduty", "opsgenie", "teams", "alertmanager"}

// Token is a bearer token seeded from configuration.
type Token struct {
	Name    string   `yaml:"name"`
	Secret  string   `yaml:"secret"`
	Role    string   `yaml:"role"`
	Tenants []string `yaml:"tenants"`
}

// Ingest is the ingest section: the decoder's limits (package ingest). A
// record or message beyond a limit is a dead letter, never dropped.
type Ingest = ingest.Limits

// Tenant maps a tenant to the AWS accounts it owns. An account list of
// ["*"] matches every account not claimed by another tenant.
type Tenant struct {
	ID       string   `yaml:"id"`
	Name     string   `yaml:"name"`
	Accounts []string `yaml:"accounts"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Kafka: pipeline.DefaultKafka(),
		ClickHouse: ClickHouse{
			Addr:             []string{"127.0.0.1:19000"},
			Database:         "musubi",
			Username:         "default",
			MigrateOnStart:   true,
			StoreRaw:         true,
			MaxExecutionTime: 30 * time.Second,
			MaxOpenConns:     16,
			DialTimeout:      5 * time.Second,
			Compression:      storage.Default().Compression,
			Retention:        map[string]time.Duration{},
			IncidentNumbers:  storage.Default().IncidentNumbers,
		},
		Rules:     Rules{Dir: "detections", ReloadInterval: rules.DefaultPollInterval},
		Correlate: defaultCorrelate(),
		Pipeline:  pipeline.DefaultBatch(),
		API:       API{Listen: "127.0.0.1:8080"},
		Ingest:    ingest.DefaultLimits(),
		Tenants:   []Tenant{{ID: "default", Name: "Default", Accounts: []string{"*"}}},
		Log:       Log{Level: "info", Format: "text"},
		Role:      RoleAll,
	}
}

// Load reads the file at path over the defaults (an empty path means no
// file), then applies environment overrides. It does not validate.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := Decode(bytes.NewReader(data), &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Secret resolves a secret setting: "env:NAME" reads the environment,
// "file:PATH" reads a file (trailing newlines trimmed), anything else is the
// secret itself.
func Secret(v string) (string, error) { return secret.Resolve(v) }

// The roles of `musubi serve` (Config.Role).
const (
	RoleAll       = "all"
	RoleAPI       = "api"
	RoleDetect    = "detect"
	RoleCorrelate = "correlate"
)

// Roles lists the valid values of Config.Role.
var Roles = []string{RoleAll, RoleAPI, RoleDetect, RoleCorrelate}

// ServesData reports whether the role consumes Kafka and runs the data path.
func (c Config) ServesData() bool { return c.Role != RoleAPI }

// Decode decodes YAML strictly into cfg: unknown keys are errors.
func Decode(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Env lists the environment variables that override the file.
var Env = []struct{ Name, Help string }{
	{"MUSUBI_ROLE", "what serve runs: all, api, detect or correlate"},
	{"MUSUBI_KAFKA_BROKERS", "comma-separated Kafka bootstrap brokers"},
	{"MUSUBI_KAFKA_GROUP_ID", "Kafka consumer group"},
	{"MUSUBI_CLICKHOUSE_ADDR", "comma-separated ClickHouse native addresses (host:port)"},
	{"MUSUBI_CLICKHOUSE_DATABASE", "ClickHouse database"},
	{"MUSUBI_CLICKHOUSE_USERNAME", "ClickHouse user"},
	{"MUSUBI_CLICKHOUSE_PASSWORD", "ClickHouse password"},
	{"MUSUBI_CLICKHOUSE_CLUSTER", "ClickHouse cluster name (enables ON CLUSTER schema)"},
	{"MUSUBI_RULES_DIR", "rule directory"},
	{"MUSUBI_API_LISTEN", "HTTP listen address"},
	{"MUSUBI_LOG_LEVEL", "debug, info, warn or error"},
}

func (c *Config) applyEnv(getenv func(string) string) error {
	if getenv == nil {
		return nil
	}
	list := func(v string) []string {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	set := func(name string, apply func(string)) {
		if v := getenv(name); v != "" {
			apply(v)
		}
	}
	set("MUSUBI_ROLE", func(v string) { c.Role = v })
	set("MUSUBI_KAFKA_BROKERS", func(v string) { c.Kafka.Brokers = list(v) })
	set("MUSUBI_KAFKA_GROUP_ID", func(v string) { c.Kafka.GroupID = v })
	set("MUSUBI_CLICKHOUSE_ADDR", func(v string) { c.ClickHouse.Addr = list(v) })
	set("MUSUBI_CLICKHOUSE_DATABASE", func(v string) { c.ClickHouse.Database = v })
	set("MUSUBI_CLICKHOUSE_USERNAME", func(v string) { c.ClickHouse.Username = v })
	set("MUSUBI_CLICKHOUSE_PASSWORD", func(v string) { c.ClickHouse.Password = v })
	set("MUSUBI_CLICKHOUSE_CLUSTER", func(v string) { c.ClickHouse.Cluster = v })
	set("MUSUBI_RULES_DIR", func(v string) { c.Rules.Dir = v })
	set("MUSUBI_API_LISTEN", func(v string) { c.API.Listen = v })
	set("MUSUBI_LOG_LEVEL", func(v string) { c.Log.Level = v })
	return nil
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !slices.Contains(Roles, c.Role) {
		bad("role", "%q is not one of %s", c.Role, strings.Join(Roles, ", "))
	}
	if len(c.ClickHouse.Addr) == 0 {
		bad("clickhouse.addr", "at least one address is required")
	}
	for i, a := range c.ClickHouse.Addr {
		if _, port, err := net.SplitHostPort(a); err != nil {
			bad(fmt.Sprintf("clickhouse.addr[%d]", i), "%q is not host:port", a)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad(fmt.Sprintf("clickhouse.addr[%d]", i), "port %q is not a number", port)
		}
	}
	if c.ClickHouse.DialTimeout < 100*time.Millisecond {
		bad("clickhouse.dial_timeout", "%s is shorter than 100ms", c.ClickHouse.DialTimeout)
	}
	// The components' own validators, on the values serve gives them.
	errs = append(errs, c.componentErrors()...)
	if c.Rules.Dir == "" {
		bad("rules.dir", "must not be empty")
	}
	if c.Rules.ReloadInterval < 100*time.Millisecond {
		bad("rules.reload_interval", "%s is shorter than 100ms", c.Rules.ReloadInterval)
	}
	if c.Correlate.SourceDelay < 0 {
		bad("correlate.source_delay", "must not be negative")
	}
	if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
		bad("api.listen", "%q is not host:port", c.API.Listen)
	}
	if k := c.API.CursorKey; k != "" && !strings.HasPrefix(k, "env:") && len(k) < 16 {
		bad("api.cursor_key", "is %d bytes; use at least 16 random bytes", len(k))
	}
	for name, d := range c.API.SLA {
		if id, ok := ocsf.SeverityID(name); !ok || id == ocsf.SeverityUnknown {
			bad("api.sla."+name, "is not a severity: informational, low, medium, high, critical or fatal")
		}
		if d < 0 {
			bad("api.sla."+name, "must not be negative")
		}
	}
	tokenNames := map[string]int{}
	for i, t := range c.API.Tokens {
		f := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			bad(f+".name", "must not be empty")
		} else if j, dup := tokenNames[strings.ToLower(t.Name)]; dup {
			// The name is the actor in the audit log and the assignee "me".
			bad(f+".name", "%q is already the name of api.tokens[%d]; token names must be unique (case-insensitive)", t.Name, j)
		} else {
			tokenNames[strings.ToLower(t.Name)] = i
		}
		if t.Secret == "" {
			bad(f+".secret", "must not be empty")
		}
		if !slices.Contains([]string{"viewer", "analyst", "admin"}, t.Role) {
			bad(f+".role", "%q is not viewer, analyst or admin", t.Role)
		}
		for _, tn := range t.Tenants {
			if tn != "*" && !hasTenant(c.Tenants, tn) {
				bad(f+".tenants", "unknown tenant %q", tn)
			}
		}
	}
	for i, w := range c.API.Webhooks {
		f := fmt.Sprintf("api.webhooks[%d]", i)
		if w.Name == "" {
			bad(f+".name", "must not be empty")
		}
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(f+".url", "%q is not an http(s) URL", w.URL)
		}
		if w.Secret == "" && (w.Format == "slack" || w.Format == "generic") {
			bad(f+".secret", "must not be empty for the %s format", w.Format)
		}
		if !slices.Contains(WebhookFormats, w.Format) {
			bad(f+".format", "%q is not one of %s", w.Format, strings.Join(WebhookFormats, ", "))
		}
		if w.Key == "" && (w.Format == "pagerduty" || w.Format == "opsgenie") {
			bad(f+".key", "a %s webhook needs its key (routing key or API key)", w.Format)
		}
		if w.MinSeverity < 0 || w.MinSeverity > 6 {
			bad(f+".min_severity", "%d is outside 0..6", w.MinSeverity)
		}
		for _, tn := range w.Tenants {
			if !hasTenant(c.Tenants, tn) {
				bad(f+".tenants", "unknown tenant %q", tn)
			}
		}
	}
	if len(c.Tenants) == 0 {
		bad("tenants", "at least one tenant is required")
	}
	ids := map[string]bool{}
	accounts := map[string]string{}
	for i, t := range c.Tenants {
		f := fmt.Sprintf("tenants[%d]", i)
		if !isIdent(strings.ReplaceAll(t.ID, "-", "_")) {
			bad(f+".id", "%q must be letters, digits, '-' and '_'", t.ID)
		}
		if ids[t.ID] {
			bad(f+".id", "duplicate tenant %q", t.ID)
		}
		ids[t.ID] = true
		if len(t.Accounts) == 0 {
			bad(f+".accounts", "at least one AWS account (or \"*\") is required")
		}
		for _, a := range t.Accounts {
			if a != "*" && !ocsf.IsAccountID(a) {
				bad(f+".accounts", "%q is not a 12-digit AWS account id", a)
			}
			if other, dup := accounts[a]; dup {
				bad(f+".accounts", "account %s is also claimed by tenant %q", a, other)
			}
			accounts[a] = t.ID
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}

func hasTenant(ts []Tenant, id string) bool {
	for _, t := range ts {
		if t.ID == id {
			return true
		}
	}
	return false
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
