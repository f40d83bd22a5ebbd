// Package cputime reports the CPU time a benchmark used per operation, next
// to its wall time: on a shared machine wall time grows with the load of
// other processes, CPU time much less.
package cputime

import "testing"

// Report runs b.Loop with fn and reports cpu-ns/op.
func Report(b *testing.B, fn func()) {
	start := now()
	n := 0
	for b.Loop() {
		fn()
		n++
	}
	if n > 0 && start >= 0 {
		b.ReportMetric(float64(now()-start)/float64(n), "cpu-ns/op")
	}
}
