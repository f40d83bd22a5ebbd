//go:build unix

package rules

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used (user and system). The
// benchmarks report it per event next to wall time, because on a shared
// machine wall time also counts the time other processes held the CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
