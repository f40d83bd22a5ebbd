package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/peakrss"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/replay"
	"github.com/musubi-xdr/musubi/storage"
)

const replayUsage = `replay [-rules DIR] [filters] [-format jsonl|summary|markdown] [-write [-tenant ID]] FILE|DIR|ARCHIVE...

Runs the same normalize → rules → correlate code as serve, offline, on
exported files of every supported source: plain or gzip files, directories
as 'aws s3 sync' writes them (walked recursively) and tar or zip archives.
Files are replayed in event-time order in bounded memory (a first pass
learns each file's time window; decode and rules run on every core,
correlation in order), so exports of any size fit.

A progress line goes to stderr when it is a terminal, and a summary at
the end (-quiet silences both). Incidents are printed on stdout, most
severe first: JSON lines (jsonl), a table (summary) or a Markdown report
of each incident with its story, entities and timeline (markdown). With
-write, events, alerts, incidents and dead letters are also written to
ClickHouse as they are correlated, under their own tenant, so the console
and Grafana can be used on the investigation.`

// defaultReplayMemoryMiB is replay's default soft memory limit: the
// target of a replay's peak RSS at the default windows.
const defaultReplayMemoryMiB = 450

func replayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	flags := newFlagSet("replay", replayUsage, stdout, stderr)
	cf.register(flags, flagConfig|flagClickHouse|flagRules|flagLogLevel)
	write := flags.Bool("write", false, "also write events, alerts, incidents and dead letters to ClickHouse")
	tenant := flags.String("tenant", "replay", "tenant of everything -write stores (the investigation's own)")
	minSeverity := flags.Int("min-severity", 0, "print only incidents of at least this OCSF severity id")
	since := flags.String("since", "", "replay only events at or after this event time (RFC 3339 or YYYY-MM-DD)")
	until := flags.String("until", "", "replay only events before this event time (RFC 3339 or YYYY-MM-DD)")
	accounts := flags.String("account", "", "replay only events of these AWS accounts (comma-separated)")
	sources := flags.String("source", "", "replay only files of these sources (comma-separated: cloudtrail, vpcflow, guardduty, agent, falco)")
	format := flags.String("format", "jsonl", "output: jsonl, summary or markdown")
	lateness := flags.Duration("lateness", -1, "allowed lateness of the correlator (default correlate.allowed_lateness)")
	quiet := flags.Bool("quiet", false, "no progress line and no summary on stderr")
	cpuprofile := flags.String("cpuprofile", "", "write a CPU profile of the replay to this file (go tool pprof)")
	memprofile := flags.String("memprofile", "", "write a heap profile of the replay at its largest live heap to this file (go tool pprof)")
	memLimit := flags.Int("memory-limit-mib", defaultReplayMemoryMiB, "soft limit of the replay's memory in MiB: the garbage collector works harder near it (0: none; GOMEMLIMIT, when set, wins)")
	if code, stop := flags.parse(args); stop {
		return code
	}
	if flags.NArg() == 0 || (*format != "jsonl" && *format != "summary" && *format != "markdown") {
		return flags.usageError()
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "musubi replay: "+format+"\n", a...)
		return 1
	}
	if *memLimit < 0 {
		return flags.usageError()
	}
	// Without a limit the heap grows to twice what is live before a
	// collection, so the process would need twice the replay's state.
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && *memLimit > 0 {
		debug.SetMemoryLimit(int64(*memLimit) << 20)
	}
	cfg, err := cf.load()
	if err != nil {
		return fail("invalid configuration:\n%v", err)
	}
	filter, err := replayFilter(*since, *until, *accounts, *sources)
	if err != nil {
		fmt.Fprintf(stderr, "musubi replay: %v\n", err)
		return 2
	}
	logger := newLogger(cfg.Log, stderr)
	opts := offlineOptions(cfg, logger)
	// Raw records are kept only to be stored: without -write they would
	// be memory for nothing.
	opts.StoreRaw = opts.StoreRaw && *write
	if *lateness >= 0 {
		opts.Correlate.AllowedLateness = *lateness
	}
	var store *storage.Store
	if *write {
		// The investigation's own tenant: nothing mixes with live data.
		id := *tenant
		opts.Tenant = func(string) string { return id }
		store, err = storage.Open(ctx, cfg.StorageConfig(), logger, nil)
		if err == nil {
			err = store.Migrate(ctx)
		}
		if err != nil {
			return fail("write: %v", err)
		}
		defer store.Close()
	}
	inputs, cleanup, err := replay.Inputs(flags.Args())
	if err != nil {
		return fail("%v", err)
	}
	defer cleanup()
	if len(inputs) == 0 {
		return fail("no telemetry file in %s (hidden files, documentation, YAML, expected*.json and CloudTrail digest files are skipped)", strings.Join(flags.Args(), " "))
	}
	stream, err := replay.NewStream(opts, filter)
	if err != nil {
		return fail("%v", err)
	}
	out := newIncidentCollector()
	var scored *assetScorer
	if store != nil {
		scored = newAssetScorer(store, cfg.Exposure, logger, nil)
	}
	sink := func(b storage.Batch) error {
		if scored != nil {
			// Scored before they are collected: the summary shows the
			// stored risk.
			err := scored.Write(ctx, b)
			out.add(b)
			return err
		}
		out.add(b)
		return nil
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fail("cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail("cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	stopHeap := func() error { return nil }
	if *memprofile != "" {
		stopHeap = watchHeap(*memprofile)
	}
	stopProgress := func() {}
	if !*quiet && isTerminal(stderr) {
		stopProgress = showProgress(stderr, stream.Progress)
	}
	stats, err := stream.Run(ctx, inputs, sink)
	stopProgress()
	if err != nil {
		return fail("%v", err)
	}
	if err := stopHeap(); err != nil {
		return fail("memprofile: %v", err)
	}
	incidents := out.incidents(*minSeverity)
	switch *format {
	case "jsonl":
		err = writeJSONL(stdout, incidents)
	case "summary":
		err = writeIncidentTable(stdout, incidents)
	case "markdown":
		err = writeMarkdown(stdout, incidents)
	}
	if err != nil {
		return fail("%v", err)
	}
	for i, dl := range out.dead {
		if i == 20 {
			fmt.Fprintf(stderr, "… %d more dead letters\n", len(out.dead)-i)
			break
		}
		fmt.Fprintf(stderr, "%s: %s: %s\n", dl.Topic, dl.Reason, dl.Error)
	}
	if !*quiet {
		writeSummary(stderr, stats)
	}
	if stats.DeadLettersTotal() > 0 {
		return 1
	}
	return 0
}

// offlineOptions maps the configuration onto the offline pipeline's.
func offlineOptions(cfg config.Config, logger *slog.Logger) replay.Options {
	return replay.Options{
		RulesDir:  cfg.Rules.Dir,
		Correlate: cfg.CorrelateConfig(),
		Limits:    cfg.Ingest,
		Tenant:    tenantFunc(cfg.Tenants),
		StoreRaw:  cfg.ClickHouse.StoreRaw,
		Logger:    logger,
	}
}

// replayFilter parses the filter flags.
func replayFilter(since, until, accounts, sources string) (replay.Filter, error) {
	var f replay.Filter
	var err error
	if f.Since, err = parseEventTime(since); err != nil {
		return f, fmt.Errorf("-since: %w", err)
	}
	if f.Until, err = parseEventTime(until); err != nil {
		return f, fmt.Errorf("-until: %w", err)
	}
	f.Accounts = splitList(accounts)
	for _, s := range splitList(sources) {
		src, err := ingest.ParseSource(s)
		if err != nil {
			return f, fmt.Errorf("-source: %w", err)
		}
		f.Sources = append(f.Sources, src)
	}
	return f, nil
}

func parseEventTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

// replayedIncident is one line of `musubi replay` output: the incident graph
// with its alerts inline.
type replayedIncident struct {
	incident.Incident
	Alerts []alert.Alert `json:"alerts"`
}

// incidentCollector keeps the latest version of every incident and alert
// the replay emitted (not the events), and the dead letters.
type incidentCollector struct {
	incs   map[string]incident.Incident
	alerts map[string]alert.Alert
	dead   []storage.DeadLetter
}

func newIncidentCollector() *incidentCollector {
	return &incidentCollector{incs: map[string]incident.Incident{}, alerts: map[string]alert.Alert{}}
}

func (c *incidentCollector) add(b storage.Batch) {
	for _, a := range b.Alerts {
		c.alerts[a.ID] = a
	}
	for _, in := range b.Incidents {
		if old, ok := c.incs[in.ID]; !ok || in.Version >= old.Version {
			c.incs[in.ID] = in
		}
	}
	for _, dl := range b.DeadLetters {
		dl.Raw = nil
		c.dead = append(c.dead, dl)
	}
}

// incidents returns the incidents not merged away of at least minSeverity,
// most severe first, with their alerts.
func (c *incidentCollector) incidents(minSeverity int) []replayedIncident {
	var out []replayedIncident
	for _, in := range c.incs {
		if in.MergedInto != "" || in.Severity < minSeverity {
			continue
		}
		ri := replayedIncident{Incident: in, Alerts: []alert.Alert{}}
		for _, id := range in.AlertIDs {
			if a, ok := c.alerts[id]; ok {
				ri.Alerts = append(ri.Alerts, a)
			}
		}
		out = append(out, ri)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.FirstSeen != b.FirstSeen {
			return a.FirstSeen < b.FirstSeen
		}
		return a.ID < b.ID
	})
	return out
}

