package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/internal/chtest"
)

// TestDemo runs `musubi demo -exit` as `make demo` does — embedded Kafka,
// the real ClickHouse, the shipped detection pack and the bundled scenarios
// — and checks that it finds the attack chain as one critical or high
// incident, listed through the API.
func TestDemo(t *testing.T) {
	db, _ := chtest.Database(t)
	t.Setenv("MUSUBI_CLICKHOUSE_DATABASE", db)
	t.Setenv("MUSUBI_CLICKHOUSE_ADDR", chtest.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"demo", "-exit", "-listen", "127.0.0.1:0", "-rules", "../../detections", "-data", "../../testdata/scenarios"}, nil, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	t.Logf("demo output:\n%s", out)
	for _, want := range []string{"published", "Musubi found", "stages: initial_access", "/v1/incidents/inc-", "export MUSUBI_TOKEN=msb_", "Console: http://"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	severe := strings.Count(out, "[CRITICAL]") + strings.Count(out, "[HIGH]")
	if severe != 1 {
		t.Errorf("got %d high or critical incidents, want exactly one (the attack chain)", severe)
	}
}
