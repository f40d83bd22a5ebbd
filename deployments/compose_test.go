package deployments_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/schema"
	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/config"
)

const composeDir = "compose"

func loadCompose(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return doc
}

// TestComposeSchema validates compose.yaml against the Compose
// Specification's JSON schema (the copy docker compose itself uses, from
// compose-go).
func TestComposeSchema(t *testing.T) {
	if err := schema.Validate(loadCompose(t)); err != nil {
		t.Fatalf("compose.yaml does not satisfy the compose-spec schema: %v", err)
	}
}

var deprecatedPublishers = []string{"bitnami/", "wurstmeister/", "confluentinc/", "docker.io/bitnami/"}

// TestComposeStack checks what the schema cannot: pinned images from the
// projects' own publishers, dependencies that exist, ports that do not
// clash, mounted files that exist, the topics the engine reads created by
// the init container, and a configuration Musubi's strict decoder accepts.
func TestComposeStack(t *testing.T) {
	doc := loadCompose(t)
	services, _ := doc["services"].(map[string]any)
	if len(services) == 0 {
		t.Fatal("no services")
	}
	volumes, _ := doc["volumes"].(map[string]any)
	images := map[string]string{}
	hostPorts := map[string]string{}
	for name, v := range services {
		svc, _ := v.(map[string]any)
		image, _ := svc["image"].(string)
		build := svc["build"]
		if image == "" && build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		if image != "" {
			images[name] = image
			for _, p := range deprecatedPublishers {
				if strings.HasPrefix(image, p) {
					t.Errorf("%s: image %s is from a deprecated publisher", name, image)
				}
			}
			if repo, tag, ok := strings.Cut(image, ":"); !ok || tag == "" || tag == "latest" {
				t.Errorf("%s: image %s is not pinned to a version", name, image)
			} else if build == nil && repo != "musubi" && !strings.Contains(repo, "/") {
				t.Errorf("%s: image %s is not from a named publisher", name, image)
			}
		}
		if b, ok := build.(map[string]any); ok {
			ctx, _ := b["context"].(string)
			df, _ := b["dockerfile"].(string)
			if df == "" {
				df = "Dockerfile"
			}
			if _, err := os.Stat(filepath.Join(composeDir, ctx, df)); err != nil {
				t.Errorf("%s: build %s/%s: %v", name, ctx, df, err)
			}
		}
		for _, dep := range dependsOn(svc["depends_on"]) {
			if _, ok := services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		ports, _ := svc["ports"].([]any)
		for _, p := range ports {
			host, err := checkPort(fmt.Sprint(p))
			if err != nil {
				t.Errorf("%s: port %v: %v", name, p, err)
			} else if other, dup := hostPorts[host]; dup {
				t.Errorf("%s and %s both publish host port %s", name, other, host)
			} else {
				hostPorts[host] = name
			}
		}
		mounts, _ := svc["volumes"].([]any)
		for _, m := range mounts {
			src, _, _ := strings.Cut(fmt.Sprint(m), ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(composeDir, src)); err != nil {
					t.Errorf("%s: bind mount source %s: %v", name, src, err)
				}
			} else if _, ok := volumes[src]; !ok {
				t.Errorf("%s: named volume %s is not declared", name, src)
			}
		}
	}

	want := map[string]*regexp.Regexp{
		"kafka":      regexp.MustCompile(`^apache/kafka:[0-9]`),
		"kafka-init": regexp.MustCompile(`^apache/kafka:[0-9]`),
		"clickhouse": regexp.MustCompile(`^clickhouse/clickhouse-server:(2[4-9]|[3-9][0-9])\.`),
		"grafana":    regexp.MustCompile(`^grafana/grafana:[0-9]`),
		"prometheus": regexp.MustCompile(`^prom/prometheus:v[0-9]`),
	}
	for svc, re := range want {
		if !re.MatchString(images[svc]) {
			t.Errorf("service %s runs image %q, want %s", svc, images[svc], re)
		}
	}
	if images["kafka"] != images["kafka-init"] {
		t.Errorf("kafka-init runs %s, want the broker's image %s (for kafka-topics.sh)", images["kafka-init"], images["kafka"])
	}
	grafana, _ := services["grafana"].(map[string]any)
	if env := fmt.Sprint(grafana["environment"]); !strings.Contains(env, "grafana-clickhouse-datasource") {
		t.Errorf("grafana does not install grafana-clickhouse-datasource: %s", env)
	}
	demo, _ := services["demo"].(map[string]any)
	if profiles := fmt.Sprint(demo["profiles"]); profiles != "[demo]" {
		t.Errorf("demo service profiles %s, want [demo] (optional)", profiles)
	}
	if cmd := fmt.Sprint(demo["command"]); !strings.Contains(cmd, "demo") || !strings.Contains(cmd, "kafka:9092") {
		t.Errorf("demo command %s, want musubi demo against kafka:9092", cmd)
	}
	musubi, _ := services["musubi"].(map[string]any)
	if musubi["read_only"] != true || musubi["user"] == nil {
		t.Errorf("musubi: read_only %v, user %v; want a read-only root and a non-root user", musubi["read_only"], musubi["user"])
	}

	// The configuration: strict decoding, valid, and every topic created.
	data, err := os.ReadFile(filepath.Join(composeDir, "musubi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if err := config.Decode(strings.NewReader(string(data)), &cfg); err != nil {
		t.Fatalf("compose/musubi.yaml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("compose/musubi.yaml: %v", err)
	}
	init, _ := services["kafka-init"].(map[string]any)
	script := fmt.Sprint(init["command"])
	if !strings.Contains(script, "kafka-topics.sh") || !strings.Contains(script, "--create") {
		t.Errorf("kafka-init does not create topics with kafka-topics.sh: %s", script)
	}
	topics := []string{cfg.Kafka.DeadLetterTopic}
	for _, tp := range cfg.Kafka.Topics {
		topics = append(topics, tp)
	}
	for _, tp := range topics {
		if !regexp.MustCompile(`(^|[\s\[])` + regexp.QuoteMeta(tp) + `([\s\];]|$)`).MatchString(script) {
			t.Errorf("topic %s of musubi.yaml is not created by kafka-init", tp)
		}
	}
	if !slices.Contains(cfg.Kafka.Brokers, "kafka:9092") || !slices.Contains(cfg.ClickHouse.Addr, "clickhouse:9000") {
		t.Errorf("musubi.yaml brokers %v and ClickHouse %v, want the compose services", cfg.Kafka.Brokers, cfg.ClickHouse.Addr)
	}
}

// dependsOn lists the services named by a depends_on in either form.
func dependsOn(v any) []string {
	var out []string
	switch d := v.(type) {
	case []any:
		for _, s := range d {
			out = append(out, fmt.Sprint(s))
		}
	case map[string]any:
		for s := range d {
			out = append(out, s)
		}
	}
	return out
}

// checkPort parses a short-syntax port ("[ip:]host:container[/proto]") and
// returns the host port.
func checkPort(p string) (string, error) {
	p, _, _ = strings.Cut(p, "/")
	parts := strings.Split(p, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return "", fmt.Errorf("want [ip:]host:container")
	}
	for _, n := range parts[len(parts)-2:] {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 || v > 65535 {
			return "", fmt.Errorf("%q is not a port", n)
		}
	}
	return parts[len(parts)-2], nil
}

// TestDockerfile checks the image build: a Go 1.26 builder, a distroless
// non-root runtime, the detection pack copied in.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ARG GO_VERSION=1\.26$`),
		regexp.MustCompile(`(?m)^FROM golang:\$\{GO_VERSION\} AS build$`),
		regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static[-\w]*:nonroot$`),
		regexp.MustCompile(`(?m)^COPY --from=build /out/musubi `),
		regexp.MustCompile(`(?m)^COPY .*detections/ /detections/$`),
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?s)CGO_ENABLED=0 [^\n]*go build .*\./cmd/musubi`),
	} {
		if !want.MatchString(text) {
			t.Errorf("Dockerfile: no line matching %s", want)
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ignore), "\n") {
		if line = strings.TrimSpace(line); line == "detections" || line == "cmd" || line == "go.mod" {
			t.Errorf(".dockerignore excludes %s, which the build needs", line)
		}
	}
}
