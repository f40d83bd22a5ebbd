package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// reloadOnSIGHUP reloads the rules on every SIGHUP until ctx ends; the
// returned function stops listening.
func reloadOnSIGHUP(ctx context.Context, e *engine) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-ch:
				if err := e.manager.Reload(); err != nil {
					e.logger.Error("rule reload on SIGHUP rejected; the running rules stay", "component", "rules", "error", err)
				}
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
