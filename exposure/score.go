package exposure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
)

// Explain combines the correlator's risk with an asset risk: each factor
// adds its weight scaled by the room the correlator's risk leaves,
// round(weight × (100 − correlation) / 200), so assets raise an incident
// by at most about half of what is left to 100. A single low alert on the
// most exposed asset does not outrank an attack chain on nothing, and of
// two incidents with the same alerts the one on exposed assets ranks
// first. The score is the correlation plus every factor's points, at
// most 100, so the explanation sums to the score.
func Explain(correlation int, r Risk, asOf time.Time) (int, incident.RiskExplanation) {
	correlation = min(max(correlation, 0), 100)
	ex := incident.RiskExplanation{Correlation: correlation, Factors: []incident.RiskFactor{}, InventoryAsOf: asOf.UnixMilli()}
	score := correlation
	for _, f := range r.Factors {
		pts := (f.Points*(100-correlation) + 100) / 200
		pts = min(pts, 100-score)
		score += pts
		ex.Factors = append(ex.Factors, incident.RiskFactor{Name: f.Name, Weight: f.Points, Points: pts, Asset: f.Asset, Evidence: f.Evidence})
	}
	return score, ex
}

// InventoryFromRows builds an Inventory from stored rows (configuration
// items and, under VulnerabilityResourceType, Inspector's open findings).
func InventoryFromRows(rows []casework.InventoryRow) (*Inventory, error) {
	raw := make([]json.RawMessage, 0, len(rows))
	var vulns []Vulnerability
	for _, r := range rows {
		if r.ResourceType != VulnerabilityResourceType {
			raw = append(raw, r.Item)
			continue
		}
		var v Vulnerability
		if err := json.Unmarshal(r.Item, &v); err != nil {
			return nil, fmt.Errorf("decode vulnerability %s: %w", r.ResourceID, err)
		}
		vulns = append(vulns, v)
	}
	items, err := DecodeItems(raw)
	if err != nil {
		return nil, err
	}
	return NewInventory(items, vulns), nil
}

// InventoryReader reads a tenant's inventory as of a time
// (storage.Store.InventoryAsOf); it returns casework.ErrInventoryTruncated
// with the rows read when the inventory is cut.
type InventoryReader func(ctx context.Context, q casework.InventoryQuery) ([]casework.InventoryRow, error)

// ScorerConfig configures a Scorer.
type ScorerConfig struct {
	Risk RiskOptions
	// CacheSize bounds the inventory snapshots kept (default 256); TTL is
	// how long one is reused (default 5 minutes), so an item that arrives
	// after an incident began counts from the incident's next change on.
	// EmptyTTL is how long an empty inventory is reused (default 30
	// seconds): a tenant that sends no AWS Config data costs one read per
	// incident and EmptyTTL, not one per incident version, and its first
	// Config snapshot counts within EmptyTTL. Forget drops a tenant's
	// snapshots at once when its inventory is written in this process.
	CacheSize int
	TTL       time.Duration
	EmptyTTL  time.Duration
	// Now is the clock of the cache (default time.Now).
	Now func() time.Time
}

// Scorer adds asset risk to the incidents the correlator emits: it reads
// the inventory of each incident's tenant and accounts as of the
// incident's first event, finds the predicted paths on it, scores the
// incident's entities (AssetRisk) and sets RiskScore and Risk (Explain).
// Snapshots are cached per tenant, accounts and time, so an incident's
// later versions cost no read; an empty inventory is kept for a shorter
// time (EmptyTTL), and Forget drops a tenant's snapshots when new items
// of it are written. Safe for concurrent use.
type Scorer struct {
	read InventoryReader
	cfg  ScorerConfig

	mu    sync.Mutex
	cache map[string]*snapshot
	order []string // keys, oldest first
}

type snapshot struct {
	tenant    string
	inv       *Inventory
	paths     []Path
	truncated bool
	empty     bool
	loaded    time.Time
}

