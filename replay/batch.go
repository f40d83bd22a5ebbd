package replay

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/rules"
)

// Options configures the offline pipeline. The zero value of each field but
// RulesDir means the component's default.
type Options struct {
	// RulesDir holds the detection and correlation rule files.
	RulesDir string
	// Correlate is the correlator's configuration. Batch mode replaces its
	// AllowedLateness with Unlimited; Stream keeps it.
	Correlate correlate.Config
	Limits    ingest.Limits
	// Tenant maps an account to its tenant (default: every account to
	// "default").
	Tenant   pipeline.TenantFunc
	StoreRaw bool
	Logger   *slog.Logger
	// Registerer receives the stages' metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tenant == nil {
		o.Tenant = func(string) string { return "default" }
	}
	if o.Limits == (ingest.Limits{}) {
		o.Limits = ingest.DefaultLimits()
	}
	if o.Correlate.Windows == nil {
		late := o.Correlate.AllowedLateness
		o.Correlate = correlate.DefaultConfig()
		if late > 0 {
			o.Correlate.AllowedLateness = late
		}
	}
	return o
}

// Unlimited is the allowed lateness of batch replays: longer than any file
// set spans, since all the input is there before correlation starts.
const Unlimited = 10 * 365 * 24 * time.Hour

// stages are the loaded rules and a fresh correlator.
type stages struct {
	engine *rules.Engine
	corr   *correlate.Correlator
}

func load(o Options) (stages, error) {
	set, err := rules.Load(o.RulesDir)
	if err != nil {
		return stages{}, fmt.Errorf("rules: %w", err)
	}
	eng := rules.NewEngine(o.Registerer, o.Logger)
	eng.Swap(set)
	seq, err := correlate.LoadRules(o.RulesDir)
	if err != nil {
		return stages{}, fmt.Errorf("correlation rules: %w", err)
	}
	corr, err := correlate.New(o.Correlate, seq, o.Logger, o.Registerer)
	if err != nil {
		return stages{}, err
	}
	return stages{engine: eng, corr: corr}, nil
}

// NewProcessor returns the batch offline pipeline: serve's Processor with
// the rules of o.RulesDir and a fresh correlator of unlimited lateness
// that, after each Process call, fires every pending event-time timer (no
// more input will come). Feed it all the input in one call.
func NewProcessor(o Options) (*pipeline.Processor, error) {
	o = o.withDefaults()
	o.Correlate.AllowedLateness = Unlimited
	st, err := load(o)
	if err != nil {
		return nil, err
	}
	return pipeline.NewProcessor(ingest.NewDecoder(o.Limits), st.engine, Flushing{st.corr}, o.Tenant, o.StoreRaw, o.Logger, o.Registerer), nil
}

// Flushing wraps a correlator for batch use: after each batch it fires
// every pending event-time timer, since no more input will come.
type Flushing struct{ *correlate.Correlator }

// Process correlates the batch and then flushes every timer.
func (f Flushing) Process(events []ocsf.Event, alerts []alert.Alert) correlate.Result {
	res := f.Correlator.Process(events, alerts)
	return MergeResults(res, f.Correlator.Advance(EndOfTime))
}

// EndOfTime is an event time after any input: advancing to it fires every
// timer.
var EndOfTime = time.Unix(0, 0).Add(1 << 62)

// MergeResults keeps the latest version of each incident and every alert.
func MergeResults(a, b correlate.Result) correlate.Result {
	return correlate.Result{
		Alerts:    append(a.Alerts, b.Alerts...),
		Incidents: LatestVersions(append(a.Incidents, b.Incidents...)),
		Late:      a.Late + b.Late,
	}
}

// LatestVersions keeps the highest version of each incident, in order of
// first appearance.
func LatestVersions(incs []incident.Incident) []incident.Incident {
	latest := map[string]int{}
	var out []incident.Incident
	for _, in := range incs {
		i, seen := latest[in.ID]
		switch {
		case !seen:
			latest[in.ID] = len(out)
			out = append(out, in)
		case in.Version >= out[i].Version:
			out[i] = in
		}
	}
	return out
}