func writeJSONL(w io.Writer, incs []replayedIncident) error {
	enc := json.NewEncoder(w)
	for _, in := range incs {
		if err := enc.Encode(in); err != nil {
			return err
		}
	}
	return nil
}

func writeIncidentTable(w io.Writer, incs []replayedIncident) error {
	fmt.Fprintf(w, "%-13s %-8s %5s %6s  %-17s  %s\n", "SEVERITY", "RISK", "ALERTS", "NODES", "FIRST SEEN (UTC)", "TITLE")
	for _, in := range incs {
		fmt.Fprintf(w, "%-13s %-8d %5d %6d  %-17s  %s\n", ocsf.SeverityName(in.Severity), in.RiskScore, len(in.AlertIDs), len(in.Nodes),
			time.UnixMilli(in.FirstSeen).UTC().Format("2006-01-02 15:04"), in.Title)
	}
	_, err := fmt.Fprintf(w, "%d incident(s)\n", len(incs))
	return err
}

// writeMarkdown writes a report of each incident: its story (stages and
// summary), its entities and the timeline of its alerts.
func writeMarkdown(w io.Writer, incs []replayedIncident) error {
	fmt.Fprintf(w, "# Musubi replay: %d incident(s)\n", len(incs))
	for _, in := range incs {
		fmt.Fprintf(w, "\n## [%s] %s\n\n", strings.ToUpper(ocsf.SeverityName(in.Severity)), in.Title)
		fmt.Fprintf(w, "- id `%s`, risk %d, %d alerts, %s → %s (UTC)\n", in.ID, in.RiskScore, len(in.AlertIDs),
			time.UnixMilli(in.FirstSeen).UTC().Format(time.DateTime), time.UnixMilli(in.LastSeen).UTC().Format(time.DateTime))
		if len(in.Stages) > 0 {
			fmt.Fprintf(w, "- story: %s\n", strings.Join(in.Stages, " → "))
		}
		var ents []string
		for _, n := range in.Nodes {
			if n.Kind == incident.NodeEntity {
				ents = append(ents, fmt.Sprintf("`%s=%s`", n.Entity, n.Value))
			}
		}
		sort.Strings(ents)
		if len(ents) > 0 {
			fmt.Fprintf(w, "- entities: %s\n", strings.Join(ents, ", "))
		}
		alerts := append([]alert.Alert(nil), in.Alerts...)
		sort.SliceStable(alerts, func(i, j int) bool { return alerts[i].Time < alerts[j].Time })
		fmt.Fprintf(w, "\n| time (UTC) | severity | rule | summary |\n|---|---|---|---|\n")
		for _, a := range alerts {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", time.UnixMilli(a.Time).UTC().Format(time.DateTime), ocsf.SeverityName(a.Severity),
				mdCell(a.RuleID), mdCell(a.Summary))
		}
	}
	return nil
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// watchHeap writes a heap profile to path whenever the live heap (as of the
// last collection) passes its largest so far, checked twice a second, until
// the returned stop is called, which writes it once more if the heap grew
// since. The profile so shows what the replay held at its peak, not at its
// end, when the correlator's windows have closed.
func watchHeap(path string) (stop func() error) {
	w := &heapWatch{path: path}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				w.check()
				return
			case <-t.C:
				w.check()
			}
		}
	})
	return func() error { close(done); wg.Wait(); return w.err }
}

