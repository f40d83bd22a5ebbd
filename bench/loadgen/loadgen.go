package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Source names, as the engine's configuration names the raw topics.
const (
	SourceCloudTrail = "cloudtrail"
	SourceVPCFlow    = "vpcflow"
	SourceGuardDuty  = "guardduty"
	SourceAgent      = "agent"
	SourceFalco      = "falco"
)

// Sources lists every source the generator writes.
var Sources = []string{SourceCloudTrail, SourceVPCFlow, SourceGuardDuty, SourceAgent, SourceFalco}

// Mix weighs the sources of background records (any positive scale).
type Mix struct {
	CloudTrail, VPCFlow, GuardDuty, Agent, Falco float64
}

// DefaultMix is a plausible AWS estate: CloudTrail management and S3 data
// events, flow logs, host agents, a trickle of GuardDuty and Falco.
var DefaultMix = Mix{CloudTrail: 40, VPCFlow: 30, Agent: 28, GuardDuty: 0.5, Falco: 1.5}

// Config configures a Generator. Zero fields take the defaults of
// (Config).withDefaults.
type Config struct {
	// Seed makes the stream deterministic: the same Config gives the same
	// records, byte for byte.
	Seed uint64
	// Start is the event time of the first record.
	Start time.Time
	// Rate is background records per second of event time.
	Rate float64
	// Entities is the number of distinct background entities: hosts (each
	// with an instance id, a private address, a role session and its access
	// key), IAM users, buckets and public addresses.
	Entities int
	// Accounts is the number of AWS accounts of the background.
	Accounts int
	Mix      Mix
	// ChainEvery is the event time between two injected attack chains;
	// zero injects none.
	ChainEvery time.Duration
	// ChainStart is the event time, after Start, of the first chain
	// (default ChainEvery).
	ChainStart time.Duration
	// ChainSpan is the event time from a chain's first to its last event.
	ChainSpan time.Duration
	// MaxChains stops injecting after that many chains (0: no limit).
	MaxChains int
}

func (c Config) withDefaults() Config {
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	}
	if c.Rate <= 0 {
		c.Rate = 10_000
	}
	if c.Entities <= 0 {
		c.Entities = 10_000
	}
	c.Entities = max(c.Entities, 100)
	if c.Accounts <= 0 {
		c.Accounts = 8
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix
	}
	if c.ChainStart <= 0 {
		c.ChainStart = c.ChainEvery
	}
	if c.ChainSpan <= 0 {
		c.ChainSpan = 20 * time.Second
	}
	return c
}

// Record is one Kafka message of the stream.
type Record struct {
	// Source names the raw topic (see Sources).
	Source string
	// Time is the record's event time.
	Time  time.Time
	Key   []byte
	Value []byte
	// Chain is the 1-based number of the injected chain the record belongs
	// to, 0 for background.
	Chain int
	// Last marks a chain's last record; its EventUID is the OCSF
	// metadata.uid the engine stores for it.
	Last     bool
	EventUID string
}

// Generator produces the stream. It is not safe for concurrent use.
type Generator struct {
	cfg       Config
	rng       *rand.Rand
	cum       [5]float64
	ents      entities
	n         int64
	pending   []Record
	nextChain time.Duration
	chains    int
	stopped   bool
}

// New returns a generator for cfg.
func New(cfg Config) *Generator {
	cfg = cfg.withDefaults()
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6d757375626921)), nextChain: cfg.ChainStart}
	m := cfg.Mix
	w := [5]float64{m.CloudTrail, m.VPCFlow, m.GuardDuty, m.Agent, m.Falco}
	sum := 0.0
	for i, x := range w {
		sum += max(x, 0)
		g.cum[i] = sum
	}
	for i := range g.cum {
		g.cum[i] /= sum
	}
	g.ents = newEntities(cfg, rand.New(rand.NewPCG(cfg.Seed, 1)))
	return g
}

// Config returns the configuration in effect, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Chains returns how many chains have been injected so far (a chain counts
// from its first record on).
func (g *Generator) Chains() int { return g.chains }

// Now returns the event time of the next background record.
func (g *Generator) Now() time.Time { return g.cfg.Start.Add(g.offset()) }

func (g *Generator) offset() time.Duration {
	return time.Duration(float64(g.n) / g.cfg.Rate * float64(time.Second))
}

// Next returns the next record in event-time order.
func (g *Generator) Next() Record {
	off := g.offset()
	if g.cfg.ChainEvery > 0 && !g.stopped && off >= g.nextChain && (g.cfg.MaxChains == 0 || g.chains < g.cfg.MaxChains) {
		g.chains++
		g.pending = append(g.pending, chain(g.cfg, g.chains, g.cfg.Start.Add(g.nextChain))...)
		sort.SliceStable(g.pending, func(i, j int) bool { return g.pending[i].Time.Before(g.pending[j].Time) })
		g.nextChain += g.cfg.ChainEvery
	}
	now := g.cfg.Start.Add(off)
	if len(g.pending) > 0 && !g.pending[0].Time.After(now) {
		r := g.pending[0]
		g.pending = g.pending[1:]
		return r
	}
	g.n++
	return g.background(now)
}

