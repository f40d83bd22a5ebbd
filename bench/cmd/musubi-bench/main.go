// Command musubi-bench is Musubi's end-to-end benchmark (a development
// tool, not part of the product binary). `make bench` and `make
// bench-quick` run it.
//
// It runs an in-process Kafka broker (kfake), preloads it with a mixed
// stream from bench/loadgen (attack chains injected), and starts the engine
// (`musubi serve`, built from this tree) as a separate process under
// GOMAXPROCS=1, pinned to core 0 with taskset, once per rule-set size; the
// harness itself moves to the other cores. For each run it measures events/s
// from the consumer group's committed offsets, the engine's CPU time and
// peak RSS, and judges every injected chain the run consumed whole: exactly
// one high incident must hold its identifiers; high incidents holding no
// chain's identifier (findings on the generated background) are listed with
// their rules (chains.go).
// The ceiling is the same stream consumed by this binary's `sink` mode
// (consume → decode → storage.Write of events → commit, no rules, no
// correlation) under the same constraints. Then the detection latency run
// offers 70% of the measured 300-rule throughput in real time and measures,
// for each chain, the time from the Kafka append of its last record to an
// incident holding it being queryable in ClickHouse. Per-stage costs come
// from the packages' `go test -bench` benchmarks and bench/stage, summarized
// with benchstat, and a CPU profile of the Processor explains where the
// engine core goes. Last, `musubi replay` runs on a generated export of a
// million records (an `aws s3 sync`-style tree of gzip files under
// .local/bench, reused between runs), measuring records/s and the child's
// peak RSS. The results are written as Markdown (BENCHMARKS.md).
//
// With -split (default 1,2) it also runs the split roles: the preloaded
// stream through `-role detect` ×1 and ×2 and one `-role correlate`,
// joined by a signals topic, each configuration -split-repeat times, then
// the detection latency with the signals hop, then the consumer's commit
// fence (pipeline BenchmarkCommitFence). -only-split runs only these and
// replaces the "Split roles" section of -out, leaving the rest;
// -split-latency-only with -split-latency-rate R adds latency runs at R
// events/s to that section (the throughput runs are not repeated).
//
//	musubi-bench [-quick] [-replay N] [-only-replay] [-split 1,2] [-split-repeat 3] [-only-split] [-out FILE]
//	musubi-bench -only-split -split-latency-only -split-latency-rate 100 [-out FILE]
//	musubi-bench sink -brokers ... -database ...   (the ceiling, run by the harness)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/bench/loadgen"
	"github.com/musubi-xdr/musubi/bench/rulesets"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sink" {
		os.Exit(sinkMain(os.Args[2:]))
	}
	os.Exit(benchMain(os.Args[1:]))
}

type harness struct {
	id         string
	seed       uint64
	quick      bool
	brokers    []string
	clickhouse string
	// compression is clickhouse.compression of the engine and the
	// ceiling; empty keeps the default (lz4).
	compression string
	engine      string
	self        string
	work        string
	entities    int
	load, live  topicSet
	pack, corr  string
	// gen is the configuration of the preloaded stream; places says
	// where its chains' records are.
	gen    loadgen.Config
	places *chainPlaces
	report *report
	// splitLatencyOnly: the split-roles run measures only the latency.
	splitLatencyOnly bool
	// profile takes Go profiles of the throughput runs (-profile).
	profile *profiling
}

