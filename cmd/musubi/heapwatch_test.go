package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The heap profile of replay -memprofile is the one taken at the largest
// live heap: rewritten when the heap grows past it, kept when the heap
// shrinks afterwards, so it shows what the replay held at its peak.
func TestHeapProfileIsTakenAtThePeak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.pprof")
	w := &heapWatch{path: path}
	read := func() []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Fatalf("%s is not a gzipped profile (%d bytes)", path, len(b))
		}
		return b
	}
	runtime.GC()
	w.check()
	first, small := read(), w.peak

	big := make([][]byte, 64)
	for i := range big {
		big[i] = bytes.Repeat([]byte{byte(i)}, 1<<20)
	}
	runtime.GC()
	w.check()
	peak := read()
	if w.peak < small+60<<20 || bytes.Equal(peak, first) {
		t.Fatalf("64 MiB more live: peak %d (was %d), profile rewritten %v; want a new profile at the larger heap", w.peak, small, !bytes.Equal(peak, first))
	}
	runtime.KeepAlive(big)

	big = nil
	runtime.GC()
	w.check()
	if got := read(); !bytes.Equal(got, peak) {
		t.Error("the heap shrank and the profile was rewritten; want the one taken at the peak kept")
	}
	if w.err != nil {
		t.Fatal(w.err)
	}
}
