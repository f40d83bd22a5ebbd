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
// incident, listed through the API; that before the attack it prints the
// path predicted from the demo account's AWS Config snapshot, and after it
// the incident's link to that path and its risk from assets.
func TestDemo(t *testing.T) {
	db, _ := chtest.Database(t)
	t.Setenv("MUSUBI_CLICKHOUSE_DATABASE", db)
	t.Setenv("MUSUBI_CLICKHOUSE_ADDR", chtest.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"demo", "-exit", "-listen", "127.0.0.1:0", "-rules", "../../detections", "-data", "../../testdata/scenarios", "-inventory", "../../testdata/demo"}, nil, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	t.Logf("demo output:\n%s", out)
	for _, want := range []string{"published", "Musubi found", "stages: initial_access", "/v1/incidents/inc-", "export MUSUBI_TOKEN=msb_", "Console: http://",
		"predicts 2 attack path(s)", "internet_instance_to_production", "→ deployment_group webapp-prod",
		"The incident walked predicted path xp-", "instance i-0a1b2c3d4e5f60718", "imdsv1_allowed +", "internet_facing +"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if p, a := strings.Index(out, "predicts 2 attack path(s)"), strings.Index(out, "Musubi found"); p < 0 || a < p {
		t.Errorf("the predicted path is not printed before the incidents")
	}
	severe := strings.Count(out, "[CRITICAL]") + strings.Count(out, "[HIGH]")
	if severe != 1 {
		t.Errorf("got %d high or critical incidents, want exactly one (the attack chain)", severe)
	}
}