func benchMain(args []string) int {
	fs := flag.NewFlagSet("musubi-bench", flag.ExitOnError)
	quick := fs.Bool("quick", false, "the fast check: fewer events, one rule-set size, short latency run, one count of the micro-benchmarks")
	out := fs.String("out", "", "write the Markdown report here (default BENCHMARKS.md, or .local/bench/BENCHMARKS-quick.md with -quick)")
	events := fs.Int("events", 0, "records preloaded for the throughput runs (default 300000, quick 100000)")
	sizes := fs.String("rules", "", "rule-set sizes, comma-separated (default 10,100,300,1000; quick 300)")
	latencyFor := fs.Duration("latency", 0, "length of the detection latency run (default 40s, quick 15s)")
	runFor := fs.Duration("max-run", 0, "longest measured window of one throughput run (default 60s, quick 30s)")
	count := fs.Int("count", 0, "go test -count of the micro-benchmarks (default 5, quick 1)")
	skipMicro := fs.Bool("skip-micro", false, "skip the go test benchmarks")
	engine := fs.String("engine", "bin/musubi", "the musubi binary to benchmark")
	ch := fs.String("clickhouse", envOr("MUSUBI_CLICKHOUSE_ADDR", "127.0.0.1:19000"), "ClickHouse native address")
	compression := fs.String("compression", "", "clickhouse.compression of the engine and the ceiling (none, lz4, lz4hc, zstd; empty: the default, lz4)")
	seed := fs.Uint64("seed", 1, "load generator seed")
	entities := fs.Int("entities", 20000, "distinct background entities")
	replayN := fs.Int("replay", 0, "records of the generated export the offline replay runs on (default 1000000, quick 100000; negative skips it)")
	onlyReplay := fs.Bool("only-replay", false, "run only the offline replay benchmark")
	split := fs.String("split", "", "detect process counts of the split-roles runs, comma-separated (default 1,2; quick none; \"none\" skips them)")
	splitRepeat := fs.Int("split-repeat", 3, "runs of each split-roles configuration and of its latency run")
	latencyRate := fs.Float64("latency-rate", 0, "events/s of the detection latency run (default 70% of the 300-rule throughput); a fixed rate compares runs of different binaries")
	splitLatencyRate := fs.Float64("split-latency-rate", 0, "events/s of the split-roles latency runs (default 70% of the median one-detect throughput)")
	splitLatencyOnly := fs.Bool("split-latency-only", false, "with -only-split: only the latency runs (needs -split-latency-rate); their subsection is added to the existing \"Split roles\" section")
	onlySplit := fs.Bool("only-split", false, "run only the split-roles benchmarks and replace the \"Split roles\" section of -out")
	profileDir := fs.String("profile", "", "take Go profiles of the ceiling and engine throughput runs into this directory: CPU over the first -profile-seconds of the measured window, heap at its end (go tool pprof BINARY FILE)")
	profileSeconds := fs.Int("profile-seconds", 30, "length of the CPU profiles of -profile")
	_ = fs.Parse(args)

	def := func(v *int, full, q int) {
		if *v == 0 {
			*v = full
			if *quick {
				*v = q
			}
		}
	}
	def(events, 300_000, 100_000)
	def(count, 5, 1)
	def(replayN, 1_000_000, 100_000)
	if *latencyFor == 0 {
		*latencyFor = map[bool]time.Duration{false: 40 * time.Second, true: 15 * time.Second}[*quick]
	}
	if *runFor == 0 {
		*runFor = map[bool]time.Duration{false: 60 * time.Second, true: 30 * time.Second}[*quick]
	}
	if *sizes == "" {
		*sizes = map[bool]string{false: "10,100,300,1000", true: "300"}[*quick]
	}
	if *out == "" {
		*out = map[bool]string{false: "BENCHMARKS.md", true: ".local/bench/BENCHMARKS-quick.md"}[*quick]
	}
	if *split == "" {
		*split = map[bool]string{false: "1,2", true: "none"}[*quick]
	}
	var splitCounts []int
	if *split != "none" {
		for _, s := range strings.Split(*split, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "musubi-bench: bad -split %q\n", *split)
				return 2
			}
			splitCounts = append(splitCounts, n)
		}
	}
	if *splitLatencyOnly && (!*onlySplit || *splitLatencyRate <= 0) {
		fmt.Fprintln(os.Stderr, "musubi-bench: -split-latency-only needs -only-split and -split-latency-rate")
		return 2
	}
	if *onlySplit {
		*replayN = -1
		if len(splitCounts) == 0 {
			fmt.Fprintln(os.Stderr, "musubi-bench: -only-split with -split none")
			return 2
		}
	}
	var ruleSizes []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "musubi-bench: bad -rules %q\n", *sizes)
			return 2
		}
		ruleSizes = append(ruleSizes, n)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var idb [4]byte
	_, _ = rand.Read(idb[:])
	self, _ := os.Executable()
	h := &harness{
		id: hex.EncodeToString(idb[:]), seed: *seed, quick: *quick, clickhouse: *ch, compression: *compression, engine: *engine, self: self,
		entities: *entities, load: newTopicSet("bench.load"), live: newTopicSet("bench.live"),
	}
	h.work = filepath.Join(".local", "bench", "run-"+h.id)
	if err := os.MkdirAll(h.work, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "musubi-bench:", err)
		return 1
	}
	h.report = newReport(*quick, "musubi-bench "+strings.Join(args, " "))
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "musubi-bench:", err)
			return 1
		}
		h.profile = &profiling{dir: *profileDir, seconds: *profileSeconds, addrs: map[string]string{}}
	}
	h.report.latencyRate = *latencyRate
	h.report.splitLatencyRate = *splitLatencyRate
	h.splitLatencyOnly = *splitLatencyOnly
	var err error
	if !*onlyReplay {
		err = h.run(ctx, ruleSizes, *events, *count, *skipMicro, *latencyFor, *runFor, splitCounts, *splitRepeat, *onlySplit)
	}
	if err == nil && *replayN > 0 {
		if err = h.exportPack(); err == nil {
			x := h.runReplay(ctx, *replayN)
			h.report.replay = &x
			if x.Err != "" {
				h.report.errors = append(h.report.errors, "replay: "+x.Err)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "musubi-bench:", err)
		h.report.errors = append(h.report.errors, err.Error())
	}
	h.report.finish()
	md := h.report.markdown()
	if *onlySplit {
		// Only the split section is new: the rest of the file stays.
		old, _ := os.ReadFile(*out)
		md = spliceSplit(string(old), h.report.splitMarkdown())
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
		err = os.WriteFile(*out, []byte(md), 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "musubi-bench:", err)
		}
	}
	fmt.Print(h.report.summary())
	fmt.Printf("\nreport written to %s (work files in %s)\n", *out, h.work)
	if len(h.report.errors) > 0 {
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (h *harness) dbName(run string) string {
	return "musubi_bench_" + h.id + "_" + strings.ReplaceAll(run, "-", "_")
}

func (h *harness) dropDB(db string) {
	conn, err := chConn(h.clickhouse)
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
}

// exportPack copies the committed detection pack (git archive HEAD), so a
// rule file someone is editing in the working tree cannot break or skew the
// run; without git it uses the working tree. Correlation rules come with
// the pack (detections/correlation), plus the scenario's folder when HEAD
// still has one.
func (h *harness) exportPack() error {
	dir := filepath.Join(h.work, "pack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := exec.Command("sh", "-c", "git archive HEAD detections | tar -x -C "+dir).Run(); err != nil {
		h.pack, h.corr = "detections", ""
		if _, err := os.Stat(filepath.Join("testdata", "scenarios", "correlation-rules")); err == nil {
			h.corr = filepath.Join("testdata", "scenarios", "correlation-rules")
		}
		h.report.packSource = "the working tree's detection pack"
		return nil
	}
	h.pack = filepath.Join(dir, "detections")
	if exec.Command("sh", "-c", "git archive HEAD testdata/scenarios/correlation-rules 2>/dev/null | tar -x -C "+dir).Run() == nil {
		if _, err := os.Stat(filepath.Join(dir, "testdata", "scenarios", "correlation-rules")); err == nil {
			h.corr = filepath.Join(dir, "testdata", "scenarios", "correlation-rules")
		}
	}
	h.report.packSource = "the detection pack committed at HEAD (`git archive`)"
	return nil
}

// pinHarness moves this process to every core but 0, which the measured
// process gets.
func pinHarness() string {
	n := runtime.NumCPU()
	if n < 2 {
		return "one core: the harness, the broker and the engine share it"
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return "taskset not found: nothing pinned"
	}
	cpus := "1"
	if n > 2 {
		cpus = fmt.Sprintf("1-%d", n-1)
	}
	if err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).Run(); err != nil {
		return "taskset failed: " + err.Error()
	}
	return fmt.Sprintf("engine on core 0 (`taskset -c 0`, GOMAXPROCS=1); harness and kfake on cores %s; ClickHouse unpinned", cpus)
}

