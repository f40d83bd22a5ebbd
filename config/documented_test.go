package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// readmeExample returns the configuration example of README.md: the yaml
// block that starts with "role:".
func readmeExample(t *testing.T) []byte {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(readme), "```yaml\n")[1:] {
		body, _, _ := strings.Cut(block, "```")
		if strings.HasPrefix(body, "role:") {
			return []byte(body)
		}
	}
	t.Fatal("README.md has no configuration example (a yaml block starting with role:)")
	return nil
}

// effective is what the components are handed: the composed storage and
// correlator configurations and the sections the components own.
func effective(c Config) any {
	return []any{c.Role, c.Kafka, c.StorageConfig(), c.ClickHouse.MigrateOnStart, c.Rules, c.CorrelateConfig(),
		c.Correlate.SourceDelay, c.Pipeline, c.API, c.Ingest, c.Exposure, c.Tenants, c.Log}
}

// leaves returns the path of every key of the document whose value is a
// scalar or a sequence (one setting), with its node.
func leaves(n *yaml.Node, path string, out map[string]*yaml.Node) {
	if n.Kind == yaml.DocumentNode {
		leaves(n.Content[0], path, out)
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := strings.TrimPrefix(path+"."+k.Value, ".")
		if v.Kind == yaml.MappingNode {
			leaves(v, p, out)
			continue
		}
		out[p] = v
	}
}

// changed returns another value for a setting's node: a flipped boolean, a
// larger number or duration, another string, an empty sequence.
func changed(v *yaml.Node) *yaml.Node {
	c := *v
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!bool":
		c.Value = map[string]string{"true": "false", "false": "true"}[v.Value]
	case v.Kind == yaml.ScalarNode && v.Tag == "!!int":
		c.Value = v.Value + "0"
	case v.Kind == yaml.ScalarNode:
		if d, err := time.ParseDuration(v.Value); err == nil {
			c.Value = (d + 24*time.Hour).String()
			return &c
		}
		// Decoding does not validate, so any other string will do.
		c.Value, c.Tag, c.Style = v.Value+"x", "!!str", 0
	default:
		// A sequence or a mapping: drop it (an empty one).
		c.Content = nil
	}
	return &c
}

// TestDocumentedKeysTakeEffect walks every key of README.md's
// configuration example: the whole example decodes strictly, and changing
// any one key changes what a component is handed — no documented key is
// parsed and then dropped on the way to its component.
func TestDocumentedKeysTakeEffect(t *testing.T) {
	example := readmeExample(t)
	var base Config = Default()
	if err := Decode(bytes.NewReader(example), &base); err != nil {
		t.Fatalf("README's example does not decode: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(example, &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]*yaml.Node{}
	leaves(&doc, "", keys)
	if len(keys) < 40 {
		t.Fatalf("found %d keys in the example; the walk is broken", len(keys))
	}
	for path, node := range keys {
		t.Run(path, func(t *testing.T) {
			alt := changed(node)
			saved := *node
			*node = *alt
			defer func() { *node = saved }()
			var out bytes.Buffer
			enc := yaml.NewEncoder(&out)
			if err := enc.Encode(&doc); err != nil {
				t.Fatal(err)
			}
			cfg := Default()
			if err := Decode(&out, &cfg); err != nil {
				t.Fatalf("with %s changed: %v", path, err)
			}
			if reflect.DeepEqual(effective(cfg), effective(base)) {
				t.Errorf("changing %s changed nothing a component is handed", path)
			}
		})
	}
}