// NewScorer returns a Scorer that reads inventories with read.
func NewScorer(read InventoryReader, cfg ScorerConfig) *Scorer {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 256
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.EmptyTTL <= 0 {
		cfg.EmptyTTL = 30 * time.Second
	}
	cfg.EmptyTTL = min(cfg.EmptyTTL, cfg.TTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Scorer{read: read, cfg: cfg, cache: map[string]*snapshot{}}
}

// Score scores incs in place. An incident's RiskScore on entry is the
// correlator's; on return it includes the asset factors and Risk explains
// it. An inventory that cannot be read leaves the correlator's score,
// says why in Risk.Unavailable and is returned as an error (joined over
// the incidents), so the caller counts it; the incidents are usable
// either way.
func (s *Scorer) Score(ctx context.Context, incs []incident.Incident) error {
	var errs []error
	for i := range incs {
		in := &incs[i]
		base := in.RiskScore
		if in.Risk != nil {
			base = in.Risk.Correlation // already scored: score again from the correlator's part
		}
		if in.MergedInto != "" {
			continue // a tombstone: its alerts are scored in the incident it went into
		}
		asOf := time.UnixMilli(in.FirstSeen).UTC()
		ents := EntitiesOf(in)
		if len(ents) == 0 {
			score, ex := Explain(base, Risk{}, asOf)
			in.RiskScore, in.Risk = score, &ex
			continue // nothing to resolve: no read
		}
		snap, err := s.snapshot(ctx, in.TenantUID, in.Accounts, asOf)
		if err != nil {
			in.RiskScore = base
			in.Risk = &incident.RiskExplanation{Correlation: base, Factors: []incident.RiskFactor{}, InventoryAsOf: asOf.UnixMilli(), Unavailable: err.Error()}
			errs = append(errs, fmt.Errorf("incident %s: %w", in.ID, err))
			continue
		}
		score, ex := Explain(base, AssetRisk(snap.inv, snap.paths, ents, s.cfg.Risk), asOf)
		ex.InventoryTruncated = snap.truncated
		in.RiskScore, in.Risk = score, &ex
	}
	return errors.Join(errs...)
}

// EntitiesOf names an incident's entity nodes as AssetRisk and Walked
// take them; with a single account, private addresses resolve in it.
func EntitiesOf(in *incident.Incident) []EntityRef {
	account := ""
	if len(in.Accounts) == 1 {
		account = in.Accounts[0]
	}
	var ents []EntityRef
	for _, n := range in.Nodes {
		if n.Kind == incident.NodeEntity && n.Entity != "" {
			ents = append(ents, EntityRef{Kind: n.Entity, Value: n.Value, Account: account})
		}
	}
	return ents
}

func (s *Scorer) snapshot(ctx context.Context, tenant string, accounts []string, asOf time.Time) (*snapshot, error) {
	accts := slices.Clone(accounts)
	slices.Sort(accts)
	key := tenant + "\x00" + strings.Join(accts, ",") + "\x00" + asOf.Format(time.RFC3339Nano)
	now := s.cfg.Now()
	s.mu.Lock()
	if sn, ok := s.cache[key]; ok && now.Sub(sn.loaded) < s.ttl(sn) {
		s.mu.Unlock()
		return sn, nil
	}
	s.mu.Unlock()

	rows, err := s.read(ctx, casework.InventoryQuery{TenantUID: tenant, AsOf: asOf, Accounts: accts})
	truncated := errors.Is(err, casework.ErrInventoryTruncated)
	if err != nil && !truncated {
		return nil, fmt.Errorf("read the inventory: %w", err)
	}
	inv, err := InventoryFromRows(rows)
	if err != nil {
		return nil, fmt.Errorf("decode the inventory: %w", err)
	}
	// Nothing known yet is kept for EmptyTTL only: the first Config
	// snapshot may still be on its way.
	sn := &snapshot{tenant: tenant, inv: inv, paths: Find(inv), truncated: truncated, empty: len(rows) == 0, loaded: now}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[key]; !ok {
		s.order = append(s.order, key)
	}
	s.cache[key] = sn
	for len(s.order) > s.cfg.CacheSize {
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
	return sn, nil
}

func (s *Scorer) ttl(sn *snapshot) time.Duration {
	if sn.empty {
		return s.cfg.EmptyTTL
	}
	return s.cfg.TTL
}

// Forget drops the cached snapshots of tenant, so its next incident is
// scored on the inventory as stored now: the writer calls it when it
// stores configuration items of the tenant.
func (s *Scorer) Forget(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.order[:0]
	for _, key := range s.order {
		if s.cache[key].tenant == tenant {
			delete(s.cache, key)
			continue
		}
		kept = append(kept, key)
	}
	s.order = kept
}