func (h *harness) run(ctx context.Context, sizes []int, events, count int, skipMicro bool, latencyFor, runFor time.Duration, splitCounts []int, splitRepeat int, onlySplit bool) error {
	if _, err := os.Stat(h.engine); err != nil {
		return fmt.Errorf("engine binary %s: %w (run `make build`)", h.engine, err)
	}
	if err := h.exportPack(); err != nil {
		return err
	}
	if conn, err := chConn(h.clickhouse); err != nil {
		return err
	} else if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("ClickHouse at %s: %w (run `make clickhouse-start`)", h.clickhouse, err)
	} else {
		conn.Close()
	}

	if !skipMicro && !onlySplit {
		h.logf("micro-benchmarks (go test -bench, count %d)", count)
		if err := h.micro(ctx, count); err != nil {
			h.report.errors = append(h.report.errors, "micro-benchmarks: "+err.Error())
		}
	}
	h.report.pinning = pinHarness()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, append(h.load.names(), h.live.names()...)...))
	if err != nil {
		return err
	}
	defer cluster.Close()
	h.brokers = cluster.ListenAddrs()

	// Event time of the preloaded stream ends about now.
	nominal := 20_000.0
	startT := time.Now().Add(-time.Duration(float64(events) / nominal * float64(time.Second))).Truncate(time.Second)
	// A chain every 0.5 s of event time; the preload completes the last.
	gcfg := loadgen.Config{Seed: h.seed, Start: startT, Rate: nominal, Entities: h.entities, ChainEvery: 500 * time.Millisecond, ChainSpan: 2 * time.Second}
	h.logf("preloading %d records into kfake", events)
	t0 := time.Now()
	h.gen, h.places = gcfg, newChainPlaces()
	records, chains, err := preload(ctx, h.brokers, h.load, loadgen.New(gcfg), events, h.places)
	if err != nil {
		return err
	}
	h.report.stream = streamInfo{Records: records, Chains: chains, Entities: h.entities, Seed: h.seed, Nominal: nominal, Preload: time.Since(t0)}
	h.logf("preloaded in %s, %d chains", time.Since(t0).Round(time.Millisecond), chains)

	conn, err := chConn(h.clickhouse)
	if err != nil {
		return err
	}
	defer conn.Close()

	if onlySplit {
		return h.runSplitRoles(ctx, splitCounts, splitRepeat, latencyFor, runFor)
	}
	// The ceiling, before the engine runs and (not with -quick) again after
	// them; the better of the two is the ceiling, the other shows the drift.
	h.report.ceilings = append(h.report.ceilings, h.runCeiling(ctx, "first", runFor))

	var max300 float64
	for _, n := range sizes {
		dir := filepath.Join(h.work, fmt.Sprintf("rules-%d", n))
		if _, err := rulesets.Write(dir, h.pack, h.corr, n); err != nil {
			return err
		}
		name := fmt.Sprintf("engine-%d", n)
		db := h.dbName(name)
		group := "bench-" + name + "-" + h.id
		cfgPath, err := h.engineConfig(name, group, h.load, dir, db)
		if err != nil {
			return err
		}
		h.logf("engine with %d rules", n)
		p, err := start(pinned(h.engine, "serve", "-config", cfgPath), filepath.Join(h.work, name+".log"))
		if err != nil {
			return err
		}
		t, err := measure(ctx, h, p, group, name, runFor)
		p.stop()
		t.Name, t.Rules, t.Chains = fmt.Sprintf("engine, %d rules", n), n, chains
		if err != nil {
			t.Err = err.Error()
		} else {
			t.Tally = h.judgeChains(ctx, conn, db, group)
		}
		h.dropDB(db)
		h.report.engine = append(h.report.engine, t)
		h.logf("engine, %d rules: %.0f events/s (%.0f per CPU-second), %d high incidents: %s (complete %v)",
			n, t.PerSecond, t.PerCPUSecond, t.Tally.High, t.Tally.short(), t.Complete)
		for _, u := range t.Tally.Unrelated {
			h.logf("engine, %d rules: high incident on no chain: %s", n, u)
		}
		if t.Err == "" && !t.Tally.ok() {
			h.report.errors = append(h.report.errors, fmt.Sprintf("engine, %d rules: %s", n, t.Tally.short()))
		}
		if n == 300 || max300 == 0 {
			max300 = t.PerSecond
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	if !h.quick {
		h.report.ceilings = append(h.report.ceilings, h.runCeiling(ctx, "last", runFor))
	}
	for _, c := range h.report.ceilings {
		if c.Err == "" && c.PerSecond > h.report.ceiling.PerSecond {
			h.report.ceiling = c
		}
	}

	// Detection latency at 70% of the 300-rule maximum, or at -latency-rate.
	n := 300
	if !contains(sizes, 300) {
		n = sizes[len(sizes)-1]
	}
	if max300 > 0 || h.report.latencyRate > 0 {
		rate := 0.7 * max300
		if h.report.latencyRate > 0 {
			rate = h.report.latencyRate
		}
		h.logf("latency: %.0f events/s for %s with %d rules", rate, latencyFor, n)
		l, err := h.runLatency(ctx, filepath.Join(h.work, fmt.Sprintf("rules-%d", n)), n, rate, latencyFor)
		if err != nil {
			l.Err = err.Error()
		}
		h.report.latency = &l
		h.logf("latency: p50 %s p99 %s (%d of %d chains)", l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond), l.Detected, l.Chains)
	}
	if len(splitCounts) > 0 {
		return h.runSplitRoles(ctx, splitCounts, splitRepeat, latencyFor, runFor)
	}
	return nil
}

