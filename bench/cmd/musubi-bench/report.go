package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/pipeline"
)

// Targets of issue 9.
const (
	targetPerCore  = 20_000.0
	stretchPerCore = 40_000.0
	targetRatio    = 0.5
	targetP99      = 5 * time.Second
)

type streamInfo struct {
	Records, Chains, Entities int
	Seed                      uint64
	Nominal                   float64
	Preload                   time.Duration
}

type report struct {
	quick                    bool
	command                  string
	started, ended           time.Time
	loadStart, loadEnd       string
	commit, dirty            string
	nproc                    int
	cpu, mem, goVersion      string
	pinning, packSource      string
	stream                   streamInfo
	ceiling                  throughput
	ceilings                 []throughput
	engine                   []throughput
	latency                  *latencyResult
	split                    []splitRun
	splitLatency             []latencyResult
	fence                    []benchResult
	fenceStat, fenceCommand  string
	latencyRate              float64 // -latency-rate; 0: 70% of the 300-rule throughput
	splitLatencyRate         float64
	replay                   *replayResult
	micro                    []benchResult
	microCommands            []string
	benchstat                string
	profile, profileCommand  string
	profileCum, profileWrite string
	errors                   []string
}

func newReport(quick bool, command string) *report {
	r := &report{quick: quick, command: command, started: time.Now(), loadStart: loadavg(), nproc: runtime.NumCPU(), goVersion: runtime.Version()}
	r.commit = strings.TrimSpace(run("git", "rev-parse", "HEAD"))
	if d := strings.TrimSpace(run("git", "status", "--porcelain", "--untracked-files=no")); d != "" {
		r.dirty = fmt.Sprintf("%d files modified in the working tree (engine built from it)", len(strings.Split(d, "\n")))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				r.cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
				r.mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return r
}

func (r *report) finish() { r.ended, r.loadEnd = time.Now(), loadavg() }

func run(name string, args ...string) string {
	out, _ := exec.Command(name, args...).Output()
	return string(out)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (r *report) engineAt(n int) *throughput {
	for i := range r.engine {
		if r.engine[i].Rules == n {
			return &r.engine[i]
		}
	}
	return nil
}

func (r *report) micro1(pkg, name, unit string) (float64, bool) {
	for _, b := range r.micro {
		if b.Pkg == pkg && b.Name == name {
			v, ok := b.Metrics[unit]
			return v, ok
		}
	}
	return 0, false
}

// verdict judges a per-core rate against the target and the stretch goal.
func verdict(rate float64) string {
	switch {
	case rate >= stretchPerCore:
		return "**met, stretch too**"
	case rate >= targetPerCore:
		return "**met**"
	}
	return "**missed**"
}

func met(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func num(v float64) string {
	switch {
	case v >= 100:
		return commas(int64(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// targets is the verdict on each target of the issue.
func (r *report) targets() []string {
	var out []string
	if t := r.engineAt(300); t != nil && t.Err == "" {
		out = append(out, fmt.Sprintf("| ≥ 20,000 events/s per engine core, 300 rules, correlation on (stretch 40,000) | %s events/s wall-clock; %s per engine CPU-second | %s (wall-clock); %s per CPU-second |",
			num(t.PerSecond), num(t.PerCPUSecond), verdict(t.PerSecond), verdict(t.PerCPUSecond)))
		if r.ceiling.Err == "" && r.ceiling.PerSecond > 0 {
			ratio := t.PerSecond / r.ceiling.PerSecond
			out = append(out, fmt.Sprintf("| ≥ 0.5 of the no-rules ceiling | %.2f (%s of %s events/s) | %s |", ratio, num(t.PerSecond), num(r.ceiling.PerSecond), met(ratio >= targetRatio)))
		}
	}
	if l := r.latency; l != nil && l.Err == "" && l.Detected > 0 {
		ok := l.P99 <= targetP99 && l.Detected == l.Chains
		at := "70% of max load"
		if r.latencyRate > 0 {
			at = num(l.Rate) + " events/s, -latency-rate"
		}
		out = append(out, fmt.Sprintf("| detection latency p99 ≤ 5 s (at %s) | p99 %s, %d of %d chains detected | %s |", at, l.P99.Round(time.Millisecond), l.Detected, l.Chains, met(ok)))
	}
	return out
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	title := "Musubi benchmarks"
	if r.quick {
		title += " (quick check — not the reference numbers)"
	}
	p("# %s\n\n", title)
	if !r.quick {
		p("Written by `make bench` (`bench/cmd/musubi-bench`); regenerate, don't edit. How it works and how to read it: [Method](#method).\n\n")
	}
	p("| | |\n|---|---|\n")
	p("| commit | `%s`%s |\n", r.commit, map[bool]string{true: " (" + r.dirty + ")", false: ""}[r.dirty != ""])
	p("| date | %s → %s (%s) |\n", r.started.UTC().Format("2006-01-02 15:04 UTC"), r.ended.UTC().Format("15:04 UTC"), r.ended.Sub(r.started).Round(time.Second))
	p("| machine | %d CPUs (nproc), %s, %s memory |\n", r.nproc, r.cpu, r.mem)
	p("| load average (1/5/15 min) | %s at start, %s at end |\n", r.loadStart, r.loadEnd)
	p("| Go | %s |\n", r.goVersion)
	p("| command | `%s` |\n", strings.TrimSpace(r.command))
	p("| pinning | %s |\n", r.pinning)
	p("| rules | %s, grown to each size by `bench/rulesets` |\n", r.packSource)
	s := r.stream
	p("| stream | %s records from `bench/loadgen` (seed %d, %s distinct background entities, a PRODUCT.md chain every 0.5 s of event time: %d chains); preloaded into kfake (%d partitions per source topic) in %s |\n\n",
		commas(int64(s.Records)), s.Seed, commas(int64(s.Entities)), s.Chains, partitions, s.Preload.Round(100*time.Millisecond))

	if len(r.errors) > 0 {
		p("## Errors\n\n")
		for _, e := range r.errors {
			p("```\n%s\n```\n\n", strings.TrimSpace(e))
		}
	}
	if ts := r.targets(); len(ts) > 0 {
		p("## Targets\n\n| target | measured | verdict |\n|---|---|---|\n%s\n\n%s", strings.Join(ts, "\n"), r.stamp())
	}

	p("## End-to-end throughput, one engine core\n\n")
	p("`musubi serve` as its own process, `GOMAXPROCS=1`, pinned to core 0, consuming the preloaded topics from kfake and writing to ClickHouse; events/s from the consumer group's committed offsets, from the first commit (start-up excluded) to the end of the topics. ")
	p("\"Per engine CPU-second\" divides by the engine process's own user+system time, which the other processes on the machine disturb less than wall-clock time.\n\n")
	p("| run | events/s | per engine CPU-second | vs ceiling | peak RSS | chains → one high incident each | measured |\n|---|---:|---:|---:|---:|---|---|\n")
	row := func(t throughput, chains bool) {
		if t.Err != "" {
			p("| %s | error | | | | | %s |\n", t.Name, strings.ReplaceAll(firstLine(t.Err), "|", "/"))
			return
		}
		ratio := ""
		if r.ceiling.PerSecond > 0 && r.ceiling.Err == "" {
			ratio = fmt.Sprintf("%.2f", t.PerSecond/r.ceiling.PerSecond)
		}
		inc := ""
		if chains {
			inc = t.Tally.cell()
		}
		window := fmt.Sprintf("%s events in %.1f s", commas(t.Events), t.Seconds)
		if !t.Complete {
			window += " (time limit; not to the end)"
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", t.Name, num(t.PerSecond), num(t.PerCPUSecond), ratio, mib(t.PeakRSS), inc, window)
	}
	for _, c := range r.ceilings {
		row(c, false)
	}
	for _, t := range r.engine {
		row(t, true)
	}
	p("\n%s", r.stamp())
	r.chainNotes(p)
	p("The ceiling is measured before and (except in the quick check) after the engine runs; the better of the two is the ceiling the ratios use. It is the same stream through `musubi-bench sink` under the same constraints: the pipeline's reader settings and default batching (%d records / 1 s), `ingest` decode, `storage.Write` of the events (raw bytes kept, as `serve` does), commit — no rules, no correlation, no alerts or incidents to write. ", pipeline.DefaultBatch().BatchSize)
	p("Chains are judged in ClickHouse after the run, on the latest version of each incident of at least high severity that was not merged: a chain is judged only when the run committed every one of its records (a run the time limit stops holds chains still arriving, whose pieces are separate incidents until their links arrive), and should then be held by exactly one high incident — one holding its identifiers (its own account, instances, hosts, addresses, key, bucket, deployment) and no other chain's. A high incident holding no chain's identifier is a finding on the generated background and is listed with its rules.\n\n")

	if l := r.latency; l != nil {
		p("## Detection latency\n\n")
		if l.Err != "" {
			p("Error: `%s`\n\n", firstLine(l.Err))
		}
		why := fmt.Sprintf("70%% of the %d-rule throughput above", l.Rules)
		if r.latencyRate > 0 {
			why = "the rate -latency-rate set"
		}
		p("The engine (%d rules) consumes fresh topics while the harness produces the stream in real time (event time = wall-clock time) at %s events/s — %s — for %.0f s, with a chain every second after a %.0f s warm-up. ",
			l.Rules, num(l.Rate), why, l.Seconds, l.WarmupSecs)
		p("Latency is from the broker's acknowledgement of a chain's last record (the ransom note on its second target) to the first poll (every %s) that finds an incident of at least high severity holding that record's alert in ClickHouse.\n\n", l.Poll)
		p("| chains | detected | p50 | p99 | max | engine CPU (cores) | lag at end | peak RSS |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		p("| %d | %d | %s | %s | %s | %.2f | %s records | %s |\n\n%s", l.Chains, l.Detected, l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond), l.Max.Round(time.Millisecond), l.CPUPerSec, commas(l.LagAtEnd), mib(l.PeakRSS), r.stamp())
		if l.Detected > 0 && l.Detected < 100 {
			p("With %d samples the p99 is the second-largest to largest sample.\n\n", l.Detected)
		}
	}

	p("%s", r.splitMarkdown())
	p("%s", r.replayMarkdown())
	if len(r.micro) > 0 {
		p("## Cost per event of each stage\n\n")
		p("`go test -bench` with `-cpu 1`, median of %d runs; bench/stage runs each stage on the same mixed stream as above (100,000 records, one op = one record or event). ", r.micro[0].Runs)
		p("Commands under [Method](#method); benchstat's tables with confidence intervals under [benchstat](#benchstat).\n\n")
		p("| stage | benchmark | ns/event | B/event | allocs/event |\n|---|---|---:|---:|---:|\n")
		stage := func(label, pkg, name string) {
			ns, ok := r.micro1(pkg, name, "ns/op")
			if !ok {
				return
			}
			bb, _ := r.micro1(pkg, name, "B/op")
			al, _ := r.micro1(pkg, name, "allocs/op")
			p("| %s | `%s` %s | %s | %s | %s |\n", label, pkg, name, num(ns), num(bb), num(al))
		}
		stage("decode + normalize (mixed sources)", "bench/stage", "Decode")
		for _, n := range []int{10, 100, 300, 1000} {
			stage(fmt.Sprintf("rules, %d", n), "bench/stage", fmt.Sprintf("Rules/rules=%d", n))
		}
		stage("correlate (300-rule alerts)", "bench/stage", "Correlate")
		// One op of CorrelateLong is its whole stream: per event from its
		// own metrics.
		if ns, ok := r.micro1("bench/stage", "CorrelateLong", "ns/event"); ok {
			n, _ := r.micro1("bench/stage", "CorrelateLong", "events/op")
			bb, _ := r.micro1("bench/stage", "CorrelateLong", "B/op")
			al, _ := r.micro1("bench/stage", "CorrelateLong", "allocs/op")
			if n > 0 {
				p("| correlate, over a stream as long as the throughput runs' (%s events; state grown as at their end) | `bench/stage` CorrelateLong | %s | %s | %s |\n", num(n), num(ns), num(bb/n), num(al/n))
			}
		}
		stage("event JSON (the document the write stores)", "bench/stage", "EventJSON")
		stage("write (ClickHouse, events with raw)", "bench/stage", "Write")
		for _, n := range []int{10, 100, 300, 1000} {
			stage(fmt.Sprintf("Processor: decode → rules (%d) → correlate", n), "bench/stage", fmt.Sprintf("Processor/rules=%d", n))
		}
		p("\n%s", r.stamp())
		p("The packages' own benchmarks (one sample record or synthetic events each):\n\n")
		p("| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---:|---:|---:|---|\n")
		for _, b := range r.micro {
			if b.Pkg == "bench/stage" {
				continue
			}
			var other []string
			for _, u := range b.Units {
				if u != "ns/op" && u != "B/op" && u != "allocs/op" {
					other = append(other, num(b.Metrics[u])+" "+u)
				}
			}
			p("| `%s` | %s | %s | %s | %s | %s |\n", b.Pkg, b.Name, num(b.Metrics["ns/op"]), num(b.Metrics["B/op"]), num(b.Metrics["allocs/op"]), strings.Join(other, ", "))
		}
		p("\n%s", r.stamp())
		p("\n## Memory and ClickHouse\n\n| measure | value | source |\n|---|---:|---|\n")
		if v, ok := r.micro1("correlate", "TrackedEntityMemory", "bytes/entity"); ok {
			n, _ := r.micro1("correlate", "TrackedEntityMemory", "entities")
			p("| memory per tracked entity | %s B | `correlate` BenchmarkTrackedEntityMemory (%s entities, heap after GC) |\n", num(v), commas(int64(n)))
		}
		if t := r.engineAt(300); t != nil && t.Err == "" {
			p("| engine peak RSS, 300 rules | %s | `/proc/<pid>/status` VmHWM after %s events (%s background entities) |\n", mib(t.PeakRSS), commas(t.Events), commas(int64(r.stream.Entities)))
		}
		for _, raw := range []string{"false", "true"} {
			if v, ok := r.micro1("storage", "WriteEvents/raw="+raw, "rows/s"); ok {
				p("| ClickHouse insert, event rows (raw=%s) | %s rows/s | `storage` BenchmarkWriteEvents (20,000-row batches) |\n", raw, num(v))
			}
		}
		if v, ok := r.micro1("bench/stage", "Write", "rows/s"); ok {
			p("| ClickHouse insert, mixed-stream events with raw | %s rows/s | bench/stage BenchmarkWrite (5,000-row batches) |\n", num(v))
		}
		if r.ceiling.Err == "" && r.ceiling.PerSecond > 0 {
			p("| ClickHouse insert through the ceiling pipeline | %s rows/s | the ceiling run above (one event row per record) |\n", num(r.ceiling.PerSecond))
		}
		p("\n%s", r.stamp())
	}

	if b := r.budget(); b != "" {
		p("## CPU budget per event\n\n%s\n%s", b, r.stamp())
	}
	if r.profile != "" {
		p("## Where the engine core goes\n\n")
		p("CPU profile of `pipeline.Processor.Process` (decode → 300 rules → correlate, batches of 5000) on the mixed stream, only samples under `Process`; the write to ClickHouse is not in it (see the ceiling and Write rows). Top 30 by cumulative time, then by flat time:\n\n")
		p("```\n%s```\n\n", trimProfile(r.profileCum))
		p("```\n%s```\n\n", trimProfile(r.profile))
		if r.profileWrite != "" {
			p("And the write path: CPU profile of `storage.Store.Write` of the mixed stream's events (batches of 5000, raw bytes kept), only samples under `Write`, top 25 by cumulative time — the client side of what the ceiling and the engine spend after the Processor:\n\n")
			p("```\n%s```\n\n", trimProfile(r.profileWrite))
		}
	}

	if !r.quick {
		p("## Method\n\n")
		p("- `make bench` builds `bin/musubi` and `bin/musubi-bench` and runs `bin/musubi-bench` against the local ClickHouse (`make clickhouse-start`); `make bench-quick` runs `-quick` (100,000 records, 300 rules only, 15 s latency run, one count of the stage benchmarks) and writes `.local/bench/BENCHMARKS-quick.md`.\n")
		p("- Load: `bench/loadgen`, deterministic by seed. CloudTrail records of 1–2 KB (S3 data events, KMS, DynamoDB, SSM, CloudWatch, STS, EC2, IAM from instance roles and people), VPC flow v2 lines, GuardDuty findings in EventBridge envelopes, agent OCSF events and Falco alerts, in a 40/30/28/0.5/1.5 mix over skewed entity popularity. Each injected chain (about 40 records, PRODUCT.md stages 1–9) gets its own account, instances, addresses, role, key, bucket and deployment; its test (`go test ./bench/loadgen`) replays a stream through the Processor with the shipped pack and requires exactly one high or critical incident per chain.\n")
		p("- Rule sets: `bench/rulesets` takes the shipped pack (chain rules first) and adds per-account variants of shipped rules: same sources, full original condition, then an account clause that never matches — each variant costs a full evaluation on its candidate events and adds no alerts. The pack's correlation (sequence) rules are loaded in every run.\n")
		p("- Each run uses a fresh consumer group and a fresh ClickHouse database (dropped afterwards). Events/s counts records (one record = one event in this stream).\n")
		p("- The machine is shared: ClickHouse, kfake and the harness run on the other core(s) and other work may run too; compare the per-CPU-second column across runs rather than wall-clock rates across machines.\n")
		for _, c := range r.microCommands {
			p("- `%s`\n", c)
		}
		if r.profileCommand != "" {
			p("- `%s`\n", r.profileCommand)
		}
		p("\n")
	}
	if r.benchstat != "" {
		p("## benchstat\n\n<details><summary>benchstat over the raw `go test -bench` output</summary>\n\n```\n%s```\n\n</details>\n", r.benchstat)
	}
	return b.String()
}

// budget splits the engine's CPU time per event (300 rules) into the
// Processor's stages and the rest, against the target's 50 µs.
func (r *report) budget() string {
	t := r.engineAt(300)
	proc, ok := r.micro1("bench/stage", "Processor/rules=300", "ns/op")
	if t == nil || t.Err != "" || t.PerCPUSecond == 0 || !ok {
		return ""
	}
	us := func(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1000) }
	engine := 1e9 / t.PerCPUSecond
	var b strings.Builder
	fmt.Fprintf(&b, "| | CPU per event | source |\n|---|---:|---|\n")
	fmt.Fprintf(&b, "| target: 20,000 events/s on one core | %s | |\n", us(1e9/targetPerCore))
	fmt.Fprintf(&b, "| engine, 300 rules, end to end | %s | engine process CPU time ÷ events, run above |\n", us(engine))
	fmt.Fprintf(&b, "| Processor: decode → rules → correlate | %s | bench/stage Processor/rules=300 |\n", us(proc))
	for _, s := range []struct{ label, name string }{{"  decode + normalize", "Decode"}, {"  rules (300)", "Rules/rules=300"}, {"  correlate", "Correlate"}} {
		if v, ok := r.micro1("bench/stage", s.name, "ns/op"); ok {
			fmt.Fprintf(&b, "| %s | %s | bench/stage %s |\n", s.label, us(v), s.name)
		}
	}
	fmt.Fprintf(&b, "| the rest: Kafka fetch, ClickHouse encoding and insert of events, alerts and incidents, their GC | %s | difference |\n", us(engine-proc))
	ceiling := 0.0
	if r.ceiling.Err == "" && r.ceiling.PerCPUSecond > 0 {
		ceiling = 1e9 / r.ceiling.PerCPUSecond
		fmt.Fprintf(&b, "| ceiling: fetch + decode + write events, no rules | %s | sink process CPU time ÷ events |\n", us(ceiling))
	}
	target := 1e9 / targetPerCore
	if engine > target {
		rules, _ := r.micro1("bench/stage", "Rules/rules=300", "ns/op")
		fmt.Fprintf(&b, "\nReading it: the engine spends %.1f× the target's budget per event. ", engine/target)
		fmt.Fprintf(&b, "Rule evaluation at 300 rules is %s of it (%.0f%%), the path outside the Processor (fetch, write, GC) %s (%.0f%%). ",
			us(rules), 100*rules/engine, us(engine-proc), 100*(engine-proc)/engine)
		if ceiling > target {
			fmt.Fprintf(&b, "Even the ceiling, with no rules and no correlation, costs %s per event (mostly encoding and inserting the event rows with their raw bytes), so one core cannot reach 20,000 events/s until the write path gets cheaper, whatever the rules cost. ", us(ceiling))
		}
		fmt.Fprintf(&b, "The profile below shows the Processor's share.\n")
	}
	return b.String()
}

// stamp is the line under every table: commit, machine, command.
func (r *report) stamp() string {
	return fmt.Sprintf("<sub>commit `%.12s` · %d CPUs, %s, %s · load %s → %s · `%s`</sub>\n\n",
		r.commit, r.nproc, r.cpu, r.mem, r.loadStart, r.loadEnd, strings.TrimSpace(r.command))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func trimProfile(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// summary is the short text printed at the end.
func (r *report) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nMusubi benchmark — commit %.12s, %d CPUs (%s), load %s → %s\n", r.commit, r.nproc, r.cpu, r.loadStart, r.loadEnd)
	for _, c := range r.ceilings {
		fmt.Fprintf(&b, "  %-22s %9.0f events/s  %9.0f per CPU-s\n", strings.TrimPrefix(c.Name, "ceiling (no rules, no correlation), ")+" ceiling", c.PerSecond, c.PerCPUSecond)
	}
	for _, t := range r.engine {
		if t.Err != "" {
			fmt.Fprintf(&b, "  %-22s error: %s\n", t.Name, firstLine(t.Err))
			continue
		}
		fmt.Fprintf(&b, "  %-22s %9.0f events/s  %9.0f per CPU-s  %s\n", t.Name, t.PerSecond, t.PerCPUSecond, t.Tally.short())
	}
	if l := r.latency; l != nil {
		fmt.Fprintf(&b, "  latency at %.0f ev/s     p50 %s  p99 %s  (%d/%d chains)\n", l.Rate, l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond), l.Detected, l.Chains)
	}
	if x := r.replay; x != nil && x.Err == "" {
		fmt.Fprintf(&b, "  replay of %d records    %9.0f records/s  %9.0f per CPU-s  peak RSS %s  %d incidents (%d high) for %d chains\n",
			x.Records, float64(x.Records)/x.Wall.Seconds(), float64(x.Records)/x.CPU.Seconds(), mib(x.PeakRSS), x.Incidents, x.High, x.Chains)
	}
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "  %s\n", t)
	}
	for _, e := range r.errors {
		fmt.Fprintf(&b, "  ERROR %s\n", firstLine(e))
	}
	return b.String()
}

// chainNotes lists, under the throughput table, the chains that were not
// one high incident and the high incidents on no chain, per run.
func (r *report) chainNotes(p func(string, ...any)) {
	for _, t := range r.engine {
		x := t.Tally
		if t.Err != "" || (x.ok() && x.Partial == 0) {
			continue
		}
		p("%s:\n\n", t.Name)
		if x.Err != "" {
			p("- chains not judged: %s\n", x.Err)
		}
		if len(x.Split) > 0 {
			p("- chains split over several high incidents: %v\n", x.Split)
		}
		if len(x.Missed) > 0 {
			p("- chains in no high incident: %v\n", x.Missed)
		}
		if x.Glued > 0 {
			p("- %d high incidents hold two chains or more\n", x.Glued)
		}
		if x.Partial > 0 {
			p("- %d high incidents hold pieces of chains the run did not consume whole (not judged)\n", x.Partial)
		}
		for _, u := range x.Unrelated {
			p("- high incident on no chain: %s\n", strings.ReplaceAll(u, "|", "/"))
		}
		p("\n")
	}
}