// StopChains injects no chain after the ones already begun, so a caller
// can drain Pending to finish them.
func (g *Generator) StopChains() { g.stopped = true }

// Pending returns how many chain records are scheduled but not yet returned.
func (g *Generator) Pending() int { return len(g.pending) }

func (g *Generator) background(t time.Time) Record {
	x := g.rng.Float64()
	switch {
	case x < g.cum[0]:
		return g.cloudTrail(t)
	case x < g.cum[1]:
		return g.vpcFlow(t)
	case x < g.cum[2]:
		return g.guardDuty(t)
	case x < g.cum[3]:
		return g.agent(t)
	default:
		return g.falco(t)
	}
}

// ---------------------------------------------------------------- entities

type host struct {
	name, instance, ip, eni, account, role, key, roleID string
}

type user struct {
	name, key, id, account string
}

type entities struct {
	accounts []string
	hosts    []host
	users    []user
	buckets  []string
	public   []string
}

func newEntities(cfg Config, rng *rand.Rand) entities {
	var e entities
	for i := range cfg.Accounts {
		e.accounts = append(e.accounts, fmt.Sprintf("%012d", 210000000000+uint64(i)*7919))
	}
	nHosts, nUsers, nBuckets := cfg.Entities*40/100, cfg.Entities*10/100, cfg.Entities*5/100
	nPublic := cfg.Entities - nHosts - nUsers - nBuckets
	roles := max(nHosts/50, 4)
	for i := range nHosts {
		ip := fmt.Sprintf("10.%d.%d.%d", 1+i>>16&127, i>>8&255, 1+i&255%254)
		role := fmt.Sprintf("%s-role", services[i%roles%len(services)])
		if i%roles >= len(services) {
			role = fmt.Sprintf("%s-%d-role", services[i%roles%len(services)], i%roles)
		}
		e.hosts = append(e.hosts, host{
			name: fmt.Sprintf("ip-%d-%d-%d-%d", 10, 1+i>>16&127, i>>8&255, 1+i&255%254), instance: "i-0" + hexN(rng, 16),
			ip: ip, eni: "eni-0" + hexN(rng, 16), account: e.accounts[i%len(e.accounts)], role: role,
			key: "ASIA" + upperN(rng, 16), roleID: "AROA" + upperN(rng, 17),
		})
	}
	for i := range nUsers {
		e.users = append(e.users, user{
			name: fmt.Sprintf("%s.%s%d", firstNames[i%len(firstNames)], lastNames[i/len(firstNames)%len(lastNames)], i/(len(firstNames)*len(lastNames))),
			key:  "AKIA" + upperN(rng, 16), id: "AIDA" + upperN(rng, 17), account: e.accounts[i%len(e.accounts)],
		})
	}
	for i := range nBuckets {
		e.buckets = append(e.buckets, fmt.Sprintf("%s-%s-%d", services[i%len(services)], bucketKinds[i%len(bucketKinds)], i))
	}
	for i := range nPublic {
		e.public = append(e.public, fmt.Sprintf("%d.%d.%d.%d", publicFirst[i%len(publicFirst)], 1+i>>14&127, i>>6&255, 1+i&63))
	}
	return e
}

var (
	services    = []string{"web", "api", "orders", "billing", "search", "auth", "reports", "etl", "worker", "batch", "ml", "cache"}
	bucketKinds = []string{"data", "logs", "exports", "uploads", "backups", "static"}
	firstNames  = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yuki"}
	lastNames   = []string{"smith", "jones", "garcia", "kim", "nguyen", "patel", "muller", "rossi", "tanaka", "silva"}
	publicFirst = []int{52, 54, 3, 18, 34, 35, 13, 99}
	regions     = []string{"eu-west-1", "eu-west-1", "us-east-1", "us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1"}
)

// pick returns an index in [0,n) skewed toward small indices, so a few
// entities are busy and most are quiet, as in real estates.
func pick(rng *rand.Rand, n int) int {
	return min(int(float64(n)*math.Pow(rng.Float64(), 2.2)), n-1)
}

const hexDigits = "0123456789abcdef"
const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func hexN(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[rng.IntN(16)]
	}
	return string(b)
}

func upperN(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = upperAlnum[rng.IntN(len(upperAlnum))]
	}
	return string(b)
}

func uuid(rng *rand.Rand) string {
	h := hexN(rng, 32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings, numbers and slices are marshalled
	}
	return b
}

type m = map[string]any
