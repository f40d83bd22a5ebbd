package main

import (
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
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/replay"
)

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
	exp, err := correlate.LoadExpectation(filepath.Join(dir, "expected.json"))
	if err != nil {
		fail("%v", err)
		return rep
	}
	files, err := replay.ReadFiles([]string{dir})
	if err != nil {
		fail("%v", err)
		return rep
	}
	var msgs []pipeline.Record
	for _, f := range files {
		src := ingest.Detect(f.Value)
		for _, part := range replay.SplitMessages(src, f.Value) {
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
		proc, err := replay.NewProcessor(offlineOptions(cfg, logger))
		if err != nil {
			fail("%v", err)
			return rep
		}
		batch := proc.Process(in)
		for _, dl := range batch.DeadLetters {
			fail("order %d: %s: %s: %s", order, dl.Topic, dl.Reason, dl.Error)
		}
		incidents := replay.LatestVersions(batch.Incidents)
		for _, p := range exp.Check(incidents) {
			fail("order %d: %s", order, p)
		}
		graph := graphSignature(incidents, exp.Attack.MinSeverity)
		if order == 0 {
			first = graph
		} else if graph != first {
			fail("order %d: the high-severity incident graphs differ from those of file order: %s", order, firstDifference(first, graph))
		}
	}
	rep.Pass = len(rep.Failures) == 0
	return rep
}

// graphSignature describes the open incidents of at least minSeverity —
// ids, entity nodes and edges — for comparing runs in different orders.
func graphSignature(incidents []incident.Incident, minSeverity int) string {
	var sig []string
	for _, in := range incidents {
		if in.MergedInto != "" || in.Severity < minSeverity {
			continue
		}
		var nodes, edges []string
		for _, n := range in.Nodes {
			if n.Kind == incident.NodeEntity {
				nodes = append(nodes, n.ID)
			}
		}
		for _, e := range in.Edges {
			edges = append(edges, e.Source+">"+e.Target+":"+e.Relation)
		}
		slices.Sort(nodes)
		slices.Sort(edges)
		sig = append(sig, in.ID+"|"+strings.Join(nodes, ",")+"|"+strings.Join(edges, ","))
	}
	slices.Sort(sig)
	return strings.Join(sig, "\n")
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
