package deployments_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/pipeline"
)

// vectorConfig is the part of a Vector configuration the checks read.
// Vector publishes no JSON schema of its configuration (its schema comes
// from `vector generate-schema` of a given build), so the files are
// checked here for structure and for what Musubi needs, not by Vector.
type vectorConfig struct {
	Sources    map[string]map[string]any `yaml:"sources"`
	Transforms map[string]map[string]any `yaml:"transforms"`
	Sinks      map[string]map[string]any `yaml:"sinks"`
}

func loadVector(t *testing.T, name string) vectorConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("ingest", name))
	if err != nil {
		t.Fatal(err)
	}
	var c vectorConfig
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

func inputs(t *testing.T, component map[string]any) []string {
	t.Helper()
	raw, ok := component["inputs"].([]any)
	if !ok || len(raw) == 0 {
		t.Fatalf("component %v has no inputs", component)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = r.(string)
	}
	return out
}

// TestVectorRecipes checks the Vector configurations of docs/ingest.md:
// every component's type is one this recipe means, every input names a
// source or transform (a route's output as route.name), every Kafka sink
// writes raw bytes (codec text) to one of Musubi's default topics, keyed by
// a field that a transform upstream sets to the AWS account, and every
// source Musubi reads has a sink.
func TestVectorRecipes(t *testing.T) {
	topics := map[string]string{}
	for src, topic := range pipeline.DefaultKafka().Topics {
		topics[topic] = src
	}
	covered := map[string]bool{}
	for _, file := range []string{"vector.yaml", "vector-agent.yaml"} {
		c := loadVector(t, file)
		known := map[string]bool{}
		for name, s := range c.Sources {
			if !slices.Contains([]string{"aws_s3", "aws_sqs", "aws_kinesis_firehose", "file"}, s["type"].(string)) {
				t.Errorf("%s: source %s has type %v", file, name, s["type"])
			}
			known[name] = true
		}
		for name, tr := range c.Transforms {
			known[name] = true
			if tr["type"] == "route" {
				for route := range tr["route"].(map[string]any) {
					known[name+"."+route] = true
				}
			}
		}
		// keyedBy records, per transform, the field it sets to the account.
		keyedBy := map[string]string{}
		for name, tr := range c.Transforms {
			for _, in := range inputs(t, tr) {
				if !known[in] {
					t.Errorf("%s: transform %s reads %q, which is no component", file, name, in)
				}
			}
			switch tr["type"] {
			case "remap":
				if src, _ := tr["source"].(string); strings.Contains(src, ".account = ") {
					keyedBy[name] = "account"
				}
			case "aws_ec2_metadata":
				if slices.Contains(tr["fields"].([]any), any("account-id")) {
					keyedBy[name] = tr["namespace"].(string) + `."account-id"`
				}
			case "route":
			default:
				t.Errorf("%s: transform %s has type %v", file, name, tr["type"])
			}
		}
		// A route passes its input's key on.
		for name, tr := range c.Transforms {
			if tr["type"] == "route" {
				for route := range tr["route"].(map[string]any) {
					keyedBy[name+"."+route] = keyedBy[inputs(t, tr)[0]]
				}
			}
		}
		for name, s := range c.Sinks {
			if s["type"] != "kafka" {
				t.Errorf("%s: sink %s has type %v, want kafka", file, name, s["type"])
				continue
			}
			topic, _ := s["topic"].(string)
			src, ok := topics[topic]
			if !ok {
				t.Errorf("%s: sink %s writes %q, which is not a default raw topic", file, name, topic)
			}
			covered[src] = true
			if enc, _ := s["encoding"].(map[string]any); enc["codec"] != "text" {
				t.Errorf("%s: sink %s encodes with %v; want text (the record's raw bytes)", file, name, enc["codec"])
			}
			key, _ := s["key_field"].(string)
			for _, in := range inputs(t, s) {
				if !known[in] {
					t.Errorf("%s: sink %s reads %q, which is no component", file, name, in)
				}
				if keyedBy[in] == "" || keyedBy[in] != key {
					t.Errorf("%s: sink %s keys by %q, but its input %s sets the account as %q", file, name, key, in, keyedBy[in])
				}
			}
		}
	}
	for _, s := range ingest.Sources {
		if !covered[string(s)] {
			t.Errorf("no recipe writes source %s", s)
		}
	}
}

// TestVectorAccountFromObjectKey runs the regular expression the S3
// recipes take the account from on the object keys CloudTrail and VPC flow
// logs write (an account trail, an organization trail, a flow log), and
// checks a key without an account is refused rather than keyed wrongly.
func TestVectorAccountFromObjectKey(t *testing.T) {
	c := loadVector(t, "vector.yaml")
	src := c.Transforms["cloudtrail_keyed"]["source"].(string)
	m := regexp.MustCompile(`r'([^']*)'`).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("no regular expression in %q", src)
	}
	if flow := c.Transforms["flowlogs_keyed"]["source"].(string); !strings.Contains(flow, m[0]) {
		t.Errorf("the flow log recipe takes the account with another expression: %q", flow)
	}
	re := regexp.MustCompile(m[1])
	for key, want := range map[string]string{
		"AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/05/111122223333_CloudTrail_eu-west-1_20261205T0000Z_abc.json.gz":           "111122223333",
		"prefix/AWSLogs/o-a1b2c3d4e5/444455556666/CloudTrail/us-east-1/2026/12/05/444455556666_CloudTrail_us-east-1_x.json.gz":        "444455556666",
		"AWSLogs/777788889999/vpcflowlogs/eu-west-1/2026/12/05/777788889999_vpcflowlogs_eu-west-1_fl-0abc_20261205T0000Z_hash.log.gz": "777788889999",
		"AWSLogs/CloudTrail-Digest/nothing.json.gz": "",
	} {
		got := ""
		if sm := re.FindStringSubmatch(key); sm != nil {
			got = sm[re.SubexpIndex("account")]
		}
		if got != want {
			t.Errorf("%s: got account %q, want %q", key, got, want)
		}
	}
}
