package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/storage"
)

// tenantFunc resolves an AWS account to its tenant: the tenant that lists
// the account, else the tenant with "*", else the first tenant.
func tenantFunc(tenants []config.Tenant) pipeline.TenantFunc {
	byAccount := map[string]string{}
	fallback := tenants[0].ID
	for _, t := range tenants {
		for _, a := range t.Accounts {
			if a == "*" {
				fallback = t.ID
			} else {
				byAccount[a] = t.ID
			}
		}
	}
	return func(account string) string {
		if t, ok := byAccount[account]; ok {
			return t
		}
		return fallback
	}
}

// tenantIDs lists the configured tenants' ids.
func tenantIDs(tenants []config.Tenant) []string {
	out := make([]string, 0, len(tenants))
	for _, t := range tenants {
		out = append(out, t.ID)
	}
	return out
}

// apiSLA is the API's default SLA table with api.sla applied over it.
func apiSLA(names map[string]time.Duration) map[int]time.Duration {
	out := api.DefaultSLA()
	for name, d := range names {
		if id, ok := ocsf.SeverityID(name); ok {
			out[id] = d
		}
	}
	return out
}

// apiCursorKey resolves api.cursor_key ("env:NAME" reads the environment);
// nil lets the API pick a random key.
func apiCursorKey(k string) []byte {
	if name, ok := strings.CutPrefix(k, "env:"); ok {
		k = os.Getenv(name)
	}
	if k == "" {
		return nil
	}
	return []byte(k)
}

// apiTokens hashes the configured token secrets; "env:NAME" reads the
// secret from the environment.
func apiTokens(ts []config.Token) []api.Token {
	out := make([]api.Token, 0, len(ts))
	for _, t := range ts {
		secret := t.Secret
		if name, ok := strings.CutPrefix(secret, "env:"); ok {
			secret = os.Getenv(name)
			if secret == "" {
				continue
			}
		}
		out = append(out, api.Token{Name: t.Name, Hash: api.HashSecret(secret), Role: api.Role(t.Role), Tenants: t.Tenants})
	}
	return out
}

func apiTenants(ts []config.Tenant) []api.Tenant {
	out := make([]api.Tenant, 0, len(ts))
	for _, t := range ts {
		out = append(out, api.Tenant{ID: t.ID, Name: t.Name, Accounts: t.Accounts})
	}
	return out
}

// foldHorizon is how far before the restored window the counts of stored
// folded alerts are read back: a late match of a folded alert evicted from
// memory re-creates it counting on from its stored count (see
// correlate.State.Folds), as long as the alert is younger than this.
const foldHorizon = 7 * 24 * time.Hour

// restoreCorrelator rebuilds the correlator's state from ClickHouse: the
// open incidents, the alerts and the link signals of the longest window
// before the newest stored alert (event time, not the wall clock), and the
// counts of the folded alerts stored in the foldHorizon before it, so a
// chain split across a restart is still caught, also when replaying old
// data. tenants limits the state to the tenants this process owns; nil
// restores every tenant.
func restoreCorrelator(ctx context.Context, store *storage.Store, corr *correlate.Correlator, cfg config.Config, tenants []string, logger *slog.Logger) error {
	cc := cfg.CorrelateConfig()
	window := cc.DefaultWindow
	for _, d := range cc.Windows {
		window = max(window, d)
	}
	watermark, err := store.Watermark(ctx)
	if err != nil {
		return fmt.Errorf("restore correlation state: %w", err)
	}
	if watermark.IsZero() {
		return nil
	}
	since := watermark.Add(-window - cc.AllowedLateness)
	state, err := store.LoadState(ctx, storage.StateQuery{Since: since, FoldsSince: since.Add(-foldHorizon), Tenants: tenants})
	if err != nil {
		return fmt.Errorf("restore correlation state: %w", err)
	}
	links := make([]correlate.Link, len(state.Links))
	for i, l := range state.Links {
		links[i] = correlate.Link(l)
	}
	stages := make([]correlate.StageInput, len(state.Stages))
	for i, si := range state.Stages {
		stages[i] = correlate.StageInput(si)
	}
	corr.RestoreState(correlate.State{Incidents: state.Incidents, Alerts: state.Alerts, Folds: state.Folds, Links: links, Stages: stages})
	logger.Info("correlation state restored", "component", "correlate", "watermark", watermark,
		"incidents", len(state.Incidents), "alerts", len(state.Alerts), "folds", len(state.Folds), "links", len(state.Links), "stage_inputs", len(state.Stages),
		"tenants", tenantsLabel(tenants))
	return nil
}

// tenantsLabel describes a tenant filter for a log line.
func tenantsLabel(tenants []string) any {
	if tenants == nil {
		return "all"
	}
	return tenants
}

// assetScorer adds asset risk to the incidents of each batch before the
// store writes them (exposure.Scorer, reading the inventory from the same
// store): the join of incidents and assets happens where incidents are
// written, so the queue sorts by the stored risk (docs/design.md, "Risk
// from assets").
type assetScorer struct {
	store  *storage.Store
	scorer *exposure.Scorer
	errs   prometheus.Counter
	logger *slog.Logger
	last   time.Time // of the last error log
}

func newAssetScorer(store *storage.Store, opt exposure.RiskOptions, logger *slog.Logger, reg prometheus.Registerer) *assetScorer {
	errs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "musubi_exposure_risk_errors_total",
		Help: "Incident versions written with the correlator's risk alone because their inventory could not be read.",
	})
	if reg != nil {
		reg.MustRegister(errs)
	}
	return &assetScorer{store: store, scorer: exposure.NewScorer(store.InventoryAsOf, exposure.ScorerConfig{Risk: opt}), errs: errs,
		logger: logger.With("component", "asset_risk")}
}

// Write scores b's incidents and writes b. A batch that carries inventory
// and incidents writes its inventory first (the rows are idempotent and
// fold when the whole batch rewrites them), so an incident is scored on
// the configuration items that arrived with it. An inventory that cannot
// be read leaves the correlator's risk (the explanation says so) and is
// counted; the batch is written all the same.
//
// Written inventory makes the scorer forget the snapshots of its tenants,
// so their next incidents are scored on it at once rather than after the
// scorer's cache time.
func (a *assetScorer) Write(ctx context.Context, b storage.Batch) error {
	if len(b.Incidents) == 0 {
		err := a.store.Write(ctx, b)
		if err == nil {
			a.forget(b.Inventory)
		}
		return err
	}
	if len(b.Inventory) > 0 {
		if err := a.store.Write(ctx, storage.Batch{Inventory: b.Inventory}); err != nil {
			return err
		}
		a.forget(b.Inventory)
	}
	if err := a.scorer.Score(ctx, b.Incidents); err != nil {
		a.errs.Inc()
		if time.Since(a.last) > time.Minute {
			a.last = time.Now()
			a.logger.Warn("incidents written without asset risk", "err", err)
		}
	}
	return a.store.Write(ctx, b)
}

func (a *assetScorer) forget(items []storage.InventoryRow) {
	last := ""
	for _, it := range items {
		if it.TenantUID != last {
			last = it.TenantUID
			a.scorer.Forget(last)
		}
	}
}
