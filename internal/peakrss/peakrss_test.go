package peakrss

import (
	"os"
	"runtime"
	"testing"
)

// TestOfSelf: this process's peak is at least the 64 MiB it touches.
func TestOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is read from /proc")
	}
	hold := make([]byte, 64<<20)
	for i := range hold {
		hold[i] = 1
	}
	got := Of(os.Getpid())
	runtime.KeepAlive(hold)
	if got < 64<<20 {
		t.Errorf("Of(self) = %d, want at least %d", got, 64<<20)
	}
	if got := Of(-1); got != 0 {
		t.Errorf("Of(-1) = %d, want 0", got)
	}
}
