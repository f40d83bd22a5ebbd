package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// The components own their configuration: each has a struct, a default and
// a Validate. The file's sections are applied over the component's default
// by the methods below, and Validate runs each component's Validate on the
// result — the very values `musubi serve` hands the component — so that
// `musubi config check` accepts exactly what serve accepts.

// StorageConfig is the store's configuration: storage.Default with the
// clickhouse section applied. Tables named in clickhouse.retention override
// the store's default retention one by one.
func (c Config) StorageConfig() storage.Config {
	sc := storage.Default()
	ch := c.ClickHouse
	sc.Addr, sc.Database, sc.Username, sc.Password, sc.TLS = ch.Addr, ch.Database, ch.Username, ch.Password, ch.TLS
	sc.Cluster, sc.StoreRaw, sc.MaxExecutionTime = ch.Cluster, ch.StoreRaw, ch.MaxExecutionTime
	sc.MaxOpenConns, sc.DialTimeout, sc.IncidentNumbers = ch.MaxOpenConns, ch.DialTimeout, ch.IncidentNumbers
	sc.Compression = ch.Compression
	for table, d := range ch.Retention {
		sc.Retention[table] = d
	}
	return sc
}

// CorrelateConfig is the correlator's configuration: correlate.DefaultConfig
// with the correlate section applied. Windows override the built-in windows
// kind by kind; hub_cidrs and hub_values add to the built-in hubs.
func (c Config) CorrelateConfig() correlate.Config {
	cc := correlate.DefaultConfig()
	cs := c.Correlate
	for kind, d := range cs.Windows {
		cc.Windows[ocsf.Entity(kind)] = d
	}
	cc.DefaultWindow, cc.AllowedLateness, cc.HubPartnerLimit = cs.DefaultWindow, cs.AllowedLateness, cs.HubPartnerLimit
	cc.FoldWindow = cs.FoldWindow
	cc.HubIPs = append(cc.HubIPs, cs.HubCIDRs...)
	cc.HubValues = append(cc.HubValues, cs.HubValues...)
	cc.MaxAlertsPerIncident, cc.MaxNodesPerIncident = cs.MaxAlertsPerIncident, cs.MaxNodesPerIncident
	return cc
}

// APIDirectory is the API's directory of assignees: the analysts and teams
// of the api section.
func (c Config) APIDirectory() api.Directory {
	return api.Directory{Analysts: c.API.Analysts, Teams: c.API.Teams}
}

// defaultCorrelate is the correlate section that reproduces the
// correlator's own defaults.
func defaultCorrelate() Correlate {
	cc := correlate.DefaultConfig()
	return Correlate{
		DefaultWindow: cc.DefaultWindow, AllowedLateness: cc.AllowedLateness, SourceDelay: 15 * time.Minute,
		FoldWindow: cc.FoldWindow, HubPartnerLimit: cc.HubPartnerLimit,
		MaxAlertsPerIncident: cc.MaxAlertsPerIncident, MaxNodesPerIncident: cc.MaxNodesPerIncident,
	}
}

// componentErrors runs every component's Validate on the configuration it
// would be given, each problem prefixed with the section of the file.
func (c Config) componentErrors() []error {
	var errs []error
	prefix := func(section string, err error) {
		if err == nil {
			return
		}
		for _, e := range unjoin(err) {
			msg := strings.TrimPrefix(e.Error(), "invalid storage config: ")
			errs = append(errs, fmt.Errorf("%s: %s", section, msg))
		}
	}
	// These components name the key below their section in each error.
	keyed := func(section string, err error) {
		if err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("%s.%w", section, e))
			}
		}
	}
	keyed("kafka", c.Kafka.Validate())
	keyed("pipeline", c.Pipeline.Validate())
	keyed("ingest", c.Ingest.Validate())
	prefix("clickhouse", c.StorageConfig().Validate())
	prefix("correlate", c.CorrelateConfig().Validate())
	// The directory names its keys in full (api.analysts[0], api.teams).
	if err := c.APIDirectory().Validate(); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	return errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
