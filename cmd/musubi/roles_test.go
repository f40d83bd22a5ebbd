package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/eval/gen"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/replay"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
)

const chainDir = "../../testdata/scenarios/attack-chain"

// The three AWS accounts of one tenant the attack chain is spread over, as
// an AWS Organization runs it: the web workload (the scenario's own
// account), the CI/CD account that holds the artifact bucket and the
// CodeDeploy application, and the workload account of the app hosts.
const (
	accountWeb  = "111122223333"
	accountCICD = "444455556666"
	accountApp  = "777788889999"
)

// chainRecord is one raw record of the attack chain with its source, AWS
// account (after the spread) and earliest event time.
type chainRecord struct {
	source  ingest.Source
	value   []byte
	account string
	time    int64
}

// threeAccountChain splits the attack-chain scenario into one record per
// CloudTrail record or line, ordered by event time, and moves each record
// to the account that would log it in a three-account organization:
// S3, CodeDeploy and CodePipeline calls to the CI/CD account, the app
// hosts' telemetry to the app account, the rest (the web host, its
// instance's credentials, flow logs, GuardDuty) stays in the web account.
// Every account number in the record is rewritten, so principal and
// session ARNs differ between accounts as they would: what joins the chain
// across accounts is the instance, key, address, bucket, object and
// deployment — the entities, not the account.
func threeAccountChain(t testing.TB) []chainRecord {
	t.Helper()
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	var out []chainRecord
	for _, part := range scenarioParts(t, chainDir) {
		f, src, p := part.file, part.source, part.value
		account := accountWeb
		s := string(p)
		switch {
		case src == ingest.SourceCloudTrail && (strings.Contains(s, `"s3.amazonaws.com"`) || strings.Contains(s, `"codedeploy.amazonaws.com"`) || strings.Contains(s, `"codepipeline.amazonaws.com"`)):
			account = accountCICD
		case (src == ingest.SourceAgent || src == ingest.SourceFalco) && (strings.Contains(s, `"app-1"`) || strings.Contains(s, `"app-2"`)):
			account = accountApp
		}
		p = []byte(strings.ReplaceAll(s, accountWeb, account))
		evs, errs := dec.Decode(src, p)
		if len(errs) > 0 || len(evs) == 0 {
			t.Fatalf("%s: %d events, errors %v", f, len(evs), errs)
		}
		r := chainRecord{source: src, value: p, account: account, time: evs[0].Time}
		for _, e := range evs {
			r.time = min(r.time, e.Time)
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b chainRecord) int { return int(a.time - b.time) })
	return out
}

// scenarioPart is one message of a scenario directory, as its source
// would publish it.
type scenarioPart struct {
	file   string
	source ingest.Source
	value  []byte
}

