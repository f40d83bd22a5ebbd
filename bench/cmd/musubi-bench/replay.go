package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/musubi-xdr/musubi/bench/loadgen"
	"github.com/musubi-xdr/musubi/incident"
)

// replayResult is the offline replay of a generated export.
type replayResult struct {
	Records, Files, Chains int
	Bytes                  int64
	Span                   time.Duration
	Wall, CPU              time.Duration
	PeakRSS                int64 // bytes
	Incidents, High        int
	// Tally maps the high incidents onto the export's chains.
	Tally   chainTally
	Summary string
	Err     string
}

// flowHeader is the default-format header of VPC flow log files.
const flowHeader = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// writeExport writes n records of the load generator as an `aws s3 sync`
// tree: per source, gzip files of five minutes of event time each under
// AWSLogs/<source>/YYYY/MM/DD/ (CloudTrail wrapped in {"Records":[…]},
// flow logs with their header, the others JSON lines). The stream spans one
// day of event time with a chain every hour. An export already written with
// the same parameters is reused (it is kept out of the repository, under
// .local/bench).
func writeExport(dir string, seed uint64, entities, n int) (files int, chains int, bytes int64, span time.Duration, err error) {
	span = 24 * time.Hour
	marker := filepath.Join(dir, ".complete")
	if b, err := os.ReadFile(marker); err == nil {
		if _, err := fmt.Sscanf(string(b), "%d %d %d", &files, &chains, &bytes); err == nil {
			return files, chains, bytes, span, nil
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return 0, 0, 0, 0, err
	}
	g := loadgen.New(exportConfig(seed, entities, n))
	type open struct {
		f     *os.File
		zw    *gzip.Writer
		bw    *bufio.Writer
		count int
	}
	cur := map[string]*open{}
	bucket := map[string]time.Time{}
	closeFile := func(src string) error {
		o := cur[src]
		if o == nil {
			return nil
		}
		delete(cur, src)
		if src == loadgen.SourceCloudTrail {
			o.bw.WriteString("]}\n")
		}
		err := o.bw.Flush()
		if e := o.zw.Close(); err == nil {
			err = e
		}
		if st, e := o.f.Stat(); e == nil {
			bytes += st.Size()
		}
		if e := o.f.Close(); err == nil {
			err = e
		}
		files++
		return err
	}
	for i := 0; i < n || g.Pending() > 0; i++ {
		if i >= n {
			g.StopChains()
		}
		r := g.Next()
		b := r.Time.Truncate(5 * time.Minute)
		if o := cur[r.Source]; o != nil && !bucket[r.Source].Equal(b) {
			if err := closeFile(r.Source); err != nil {
				return 0, 0, 0, 0, err
			}
		}
		o := cur[r.Source]
		if o == nil {
			bucket[r.Source] = b
			name := filepath.Join(dir, "AWSLogs", r.Source, b.Format("2006/01/02"), r.Source+"_"+b.Format("20060102T1504Z")+".gz")
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return 0, 0, 0, 0, err
			}
			f, err := os.Create(name)
			if err != nil {
				return 0, 0, 0, 0, err
			}
			zw := gzip.NewWriter(f)
			o = &open{f: f, zw: zw, bw: bufio.NewWriterSize(zw, 64<<10)}
			cur[r.Source] = o
			switch r.Source {
			case loadgen.SourceCloudTrail:
				o.bw.WriteString(`{"Records":[`)
			case loadgen.SourceVPCFlow:
				o.bw.WriteString(flowHeader + "\n")
			}
		}
		if r.Source == loadgen.SourceCloudTrail && o.count > 0 {
			o.bw.WriteByte(',')
		}
		o.bw.Write(r.Value)
		if r.Source != loadgen.SourceCloudTrail {
			o.bw.WriteByte('\n')
		}
		o.count++
	}
	for src := range cur {
		if err := closeFile(src); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	chains = g.Chains()
	err = os.WriteFile(marker, []byte(fmt.Sprintf("%d %d %d\n", files, chains, bytes)), 0o644)
	return files, chains, bytes, span, err
}

// exportConfig is the load generator's configuration of writeExport: one
// day of event time, a chain every hour.
func exportConfig(seed uint64, entities, n int) loadgen.Config {
	span := 24 * time.Hour
	return loadgen.Config{Seed: seed, Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Rate: float64(n) / span.Seconds(),
		Entities: entities, ChainEvery: time.Hour, ChainSpan: 10 * time.Minute}
}

// runReplay generates (or reuses) the export and replays it with
// `musubi replay -format jsonl -min-severity 4` as a child process (the high
// incidents, judged per chain as the engine runs are), measuring its
// wall time, CPU time (the child's rusage) and peak RSS (the VmHWM the
// replay reports in its summary: the child's rusage ru_maxrss is not its own,
// since Go's vfork runs the child in the harness's memory until exec and the
// kernel counts that memory's high-water mark, and the harness holds the
// preloaded stream).
func (h *harness) runReplay(ctx context.Context, n int) replayResult {
	res := replayResult{Records: n}
	dir := filepath.Join(".local", "bench", fmt.Sprintf("replay-export-%d-seed%d", n, h.seed))
	h.logf("replay: writing a %d-record export to %s (reused when present)", n, dir)
	var err error
	res.Files, res.Chains, res.Bytes, res.Span, err = writeExport(dir, h.seed, h.entities, n)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	h.logf("replay: %d files, %s compressed, %d chains; replaying", res.Files, mib(res.Bytes), res.Chains)
	// Not -quiet: the summary on stderr (no progress line, stderr is not a
	// terminal) says how many records were replayed.
	cmd := exec.CommandContext(ctx, h.engine, "replay", "-rules", h.pack, "-format", "jsonl", "-min-severity", "4", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err = cmd.Run()
	res.Wall = time.Since(t0)
	if err != nil && cmd.ProcessState == nil {
		res.Err = err.Error()
		return res
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err != nil && cmd.ProcessState.ExitCode() != 1 { // 1: dead letters, reported in the summary
		res.Err = fmt.Sprintf("%v: %s", err, tailOf(stderr.Bytes()))
	}
	incs, err := replayedHigh(stdout.Bytes())
	if err != nil && res.Err == "" {
		res.Err = err.Error()
	}
	res.High = len(incs)
	res.Tally = tally(incs, exportConfig(h.seed, h.entities, n), res.Chains, func(int) bool { return true })
	res.Summary = strings.TrimSpace(stderr.String())
	if m := incidentsRe.FindStringSubmatch(res.Summary); m != nil {
		res.Incidents, _ = strconv.Atoi(m[1])
	}
	res.PeakRSS = peakFromSummary(res.Summary)
	// The replay must have read the whole export and found every chain.
	replayed := -1
	if m := replayedRe.FindStringSubmatch(res.Summary); m != nil {
		replayed, _ = strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	}
	switch {
	case res.Err != "":
	case replayed != n:
		res.Err = fmt.Sprintf("the replay read %d records of the %d-record export", replayed, n)
	case !res.Tally.ok():
		res.Err = "the replay's high incidents: " + res.Tally.short()
	}
	h.logf("replay: %d records in %s (%.0f/s, %.0f per CPU-s), peak RSS %s, %d incidents (%d high or critical): %s",
		n, res.Wall.Round(time.Millisecond), float64(n)/res.Wall.Seconds(), float64(n)/res.CPU.Seconds(), mib(res.PeakRSS), res.Incidents, res.High, res.Tally.short())
	return res
}

// replayedHigh reads the incidents `musubi replay -format jsonl` printed.
func replayedHigh(out []byte) ([]highIncident, error) {
	var incs []highIncident
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var in incident.Incident
		if err := dec.Decode(&in); err == io.EOF {
			return incs, nil
		} else if err != nil {
			return incs, fmt.Errorf("reading the replay's incidents: %w", err)
		}
		hi := highIncident{ID: in.ID, Title: in.Title}
		for _, nd := range in.Nodes {
			if nd.Kind == incident.NodeEntity {
				hi.Entities = append(hi.Entities, string(nd.Entity)+":"+nd.Value)
			}
		}
		for _, e := range in.Timeline {
			if !slices.Contains(hi.Rules, e.Title) {
				hi.Rules = append(hi.Rules, e.Title)
			}
		}
		incs = append(incs, hi)
	}
}

// incidentsRe reads the incident count from the replay's summary line
// "alerts: 120; incidents: 4600".
var incidentsRe = regexp.MustCompile(`(?m)^alerts: \d+; incidents: (\d+)$`)

// replayedRe reads the record count from the replay's summary line
// "replayed 1440 files (113.0 MiB), 1,000,000 records in …".
var replayedRe = regexp.MustCompile(`replayed \d+ files \([^)]*\), ([\d,]+) records`)

// peakRe reads the replay's own peak RSS from its summary line
// "peak memory: 243.1 MiB".
var peakRe = regexp.MustCompile(`(?m)^peak memory: ([\d.]+) (KiB|MiB|GiB)$`)

// peakFromSummary is the peak RSS in bytes the replay's summary reports, or 0.
func peakFromSummary(summary string) int64 {
	m := peakRe.FindStringSubmatch(summary)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return int64(v * float64(map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]))
}

// replayMarkdown renders the replay section.
func (r *report) replayMarkdown() string {
	x := r.replay
	if x == nil {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Offline replay of an export\n\n")
	if x.Err != "" {
		p("Error: %s\n\n", x.Err)
	}
	p("`musubi replay -format jsonl -min-severity 4` (all cores, no pinning; its high incidents judged per chain as in the engine runs) on an `aws s3 sync`-style tree written by `bench/loadgen`: %s records over %s of event time, %d gzip files of five minutes per source (%s compressed), a PRODUCT.md chain every hour (%d chains). The export is kept under `.local/bench/` (not in the repository) and reused.\n\n",
		commas(int64(x.Records)), x.Span, x.Files, mib(x.Bytes), x.Chains)
	p("| measure | value | target |\n|---|---:|---|\n")
	p("| records/s (wall) | %s | ≥ 20,000 (issue 24) %s |\n", num(float64(x.Records)/x.Wall.Seconds()), met(float64(x.Records)/x.Wall.Seconds() >= 20_000))
	p("| records per CPU-second | %s | |\n", num(float64(x.Records)/x.CPU.Seconds()))
	p("| wall / CPU time | %s / %s | |\n", x.Wall.Round(time.Millisecond), x.CPU.Round(time.Millisecond))
	p("| peak RSS (the replay's VmHWM) | %s | ≤ 500 MiB %s |\n", mib(x.PeakRSS), met(x.PeakRSS <= 500<<20))
	p("| incidents (high or critical) | %d (%d) | |\n", x.Incidents, x.High)
	p("| chains → one high incident each | %s | all %d %s |\n\n", x.Tally.cell(), x.Chains, met(x.Tally.ok() && x.Tally.Consumed == x.Chains))
	for _, u := range x.Tally.Unrelated {
		p("- high incident on no chain: %s\n", strings.ReplaceAll(u, "|", "/"))
	}
	if len(x.Tally.Unrelated) > 0 {
		p("\n")
	}
	p("<details><summary>the replay's summary</summary>\n\n```\n%s\n```\n\n</details>\n\n%s", x.Summary, r.stamp())
	return b.String()
}