// runSplitRoles runs the split-roles benchmarks with 300 rules.
func (h *harness) runSplitRoles(ctx context.Context, counts []int, repeats int, latencyFor, runFor time.Duration) error {
	const n = 300
	dir := filepath.Join(h.work, fmt.Sprintf("rules-%d", n))
	if _, err := os.Stat(dir); err != nil {
		if _, err := rulesets.Write(dir, h.pack, h.corr, n); err != nil {
			return err
		}
	}
	h.splitAll(ctx, counts, repeats, dir, n, latencyFor, runFor, h.report.splitLatencyRate, h.splitLatencyOnly)
	return nil
}

// runCeiling measures the no-rules ceiling once; label tells the runs apart.
func (h *harness) runCeiling(ctx context.Context, label string, runFor time.Duration) throughput {
	db := h.dbName("ceiling_" + label)
	group := "bench-ceiling-" + label + "-" + h.id
	h.logf("ceiling (%s): consume → decode → write events → commit", label)
	t := throughput{Name: "ceiling (no rules, no correlation), " + label}
	name := "ceiling-" + label
	argv := pinned(h.self, "sink", "-brokers", strings.Join(h.brokers, ","), "-group", group, "-topics", "bench.load",
		"-clickhouse", h.clickhouse, "-database", db, "-compression", h.compression)
	if h.profile != nil {
		addr, err := h.profile.addr(name)
		if err != nil {
			t.Err = err.Error()
			return t
		}
		argv = append(argv, "-pprof", addr)
	}
	p, err := start(argv, filepath.Join(h.work, name+".log"))
	if err != nil {
		t.Err = err.Error()
		return t
	}
	m, err := measure(ctx, h, p, group, name, runFor)
	p.stop()
	h.dropDB(db)
	m.Name = t.Name
	if err != nil {
		m.Err = err.Error()
	}
	h.logf("ceiling (%s): %.0f events/s (%.0f per CPU-second)", label, m.PerSecond, m.PerCPUSecond)
	return m
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