// heapWatch is watchHeap's state: the largest live heap profiled so far
// and the first error writing a profile.
type heapWatch struct {
	path string
	peak uint64
	err  error
}

// check writes a profile when the live heap is the first seen or more
// than 2% above the largest profiled.
func (w *heapWatch) check() {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if live := sample[0].Value.Uint64(); live > w.peak+w.peak/50 || w.peak == 0 {
		w.peak = live
		if e := writeHeapProfile(w.path); e != nil && w.err == nil {
			w.err = e
		}
	}
}

// writeHeapProfile writes the heap profile to path, replacing it whole.
func writeHeapProfile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// showProgress redraws a progress line on w twice a second until the
// returned stop is called, which erases it.
func showProgress(w io.Writer, progress func() replay.Stats) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-t.C:
				fmt.Fprint(w, "\r\x1b[K"+progressLine(progress()))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// progressLine renders the progress of a replay on one line.
func progressLine(s replay.Stats) string {
	el := s.Elapsed.Seconds()
	if s.Phase == "scan" {
		return fmt.Sprintf("scanning %d/%d files · %s records · %s", s.Scanned, s.Files, count(s.Records), s.Elapsed.Round(time.Second))
	}
	ev := s.EventsTotal()
	rate := 0.0
	if el > 0 {
		rate = float64(ev) / el
	}
	eta := "–"
	if todo := s.Records - s.Filtered - ev; rate > 0 && todo >= 0 {
		eta = (time.Duration(float64(todo)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d files · %s/%s · %s records · %s/s · %d alerts · %d incidents · ETA %s",
		s.FilesDone, s.Files, bytesize(s.BytesDone), bytesize(s.Bytes), count(ev), count(int64(rate)), s.Alerts, s.Incidents, eta)
}

// writeSummary writes the end-of-replay summary.
func writeSummary(w io.Writer, s replay.Stats) {
	ev := s.EventsTotal()
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(ev) / s.Elapsed.Seconds()
	}
	fmt.Fprintf(w, "replayed %d files (%s), %s records in %s (%s records/s)\n", s.FilesDone, bytesize(s.BytesDone), count(ev),
		s.Elapsed.Round(time.Millisecond), count(int64(rate)))
	var srcs []string
	for src := range s.Events {
		srcs = append(srcs, src)
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		fmt.Fprintf(w, "  %-10s %s records\n", src, count(s.Events[src]))
	}
	if s.Filtered > 0 {
		fmt.Fprintf(w, "  filtered   %s records (%d whole files)\n", count(s.Filtered), s.FilteredFiles)
	}
	var reasons []string
	for r := range s.DeadLetters {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "dead letters: %d", s.DeadLettersTotal())
	for i, r := range reasons {
		sep := ", "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(w, "%s%s %d", sep, r, s.DeadLetters[r])
	}
	if len(reasons) > 0 {
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "; late records: %d\n", s.Late)
	fmt.Fprintf(w, "alerts: %d; incidents: %d\n", s.Alerts, s.Incidents)
	if peak := peakrss.Of(os.Getpid()); peak > 0 {
		fmt.Fprintf(w, "peak memory: %s\n", bytesize(peak))
	}
}

// count formats n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func bytesize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
