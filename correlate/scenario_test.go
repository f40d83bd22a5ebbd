package correlate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

// The scenario test replays the raw source files of
// testdata/scenarios/attack-chain through ingest → detection rules
// (../detections) → correlation, in time order and in shuffled orders, and
// checks expected.json.

const scenarioDir = "../testdata/scenarios/attack-chain"

type signal struct {
	ev     ocsf.Event
	alerts []alert.Alert
}

// replayInputs decodes the scenario and runs the detection rules once.
func replayInputs(t testing.TB) ([]signal, Expectation) {
	t.Helper()
	var exp Expectation
	b, err := os.ReadFile(filepath.Join(scenarioDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load("../detections")
	if err != nil {
		t.Fatalf("detection rules: %v", err)
	}
	eng := rules.NewEngine(nil, nil)
	eng.Swap(set)
	files, _ := filepath.Glob(filepath.Join(scenarioDir, "*"))
	var out []signal
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	for _, f := range files {
		switch ext := filepath.Ext(f); {
		case filepath.Base(f) == "expected.json":
			continue
		case ext != ".json" && ext != ".jsonl" && ext != ".log":
			continue // the generator, notes
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		evs, errs := dec.Decode(ingest.Detect(data), data)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs[0])
		}
		for _, ev := range evs {
			out = append(out, signal{ev: ev, alerts: eng.Evaluate(&ev)})
		}
	}
	slices.SortStableFunc(out, func(a, b signal) int {
		if a.ev.Time != b.ev.Time {
			return int(a.ev.Time - b.ev.Time)
		}
		return 0
	})
	if len(out) < 50 {
		t.Fatalf("decoded %d events, want the whole scenario", len(out))
	}
	return out, exp
}

func replay(t testing.TB, c *Correlator, sigs []signal, rng *rand.Rand) final {
	sigs = slices.Clone(sigs)
	if rng != nil {
		rng.Shuffle(len(sigs), func(i, j int) { sigs[i], sigs[j] = sigs[j], sigs[i] })
	}
	f := final{}
	for len(sigs) > 0 {
		n := 1
		if rng != nil {
			n = 1 + rng.IntN(min(8, len(sigs)))
		}
		var evs []ocsf.Event
		var as []alert.Alert
		for _, s := range sigs[:n] {
			evs = append(evs, s.ev)
			as = append(as, s.alerts...)
		}
		sigs = sigs[n:]
		f.add(t, c.Process(evs, as))
	}
	return f
}

func scenarioConfig(exp Expectation) Config {
	cfg := DefaultConfig()
	cfg.HubIPs = append(cfg.HubIPs, exp.HubIPs...)
	return cfg
}

func checkScenario(t *testing.T, f final, exp Expectation) {
	t.Helper()
	for _, p := range exp.Check(f.open()) {
		t.Error(p)
	}
}

func TestScenarioAttackChain(t *testing.T) {
	sigs, exp := replayInputs(t)
	seq := loadScenarioRules(t)
	c, _ := newTest(t, scenarioConfig(exp), seq)
	checkScenario(t, replay(t, c, sigs, nil), exp)
}

// An expectation the incidents do not meet is reported, naming what is off.
func TestExpectationReportsMismatches(t *testing.T) {
	sigs, exp := replayInputs(t)
	c, _ := newTest(t, scenarioConfig(exp), loadScenarioRules(t))
	f := replay(t, c, sigs, nil)
	exp.HighIncidents++
	exp.Attack.Entities = append(exp.Attack.Entities, "ip:192.0.2.250")
	exp.Attack.NotEntities = append(exp.Attack.NotEntities, "host:web-1")
	want := []string{
		fmt.Sprintf("got 1 incidents of severity >= %d, want 2", exp.Attack.MinSeverity),
		"attack incident lacks entity ip:192.0.2.250",
		"attack incident holds host:web-1, which belongs to unrelated activity",
	}
	if got := exp.Check(f.open()); !slices.Equal(got, want) {
		t.Errorf("got problems %q, want %q", got, want)
	}
}

// Shuffled input gives the same incident graphs as ordered input. A file
// replay holds everything within its lateness, as `musubi replay` does.
func TestScenarioShuffled(t *testing.T) {
	sigs, exp := replayInputs(t)
	seq := loadScenarioRules(t)
	cfg := scenarioConfig(exp)
	cfg.AllowedLateness = 12 * time.Hour
	c, _ := newTest(t, cfg, seq)
	ordered := replay(t, c, sigs, nil)
	checkScenario(t, ordered, exp)
	want := fingerprint(t, ordered)
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	if n, err := strconv.Atoi(os.Getenv("MUSUBI_SEEDS")); err == nil {
		seeds = n
	}
	for seed := range uint64(seeds) {
		c, _ := newTest(t, cfg, seq)
		got := replay(t, c, sigs, rand.New(rand.NewPCG(seed, 42)))
		checkScenario(t, got, exp)
		if fp := fingerprint(t, got); fp != want {
			if dir := os.Getenv("MUSUBI_DEBUG_DIR"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, "want.json"), []byte(want), 0o644)
				_ = os.WriteFile(filepath.Join(dir, "got.json"), []byte(fp), 0o644)
			}
			t.Fatalf("seed %d: shuffled replay gives other incidents", seed)
		}
	}
}

// Sources arrive with their own delivery delays (CloudTrail ~12 minutes
// behind the agents, GuardDuty ~6, flow logs ~10): per-source watermarks
// keep every event on time under the default lateness, and the incidents
// are those of time-ordered input.
func TestScenarioSourceDelays(t *testing.T) {
	sigs, exp := replayInputs(t)
	seq := loadScenarioRules(t)
	delay := map[string]time.Duration{"cloudtrail": 12 * time.Minute, "guardduty": 6 * time.Minute, "vpcflow": 10 * time.Minute}
	arrival := func(s signal) int64 { return s.ev.Time + delay[s.ev.Metadata.LogName].Milliseconds() }
	delayed := slices.Clone(sigs)
	slices.SortStableFunc(delayed, func(a, b signal) int { return int(arrival(a) - arrival(b)) })
	c, _ := newTest(t, scenarioConfig(exp), seq)
	f := final{}
	late := 0
	for i := 0; i < len(delayed); i += 5 {
		var evs []ocsf.Event
		var as []alert.Alert
		for _, s := range delayed[i:min(i+5, len(delayed))] {
			evs = append(evs, s.ev)
			as = append(as, s.alerts...)
		}
		r := c.Process(evs, as)
		late += r.Late
		f.add(t, r)
	}
	if late != 0 {
		t.Errorf("%d events counted late although each source is in order", late)
	}
	checkScenario(t, f, exp)
	c2, _ := newTest(t, scenarioConfig(exp), seq)
	if got, want := fingerprint(t, f), fingerprint(t, replay(t, c2, sigs, nil)); got != want {
		t.Error("delayed sources give other incidents than time-ordered input")
	}
}
