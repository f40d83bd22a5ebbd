package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"
)

// profiling takes Go profiles of the measured processes over HTTP
// (net/http/pprof: the engine's api.pprof, the sink's -pprof): a CPU
// profile of the first seconds of the measured window, then a heap profile
// (in use at its end, and everything allocated since the start).
type profiling struct {
	dir     string
	seconds int
	// addrs is the profile address of each run, by run name.
	addrs map[string]string
}

// addr returns the loopback address run name serves its profiles on, a
// free port chosen once.
func (pr *profiling) addr(name string) (string, error) {
	if a, ok := pr.addrs[name]; ok {
		return a, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	a := ln.Addr().String()
	ln.Close()
	pr.addrs[name] = a
	return a, nil
}

// start begins the CPU profile of run name, which must be serving at its
// address; the returned function takes the heap profile, waits for the CPU
// profile and reports where they are.
func (pr *profiling) start(ctx context.Context, name string) func() (string, error) {
	base := "http://" + pr.addrs[name] + "/debug/pprof/"
	cpuDone := make(chan error, 1)
	cpu := filepath.Join(pr.dir, name+"-cpu.pprof")
	go func() { cpuDone <- fetch(ctx, fmt.Sprintf("%sprofile?seconds=%d", base, pr.seconds), cpu) }()
	return func() (string, error) {
		heap := filepath.Join(pr.dir, name+"-heap.pprof")
		herr := fetch(ctx, base+"heap", heap)
		if err := <-cpuDone; err != nil {
			return "", fmt.Errorf("cpu profile of %s: %w", name, err)
		}
		if herr != nil {
			return "", fmt.Errorf("heap profile of %s: %w", name, herr)
		}
		return cpu + ", " + heap, nil
	}
}

// fetch writes the body of a GET of url to path.
func fetch(ctx context.Context, url, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// servePprof serves net/http/pprof on addr until the process ends (the
// sink's -pprof, as the engine's api.pprof does).
func servePprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return nil
}
