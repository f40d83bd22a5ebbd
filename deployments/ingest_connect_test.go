package deployments_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/pipeline"
)

// connectRecipe is a Kafka Connect connector as its REST API takes it
// (POST /connectors): a name and string-valued configuration.
type connectRecipe struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

func loadConnect(t *testing.T, name string) connectRecipe {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("ingest", "kafka-connect", name))
	if err != nil {
		t.Fatal(err)
	}
	var r connectRecipe
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// connectRecord is the part of a Connect record the recipe's transforms
// touch. A Struct value is a map; raw bytes are a []byte.
type connectRecord struct {
	key, value any
}

// applySMTs runs the recipe's chain of single message transforms on a
// record, as Kafka Connect's own transforms (org.apache.kafka.connect.
// transforms) do for Struct or schemaless values. Only the transforms the
// recipe may use are known: any other type fails the test, so a recipe
// that starts to depend on a plugin outside Apache Kafka is noticed.
func applySMTs(t *testing.T, cfg map[string]string, rec connectRecord) connectRecord {
	t.Helper()
	for _, name := range strings.Split(cfg["transforms"], ",") {
		p := "transforms." + strings.TrimSpace(name) + "."
		switch typ := cfg[p+"type"]; typ {
		case "org.apache.kafka.connect.transforms.HoistField$Value":
			rec.value = map[string]any{cfg[p+"field"]: rec.value}
		case "org.apache.kafka.connect.transforms.InsertField$Value":
			m, ok := rec.value.(map[string]any)
			if !ok {
				t.Fatalf("%s: InsertField$Value on a value that is no struct (%T)", name, rec.value)
			}
			m[cfg[p+"static.field"]] = cfg[p+"static.value"]
		case "org.apache.kafka.connect.transforms.ValueToKey":
			m, ok := rec.value.(map[string]any)
			if !ok {
				t.Fatalf("%s: ValueToKey on a value that is no struct (%T)", name, rec.value)
			}
			key := map[string]any{}
			for _, f := range strings.Split(cfg[p+"fields"], ",") {
				v, ok := m[f]
				if !ok {
					t.Fatalf("%s: ValueToKey: the value has no field %q", name, f)
				}
				key[f] = v
			}
			rec.key = key
		case "org.apache.kafka.connect.transforms.ExtractField$Key":
			m, ok := rec.key.(map[string]any)
			if !ok {
				t.Fatalf("%s: ExtractField$Key on a key that is no struct (%T)", name, rec.key)
			}
			rec.key = m[cfg[p+"field"]]
		case "org.apache.kafka.connect.transforms.ExtractField$Value":
			m, ok := rec.value.(map[string]any)
			if !ok {
				t.Fatalf("%s: ExtractField$Value on a value that is no struct (%T)", name, rec.value)
			}
			rec.value = m[cfg[p+"field"]]
		default:
			t.Fatalf("transform %s has type %q, which is not one of Apache Kafka's this recipe uses", name, typ)
		}
	}
	return rec
}

// kcqlSource is the KCQL of the Lenses S3 source: INSERT INTO topic
// SELECT * FROM bucket:prefix STOREAS format (names may be backquoted).
var kcqlSource = regexp.MustCompile("^INSERT INTO `?([^` ]+)`? SELECT \\* FROM `?([a-z0-9.-]+):([^` ]+)`? STOREAS `?([A-Za-z]+)`?$")

// accountKey is the account segment of a CloudTrail or flow log object key
// (account trails, organization trails), as docs/ingest.md describes it.
var accountKey = regexp.MustCompile(`^(?:.*/)?AWSLogs/(?:o-[a-z0-9]+/)?([0-9]{12})/(CloudTrail|vpcflowlogs)/`)

