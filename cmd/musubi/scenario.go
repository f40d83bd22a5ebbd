package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
)

// scenarioExpectation is the expected.json of a scenario directory: the
// multi-stage incident its telemetry must produce, and what it must not.
type scenarioExpectation struct {
	Description string `json:"description"`
	// HubIPs are configured as hub addresses for the replay, as an operator
	// would configure a shared NAT address.
	HubIPs []string `json:"hub_ips"`
	// HighIncidents is the number of incidents of at least
	// Attack.MinSeverity the scenario must produce.
	HighIncidents int `json:"high_incidents"`
	Attack        struct {
		MinSeverity int `json:"min_severity"`
		// Entities ("kind:value") must all be nodes of the attack incident.
		Entities []string `json:"entities"`
		// Stages must appear in this order among the incident's stages.
		Stages           []string `json:"stages"`
		CorrelationRules []string `json:"correlation_rules"`
		NotEntities      []string `json:"not_entities"`
	} `json:"attack"`
	Benign struct {
		// Entities of benign activity, whose incidents stay at or below
		// MaxSeverity.
		Entities    []string `json:"entities"`
		MaxSeverity int      `json:"max_severity"`
	} `json:"benign"`
}

// ScenarioReport is the outcome of one scenario directory.
type ScenarioReport struct {
	Dir      string   `json:"dir"`
	Orders   int      `json:"orders"`
	Failures []string `json:"failures,omitempty"`
	Pass     bool     `json:"pass"`
}

// findScenarios returns every directory under root that holds an
// expected.json.
func findScenarios(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "expected.json" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	return dirs, err
}

// runScenario replays a scenario through the offline pipeline (the serve
// code path) in file order and in orders-1 shuffled orders of its
// messages, and checks every run against expected.json and against the
// first run's incident graphs.
func runScenario(dir, rulesDir string, orders int) ScenarioReport {
	rep := ScenarioReport{Dir: dir, Orders: orders}
	fail := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	var exp scenarioExpectation
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err == nil {
		err = json.Unmarshal(data, &exp)
	}
	if err != nil {
		fail("expected.json: %v", err)
		return rep
	}
	files, err := readRecords([]string{dir})
	if err != nil {
		fail("%v", err)
		return rep
	}
	var msgs []pipeline.Record
	for _, f := range files {
		src := ingest.Detect(f.Value)
		for _, part := range splitMessages(src, f.Value) {
			msgs = append(msgs, pipeline.Record{Source: src, Topic: f.Topic, Value: part, Time: time.Unix(0, 0)})
		}
	}
	cfg := config.Default()
	cfg.Rules.Dir = rulesDir
	cfg.Correlate.HubCIDRs = exp.HubIPs
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var first string
	for order := 0; order < orders; order++ {
		in := slices.Clone(msgs)
		if order > 0 {
			rng := rand.New(rand.NewPCG(uint64(order), 0x5eed))
			rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		}
		proc, err := offlineProcessor(cfg, logger)
		if err != nil {
			fail("%v", err)
			return rep
		}
		batch := proc.Process(in)
		for _, dl := range batch.DeadLetters {
			fail("order %d: %s: %s: %s", order, dl.Topic, dl.Reason, dl.Error)
		}
		incidents := mergeResults(correlate.Result{Incidents: batch.Incidents}, correlate.Result{}).Incidents
		graph := checkScenario(incidents, exp, func(format string, args ...any) {
			fail("order %d: "+format, append([]any{order}, args...)...)
		})
		if order == 0 {
			first = graph
		} else if graph != first {
			fail("order %d: the high-severity incident graphs differ from those of file order: %s", order, firstDifference(first, graph))
		}
	}
	rep.Pass = len(rep.Failures) == 0
	return rep
}

// checkScenario checks one run's incidents and returns a signature of the
// high-severity incident graphs for comparing runs.
func checkScenario(incidents []correlate.Incident, exp scenarioExpectation, fail func(string, ...any)) string {
	var high []correlate.Incident
	for _, in := range incidents {
		if in.MergedInto == "" && in.Severity >= exp.Attack.MinSeverity {
			high = append(high, in)
		}
	}
	if len(high) != exp.HighIncidents {
		var titles []string
		for _, in := range high {
			titles = append(titles, fmt.Sprintf("%q (%s)", in.Title, ocsf.SeverityName(in.Severity)))
		}
		fail("got %d incidents of severity >= %d, want %d: %s", len(high), exp.Attack.MinSeverity, exp.HighIncidents, strings.Join(titles, ", "))
	}
	var sig []string
	for _, in := range high {
		nodes := entitySet(in)
		var edges []string
		for _, e := range in.Edges {
			edges = append(edges, e.Source+">"+e.Target+":"+e.Relation)
		}
		slices.Sort(edges)
		keys := make([]string, 0, len(nodes))
		for k := range nodes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		sig = append(sig, in.ID+"|"+strings.Join(keys, ",")+"|"+strings.Join(edges, ","))
	}
	slices.Sort(sig)
	if len(exp.Attack.Entities) > 0 {
		attack := -1
		for i, in := range high {
			if entitySet(in)[exp.Attack.Entities[0]] {
				attack = i
			}
		}
		if attack < 0 {
			fail("no incident of severity >= %d contains %s", exp.Attack.MinSeverity, exp.Attack.Entities[0])
			return strings.Join(sig, "\n")
		}
		in := high[attack]
		nodes := entitySet(in)
		for _, e := range exp.Attack.Entities {
			if !nodes[e] {
				fail("attack incident lacks entity %s", e)
			}
		}
		for _, e := range exp.Attack.NotEntities {
			if nodes[e] {
				fail("attack incident holds %s, which belongs to benign activity", e)
			}
		}
		if !isSubsequence(exp.Attack.Stages, in.Stages) {
			fail("attack incident stages %v do not contain %v in order", in.Stages, exp.Attack.Stages)
		}
		for _, r := range exp.Attack.CorrelationRules {
			if !slices.Contains(in.RuleIDs, r) {
				fail("correlation rule %s did not contribute to the attack incident (rules %v)", r, in.RuleIDs)
			}
		}
	}
	for _, in := range incidents {
		if in.MergedInto != "" {
			continue
		}
		nodes := entitySet(in)
		for _, e := range exp.Benign.Entities {
			if nodes[e] && in.Severity > exp.Benign.MaxSeverity && !nodes[firstOr(exp.Attack.Entities)] {
				fail("benign %s is in incident %q of severity %s", e, in.Title, ocsf.SeverityName(in.Severity))
			}
		}
	}
	return strings.Join(sig, "\n")
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// entitySet returns the incident's entity nodes as "kind:value".
func entitySet(in correlate.Incident) map[string]bool {
	out := map[string]bool{}
	for _, n := range in.Nodes {
		if n.Kind == correlate.NodeEntity {
			out[string(n.Entity)+":"+n.Value] = true
		}
	}
	return out
}

// isSubsequence reports whether want appears in got in order.
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// firstDifference describes where two graph signatures first differ.
func firstDifference(a, b string) string {
	as, bs := strings.Split(a, ","), strings.Split(b, ",")
	for i := 0; i < min(len(as), len(bs)); i++ {
		if as[i] != bs[i] {
			return fmt.Sprintf("%q vs %q", as[i], bs[i])
		}
	}
	return fmt.Sprintf("%d vs %d elements", len(as), len(bs))
}
