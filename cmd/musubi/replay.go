package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

// replayedIncident is one line of `musubi replay` output: the incident graph
// with its alerts inline.
type replayedIncident struct {
	incident.Incident
	Alerts []alert.Alert `json:"alerts"`
}

func replayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	flags := newFlagSet("replay", "replay [-rules DIR] [-write] FILE|DIR...\n\nRuns the same normalize → rules → correlate code as serve, offline, on files\nof every supported source (mixed, in any order; directories are walked).\nPrints the resulting incidents as JSON lines; with -write also stores\nevents, alerts and incidents in ClickHouse.", stdout, stderr)
	cf.register(flags, flagConfig|flagClickHouse|flagRules|flagLogLevel)
	write := flags.Bool("write", false, "also write events, alerts, incidents and dead letters to ClickHouse")
	minSeverity := flags.Int("min-severity", 0, "print only incidents of at least this OCSF severity id")
	if code, stop := flags.parse(args); stop {
		return code
	}
	if flags.NArg() == 0 {
		return flags.usageError()
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "musubi replay: invalid configuration:\n%v\n", err)
		return 1
	}
	logger := newLogger(cfg.Log, stderr)
	recs, err := readRecords(flags.Args())
	if err != nil {
		fmt.Fprintf(stderr, "musubi replay: %v\n", err)
		return 1
	}
	proc, err := offlineProcessor(cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "musubi replay: %v\n", err)
		return 1
	}
	batch := proc.Process(recs)
	for _, dl := range batch.DeadLetters {
		fmt.Fprintf(stderr, "%s: %s: %s\n", dl.Topic, dl.Reason, dl.Error)
	}
	if *write {
		store, err := storage.Open(ctx, storageConfig(cfg), logger, nil)
		if err == nil {
			err = store.Migrate(ctx)
		}
		if err == nil {
			err = store.Write(ctx, batch)
			store.Close()
		}
		if err != nil {
			fmt.Fprintf(stderr, "musubi replay: write: %v\n", err)
			return 1
		}
	}
	if err := printIncidents(stdout, batch, *minSeverity); err != nil {
		fmt.Fprintf(stderr, "musubi replay: %v\n", err)
		return 1
	}
	if len(batch.DeadLetters) > 0 {
		return 1
	}
	return 0
}

// offlineProcessor builds the serve pipeline's Processor without Kafka or
// storage: the rules of cfg.Rules.Dir and a fresh correlator.
func offlineProcessor(cfg config.Config, logger *slog.Logger) (*pipeline.Processor, error) {
	set, err := rules.Load(cfg.Rules.Dir)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	eng := rules.NewEngine(nil, logger)
	eng.Swap(set)
	seq, err := correlate.LoadRules(cfg.Rules.Dir)
	if err != nil {
		return nil, fmt.Errorf("correlation rules: %w", err)
	}
	// Offline, all the input is there before correlation starts, so nothing
	// is late: files may hold any order (the correlator orders each batch
	// by event time within its allowed lateness).
	cc := correlateConfig(cfg)
	cc.AllowedLateness = offlineLateness
	corr, err := correlate.New(cc, seq, logger, nil)
	if err != nil {
		return nil, err
	}
	return pipeline.NewProcessor(ingest.NewDecoder(ingestLimits(cfg)), eng, flushing{corr}, tenantFunc(cfg.Tenants), cfg.ClickHouse.StoreRaw, logger, nil), nil
}

// offlineLateness is the allowed lateness of offline replays: longer than
// any file set spans.
const offlineLateness = 10 * 365 * 24 * time.Hour

// flushing wraps the correlator for offline use: after the input it fires
// every pending event-time timer, since no more input will come.
type flushing struct{ *correlate.Correlator }

func (f flushing) Process(events []ocsf.Event, alerts []alert.Alert) correlate.Result {
	res := f.Correlator.Process(events, alerts)
	end := f.Correlator.Advance(time.Unix(0, 0).Add(1 << 62))
	return mergeResults(res, end)
}

// mergeResults keeps the latest version of each incident and every alert.
func mergeResults(a, b correlate.Result) correlate.Result {
	return correlate.Result{
		Alerts:    append(a.Alerts, b.Alerts...),
		Incidents: latestVersions(append(a.Incidents, b.Incidents...)),
		Late:      a.Late + b.Late,
	}
}

// latestVersions keeps the highest version of each incident, in order of
// first appearance.
func latestVersions(incs []incident.Incident) []incident.Incident {
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

// printIncidents prints the latest version of every incident that was not
// merged away, most severe first, with its alerts.
func printIncidents(w io.Writer, b storage.Batch, minSeverity int) error {
	alerts := map[string]alert.Alert{}
	for _, a := range b.Alerts {
		alerts[a.ID] = a
	}
	latest := latestVersions(b.Incidents)
	sort.SliceStable(latest, func(i, j int) bool {
		if latest[i].Severity != latest[j].Severity {
			return latest[i].Severity > latest[j].Severity
		}
		return latest[i].FirstSeen < latest[j].FirstSeen
	})
	enc := json.NewEncoder(w)
	for _, in := range latest {
		if in.MergedInto != "" || in.Severity < minSeverity {
			continue
		}
		out := replayedIncident{Incident: in, Alerts: []alert.Alert{}}
		for _, id := range in.AlertIDs {
			if a, ok := alerts[id]; ok {
				out.Alerts = append(out.Alerts, a)
			}
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return nil
}

// skipInput reports whether a file in a walked directory is not telemetry:
// hidden files, documentation, rule files (YAML) and scenario expectations
// (expected*.json).
func skipInput(name string) bool {
	ext := filepath.Ext(name)
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "expected") ||
		ext == ".md" || ext == ".yaml" || ext == ".yml"
}

// readRecords reads every file named, walking directories in name order;
// each file is one record whose source is recognized from its content.
func readRecords(paths []string) ([]pipeline.Record, error) {
	var recs []pipeline.Record
	add := func(path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		recs = append(recs, pipeline.Record{Source: ingest.SourceAuto, Topic: path, Value: data, Time: time.Now()})
		return nil
	}
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(os.Stdin)
			if err != nil {
				return nil, err
			}
			recs = append(recs, pipeline.Record{Source: ingest.SourceAuto, Topic: "stdin", Value: data, Time: time.Now()})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			if err := add(p); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || skipInput(d.Name()) {
				return nil
			}
			return add(path)
		})
		if err != nil {
			return nil, err
		}
	}
	return recs, nil
}
