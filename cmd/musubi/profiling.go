package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/ui"
)

// serverHandler is what the API listener serves: the API, the console
// beside it (/ui/) and, when api.pprof is on, Go's runtime profiles.
func serverHandler(cfg config.API, api http.Handler) http.Handler {
	h := ui.Mount(api)
	if cfg.Pprof {
		h = withProfiling(h)
	}
	return h
}

// withProfiling serves net/http/pprof under /debug/pprof/ beside h, as
// `go tool pprof http://HOST:PORT/debug/pprof/profile` expects: the
// index, the named profiles (heap, allocs, goroutine, mutex, block, ...),
// a CPU profile (?seconds=N, 30 by default), an execution trace, the
// command line and symbols. The handlers are registered here, not on
// http.DefaultServeMux, which no listener of the engine serves.
func withProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
