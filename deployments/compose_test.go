package deployments_test

import (
	"encoding/xml"
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

// TestComposeExposure checks what the laptop stack exposes and how it is
// watched: every published port bound to 127.0.0.1 (the stack runs with
// development secrets), no Prometheus lifecycle endpoints, a healthcheck on
// every long-running service (Musubi's through its own binary, since the
// image has no shell), Grafana's ClickHouse plugin pinned, and Grafana
// reading with a read-only ClickHouse user that is not the engine's.
func TestComposeExposure(t *testing.T) {
	doc := loadCompose(t)
	services, _ := doc["services"].(map[string]any)
	for name, v := range services {
		svc, _ := v.(map[string]any)
		ports, _ := svc["ports"].([]any)
		for _, p := range ports {
			if !strings.HasPrefix(fmt.Sprint(p), "127.0.0.1:") {
				t.Errorf("%s publishes %v on every interface, want 127.0.0.1 only", name, p)
			}
		}
		if svc["restart"] == "unless-stopped" {
			hc, _ := svc["healthcheck"].(map[string]any)
			if test, _ := hc["test"].([]any); len(test) < 2 {
				t.Errorf("%s runs until stopped and has no healthcheck", name)
			}
		}
	}
	prom, _ := services["prometheus"].(map[string]any)
	if cmd := fmt.Sprint(prom["command"]); strings.Contains(cmd, "enable-lifecycle") || strings.Contains(cmd, "enable-admin-api") {
		t.Errorf("prometheus enables its lifecycle or admin endpoints: %s", cmd)
	}
	musubi, _ := services["musubi"].(map[string]any)
	hc, _ := musubi["healthcheck"].(map[string]any)
	test := fmt.Sprint(hc["test"])
	if !strings.Contains(test, "/usr/local/bin/musubi healthcheck") || !strings.Contains(test, "/readyz") {
		t.Errorf("musubi healthcheck %s, want the binary's healthcheck command on /readyz", test)
	}
	graf, _ := services["grafana"].(map[string]any)
	env, _ := graf["environment"].(map[string]any)
	if plugin := fmt.Sprint(env["GF_PLUGINS_PREINSTALL_SYNC"]); !regexp.MustCompile(`^grafana-clickhouse-datasource@\d+\.\d+\.\d+$`).MatchString(plugin) {
		t.Errorf("GF_PLUGINS_PREINSTALL_SYNC %q, want grafana-clickhouse-datasource@<version>", plugin)
	}
	deps := dependsOn(graf["depends_on"])
	if !slices.Contains(deps, "prometheus") || !slices.Contains(deps, "clickhouse") {
		t.Errorf("grafana depends on %v, want clickhouse and prometheus", deps)
	}

	// Grafana's ClickHouse user: defined read-only in a users.d file the
	// clickhouse service mounts, and not the engine's user.
	data, err := os.ReadFile(filepath.Join(composeDir, "musubi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if err := config.Decode(strings.NewReader(string(data)), &cfg); err != nil {
		t.Fatal(err)
	}
	user := fmt.Sprint(env["MUSUBI_CLICKHOUSE_USER"])
	if user == cfg.ClickHouse.Username || user == "default" {
		t.Errorf("grafana reads ClickHouse as %q, the engine's read-write user; want a read-only one", user)
	}
	ch, _ := services["clickhouse"].(map[string]any)
	var usersFile string
	mounts, _ := ch["volumes"].([]any)
	for _, m := range mounts {
		src, dst, _ := strings.Cut(fmt.Sprint(m), ":")
		if strings.HasPrefix(dst, "/etc/clickhouse-server/users.d/") {
			usersFile = filepath.Join(composeDir, src)
		}
	}
	if usersFile == "" {
		t.Fatal("the clickhouse service mounts no users.d file")
	}
	var users struct {
		Profiles struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"profiles"`
		Users struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"users"`
	}
	raw, err := os.ReadFile(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(raw, &users); err != nil {
		t.Fatalf("%s: %v", usersFile, err)
	}
	var u struct {
		Password struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"password"`
		Profile   string   `xml:"profile"`
		Databases []string `xml:"allow_databases>database"`
	}
	if err := xml.Unmarshal([]byte(findElement(t, users.Users.Inner, user)), &u); err != nil {
		t.Fatal(err)
	}
	var prof struct {
		ReadOnly int `xml:"readonly"`
	}
	if err := xml.Unmarshal([]byte(findElement(t, users.Profiles.Inner, u.Profile)), &prof); err != nil {
		t.Fatal(err)
	}
	if prof.ReadOnly != 1 && prof.ReadOnly != 2 {
		t.Errorf("user %s has profile %s with readonly %d, want 1 or 2", user, u.Profile, prof.ReadOnly)
	}
	if !slices.Equal(u.Databases, []string{cfg.ClickHouse.Database}) {
		t.Errorf("user %s may read %v, want only %s", user, u.Databases, cfg.ClickHouse.Database)
	}
	chEnv, _ := ch["environment"].(map[string]any)
	if u.Password.FromEnv == "" || chEnv[u.Password.FromEnv] == nil {
		t.Errorf("user %s's password comes from env %q, which the clickhouse service does not set", user, u.Password.FromEnv)
	}
}

// findElement returns the element named name among the children in inner.
func findElement(t *testing.T, inner []byte, name string) string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(inner)))
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("no element %q", name)
		}
		if se, ok := tok.(xml.StartElement); ok {
			var any struct {
				Inner []byte `xml:",innerxml"`
			}
			if err := dec.DecodeElement(&any, &se); err != nil {
				t.Fatal(err)
			}
			if se.Name.Local == name {
				return "<" + name + ">" + string(any.Inner) + "</" + name + ">"
			}
		}
	}
}
