// Package peakrss reads a process's peak resident set size from Linux's
// /proc (VmHWM), which the replay reports and musubi-bench measures.
//
// A parent cannot take it from its child's rusage: Go starts children with
// vfork, which runs the child in the parent's memory until exec, and the
// kernel counts that memory's high-water mark as the child's ru_maxrss.
package peakrss

import (
	"os"
	"strconv"
	"strings"
)

// Of returns the peak resident set size of process pid in bytes, or 0
// where /proc does not say (another system, an ended process).
func Of(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
