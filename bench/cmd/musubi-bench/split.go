package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The split-roles runs: the same preloaded stream through `-role detect`
// ×n and one `-role correlate`, joined by a signals topic, into ClickHouse;
// then the detection latency with the signals hop; then the cost of the
// consumer's commit fence. Each process runs with GOMAXPROCS=1 on any core
// (two detect processes pinned to one core would show nothing), so on a
// two-core machine the processes, kfake, the harness and ClickHouse share
// both cores.

// splitRun is one measured split-roles run.
type splitRun struct {
	Detect  int // detect processes
	Repeat  int
	Rules   int
	Events  int64   // raw records committed by detect in the window
	Seconds float64 // from the first commit with every detect member in the group to the last signal committed
	// DetectSeconds is the same window up to detect's last raw commit.
	DetectSeconds float64
	PerSecond     float64 // Events / Seconds: end to end
	DetectPerSec  float64 // Events / DetectSeconds
	Signals       int64   // signal messages published
	DetectCPU     float64 // CPU seconds of the detect processes, in the window
	CorrCPU       float64 // CPU seconds of the correlate process, in the window
	PeakRSS       int64   // sum over the processes
	// Tally maps the run's high incidents onto the chains.
	Tally    chainTally
	Chains   int
	Complete bool
	Err      string
}

// unpinned returns argv allowed on every core (the harness itself may be
// pinned, and a child inherits its affinity).
func unpinned(argv ...string) []string {
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() > 1 {
		return append([]string{"taskset", "-c", fmt.Sprintf("0-%d", runtime.NumCPU()-1)}, argv...)
	}
	return argv
}

// startSplit starts one correlate process, waits for its schema in db,
// then n detect processes, all on the raw topics ts, joined by
// signalsTopic. The raw consumer group is group.
func (h *harness) startSplit(ctx context.Context, name string, n int, ts topicSet, rulesDir, db, group, signalsTopic string) (corr *proc, detect procs, err error) {
	sigGroup := group + "-correlate"
	extra := []string{"  signals_topic: " + strconv.Quote(signalsTopic), "  signals_group_id: " + strconv.Quote(sigGroup)}
	cfg := func(role string) (string, error) {
		return h.engineConfig(name+"-"+role, group, ts, rulesDir, db, append([]string{"role: " + role}, extra...)...)
	}
	cc, err := cfg("correlate")
	if err != nil {
		return nil, nil, err
	}
	dc, err := cfg("detect")
	if err != nil {
		return nil, nil, err
	}
	corr, err = start(unpinned(h.engine, "serve", "-config", cc), filepath.Join(h.work, name+"-correlate.log"))
	if err != nil {
		return nil, nil, err
	}
	if err := h.waitTable(ctx, corr, db); err != nil {
		corr.stop()
		return nil, nil, err
	}
	for i := range n {
		p, err := start(unpinned(h.engine, "serve", "-config", dc), filepath.Join(h.work, fmt.Sprintf("%s-detect-%d.log", name, i)))
		if err != nil {
			detect.stop()
			corr.stop()
			return nil, nil, err
		}
		detect = append(detect, p)
	}
	return corr, detect, nil
}

