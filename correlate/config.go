package correlate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/ocsf"
)

// LinkRule says that two entity kinds observed in the same event are linked
// (identity or deployment lineage). The rule is symmetric. The optional
// filters narrow it: Operations to events of those API operations (an
// object is tied to the identity that wrote it, not to every reader),
// Classes to those OCSF classes, NamesA and NamesB to observables found in
// those attributes (globs with *; a host's own address links to the host,
// the peer it talks to does not).
type LinkRule struct {
	A          ocsf.Entity `yaml:"a" json:"a"`
	B          ocsf.Entity `yaml:"b" json:"b"`
	Operations []string    `yaml:"operations,omitempty" json:"operations,omitempty"`
	Classes    []int       `yaml:"classes,omitempty" json:"classes,omitempty"`
	NamesA     []string    `yaml:"names_a,omitempty" json:"names_a,omitempty"`
	NamesB     []string    `yaml:"names_b,omitempty" json:"names_b,omitempty"`
}

// Config configures a Correlator. Zero values are not defaults: start from
// DefaultConfig and change what you need.
type Config struct {
	// Windows is how far apart in event time two sightings of an entity of
	// a kind may be and still join (per entity kind); DefaultWindow applies
	// to kinds not listed.
	Windows       map[ocsf.Entity]time.Duration
	DefaultWindow time.Duration
	// AllowedLateness is how far behind its source's watermark an input may
	// arrive and still be treated as on time. Later inputs are counted as
	// late and still attached where the state allows.
	AllowedLateness time.Duration
	// FoldWindow is the window within which repeats of one detection on
	// the same entities fold into one alert with a count (see fold.go);
	// zero keeps every match an alert of its own.
	FoldWindow time.Duration

	// HubPartnerLimit makes an entity with more distinct link partners than
	// this a hub: it stops linking and joining.
	HubPartnerLimit int
	// HubIPs are CIDRs (or single addresses) of shared addresses: NAT
	// gateways, VPC endpoints, AWS service ranges, link-local IMDS.
	HubIPs []string
	// HubValues are entity values that never glue (for example a very
	// common role session or principal), matched exactly.
	HubValues []string
	// HubSuffixes are value suffixes that never glue; AWS service
	// principals (".amazonaws.com") by default.
	HubSuffixes []string

	// JoinKinds are the entity kinds on which alerts join incidents
	// directly. Other kinds (account, region, role, bucket, ...) are shown
	// as context nodes but never glue incidents together.
	JoinKinds []ocsf.Entity
	// Lineage lists the kind pairs that plain events link (identity and
	// deployment lineage).
	Lineage []LinkRule
	// MaxDepth bounds how many lineage links a join may follow.
	MaxDepth int
	// MaxLinksPerEvent bounds the links one event may create.
	MaxLinksPerEvent int

	MaxAlertsPerIncident int
	MaxNodesPerIncident  int
	// MaxEntities caps tracked entities; beyond it the oldest are evicted
	// first.
	MaxEntities int
	// MaxPartialsPerKey bounds in-flight sequence state per rule stage and
	// key.
	MaxPartialsPerKey int
}

// DefaultConfig returns the defaults: windows sized for a cloud intrusion
// that moves from a web server to CI/CD within hours.
func DefaultConfig() Config {
	return Config{
		Windows: map[ocsf.Entity]time.Duration{
			ocsf.EntityIP:       time.Hour,
			ocsf.EntityInstance: 2 * time.Hour,
			ocsf.EntityHost:     2 * time.Hour,
			ocsf.EntityProcess:  time.Hour,
			// A role session or key stolen today may be used again
			// tomorrow: slow chains span days.
			ocsf.EntitySession:    48 * time.Hour,
			ocsf.EntityAccessKey:  48 * time.Hour,
			ocsf.EntityPrincipal:  6 * time.Hour,
			ocsf.EntityObject:     6 * time.Hour,
			ocsf.EntityDeployment: 6 * time.Hour,
		},
		DefaultWindow:   2 * time.Hour,
		AllowedLateness: 5 * time.Minute,
		FoldWindow:      time.Hour,
		HubPartnerLimit: 64,
		HubIPs: []string{
			"169.254.0.0/16", // link-local: IMDS, time sync
			"fe80::/10",
			"127.0.0.0/8",
			"::1/128",
			"0.0.0.0/32",
		},
		HubSuffixes: []string{".amazonaws.com", ".amazonaws.com.cn"},
		JoinKinds: []ocsf.Entity{
			ocsf.EntityInstance, ocsf.EntityIP, ocsf.EntityPrincipal, ocsf.EntitySession,
			ocsf.EntityAccessKey, ocsf.EntityObject, ocsf.EntityDeployment, ocsf.EntityHost,
			ocsf.EntityProcess, ocsf.EntityHash, ocsf.EntityDomain, ocsf.EntityFinding,
			ocsf.EntityContainer,
		},
		Lineage:              DefaultLineage(),
		MaxDepth:             3,
		MaxLinksPerEvent:     32,
		MaxAlertsPerIncident: 500,
		MaxNodesPerIncident:  2000,
		MaxEntities:          4_000_000,
		MaxPartialsPerKey:    64,
	}
}

// WriteOperations are the S3 API operations that write an object.
var WriteOperations = []string{"PutObject", "CopyObject", "CompleteMultipartUpload", "UploadPart", "UploadPartCopy", "RestoreObject"}

