package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/eval"
	"github.com/musubi-xdr/musubi/eval/gen"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/replay"
)

const evalUsage = `eval [-orders N] [-format text|json] [thresholds] DIR...
       eval -generate N [-seed S] -out DIR

Scores correlation quality. Every DIR holding an expected.json is a
scenario; other DIRs are walked for them. Each scenario's delivery files are
replayed through the offline pipeline of 'musubi replay' in file order and
in N-1 seeded shuffled orders, and scored against its ground truth: attack
recall, benign entities in high incidents, purity, alerts per attack
incident, unrelated attacks found on their own, order invariance. Exits 1
when a threshold is missed, and says which.

With -generate it writes N generated scenarios (cycling the attack
variants and benign days) under -out instead.`

func evalCommand(args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	flags := newFlagSet("eval", evalUsage, stdout, stderr)
	cf.register(flags, flagConfig|flagRules|flagLogLevel)
	def := eval.DefaultThresholds()
	orders := flags.Int("orders", 3, "replay orders per scenario: file order and orders-1 shuffled orders")
	shuffleSeed := flags.Uint64("shuffle-seed", 1, "seed of the shuffled orders")
	format := flags.String("format", "text", "text or json")
	generate := flags.Int("generate", 0, "write this many generated scenarios under -out instead of scoring")
	seed := flags.Uint64("seed", 1, "generator seed (with -generate)")
	out := flags.String("out", "", "output directory of -generate")
	th := eval.Thresholds{}
	flags.Float64Var(&th.MinRecall, "min-recall", def.MinRecall, "minimum attack recall")
	flags.IntVar(&th.MaxBenignInHigh, "max-benign-high", def.MaxBenignInHigh, "maximum benign entities in high incidents")
	flags.Float64Var(&th.MinPurity, "min-purity", def.MinPurity, "minimum purity of attack incidents")
	flags.Float64Var(&th.MaxMedianAlerts, "max-median-alerts", def.MaxMedianAlerts, "maximum median alerts per attack incident")
	flags.Float64Var(&th.MinUnrelatedRate, "min-unrelated", def.MinUnrelatedRate, "minimum share of unrelated attacks found on their own")
	flags.BoolVar(&th.RequireInvariant, "require-invariant", def.RequireInvariant, "require the same incidents in every order")
	if code, stop := flags.parse(args); stop {
		return code
	}
	if *generate > 0 {
		if *out == "" {
			fmt.Fprintln(stderr, "musubi eval: -generate needs -out DIR")
			return 2
		}
		return generateScenarios(*generate, *seed, *out, stdout, stderr)
	}
	if flags.NArg() == 0 || *orders < 1 || (*format != "text" && *format != "json") {
		return flags.usageError()
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "musubi eval: invalid configuration:\n%v\n", err)
		return 1
	}
	var dirs []string
	for _, a := range flags.Args() {
		if _, err := os.Stat(filepath.Join(a, "expected.json")); err == nil {
			dirs = append(dirs, a)
			continue
		}
		found, err := findScenarios(a)
		if err != nil || len(found) == 0 {
			fmt.Fprintf(stderr, "musubi eval: no scenarios under %s (%v)\n", a, err)
			return 1
		}
		dirs = append(dirs, found...)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var scores []eval.ScenarioScore
	for _, dir := range dirs {
		scores = append(scores, scoreScenario(dir, cfg, logger, *orders, *shuffleSeed))
	}
	card := eval.NewScorecard(scores, th)
	if *format == "json" {
		err = card.WriteJSON(stdout)
	} else {
		err = card.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "musubi eval: %v\n", err)
		return 1
	}
	if !card.Pass {
		return 1
	}
	return 0
}

// scoreScenario replays one scenario directory in every order through the
// offline pipeline of `musubi replay` and scores it.
func scoreScenario(dir string, base config.Config, logger *slog.Logger, orders int, seed uint64) eval.ScenarioScore {
	name := dir
	truth, err := eval.LoadTruth(filepath.Join(dir, "expected.json"))
	if err != nil {
		return eval.ScenarioScore{Name: name, Error: err.Error()}
	}
	files, err := replay.ReadFiles([]string{dir})
	if err != nil {
		return eval.ScenarioScore{Name: name, Error: err.Error()}
	}
	cfg := base
	cfg.Correlate.HubCIDRs = append(slices.Clone(base.Correlate.HubCIDRs), truth.HubIPs...)
	var runs []eval.Run
	for order := range orders {
		in := slices.Clone(files)
		if order > 0 {
			rng := rand.New(rand.NewPCG(seed, uint64(order)))
			rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		}
		proc, err := replay.NewProcessor(offlineOptions(cfg, logger))
		if err != nil {
			return eval.ScenarioScore{Name: name, Error: err.Error()}
		}
		runs = append(runs, evalRun(proc, in))
	}
	return eval.Score(name, truth, runs)
}

// evalRun processes the delivery files and keeps what the scorecard needs.
func evalRun(proc *pipeline.Processor, files []pipeline.Record) eval.Run {
	batch := proc.Process(files)
	run := eval.Run{Evidence: map[string][]string{}, DeadLetters: len(batch.DeadLetters)}
	for _, a := range batch.Alerts {
		run.Evidence[a.ID] = a.EventIDs
	}
	for _, in := range replay.LatestVersions(batch.Incidents) {
		if in.MergedInto != "" {
			continue
		}
		ei := eval.Incident{ID: in.ID, Severity: in.Severity, AlertIDs: in.AlertIDs}
		for _, n := range in.Nodes {
			ei.Entities = append(ei.Entities, n.ID)
		}
		run.Incidents = append(run.Incidents, ei)
	}
	return run
}

// generateScenarios writes n generated scenarios under dir.
func generateScenarios(n int, seed uint64, dir string, stdout, stderr io.Writer) int {
	scenarios, err := gen.Generate(n, seed)
	if err != nil {
		fmt.Fprintf(stderr, "musubi eval: generate: %v\n", err)
		return 1
	}
	records := 0
	for _, s := range scenarios {
		if err := s.Write(dir); err != nil {
			fmt.Fprintf(stderr, "musubi eval: %v\n", err)
			return 1
		}
		records += s.Records
	}
	fmt.Fprintf(stdout, "wrote %d scenarios (%d records) under %s\n", len(scenarios), records, dir)
	return 0
}