// startAll starts one `-role all` process, unpinned, on the raw topics ts.
func (h *harness) startAll(ctx context.Context, name string, ts topicSet, rulesDir, db, group string) (*proc, error) {
	cfg, err := h.engineConfig(name, group, ts, rulesDir, db)
	if err != nil {
		return nil, err
	}
	p, err := start(unpinned(h.engine, "serve", "-config", cfg), filepath.Join(h.work, name+".log"))
	if err != nil {
		return nil, err
	}
	if err := h.waitTable(ctx, p, db); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// runSplit measures one split-roles run over the preloaded stream; n is
// the number of detect processes, 0 the `-role all` reference.
func (h *harness) runSplit(ctx context.Context, n, repeat int, rulesDir string, nRules, chains int, runFor time.Duration) splitRun {
	name := fmt.Sprintf("split-%dx-%d", n, repeat)
	res := splitRun{Detect: n, Repeat: repeat, Rules: nRules, Chains: chains}
	db := h.dbName(name)
	group := "bench-" + name + "-" + h.id
	signalsTopic := "bench.signals." + name
	if err := createTopics(ctx, h.brokers, signalsTopic); err != nil {
		res.Err = err.Error()
		return res
	}
	defer h.dropDB(db)
	var corr *proc
	var detect procs
	var err error
	if n == 0 {
		// The reference: one `-role all` process under the same
		// conditions (unpinned); it correlates itself, so there is no
		// signals topic to wait for.
		corr, err = h.startAll(ctx, name, h.load, rulesDir, db, group)
	} else {
		corr, detect, err = h.startSplit(ctx, name, n, h.load, rulesDir, db, group, signalsTopic)
	}
	if err != nil {
		res.Err = err.Error()
		return res
	}
	all := append(procs{corr}, detect...)
	defer all.stop()
	members := max(n, 1)
	sigTopics := []string{signalsTopic}
	var t0, detectDone time.Time
	var c0 int64
	var dcpu0, ccpu0 time.Duration
	startupLimit := time.Now().Add(3 * time.Minute)
	var limit time.Time
	for {
		if err, ok := all.exited(); ok {
			res.Err = fmt.Sprintf("process exited (%v):\n%s", err, all.tail())
			return res
		}
		end, committed, err := offsets(ctx, h.brokers, h.load, group)
		sigEnd, sigCommitted, serr := offsetsOf(ctx, h.brokers, sigTopics, group+"-correlate")
		now := time.Now()
		// The window starts once every detect process has joined and the
		// group has committed: start-up and the first rebalances are not
		// counted.
		if err == nil && t0.IsZero() && committed > 0 && groupMembers(ctx, h.brokers, group) == members {
			t0, c0, dcpu0, ccpu0 = now, committed, detect.cpuTime(), corr.cpuTime()
			limit = now.Add(runFor)
		}
		if !t0.IsZero() && err == nil && detectDone.IsZero() && committed >= end {
			detectDone = now
			res.Events, res.DetectSeconds = committed-c0, now.Sub(t0).Seconds()
		}
		if !detectDone.IsZero() && n == 0 {
			res.Seconds, res.Complete = res.DetectSeconds, true
			break
		}
		if !detectDone.IsZero() && serr == nil && sigEnd > 0 && sigCommitted >= sigEnd {
			res.Seconds, res.Signals, res.Complete = now.Sub(t0).Seconds(), sigEnd, true
			break
		}
		if !t0.IsZero() && now.After(limit) {
			if detectDone.IsZero() {
				res.Events, res.DetectSeconds = committed-c0, now.Sub(t0).Seconds()
			}
			res.Seconds, res.Signals = now.Sub(t0).Seconds(), sigEnd
			// Events counted are those detect committed; what correlate
			// has not committed yet is not counted as end to end.
			break
		}
		if t0.IsZero() && now.After(startupLimit) {
			res.Err = "no commit with every detect member within 3 minutes:\n" + all.tail()
			return res
		}
		select {
		case <-ctx.Done():
			res.Err = ctx.Err().Error()
			return res
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.DetectCPU = (detect.cpuTime() - dcpu0).Seconds()
	res.CorrCPU = (corr.cpuTime() - ccpu0).Seconds()
	if n == 0 {
		// One process does both: its CPU is listed as detect's.
		res.DetectCPU, res.CorrCPU = res.CorrCPU, 0
	}
	res.PeakRSS = all.peakRSS()
	if res.Seconds > 0 {
		res.PerSecond = float64(res.Events) / res.Seconds
	}
	if res.DetectSeconds > 0 {
		res.DetectPerSec = float64(res.Events) / res.DetectSeconds
	}
	conn, err := chConn(h.clickhouse)
	if err != nil {
		res.Tally = chainTally{Err: err.Error()}
		return res
	}
	defer conn.Close()
	switch {
	case res.Complete || n == 0:
		// -role all correlates what it commits, as the engine runs do.
		res.Tally = h.judgeChains(ctx, conn, db, group)
	default:
		// Detect's commits say nothing of what correlate has done
		// with the signals still in their topic: nothing is judged.
		incs, err := highIncidents(ctx, conn, db)
		if err != nil {
			res.Tally = chainTally{Err: err.Error()}
			break
		}
		res.Tally = tally(incs, h.gen, chains, func(int) bool { return false })
	}
	return res
}

// runSplitLatency is runLatency with the signals hop — one detect and one
// correlate process on fresh topics — or, with split false, the `-role
// all` reference under the same conditions (unpinned).
func (h *harness) runSplitLatency(ctx context.Context, split bool, repeat int, rulesDir string, nRules int, rate float64, d time.Duration) (latencyResult, error) {
	name := fmt.Sprintf("split-latency-%d", repeat)
	if !split {
		name = fmt.Sprintf("all-latency-%d", repeat)
	}
	ts := newTopicSet("bench." + strings.ReplaceAll(name, "-", ""))
	signalsTopic := "bench.signals." + name
	if err := createTopics(ctx, h.brokers, append(ts.names(), signalsTopic)...); err != nil {
		return latencyResult{}, err
	}
	return h.latency(ctx, name, ts, nRules, rate, d, func(db, group string) (engineProcs, error) {
		if !split {
			return h.startAll(ctx, name, ts, rulesDir, db, group)
		}
		corr, detect, err := h.startSplit(ctx, name, 1, ts, rulesDir, db, group, signalsTopic)
		if err != nil {
			return nil, err
		}
		return append(procs{corr}, detect...), nil
	})
}

// splitAll runs every split measurement: counts detect processes (each
// repeated), the latency with the signals hop (repeated) at 70% of the
// median one-detect throughput, and the commit-fence benchmark.
func (h *harness) splitAll(ctx context.Context, counts []int, repeats int, rulesDir string, nRules int, latencyFor, runFor time.Duration, latencyRate float64, latencyOnly bool) {
	// The -role all reference (0) runs beside the split configurations.
	counts = append([]int{0}, counts...)
	if latencyOnly {
		counts = nil
	}
	for r := 1; r <= repeats && len(counts) > 0; r++ {
		for _, n := range counts {
			h.logf("split roles: detect ×%d + correlate (0: -role all), run %d of %d", n, r, repeats)
			s := h.runSplit(ctx, n, r, rulesDir, nRules, h.report.stream.Chains, runFor)
			h.report.split = append(h.report.split, s)
			if s.Err != "" {
				h.logf("split roles: detect ×%d: %s", n, firstLine(s.Err))
				h.report.errors = append(h.report.errors, fmt.Sprintf("split detect ×%d run %d: %s", n, r, s.Err))
			} else {
				h.logf("split roles: detect ×%d: %.0f events/s end to end (detect alone %.0f), %d signal messages, %s",
					n, s.PerSecond, s.DetectPerSec, s.Signals, s.Tally.short())
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
	var ones []float64
	for _, s := range h.report.split {
		if s.Detect == 1 && s.Err == "" {
			ones = append(ones, s.PerSecond)
		}
	}
	if len(ones) > 0 || latencyRate > 0 {
		rate := latencyRate
		if rate <= 0 {
			slices.Sort(ones)
			rate = 0.7 * ones[len(ones)/2]
		}
		for r := 1; r <= repeats; r++ {
			for _, split := range []bool{true, false} {
				h.logf("latency (split %v): %.0f events/s for %s, run %d of %d", split, rate, latencyFor, r, repeats)
				l, err := h.runSplitLatency(ctx, split, r, rulesDir, nRules, rate, latencyFor)
				if err != nil {
					l.Err = err.Error()
					h.report.errors = append(h.report.errors, fmt.Sprintf("latency (split %v) run %d: %s", split, r, err))
				}
				l.Split = split
				h.report.splitLatency = append(h.report.splitLatency, l)
				h.logf("latency (split %v): p50 %s p99 %s (%d of %d chains)", split, l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond), l.Detected, l.Chains)
				if ctx.Err() != nil {
					return
				}
			}
		}
	}
	if latencyOnly {
		return
	}
	args := []string{"test", "-run", "^$", "-bench", "CommitFence", "-cpu", "1", "-count", "6", "-benchtime", "2000x", "./pipeline"}
	h.report.fenceCommand = "go " + strings.Join(args, " ")
	h.logf("commit fence: %s", h.report.fenceCommand)
	out, err := h.goCmd(ctx, args...)
	if err != nil {
		h.report.errors = append(h.report.errors, fmt.Sprintf("commit fence: %v\n%s", err, tailOf(out)))
		return
	}
	h.report.fence = parseBench(out)
	raw := filepath.Join(h.work, "fence.txt")
	if os.WriteFile(raw, out, 0o644) == nil {
		if s, err := h.goCmd(ctx, "run", benchstat, raw); err == nil {
			h.report.fenceStat = string(s)
		}
	}
}

// spread renders the median of xs with its minimum and maximum.
func spread(xs []float64, f func(float64) string) string {
	if len(xs) == 0 {
		return ""
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return fmt.Sprintf("%s (%s – %s)", f(s[len(s)/2]), f(s[0]), f(s[len(s)-1]))
}

// splitMarkdown is the "Split roles" section.
func (r *report) splitMarkdown() string {
	if len(r.split) == 0 && len(r.splitLatency) == 0 && len(r.fence) == 0 {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if len(r.split) == 0 {
		// A latency-only run: its subsection is added to the section.
		return r.splitLatencyMarkdown()
	}
	p("## Split roles: detect ×1 and ×2, one correlate\n\n")
	p("The preloaded stream above through `musubi serve -role detect` (×1, then ×2 in one consumer group) and one `-role correlate`, joined by a signals topic of %d partitions in kfake, into ClickHouse; %d rules. ", partitions, r.splitRules())
	p("**Every process runs with `GOMAXPROCS=1` on either core — nothing is pinned — and shares the machine's %d cores with kfake, the harness, ClickHouse and whatever else runs on it (other engineers' builds and tests)**, so two detect processes can at best use the second core the others leave. ", r.nproc)
	p("End to end is from the first raw commit with every detect member in the group (start-up and the first rebalance not counted) to the correlate group's commit of the last signal; \"detect alone\" ends at detect's last raw commit. ")
	p("The first row is the reference: one `-role all` process under the same conditions (unpinned, `GOMAXPROCS=1`), which detects and correlates itself. Each configuration ran %d times, interleaved; the median is shown with the lowest and highest run.\n\n", r.splitRepeats())
	p("| processes | end to end, events/s | detect alone, events/s | CPU s per 1,000 events (detect / correlate) | signal messages | peak RSS (all) | chains → one high incident each | runs |\n|---|---:|---:|---:|---:|---:|---|---|\n")
	var counts []int
	for _, s := range r.split {
		if !slices.Contains(counts, s.Detect) {
			counts = append(counts, s.Detect)
		}
	}
	for _, n := range counts {
		var e2e, det, dcpu, ccpu, rss []float64
		var sig []string
		var inc []string
		var runs []string
		for _, s := range r.split {
			if s.Detect != n {
				continue
			}
			if s.Err != "" {
				runs = append(runs, "error: "+strings.ReplaceAll(firstLine(s.Err), "|", "/"))
				continue
			}
			e2e, det = append(e2e, s.PerSecond), append(det, s.DetectPerSec)
			if s.Events > 0 {
				dcpu = append(dcpu, 1000*s.DetectCPU/float64(s.Events))
				ccpu = append(ccpu, 1000*s.CorrCPU/float64(s.Events))
			}
			rss = append(rss, float64(s.PeakRSS))
			sig = append(sig, commas(s.Signals))
			inc = append(inc, s.Tally.cell())
			w := fmt.Sprintf("%s in %.1f s", commas(s.Events), s.Seconds)
			if !s.Complete {
				w += " (time limit)"
			}
			runs = append(runs, w)
		}
		f1 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
		label := fmt.Sprintf("detect ×%d + correlate", n)
		if n == 0 {
			label = "`-role all` ×1 (reference)"
		}
		p("| %s | %s | %s | %s / %s | %s | %s | %s | %s |\n", label, spread(e2e, num), spread(det, num), spread(dcpu, f1), spread(ccpu, f1),
			strings.Join(sig, ", "), spread(rss, func(v float64) string { return mib(int64(v)) }), strings.Join(inc, ", "), strings.Join(runs, "; "))
	}
	p("\n%s", r.stamp())
	p("%s", r.splitLatencyMarkdown())
	p("%s", r.fenceMarkdown())
	return b.String()
}

// splitLatencyMarkdown is the latency subsection of the split roles.
func (r *report) splitLatencyMarkdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if len(r.splitLatency) > 0 {
		l0 := r.splitLatency[0]
		p("### Detection latency with the signals hop, at %s events/s\n\n", num(l0.Rate))
		why := "70% of the median one-detect end-to-end rate above"
		if r.splitLatencyRate > 0 {
			why = "a fixed rate (`-split-latency-rate`)"
		}
		p("As [Detection latency](#detection-latency), with one detect and one correlate process (unpinned, `GOMAXPROCS=1` each) on fresh topics, at %s events/s — %s — for %.0f s each run; beside each, the `-role all` reference at the same rate under the same conditions. The target is a p99 of at most 3 s with the signals hop.\n\n", num(l0.Rate), why, l0.Seconds)
		p("| run | roles | chains | detected | p50 | p99 | max | CPU (cores, all processes) | lag at end | verdict |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for i, l := range r.splitLatency {
			roles := "`-role all` (reference)"
			if l.Split {
				roles = "detect + correlate"
			}
			if l.Err != "" {
				p("| %d | %s | error | | | | | | | %s |\n", i/2+1, roles, strings.ReplaceAll(firstLine(l.Err), "|", "/"))
				continue
			}
			p("| %d | %s | %d | %d | %s | %s | %s | %.2f | %s records | %s |\n", i/2+1, roles, l.Chains, l.Detected, l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond),
				l.Max.Round(time.Millisecond), l.CPUPerSec, commas(l.LagAtEnd), met(l.Detected == l.Chains && l.P99 <= 3*time.Second))
		}
		p("\n%s", r.stamp())
	}
	return b.String()
}

// fenceMarkdown is the commit-fence subsection of the split roles.
func (r *report) fenceMarkdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if len(r.fence) > 0 {
		p("### The consumer's commit fence\n\n")
		p("Every commit first asks the group coordinator which partitions this member owns (one DescribeGroups), then commits (`pipeline.Consumer.commit`). `pipeline` BenchmarkCommitFence commits one partition's offset through kfake over loopback, fenced and unfenced (the reader's OffsetCommit alone); median of 6 runs. `%s`\n\n", r.fenceCommand)
		p("| commit | time per commit | commits/s |\n|---|---:|---:|\n")
		for _, v := range []string{"fenced", "unfenced"} {
			ns, ok := r.fence1("CommitFence/"+v, "ns/op")
			if !ok {
				continue
			}
			cps, _ := r.fence1("CommitFence/"+v, "commits/s")
			p("| %s | %s µs | %s |\n", v, num(ns/1000), num(cps))
		}
		p("\nThe engine commits once per batch (at most `pipeline.batch_size` records or `pipeline.flush_interval`, 1 s), so at the batch sizes above the fence costs well under 1%% of a batch's time; against a real broker it adds one network round trip to the group coordinator per batch.\n\n")
		if r.fenceStat != "" {
			p("<details><summary>benchstat</summary>\n\n```\n%s```\n\n</details>\n\n", r.fenceStat)
		}
		p("%s", r.stamp())
	}
	return b.String()
}

func (r *report) fence1(name, unit string) (float64, bool) {
	var xs []float64
	for _, b := range r.fence {
		if b.Name == name {
			if v, ok := b.Metrics[unit]; ok {
				xs = append(xs, v)
			}
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	return xs[len(xs)/2], true
}

func (r *report) splitRules() int {
	if len(r.split) > 0 {
		return r.split[0].Rules
	}
	return 0
}

func (r *report) splitRepeats() int {
	n := 0
	for _, s := range r.split {
		n = max(n, s.Repeat)
	}
	return n
}

// spliceSplit replaces the "Split roles" section of the Markdown document
// md with section (up to the next level-2 heading), or inserts it before
// "## Cost per event of each stage" when md has none. A section that is
// only a subsection (a latency-only run, "### …") is added at the end of
// the existing section instead.
func spliceSplit(md, section string) string {
	const head = "## Split roles"
	if i := strings.Index(md, head); i >= 0 {
		rest := md[i+len(head):]
		j := strings.Index(rest, "\n## ")
		if strings.HasPrefix(section, "### ") {
			if j < 0 {
				return md + section
			}
			at := i + len(head) + j + 1
			return md[:at] + section + md[at:]
		}
		if j < 0 {
			return md[:i] + section
		}
		return md[:i] + section + rest[j+1:]
	}
	if i := strings.Index(md, "## Cost per event of each stage"); i >= 0 {
		return md[:i] + section + md[i:]
	}
	return md + "\n" + section
}