// Attribute names (globs) of the observables that identify an actor or a
// device, as the normalizers under ingest/ name them.
var (
	// DeviceIPNames are a host's own addresses.
	DeviceIPNames = []string{"device.ip", "device.public_ip", "device.ipv6"}
	// CallerIPNames are the address an API caller acted from.
	CallerIPNames = []string{"src_endpoint.ip"}
	// CallerClasses are the classes whose src_endpoint is the caller.
	CallerClasses = []int{ocsf.ClassAPIActivity, ocsf.ClassAuthentication, ocsf.ClassAccountChange}
	// ActorPrincipalNames leave out shared principals such as an
	// instance profile.
	ActorPrincipalNames = []string{"actor.*", "finding_info.actors.*"}
)

// DefaultLineage is identity lineage (instance ↔ role session ↔ access key
// ↔ caller IP ↔ agent host and its own addresses) and deployment lineage
// (writer identity → object → deployment → target instance or host).
// Addresses a host merely talks to, and shared principals, do not link.
func DefaultLineage() []LinkRule {
	type side struct {
		kind  ocsf.Entity
		names []string
	}
	identity := []side{
		{ocsf.EntityInstance, nil}, {ocsf.EntitySession, nil}, {ocsf.EntityAccessKey, nil},
		{ocsf.EntityHost, nil}, {ocsf.EntityPrincipal, ActorPrincipalNames}, {ocsf.EntityContainer, nil},
	}
	var out []LinkRule
	for i, a := range identity {
		for _, b := range identity[i:] {
			out = append(out, LinkRule{A: a.kind, B: b.kind, NamesA: a.names, NamesB: b.names})
		}
		out = append(out,
			LinkRule{A: a.kind, B: ocsf.EntityIP, NamesA: a.names, NamesB: DeviceIPNames},
			LinkRule{A: a.kind, B: ocsf.EntityIP, NamesA: a.names, NamesB: CallerIPNames, Classes: CallerClasses})
	}
	out = append(out, LinkRule{A: ocsf.EntityIP, B: ocsf.EntityIP, NamesA: DeviceIPNames, NamesB: DeviceIPNames})
	for _, who := range identity[:3] {
		out = append(out, LinkRule{A: ocsf.EntityObject, B: who.kind, Operations: WriteOperations})
	}
	out = append(out,
		LinkRule{A: ocsf.EntityObject, B: ocsf.EntityPrincipal, NamesB: ActorPrincipalNames, Operations: WriteOperations},
		LinkRule{A: ocsf.EntityObject, B: ocsf.EntityIP, NamesB: CallerIPNames, Operations: WriteOperations},
	)
	return append(out,
		LinkRule{A: ocsf.EntityObject, B: ocsf.EntityDeployment},
		LinkRule{A: ocsf.EntityDeployment, B: ocsf.EntityInstance},
		LinkRule{A: ocsf.EntityDeployment, B: ocsf.EntityHost},
	)
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.DefaultWindow <= 0 {
		errs = append(errs, errors.New("default window must be positive"))
	}
	for k, w := range c.Windows {
		if !k.Valid() {
			errs = append(errs, fmt.Errorf("windows: unknown entity kind %q", k))
		}
		if w <= 0 {
			errs = append(errs, fmt.Errorf("windows: %s window must be positive", k))
		}
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, errors.New("allowed lateness must not be negative"))
	}
	if c.FoldWindow < 0 || c.FoldWindow > 0 && time.Hour%c.FoldWindow != 0 {
		errs = append(errs, errors.New("fold window must be zero or divide an hour"))
	}
	if c.HubPartnerLimit < 1 {
		errs = append(errs, errors.New("hub partner limit must be at least 1"))
	}
	for _, s := range c.HubIPs {
		if _, err := parsePrefix(s); err != nil {
			errs = append(errs, fmt.Errorf("hub ips: %w", err))
		}
	}
	for _, k := range c.JoinKinds {
		if !k.Valid() {
			errs = append(errs, fmt.Errorf("join kinds: unknown entity kind %q", k))
		}
	}
	for _, l := range c.Lineage {
		if !l.A.Valid() || !l.B.Valid() {
			errs = append(errs, fmt.Errorf("lineage: unknown entity kind in %s-%s", l.A, l.B))
		}
	}
	if c.MaxDepth < 0 || c.MaxDepth > 8 {
		errs = append(errs, errors.New("max depth must be within 0..8"))
	}
	if c.MaxLinksPerEvent < 1 {
		errs = append(errs, errors.New("max links per event must be at least 1"))
	}
	if c.MaxAlertsPerIncident < 1 {
		errs = append(errs, errors.New("max alerts per incident must be at least 1"))
	}
	if c.MaxNodesPerIncident < 2 {
		errs = append(errs, errors.New("max nodes per incident must be at least 2"))
	}
	if c.MaxEntities < 1 {
		errs = append(errs, errors.New("max entities must be at least 1"))
	}
	if c.MaxPartialsPerKey < 1 {
		errs = append(errs, errors.New("max partials per key must be at least 1"))
	}
	return errors.Join(errs...)
}

func (c Config) window(k ocsf.Entity) int64 {
	if w, ok := c.Windows[k]; ok {
		return w.Milliseconds()
	}
	return c.DefaultWindow.Milliseconds()
}

func (c Config) maxWindow() int64 {
	m := c.DefaultWindow.Milliseconds()
	for _, w := range c.Windows {
		m = max(m, w.Milliseconds())
	}
	return m
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
