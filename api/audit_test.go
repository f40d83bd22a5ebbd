package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/musubi-xdr/musubi/casework"
)

// TestGroupCommit: entries that arrive while an audit write is in flight
// go out together in the next write, each caller learns the outcome of the
// write that held its entry, and every entry is written exactly once.
func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		errSecond := errors.New("database away")
		var mu sync.Mutex
		var writes [][]string
		g := &groupCommit{write: func(_ context.Context, es ...casework.AuditEntry) error {
			mu.Lock()
			var ids []string
			for _, e := range es {
				ids = append(ids, e.ID)
			}
			writes = append(writes, ids)
			n := len(writes)
			mu.Unlock()
			if n == 1 {
				<-release
				return nil
			}
			return errSecond
		}}
		const n = 50
		errs := make([]error, n)
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = g.append(t.Context(), casework.AuditEntry{ID: "0"}) })
		synctest.Wait() // the first write is in flight
		for i := 1; i < n; i++ {
			wg.Go(func() { errs[i] = g.append(t.Context(), casework.AuditEntry{ID: fmt.Sprint(i)}) })
		}
		synctest.Wait() // the others are queued behind it
		close(release)
		wg.Wait()
		if len(writes) != 2 || !slices.Equal(writes[0], []string{"0"}) || len(writes[1]) != n-1 {
			t.Fatalf("got writes %v, want [0] then the other %d together", writes, n-1)
		}
		seen := map[string]bool{}
		for _, id := range writes[1] {
			if seen[id] || id == "0" {
				t.Errorf("entry %s written twice", id)
			}
			seen[id] = true
		}
		if errs[0] != nil {
			t.Errorf("first caller: got %v, want nil", errs[0])
		}
		for i := 1; i < n; i++ {
			if !errors.Is(errs[i], errSecond) {
				t.Errorf("caller %d: got %v, want the error of the write that held its entry", i, errs[i])
			}
		}
		// Idle again: the next entry is written at once, alone.
		mu.Lock()
		writes = nil
		mu.Unlock()
		_ = g.append(t.Context(), casework.AuditEntry{ID: "late"})
		if len(writes) != 1 || !slices.Equal(writes[0], []string{"late"}) {
			t.Errorf("got writes %v, want [late] alone", writes)
		}
	})
}
