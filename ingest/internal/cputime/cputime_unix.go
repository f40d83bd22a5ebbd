//go:build unix

package cputime

import "syscall"

// now returns the user and system CPU time of the process in nanoseconds.
func now() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
