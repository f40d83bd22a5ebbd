package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// benchstat is pinned; golang.org/x/perf has no tagged releases.
const benchstat = "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

// goTest is one `go test -bench` invocation.
type goTest struct {
	bench, benchtime string
	count            int
	pkgs             []string
}

// micro runs the per-package and per-stage benchmarks, summarizes them with
// benchstat and profiles the Processor.
func (h *harness) micro(ctx context.Context, count int) error {
	var runs []goTest
	if h.quick {
		runs = []goTest{{bench: "Decode|Rules/rules=300$|Correlate$|Processor/rules=300$|Write", benchtime: "100ms", count: count, pkgs: []string{"./bench/stage"}}}
	} else {
		runs = []goTest{
			{bench: ".", benchtime: "200ms", count: count, pkgs: []string{"./ingest/cloudtrail", "./ingest/vpcflow", "./ingest/guardduty", "./ingest/agent", "./rules", "./bench/stage"}},
			{bench: "ProcessEvents|AlertJoinLatency", benchtime: "200ms", count: count, pkgs: []string{"./correlate"}},
			{bench: "WriteEvents/|EncodeEvents", benchtime: "200ms", count: count, pkgs: []string{"./storage"}},
			{bench: "TrackedEntityMemory", benchtime: "1x", count: 1, pkgs: []string{"./correlate"}},
		}
	}
	raw := filepath.Join(h.work, "micro.txt")
	var all bytes.Buffer
	for _, r := range runs {
		args := append([]string{"test", "-run", "^$", "-bench", r.bench, "-benchmem", "-cpu", "1", "-count", strconv.Itoa(r.count),
			"-benchtime", r.benchtime, "-timeout", "20m"}, r.pkgs...)
		h.report.microCommands = append(h.report.microCommands, "go "+strings.Join(args, " "))
		out, err := h.goCmd(ctx, args...)
		all.Write(out)
		if err != nil {
			_ = os.WriteFile(raw, all.Bytes(), 0o644)
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, tailOf(out))
		}
	}
	if err := os.WriteFile(raw, all.Bytes(), 0o644); err != nil {
		return err
	}
	h.report.micro = parseBench(all.Bytes())
	if out, err := h.goCmd(ctx, "run", benchstat, raw); err == nil {
		h.report.benchstat = string(out)
	} else {
		h.report.benchstat = "benchstat failed: " + err.Error() + "\n" + string(out)
	}

	// The CPU profile of the Processor with 300 rules on the mixed stream.
	prof, bin := filepath.Join(h.work, "cpu.out"), filepath.Join(h.work, "stage.test")
	n := map[bool]string{false: "200000x", true: "50000x"}[h.quick]
	args := []string{"test", "-run", "^$", "-bench", "Processor/rules=300$", "-cpu", "1", "-count", "1", "-benchtime", n,
		"-cpuprofile", prof, "-o", bin, "./bench/stage"}
	// Only samples under Process: stream generation and rule compilation
	// in the benchmark's set-up are left out.
	const focus = `pipeline\.\(\*Processor\)\.Process`
	h.report.profileCommand = "go " + strings.Join(args, " ") + " && go tool pprof -top [-cum] -nodecount 30 -focus '" + focus + "' " + bin + " " + prof
	if out, err := h.goCmd(ctx, args...); err != nil {
		return fmt.Errorf("profile: %v\n%s", err, tailOf(out))
	}
	flat, err := h.goCmd(ctx, "tool", "pprof", "-top", "-nodecount", "30", "-focus", focus, bin, prof)
	if err != nil {
		return fmt.Errorf("pprof: %v\n%s", err, tailOf(flat))
	}
	cum, err := h.goCmd(ctx, "tool", "pprof", "-top", "-cum", "-nodecount", "30", "-focus", focus, bin, prof)
	if err != nil {
		return fmt.Errorf("pprof: %v\n%s", err, tailOf(cum))
	}
	h.report.profile, h.report.profileCum = string(flat), string(cum)

	// The write path: storage.Store.Write of the mixed stream's events.
	wprof := filepath.Join(h.work, "cpu-write.out")
	n = map[bool]string{false: "100000x", true: "20000x"}[h.quick]
	args = []string{"test", "-run", "^$", "-bench", "^BenchmarkWrite$", "-cpu", "1", "-count", "1", "-benchtime", n,
		"-cpuprofile", wprof, "-o", bin, "./bench/stage"}
	const wfocus = `storage\.\(\*Store\)\.Write`
	h.report.profileCommand += "; go " + strings.Join(args, " ") + " && go tool pprof -top -cum -nodecount 25 -focus '" + wfocus + "' " + bin + " " + wprof
	if out, err := h.goCmd(ctx, args...); err != nil {
		return fmt.Errorf("write profile: %v\n%s", err, tailOf(out))
	}
	wcum, err := h.goCmd(ctx, "tool", "pprof", "-top", "-cum", "-nodecount", "25", "-focus", wfocus, bin, wprof)
	if err != nil {
		return fmt.Errorf("pprof: %v\n%s", err, tailOf(wcum))
	}
	h.report.profileWrite = string(wcum)
	return nil
}

func (h *harness) goCmd(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "MUSUBI_BENCH_PACK="+abs(h.pack), "MUSUBI_REQUIRE_CLICKHOUSE=1", "MUSUBI_CLICKHOUSE_ADDR="+h.clickhouse)
	if h.corr != "" {
		cmd.Env = append(cmd.Env, "MUSUBI_BENCH_CORRELATION="+abs(h.corr))
	}
	return cmd.CombinedOutput()
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func tailOf(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// benchResult is the median of every metric of one benchmark over its
// counts.
type benchResult struct {
	Pkg, Name string
	Runs      int
	Metrics   map[string]float64 // unit → median
	Units     []string           // in first-seen order
}

func parseBench(out []byte) []benchResult {
	type key struct{ pkg, name string }
	vals := map[key]map[string][]float64{}
	units := map[key][]string{}
	var order []key
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/musubi-xdr/musubi/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		k := key{pkg, strings.TrimPrefix(f[0], "Benchmark")}
		if vals[k] == nil {
			vals[k] = map[string][]float64{}
			order = append(order, k)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			u := f[i+1]
			if vals[k][u] == nil {
				units[k] = append(units[k], u)
			}
			vals[k][u] = append(vals[k][u], v)
		}
	}
	var res []benchResult
	for _, k := range order {
		r := benchResult{Pkg: k.pkg, Name: k.name, Metrics: map[string]float64{}, Units: units[k]}
		for u, vs := range vals[k] {
			sort.Float64s(vs)
			r.Metrics[u] = vs[len(vs)/2]
			r.Runs = max(r.Runs, len(vs))
		}
		res = append(res, r)
	}
	return res
}
