package main

import (
	"bytes"
	"regexp"
	"runtime"
	"strconv"
	"testing"

	"github.com/musubi-xdr/musubi/replay"
)

// TestReplaySummaryPeakMemory: on Linux the summary ends with the replay's own
// peak resident set, which musubi-bench reads (a parent's rusage would count
// the parent's memory too), and it is at least what this process holds live.
func TestReplaySummaryPeakMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is read from /proc")
	}
	hold := make([]byte, 64<<20)
	for i := range hold {
		hold[i] = 1
	}
	var b bytes.Buffer
	writeSummary(&b, replay.Stats{})
	runtime.KeepAlive(hold)
	m := regexp.MustCompile(`(?m)^peak memory: ([\d.]+) MiB$`).FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("no peak memory line in the summary:\n%s", b.String())
	}
	mib, _ := strconv.ParseFloat(m[1], 64)
	if mib < 64 {
		t.Errorf("peak memory %.1f MiB, want at least the 64 MiB this test holds", mib)
	}
}
