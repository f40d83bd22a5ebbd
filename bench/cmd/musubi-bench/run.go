package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/musubi-xdr/musubi/internal/peakrss"
)

// proc is a process the harness started, pinned to one core.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

// engineProcs is what a measurement watches: one engine process, or the
// processes of the split roles together.
type engineProcs interface {
	exited() (error, bool)
	cpuTime() time.Duration
	peakRSS() int64
	tail() string
	stop()
}

// procs are several processes measured as one engine: CPU time summed,
// peak RSS summed (each process's own peak), exited when any has.
type procs []*proc

func (ps procs) exited() (error, bool) {
	for _, p := range ps {
		if err, ok := p.exited(); ok {
			return fmt.Errorf("%s: %v", p.log, err), true
		}
	}
	return nil, false
}

func (ps procs) cpuTime() time.Duration {
	var d time.Duration
	for _, p := range ps {
		d += p.cpuTime()
	}
	return d
}

func (ps procs) peakRSS() int64 {
	var n int64
	for _, p := range ps {
		n += p.peakRSS()
	}
	return n
}

func (ps procs) tail() string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "== %s\n%s\n", p.log, p.tail())
	}
	return b.String()
}

func (ps procs) stop() {
	for _, p := range ps {
		p.stop()
	}
}

// pinned returns argv run on core 0 when taskset exists.
func pinned(argv ...string) []string {
	if _, err := exec.LookPath("taskset"); err == nil {
		return append([]string{"taskset", "-c", "0"}, argv...)
	}
	return argv
}

// start runs argv with GOMAXPROCS=1, its output in logPath.
func start(argv []string, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// stop sends SIGTERM and waits, killing after a grace period.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports the process's exit, if it has exited.
func (p *proc) exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// cpuTime is the user+system time of the process (the child of taskset
// included: taskset execs, so the pid is the engine's).
func (p *proc) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// peakRSS is VmHWM in bytes.
func (p *proc) peakRSS() int64 { return peakrss.Of(p.cmd.Process.Pid) }

// throughput is one measured run.
type throughput struct {
	Name         string
	Rules        int
	Events       int64 // records committed in the measured window
	Seconds      float64
	PerSecond    float64
	CPUSeconds   float64
	PerCPUSecond float64
	PeakRSS      int64
	Complete     bool
	// Tally maps the run's high incidents onto the chains.
	Tally  chainTally
	Chains int
	Err    string
}

// measure waits for group to commit the topics' end offsets (or for the
// deadline) while p runs. The window starts at the first commit, so
// start-up (migrations, rule compilation, the group join) is not counted.
//
// With -profile, run name's profiles are taken from the start of the window
// (profiling.start).
func measure(ctx context.Context, h *harness, p engineProcs, group, name string, deadline time.Duration) (throughput, error) {
	var t throughput
	var profiled func() (string, error)
	var t0 time.Time
	var c0 int64
	var cpu0 time.Duration
	limit := time.Now().Add(deadline)
	startupLimit := time.Now().Add(3 * time.Minute)
	for {
		if err, ok := p.exited(); ok {
			return t, fmt.Errorf("process exited (%v):\n%s", err, p.tail())
		}
		end, committed, err := offsets(ctx, h.brokers, h.load, group)
		now := time.Now()
		if err == nil && committed > 0 && t0.IsZero() {
			t0, c0, cpu0 = now, committed, p.cpuTime()
			limit = now.Add(deadline)
			if h.profile != nil {
				profiled = h.profile.start(ctx, name)
			}
		}
		if !t0.IsZero() && (committed >= end || now.After(limit)) {
			t.Events = committed - c0
			t.Seconds = now.Sub(t0).Seconds()
			t.CPUSeconds = (p.cpuTime() - cpu0).Seconds()
			t.Complete = committed >= end
			break
		}
		if t0.IsZero() && now.After(startupLimit) {
			return t, fmt.Errorf("no commit within 3 minutes:\n%s", p.tail())
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if t.Seconds > 0 {
		t.PerSecond = float64(t.Events) / t.Seconds
	}
	if t.CPUSeconds > 0 {
		t.PerCPUSecond = float64(t.Events) / t.CPUSeconds
	}
	t.PeakRSS = p.peakRSS()
	if profiled != nil {
		files, err := profiled()
		if err != nil {
			return t, err
		}
		h.logf("profiles: %s", files)
	}
	return t, nil
}

// engineConfig writes a serve configuration for one run; extra lines go
// below the top level (role: …) or the kafka section ("  signals_topic: …").
func (h *harness) engineConfig(name, group string, ts topicSet, rulesDir, db string, extra ...string) (string, error) {
	var b strings.Builder
	for _, l := range extra {
		if !strings.HasPrefix(l, " ") {
			fmt.Fprintf(&b, "%s\n", l)
		}
	}
	fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\n  group_id: %q\n", strings.Join(h.brokers, ","), group)
	for _, l := range extra {
		if strings.HasPrefix(l, " ") {
			fmt.Fprintf(&b, "%s\n", l)
		}
	}
	fmt.Fprintf(&b, "  topics:\n")
	for s, t := range ts {
		fmt.Fprintf(&b, "    %s: %q\n", s, t)
	}
	fmt.Fprintf(&b, "clickhouse:\n  addr: [%q]\n  database: %q\n  migrate_on_start: true\n", h.clickhouse, db)
	if h.compression != "" {
		fmt.Fprintf(&b, "  compression: %q\n", h.compression)
	}
	fmt.Fprintf(&b, "rules:\n  dir: %q\n", rulesDir)
	if h.profile != nil {
		addr, err := h.profile.addr(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "api:\n  listen: %q\n  pprof: true\n", addr)
	} else {
		fmt.Fprintf(&b, "api:\n  listen: 127.0.0.1:0\n")
	}
	fmt.Fprintf(&b, "log:\n  level: warn\n")
	path := filepath.Join(h.work, name+".yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// chConn opens the admin connection of the harness.
func chConn(addr string) (driver.Conn, error) {
	return clickhouse.Open(&clickhouse.Options{
		Addr: []string{addr}, Auth: clickhouse.Auth{Username: "default"}, DialTimeout: 5 * time.Second,
		Settings: clickhouse.Settings{"allow_experimental_low_cardinality_type": 1},
	})
}