// TestKafkaConnectRecipes checks the Kafka Connect recipes of
// docs/ingest.md (deployments/ingest/kafka-connect): each is a connector
// the REST API takes (strict JSON, string values), runs the Lenses S3
// source reading whole objects (STOREAS BYTES) under one account's
// AWSLogs/<account>/<service>/ prefix into Musubi's default raw topic of
// that source, and keys records with only Apache Kafka's own transforms.
// The transform chain is run on a gzipped delivery file of each source:
// the key it sets is the account segment of every object key the prefix
// selects among real CloudTrail and flow log keys (and of none it does
// not), the value is the object's bytes unchanged, and Musubi's decoder
// reads that value without a dead letter. The example account must appear
// only where the per-account copy changes it (name, prefix, key), so the
// substitution docs/ingest.md shows rewrites all three together.
func TestKafkaConnectRecipes(t *testing.T) {
	const example = "111122223333"
	topics := pipeline.DefaultKafka().Topics
	objectKeys := []string{
		"AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/05/111122223333_CloudTrail_eu-west-1_20261205T0000Z_abc.json.gz",
		"AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/12/05/111122223333_CloudTrail-Digest_eu-west-1_x.json.gz",
		"AWSLogs/444455556666/CloudTrail/us-east-1/2026/12/05/444455556666_CloudTrail_us-east-1_x.json.gz",
		"AWSLogs/1111222233334/CloudTrail/us-east-1/2026/12/05/x.json.gz",
		"AWSLogs/111122223333/vpcflowlogs/eu-west-1/2026/12/05/111122223333_vpcflowlogs_eu-west-1_fl-0abc_20261205T0000Z_hash.log.gz",
		"AWSLogs/777788889999/vpcflowlogs/eu-west-1/2026/12/05/777788889999_vpcflowlogs_eu-west-1_fl-0abc_20261205T0000Z_hash.log.gz",
	}
	for _, tc := range []struct {
		file, source, service, sample string
	}{
		{"cloudtrail-s3.json", "cloudtrail", "CloudTrail", "../ingest/cloudtrail/testdata/delivery_file.json"},
		{"vpcflow-s3.json", "vpcflow", "vpcflowlogs", "../ingest/vpcflow/testdata/v2_default.log"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			r := loadConnect(t, tc.file)
			cfg := r.Config
			for k, want := range map[string]string{
				"connector.class": "io.lenses.streamreactor.connect.aws.s3.source.S3SourceConnector",
				"key.converter":   "org.apache.kafka.connect.storage.StringConverter",
				"value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
			} {
				if cfg[k] != want {
					t.Errorf("%s = %q, want %q", k, cfg[k], want)
				}
			}
			m := kcqlSource.FindStringSubmatch(cfg["connect.s3.kcql"])
			if m == nil {
				t.Fatalf("connect.s3.kcql %q is not INSERT INTO topic SELECT * FROM bucket:prefix STOREAS format", cfg["connect.s3.kcql"])
			}
			topic, prefix, format := m[1], m[3], m[4]
			if topic != topics[tc.source] {
				t.Errorf("writes topic %q, want Musubi's %s topic %q", topic, tc.source, topics[tc.source])
			}
			if format != "BYTES" {
				t.Errorf("STOREAS %s; want BYTES (a whole object per record, as Musubi reads a delivery file)", format)
			}
			pm := accountKey.FindStringSubmatch(prefix)
			if pm == nil || !strings.HasSuffix(prefix, "/") || pm[2] != tc.service {
				t.Fatalf("prefix %q is not AWSLogs/[o-…/]<account>/%s/", prefix, tc.service)
			}

			// The key the transforms set, on a record of a gzipped object.
			sample, err := os.ReadFile(tc.sample)
			if err != nil {
				t.Fatal(err)
			}
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			if _, err := zw.Write(sample); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			object := gz.Bytes()
			out := applySMTs(t, cfg, connectRecord{value: object})
			key, ok := out.key.(string)
			if !ok || key == "" {
				t.Fatalf("the transforms set key %#v, want the account as a string", out.key)
			}
			if raw, ok := out.value.([]byte); !ok || !bytes.Equal(raw, object) {
				t.Errorf("the transforms changed the value (%T), want the object's bytes", out.value)
			}

			// Every object key the prefix selects belongs to the key's
			// account, and the prefix selects the account's own objects.
			selected := 0
			for _, k := range objectKeys {
				am := accountKey.FindStringSubmatch(k)
				own := am != nil && am[1] == key && am[2] == tc.service
				if strings.HasPrefix(k, prefix) != own {
					t.Errorf("%s: selected %v by prefix %q, want %v (record key %s)", k, strings.HasPrefix(k, prefix), prefix, own, key)
				}
				if own {
					selected++
				}
			}
			if selected == 0 {
				t.Errorf("prefix %q selects none of the real object keys", prefix)
			}

			// Musubi reads the record as the recipe writes it.
			src, err := ingest.ParseSource(tc.source)
			if err != nil {
				t.Fatal(err)
			}
			events, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(src, out.value.([]byte))
			if len(errs) != 0 || len(events) == 0 {
				t.Errorf("Musubi decoded %d events and %d dead letters (%v) from the record; want events and none", len(events), len(errs), errs)
			}

			// One copy per account: the example account appears in the
			// name, the prefix and the static key only.
			if key != example {
				t.Fatalf("key %s, want the example account %s", key, example)
			}
			var where []string
			for k, v := range cfg {
				if strings.Contains(v, example) {
					where = append(where, k)
				}
			}
			if got := fmt.Sprint(slices.Sorted(slices.Values(where))); got != "[connect.s3.kcql transforms.account.static.value]" || !strings.Contains(r.Name, example) {
				t.Errorf("the example account is in %s and name %q; want it in the KCQL prefix, the key and the name only", got, r.Name)
			}
		})
	}
}
