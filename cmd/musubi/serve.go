package main

import (
	"context"
	"fmt"
	"io"
)

func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	var sf serveFlags
	fs := newFlagSet("serve", "serve [flags]\n\nRuns the engine: consumes the raw Kafka topics, normalizes, detects,\ncorrelates, writes to ClickHouse (committing offsets only after the write)\nand serves the HTTP API, /healthz, /readyz and /metrics. Rules reload on\nfile change, on SIGHUP and on POST /-/reload.", stdout, stderr)
	cf.register(fs, flagsAll)
	sf.register(fs, "what to run: all, api (API and console, no Kafka), detect (raw topics → events and signals) or correlate (signals → alerts and incidents) (overrides role, MUSUBI_ROLE)")
	if code, stop := fs.parse(args); stop {
		return code
	}
	sf.apply(&cf)
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "musubi serve: invalid configuration:\n%v\n", err)
		return 1
	}
	logger := newLogger(cfg.Log, stderr)
	e, err := newEngine(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "musubi serve: %v\n", err)
		return 1
	}
	stopHUP := reloadOnSIGHUP(ctx, e)
	defer stopHUP()
	logger.Info("serving", "role", cfg.Role, "api", "http://"+e.addr(), "pprof", cfg.API.Pprof)
	if err := e.run(ctx); err != nil {
		fmt.Fprintf(stderr, "musubi serve: %v\n", err)
		return 1
	}
	return 0
}
