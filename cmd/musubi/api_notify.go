package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/notify"
)

// newNotifier builds the webhook notifier from the configuration; nil when
// no webhook is configured. A secret "env:NAME" is read from the
// environment.
//
// Wiring: the engine runs it (errgroup: g.Go(func() error { return
// n.Run(ctx) })) and the pipeline calls n.Observe(batch.Incidents) after
// each durable write.
func newNotifier(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (*notify.Notifier, error) {
	if len(cfg.API.Webhooks) == 0 {
		return nil, nil
	}
	nc := notify.Default()
	if base := strings.TrimSuffix(cfg.API.PublicURL, "/"); base != "" {
		nc.IncidentURL = strings.ReplaceAll(base, "%", "%%") + "/v1/incidents/%s"
	}
	for _, w := range cfg.API.Webhooks {
		secret := w.Secret
		if name, ok := strings.CutPrefix(secret, "env:"); ok {
			if secret = os.Getenv(name); secret == "" {
				return nil, fmt.Errorf("webhook %s: environment variable %s is empty", w.Name, name)
			}
		}
		key := w.Key
		if name, ok := strings.CutPrefix(key, "env:"); ok {
			if key = os.Getenv(name); key == "" {
				return nil, fmt.Errorf("webhook %s: environment variable %s is empty", w.Name, name)
			}
		}
		nc.Endpoints = append(nc.Endpoints, notify.Endpoint{Name: w.Name, URL: w.URL, Secret: secret, Key: key,
			Format: notify.Format(w.Format), MinSeverity: w.MinSeverity, Tenants: w.Tenants})
	}
	return notify.New(nc, logger, reg)
}
