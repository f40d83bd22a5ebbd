package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheckCommand probes a running engine's HTTP endpoint and exits 0
// when it answers 2xx: a container healthcheck for the distroless image,
// which has no shell or curl.
func healthcheckCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", "healthcheck [-url URL] [-timeout D]\n\nProbes a running musubi (by default its /readyz) and exits 0 when it answers\n2xx, 1 otherwise: the container healthcheck of the distroless image.", stdout, stderr)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if code, stop := fs.parse(args); stop {
		return code
	}
	if fs.NArg() != 0 {
		return fs.usageError()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "musubi healthcheck: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "musubi healthcheck: %v\n", err)
		return 1
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "musubi healthcheck: %s answered %s: %s\n", *url, resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", *url, resp.Status)
	return 0
}