// scenarioParts reads the record files of a scenario directory (not its
// expected.json) as messages: CloudTrail records one by one, line files
// line by line.
func scenarioParts(t testing.TB, dir string) []scenarioPart {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var out []scenarioPart
	for _, f := range files {
		if filepath.Base(f) == "expected.json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := ingest.Detect(data)
		if src != ingest.SourceCloudTrail {
			for _, p := range replay.SplitMessages(src, data) {
				out = append(out, scenarioPart{f, src, p})
			}
			continue
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, r := range doc.Records {
			out = append(out, scenarioPart{f, src, r})
		}
	}
	return out
}

// threeAccountConfig is the engine configuration of the spread chain: one
// tenant owns the three accounts (another tenant exists beside it), and
// the scenario's shared addresses are hubs.
func threeAccountConfig(t testing.TB) config.Config {
	t.Helper()
	exp, err := correlate.LoadExpectation(filepath.Join(chainDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Rules.Dir, _ = filepath.Abs("../../detections")
	cfg.Correlate.HubCIDRs = exp.HubIPs
	cfg.Tenants = []config.Tenant{
		{ID: "acme", Name: "Acme", Accounts: []string{accountWeb, accountCICD, accountApp}},
		{ID: "other", Name: "Other", Accounts: []string{"*"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// roleStages builds what one process of a role builds: a rule engine and a
// correlator of cfg, and the processor the role runs.
func roleStages(t testing.TB, cfg config.Config, role string) (*pipeline.Processor, *correlate.Correlator) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	set, seq := loadedRules(t, cfg.Rules.Dir)
	eng := rules.NewEngine(nil, logger)
	eng.Swap(set)
	corr, err := correlate.New(cfg.CorrelateConfig(), seq, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.NewProcessor(ingest.NewDecoder(cfg.Ingest), eng, corr, tenantFunc(cfg.Tenants), false, logger, nil)
	switch role {
	case config.RoleDetect:
		p.Detect(corr.Needs, func(ev *ocsf.Event) ocsf.Event { return corr.LinkSignal(ev) })
	case config.RoleCorrelate:
		p.ReadSignals(corr.ProcessInput)
	}
	return p, corr
}

// loadedRules loads a rule directory's detection and correlation rules
// once per test binary: compiled rules are read-only, each process's
// engine and correlator keep their own state.
var loadedRules = func() func(testing.TB, string) (*rules.Set, []*correlate.SequenceRule) {
	type loaded struct {
		set *rules.Set
		seq []*correlate.SequenceRule
	}
	var mu sync.Mutex
	cache := map[string]loaded{}
	return func(t testing.TB, dir string) (*rules.Set, []*correlate.SequenceRule) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if l, ok := cache[dir]; ok {
			return l.set, l.seq
		}
		set, err := rules.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := correlate.LoadRules(dir)
		if err != nil {
			t.Fatal(err)
		}
		cache[dir] = loaded{set, seq}
		return set, seq
	}
}()

// outcome is what a run stored, folded by id as ClickHouse folds it: the
// latest version of each incident and each alert.
type outcome struct {
	incidents map[string]incident.Incident
	alerts    map[string]string // id → count, severity and summary
	events    int
}

func newOutcome() *outcome {
	return &outcome{incidents: map[string]incident.Incident{}, alerts: map[string]string{}}
}

func (o *outcome) add(b storage.Batch) {
	for _, in := range b.Incidents {
		if old, ok := o.incidents[in.ID]; !ok || in.Version >= old.Version {
			o.incidents[in.ID] = in
		}
	}
	for _, a := range b.Alerts {
		o.alerts[a.ID] = fmt.Sprintf("count %d, severity %d, %s", a.Count, a.Severity, a.Summary)
	}
	o.events += len(b.Events)
}

// summary is an incident as a user sees it, without its version (a wall
// clock) or update times.
func summary(in incident.Incident) string {
	var nodes []string
	for _, n := range in.Nodes {
		nodes = append(nodes, n.ID)
	}
	slices.Sort(nodes)
	alerts := slices.Sorted(slices.Values(in.AlertIDs))
	return fmt.Sprintf("tenant %s, %q, severity %d, merged into %q, seen %d..%d, stages %v, rules %v, accounts %v, alerts %v, nodes %v, edges %d",
		in.TenantUID, in.Title, in.Severity, in.MergedInto, in.FirstSeen, in.LastSeen, in.Stages, in.RuleIDs, in.Accounts, alerts, nodes, len(in.Edges))
}

// TestSplitRolesMatchAll runs a stream through `-role all`'s processor,
// and through two detect processors (each given the records of its own
// accounts, as partitions keyed by account reach different detect
// processes) whose signals a correlate processor reads, each detect
// batch's signals as one batch, as a consumer reading the signals topic
// behind the detect processes takes them. (The correlator's results
// depend on where batches begin and end when a batch brings both an alert
// and the link that explains it; that holds for -role all's fetches too,
// so the batches are aligned to compare like with like.) What the split
// roles store — events, alerts and incidents, folded
// by id — and the correlator's entity-link graph must equal those of
// `-role all`. Streams: the attack chain spread over three accounts of one
// tenant, which must be one high incident with every expected entity, and
// generated days of the cross-account pipeline variant (a CI/CD account
// deploying into a workload account, with benign noise).
func TestSplitRolesMatchAll(t *testing.T) {
	t.Run("attack chain over three accounts", func(t *testing.T) {
		cfg := threeAccountConfig(t)
		recs := threeAccountChain(t)
		got := checkSplitMatchesAll(t, cfg, recs, func(r chainRecord) bool { return r.account == accountWeb })
		exp, err := correlate.LoadExpectation(filepath.Join(chainDir, "expected.json"))
		if err != nil {
			t.Fatal(err)
		}
		high := 0
		for _, in := range got.incidents {
			if in.MergedInto != "" || in.Severity < ocsf.SeverityHigh {
				continue
			}
			high++
			var nodes []string
			for _, n := range in.Nodes {
				nodes = append(nodes, n.ID)
			}
			for _, e := range exp.Attack.Entities {
				if !slices.Contains(nodes, e) {
					t.Errorf("the attack incident lacks %s", e)
				}
			}
			if acc := slices.Sorted(slices.Values(in.Accounts)); !slices.Equal(acc, []string{accountWeb, accountCICD, accountApp}) {
				t.Errorf("the attack incident spans accounts %v, want the three", acc)
			}
		}
		if high != 1 {
			t.Errorf("got %d high or critical incidents, want 1", high)
		}
	})
	for _, seed := range []uint64{6} {
		t.Run(fmt.Sprintf("generated cross-account pipeline seed %d", seed), func(t *testing.T) {
			cfg := threeAccountConfig(t)
			cfg.Tenants = []config.Tenant{{ID: "acme", Name: "Acme", Accounts: []string{"*"}}}
			recs := generatedRecords(t, gen.VariantCrossAccount, seed)
			accounts := map[string]bool{}
			for _, r := range recs {
				accounts[r.account] = true
			}
			if len(accounts) < 2 {
				t.Fatalf("the generated day spans accounts %v, want several", accounts)
			}
			first := slices.Sorted(maps.Keys(accounts))[0]
			checkSplitMatchesAll(t, cfg, recs, func(r chainRecord) bool { return r.account == first })
		})
	}
}

// generatedRecords is one generated scenario day as raw records: each
// CloudTrail delivery file and each line of the line sources, ordered by
// event time, with the account of its first event.
func generatedRecords(t testing.TB, v gen.Variant, seed uint64) []chainRecord {
	t.Helper()
	sc, err := gen.Build(v, seed)
	if err != nil {
		t.Fatal(err)
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	var out []chainRecord
	for _, f := range sc.Files {
		src := ingest.Detect(f.Data)
		parts := [][]byte{f.Data}
		if src != ingest.SourceCloudTrail {
			parts = replay.SplitMessages(src, f.Data)
		}
		for _, p := range parts {
			evs, _ := dec.Decode(src, p)
			r := chainRecord{source: src, value: p}
			if len(evs) > 0 {
				r.account, r.time = evs[0].Cloud.Account.UID, evs[0].Time
				for _, e := range evs {
					r.time = min(r.time, e.Time)
				}
			}
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b chainRecord) int { return int(a.time - b.time) })
	return out
}

// checkSplitMatchesAll runs recs through -role all and through the split
// roles (detect process A takes the records toA says, B the others) and
// reports every difference; it returns what the split roles stored.
func checkSplitMatchesAll(t *testing.T, cfg config.Config, recs []chainRecord, toA func(chainRecord) bool) *outcome {
	t.Helper()
	const batch = 16
	batches := func(rs []pipeline.Record, n int) [][]pipeline.Record {
		var out [][]pipeline.Record
		for len(rs) > 0 {
			k := min(n, len(rs))
			out = append(out, rs[:k])
			rs = rs[k:]
		}
		return out
	}
	var raw []pipeline.Record
	for i, r := range recs {
		raw = append(raw, pipeline.Record{Source: r.source, Topic: "raw." + string(r.source), Offset: int64(i), Value: r.value})
	}

	var partA, partB []pipeline.Record
	for i, r := range recs {
		if toA(r) {
			partA = append(partA, raw[i])
		} else {
			partB = append(partB, raw[i])
		}
	}
	// The partitions' batches in the order a consumer takes them: -role
	// all reads them in this order, and the detect processes take turns
	// batch by batch, each in its own event-time order, as two consumers
	// of one group do.
	ba, bb := batches(partA, batch), batches(partB, batch)
	type turn struct {
		a    bool
		recs []pipeline.Record
	}
	var turns []turn
	for i := 0; i < max(len(ba), len(bb)); i++ {
		if i < len(ba) {
			turns = append(turns, turn{true, ba[i]})
		}
		if i < len(bb) {
			turns = append(turns, turn{false, bb[i]})
		}
	}

	all, allCorr := roleStages(t, cfg, config.RoleAll)
	want := newOutcome()
	for _, tn := range turns {
		want.add(all.Process(tn.recs))
	}

	detA, _ := roleStages(t, cfg, config.RoleDetect)
	detB, _ := roleStages(t, cfg, config.RoleDetect)
	tenants := map[string]bool{}
	for _, tn := range cfg.Tenants {
		tenants[tn.ID] = true
	}
	got := newOutcome()
	var signals []pipeline.Record
	var sigTurns [][]pipeline.Record
	publish := func(p *pipeline.Processor, b []pipeline.Record) {
		got.add(p.Process(b))
		n0 := len(signals)
		defer func() { sigTurns = append(sigTurns, signals[n0:]) }()
		for _, s := range p.TakeSignals() {
			if !tenants[s.Tenant] {
				t.Errorf("a signal keyed by %q, which is no tenant", s.Tenant)
			}
			signals = append(signals, pipeline.Record{Source: sourceSignals, Topic: "signals", Offset: int64(len(signals)), Value: s.Value})
		}
	}
	for _, tn := range turns {
		if tn.a {
			publish(detA, tn.recs)
		} else {
			publish(detB, tn.recs)
		}
	}
	if len(got.alerts) != 0 {
		t.Errorf("the detect role stored %d alerts, want none (the correlate role stores them, folded)", len(got.alerts))
	}
	cor, corCorr := roleStages(t, cfg, config.RoleCorrelate)
	for _, b := range sigTurns {
		got.add(cor.Process(b))
	}

	if got.events != want.events {
		t.Errorf("split roles stored %d events, -role all %d", got.events, want.events)
	}
	if g, w := corCorr.TrackedEntities(), allCorr.TrackedEntities(); g != w {
		t.Errorf("the correlate role's link graph holds %d entities, -role all's %d", g, w)
	}
	for id, w := range want.alerts {
		if g, ok := got.alerts[id]; !ok {
			t.Errorf("alert %s (%s) of -role all is missing from the split roles", id, w)
		} else if g != w {
			t.Errorf("alert %s: split roles %s, -role all %s", id, g, w)
		}
	}
	for id, g := range got.alerts {
		if _, ok := want.alerts[id]; !ok {
			t.Errorf("alert %s (%s) of the split roles is not one of -role all", id, g)
		}
	}
	for id, w := range want.incidents {
		g, ok := got.incidents[id]
		if !ok {
			t.Errorf("incident %s of -role all is missing from the split roles: %s", id, summary(w))
			continue
		}
		if summary(g) != summary(w) {
			t.Errorf("incident %s:\n split roles %s\n -role all   %s", id, summary(g), summary(w))
		}
	}
	for id, g := range got.incidents {
		if _, ok := want.incidents[id]; !ok {
			t.Errorf("incident %s of the split roles is not one of -role all: %s", id, summary(g))
		}
	}
	items, bytes := 0, 0
	for _, s := range signals {
		sig, err := pipeline.DecodeSignal(s.Value)
		if err != nil {
			t.Fatalf("signal %d: %v", s.Offset, err)
		}
		items += sig.Items()
		bytes += len(s.Value)
	}
	rawBytes := 0
	for _, r := range recs {
		rawBytes += len(r.value)
	}
	t.Logf("%d raw records (%d bytes), %d events: %d signal messages carrying %d signals, %d bytes; %d incidents, %d alerts", len(recs), rawBytes, want.events, len(signals), items, bytes, len(want.incidents), len(want.alerts))
	return got
}

// BenchmarkDetectSignals runs the detect role's processor over what
// `musubi demo` publishes (testdata/scenarios, split into messages as the
// demo splits them, in batches of pipeline.batch_size) and reports what it
// publishes: signals per event and per raw record, signal bytes per raw
// byte, and messages. Each iteration starts a fresh processor (rule
// suppression state is per process).
func BenchmarkDetectSignals(b *testing.B) {
	files, err := replay.ReadFiles([]string{"../../testdata/scenarios"})
	if err != nil {
		b.Fatal(err)
	}
	var recs []pipeline.Record
	rawBytes := 0
	for _, f := range files {
		src := ingest.Detect(f.Value)
		if _, ok := config.Default().Kafka.Topics[string(src)]; !ok {
			continue
		}
		for _, part := range replay.SplitMessages(src, f.Value) {
			recs = append(recs, pipeline.Record{Source: src, Value: part})
			rawBytes += len(part)
		}
	}
	cfg := config.Default()
	cfg.Rules.Dir, _ = filepath.Abs("../../detections")
	batch := cfg.Pipeline.BatchSize
	var events, items, sigBytes, msgs int
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p, _ := roleStages(b, cfg, config.RoleDetect)
		events, items, sigBytes, msgs = 0, 0, 0, 0
		b.StartTimer()
		for i := 0; i < len(recs); i += batch {
			out := p.Process(recs[i:min(i+batch, len(recs))])
			events += len(out.Events)
			for _, s := range p.TakeSignals() {
				items += s.Items
				sigBytes += len(s.Value)
				msgs++
			}
		}
	}
	b.ReportMetric(float64(len(recs)), "records")
	b.ReportMetric(float64(events), "events")
	b.ReportMetric(float64(items)/float64(events), "signals/event")
	b.ReportMetric(float64(items)/float64(len(recs)), "signals/record")
	b.ReportMetric(float64(sigBytes)/float64(rawBytes), "signal-B/raw-B")
	b.ReportMetric(float64(sigBytes)/float64(events), "signal-B/event")
	b.ReportMetric(float64(msgs), "messages")
}
