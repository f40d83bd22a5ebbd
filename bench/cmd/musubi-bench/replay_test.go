package main

import "testing"

// TestPeakFromSummary reads the replay's peak RSS from the line
// `musubi replay` writes at the end of its summary.
func TestPeakFromSummary(t *testing.T) {
	for _, c := range []struct {
		summary string
		want    int64
	}{
		{"replayed 3 files (1.0 MiB), 10 records in 1s (10 records/s)\nalerts: 0; incidents: 0\npeak memory: 243.5 MiB", 243<<20 + 1<<19},
		{"alerts: 0; incidents: 0\npeak memory: 1.5 GiB\n", 3 << 29},
		{"alerts: 0; incidents: 0\n", 0},
	} {
		if got := peakFromSummary(c.summary); got != c.want {
			t.Errorf("peakFromSummary(%q) = %d, want %d", c.summary, got, c.want)
		}
	}
}
