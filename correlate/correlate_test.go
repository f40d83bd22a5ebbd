package correlate

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

func newTest(t testing.TB, cfg Config, seq []*SequenceRule) (*Correlator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := New(cfg, seq, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// final folds results into the latest version of every incident and drops
// the merged ones.
type final map[string]incident.Incident

func (f final) add(t testing.TB, r Result) {
	t.Helper()
	for _, in := range r.Incidents {
		if old, ok := f[in.ID]; ok && in.Version <= old.Version {
			t.Fatalf("incident %s: version %d after %d, want monotonic", in.ID, in.Version, old.Version)
		}
		f[in.ID] = in
	}
}

func (f final) open() []incident.Incident {
	var out []incident.Incident
	for _, in := range f {
		if in.MergedInto == "" {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b incident.Incident) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (f final) containing(alertID string) *incident.Incident {
	for _, in := range f.open() {
		if slices.Contains(in.AlertIDs, alertID) {
			return &in
		}
	}
	return nil
}

// fingerprint is everything of the open incidents except versions.
func fingerprint(t testing.TB, f final) string {
	t.Helper()
	var out []incident.Incident
	for _, in := range f.open() {
		in.Version = 0
		slices.SortFunc(in.Nodes, func(a, b incident.Node) int { return strings.Compare(a.ID, b.ID) })
		slices.SortFunc(in.Edges, func(a, b incident.Edge) int { return strings.Compare(a.ID, b.ID) })
		for i := range in.Edges {
			slices.Sort(in.Edges[i].EventIDs)
		}
		out = append(out, in)
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runInOrder(t testing.TB, c *Correlator, s story) final {
	f := final{}
	evs := slices.Clone(s.events)
	slices.SortStableFunc(evs, func(a, b ocsf.Event) int { return int(a.Time - b.Time) })
	for _, ev := range evs {
		var as []alert.Alert
		for _, a := range s.alerts {
			if a.EventIDs[0] == ev.Metadata.UID {
				as = append(as, a)
			}
		}
		f.add(t, c.Process([]ocsf.Event{ev}, as))
	}
	return f
}

// runShuffled feeds events and alerts in a random order and random batch
// sizes; an alert never arrives before its event's batch is done, as in
// the pipeline, unless loose is set.
func runShuffled(t testing.TB, c *Correlator, s story, rng *rand.Rand) final {
	type item struct {
		ev *ocsf.Event
		as []alert.Alert
	}
	items := make([]item, len(s.events))
	for i := range s.events {
		items[i].ev = &s.events[i]
		for _, a := range s.alerts {
			if a.EventIDs[0] == s.events[i].Metadata.UID {
				items[i].as = append(items[i].as, a)
			}
		}
	}
	rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	f := final{}
	for len(items) > 0 {
		n := 1 + rng.IntN(min(4, len(items)))
		var evs []ocsf.Event
		var as []alert.Alert
		for _, it := range items[:n] {
			evs = append(evs, *it.ev)
			as = append(as, it.as...)
		}
		items = items[n:]
		f.add(t, c.Process(evs, as))
	}
	return f
}

func TestAttackChainIsOneIncident(t *testing.T) {
	c, reg := newTest(t, testConfig(), nil)
	f := runInOrder(t, c, attackStory())

	attack := f.containing("a-web-sh")
	if attack == nil {
		t.Fatal("no incident holds the web shell alert")
	}
	for _, id := range []string{"a-web-file", "a-web-imds", "a-gd-exfil", "a-ct-list", "a-ct-appspec", "a-ct-bundle",
		"a-tgt-drop-1", "a-tgt-drop-2", "a-tgt-c2-1", "a-tgt-c2-2", "a-tgt-lock-1", "a-tgt-lock-2"} {
		if !slices.Contains(attack.AlertIDs, id) {
			t.Errorf("attack incident lacks alert %s; has %v", id, attack.AlertIDs)
		}
	}
	for _, id := range []string{"a-ci-put", "a-ci-hook-1", "a-ci-hook-2", "a-noise-alice", "a-noise-bob"} {
		if slices.Contains(attack.AlertIDs, id) {
			t.Errorf("attack incident holds unrelated alert %s", id)
		}
	}
	nodes := nodeIDs(attack)
	for _, want := range []string{"host:web-1", "instance:i-0web1", "access_key:" + asiaKey, "ip:" + attackerIP,
		"bucket:" + bucket, "deployment:d-ATTACK0001", "host:tgt-1", "host:tgt-2", "object:" + badObject} {
		if !slices.Contains(nodes, want) {
			t.Errorf("attack incident lacks node %s", want)
		}
	}
	if attack.Severity < ocsf.SeverityHigh {
		t.Errorf("attack severity = %d (risk %d), want high or critical", attack.Severity, attack.RiskScore)
	}
	wantStages := []string{"initial_access", "persistence", "credential_access", "discovery", "defense_evasion", "execution", "command_and_control", "impact"}
	if !slices.Equal(attack.Stages, wantStages) {
		t.Errorf("stages = %v, want %v", attack.Stages, wantStages)
	}
	// The deployment join is explained: a lineage edge through the
	// CreateDeployment event.
	var lineage bool
	for _, e := range attack.Edges {
		if e.Relation == RelLineage && strings.Contains(e.JoinKey, "deployment:d-ATTACK0001") && slices.Contains(e.EventIDs, "ct-deploy") {
			lineage = true
			if e.GapMS <= 0 {
				t.Errorf("lineage edge gap = %d, want > 0", e.GapMS)
			}
		}
	}
	if !lineage {
		t.Error("no lineage edge through the malicious deployment with the CreateDeployment event as evidence")
	}

	// The CI hooks share their deployment (a strong kind); the medium
	// upload reaches them only through the object, a weak kind, which the
	// low hooks may not join on: it stays apart, in every batch cut.
	ci := f.containing("a-ci-hook-1")
	if ci == nil || !slices.Contains(ci.AlertIDs, "a-ci-hook-2") {
		t.Fatalf("CI deployment hooks not grouped: %+v", ci)
	}
	if slices.Contains(ci.AlertIDs, "a-ci-put") {
		t.Errorf("got the CI upload joined with the low CI hooks through the object, want it apart")
	}
	for _, in := range []*incident.Incident{ci, f.containing("a-ci-put")} {
		if in.Severity >= ocsf.SeverityHigh {
			t.Errorf("legitimate CI deployment severity = %d (risk %d), want below high", in.Severity, in.RiskScore)
		}
	}
	if a, b := f.containing("a-noise-alice"), f.containing("a-noise-bob"); a == nil || b == nil || a.ID == b.ID {
		t.Error("users behind the shared NAT address were glued together")
	}
	var high int
	for _, in := range f.open() {
		if in.Severity >= ocsf.SeverityHigh {
			high++
		}
	}
	if high != 1 {
		t.Errorf("%d high or critical incidents, want 1", high)
	}
	if got := metricValue(t, reg, "musubi_correlate_open_incidents"); got != float64(c.OpenIncidents()) || got < 4 {
		t.Errorf("open incidents gauge = %v, want %d", got, c.OpenIncidents())
	}
	if got := metricValue(t, reg, "musubi_correlate_tracked_entities"); got != float64(c.TrackedEntities()) || got == 0 {
		t.Errorf("tracked entities gauge = %v, want %d", got, c.TrackedEntities())
	}
}

func TestShuffledInputGivesSameIncidents(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedLateness = 24 * time.Hour // any permutation is within lateness
	c, _ := newTest(t, cfg, nil)
	want := fingerprint(t, runInOrder(t, c, attackStory()))
	for seed := range uint64(25) {
		c, _ := newTest(t, cfg, nil)
		got := fingerprint(t, runShuffled(t, c, attackStory(), rand.New(rand.NewPCG(seed, 7))))
		if got != want {
			t.Fatalf("seed %d: shuffled input gives other incidents\n got %s\nwant %s", seed, got, want)
		}
	}
}

// Disorder within the allowed lateness, default windows: same incidents,
// and nothing counted late.
func TestBoundedDisorder(t *testing.T) {
	cfg := testConfig()
	c, _ := newTest(t, cfg, nil)
	want := fingerprint(t, runInOrder(t, c, attackStory()))
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		s := attackStory()
		jitter := make(map[string]int64)
		for _, ev := range s.events {
			jitter[ev.Metadata.UID] = ev.Time + rng.Int64N(cfg.AllowedLateness.Milliseconds())
		}
		slices.SortStableFunc(s.events, func(a, b ocsf.Event) int { return int(jitter[a.Metadata.UID] - jitter[b.Metadata.UID]) })
		c, _ := newTest(t, cfg, nil)
		f := final{}
		late := 0
		for _, ev := range s.events {
			var as []alert.Alert
			for _, a := range s.alerts {
				if a.EventIDs[0] == ev.Metadata.UID {
					as = append(as, a)
				}
			}
			r := c.Process([]ocsf.Event{ev}, as)
			late += r.Late
			f.add(t, r)
		}
		if got := fingerprint(t, f); got != want {
			t.Fatalf("seed %d: disorder within lateness gives other incidents", seed)
		}
		if late != 0 {
			t.Errorf("seed %d: %d events counted late, want 0", seed, late)
		}
	}
}

func TestBridgingAlertMergesIncidents(t *testing.T) {
	c, reg := newTest(t, testConfig(), nil)
	e1 := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIA1"))
	e2 := mkEvent("e2", "agent", time.Minute, ob(ocsf.EntityHost, "h1"))
	e3 := mkEvent("e3", "guardduty", 2*time.Minute, ob(ocsf.EntityAccessKey, "AKIA1"), ob(ocsf.EntityHost, "h1"))
	f := final{}
	f.add(t, c.Process([]ocsf.Event{e1}, []alert.Alert{mkAlert("x1", "r1", "discovery", 3, e1)}))
	f.add(t, c.Process([]ocsf.Event{e2}, []alert.Alert{mkAlert("x2", "r2", "execution", 3, e2)}))
	if len(f.open()) != 2 {
		t.Fatalf("%d incidents before the bridge, want 2", len(f.open()))
	}
	loserID := f.containing("x2").ID
	r := c.Process([]ocsf.Event{e3}, []alert.Alert{mkAlert("x3", "r3", "impact", 4, e3)})
	f.add(t, r)
	if len(r.Incidents) != 2 {
		t.Fatalf("bridge emitted %d incidents, want winner and loser", len(r.Incidents))
	}
	open := f.open()
	if len(open) != 1 || len(open[0].AlertIDs) != 3 {
		t.Fatalf("after the bridge: %d open incidents, want 1 with 3 alerts", len(open))
	}
	if got := f[loserID].MergedInto; got != open[0].ID {
		t.Errorf("loser MergedInto = %q, want %q", got, open[0].ID)
	}
	if open[0].ID != IncidentID(tenantA, "x1") {
		t.Errorf("merged incident id = %s, want the id of its earliest alert", open[0].ID)
	}
	if got := metricValue(t, reg, "musubi_correlate_merges_total"); got != 1 {
		t.Errorf("merges = %v, want 1", got)
	}
}

func TestLinkFromPlainEventMergesIncidents(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	e1 := mkEvent("e1", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "ASIA1"))
	e2 := mkEvent("e2", "agent", time.Minute, ob(ocsf.EntityHost, "h1"))
	link := mkEvent("e3", "agent", 2*time.Minute, ob(ocsf.EntityHost, "h1"), ob(ocsf.EntityInstance, "i-1"))
	link2 := mkEvent("e4", "cloudtrail", 3*time.Minute, ob(ocsf.EntityInstance, "i-1"), ob(ocsf.EntityAccessKey, "ASIA1"))
	f := final{}
	f.add(t, c.Process([]ocsf.Event{e1, e2}, []alert.Alert{mkAlert("x1", "r1", "discovery", 3, e1), mkAlert("x2", "r2", "execution", 3, e2)}))
	f.add(t, c.Process([]ocsf.Event{link}, nil))
	if len(f.open()) != 2 {
		t.Fatalf("one link of two: %d incidents, want 2", len(f.open()))
	}
	f.add(t, c.Process([]ocsf.Event{link2}, nil))
	if len(f.open()) != 1 {
		t.Fatalf("lineage host ↔ instance ↔ key: %d incidents, want 1", len(f.open()))
	}
}

func TestHubsDoNotGlue(t *testing.T) {
	cfg := testConfig()
	cfg.HubPartnerLimit = 3
	c, reg := newTest(t, cfg, nil)
	f := final{}
	// A shared role session seen with many keys becomes a hub.
	shared := "arn:aws:sts::1:assumed-role/common/sess"
	for i := range 6 {
		key := "AKIA" + string(rune('A'+i))
		e := mkEvent("e"+key, "cloudtrail", time.Duration(i)*time.Second, ob(ocsf.EntitySession, shared), ob(ocsf.EntityAccessKey, key))
		f.add(t, c.Process([]ocsf.Event{e}, nil))
	}
	a := mkEvent("a", "cloudtrail", time.Minute, ob(ocsf.EntityAccessKey, "AKIAE"))
	b := mkEvent("b", "cloudtrail", time.Minute, ob(ocsf.EntityAccessKey, "AKIAF"))
	svc := mkEvent("s1", "cloudtrail", time.Minute, ob(ocsf.EntityPrincipal, "codedeploy.amazonaws.com"), ob(ocsf.EntityAccount, "1"))
	svc2 := mkEvent("s2", "cloudtrail", time.Minute, ob(ocsf.EntityPrincipal, "codedeploy.amazonaws.com"), ob(ocsf.EntityAccount, "1"))
	f.add(t, c.Process([]ocsf.Event{a, b, svc, svc2}, []alert.Alert{
		mkAlert("xa", "r", "discovery", 3, a), mkAlert("xb", "r", "discovery", 3, b),
		mkAlert("xs1", "r", "discovery", 3, svc), mkAlert("xs2", "r", "discovery", 3, svc2),
	}))
	if n := len(f.open()); n != 4 {
		t.Errorf("%d incidents, want 4: hub session, service principal and account must not glue", n)
	}
	if got := metricValue(t, reg, "musubi_correlate_dropped_total", "reason", "hub"); got < 1 {
		t.Errorf("hub drops = %v, want ≥ 1", got)
	}
}

func TestWindowsSeparateIncidents(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	e1 := mkEvent("e1", "agent", 0, ob(ocsf.EntityHost, "h1"))
	e2 := mkEvent("e2", "agent", 3*time.Hour, ob(ocsf.EntityHost, "h1")) // host window is 2h
	f := final{}
	f.add(t, c.Process([]ocsf.Event{e1}, []alert.Alert{mkAlert("x1", "r", "execution", 3, e1)}))
	f.add(t, c.Process([]ocsf.Event{e2}, []alert.Alert{mkAlert("x2", "r", "execution", 3, e2)}))
	if n := len(f.open()); n != 2 {
		t.Errorf("%d incidents for sightings 3h apart, want 2", n)
	}
}

func TestLateEventsCountedAndAttached(t *testing.T) {
	c, reg := newTest(t, testConfig(), nil)
	now := mkEvent("e1", "agent", time.Hour, ob(ocsf.EntityHost, "h1"))
	late := mkEvent("e0", "agent", 0, ob(ocsf.EntityHost, "h1"))
	f := final{}
	f.add(t, c.Process([]ocsf.Event{now}, []alert.Alert{mkAlert("x1", "r", "execution", 3, now)}))
	r := c.Process([]ocsf.Event{late}, []alert.Alert{mkAlert("x0", "r", "initial_access", 3, late)})
	f.add(t, r)
	if r.Late != 1 {
		t.Errorf("Late = %d, want 1", r.Late)
	}
	if got := metricValue(t, reg, "musubi_correlate_late_events_total"); got != 1 {
		t.Errorf("late events metric = %v, want 1", got)
	}
	open := f.open()
	if len(open) != 1 || len(open[0].AlertIDs) != 2 {
		t.Fatalf("late alert not attached: %d incidents", len(open))
	}
	// The earlier alert arrived late: the incident is re-keyed to it and the
	// old id points at the new one.
	if open[0].ID != IncidentID(tenantA, "x0") {
		t.Errorf("id = %s, want the id of the earliest alert", open[0].ID)
	}
	if old := f[IncidentID(tenantA, "x1")]; old.MergedInto != open[0].ID {
		t.Errorf("old id MergedInto = %q, want %q", old.MergedInto, open[0].ID)
	}
}

func TestTenantsNeverMeet(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	e1 := mkEvent("e1", "agent", 0, ob(ocsf.EntityHost, "h1"))
	e2 := mkEvent("e2", "agent", time.Minute, ob(ocsf.EntityHost, "h1"))
	e2.Metadata.TenantUID = "other"
	f := final{}
	a2 := mkAlert("x2", "r", "execution", 3, e2)
	f.add(t, c.Process([]ocsf.Event{e1, e2}, []alert.Alert{mkAlert("x1", "r", "execution", 3, e1), a2}))
	if n := len(f.open()); n != 2 {
		t.Errorf("%d incidents across two tenants, want 2", n)
	}
}

func TestEvictionBoundsState(t *testing.T) {
	cfg := testConfig()
	cfg.Windows[ocsf.EntitySession], cfg.Windows[ocsf.EntityAccessKey] = 12*time.Hour, 12*time.Hour
	c, reg := newTest(t, cfg, nil)
	for i := range 200 {
		e := mkEvent("e", "agent", time.Duration(i)*10*time.Minute, ob(ocsf.EntityHost, "h"+string(rune('a'+i%26))+string(rune('a'+i/26))),
			ob(ocsf.EntityInstance, "i-"+string(rune('a'+i%26))+string(rune('a'+i/26))))
		c.Process([]ocsf.Event{e}, []alert.Alert{mkAlert("x"+e.Observables[0].Value, "r", "execution", 3, e)})
	}
	// Two entities every 10 minutes, host and instance windows of 2h.
	if n := c.TrackedEntities(); n > 2*14 {
		t.Errorf("tracked entities = %d, want only those of the last 2h", n)
	}
	// Incidents close when the longest window (12h) has passed.
	if n := c.OpenIncidents(); n > 75 {
		t.Errorf("open incidents = %d, want closed ones evicted", n)
	}
	r := c.Advance(t0.Add(48 * time.Hour))
	_ = r
	if n := c.TrackedEntities(); n != 0 {
		t.Errorf("tracked entities after the windows closed = %d, want 0", n)
	}
	if got := metricValue(t, reg, "musubi_correlate_tracked_entities"); got != 0 {
		t.Errorf("tracked entities gauge = %v, want 0", got)
	}
}

func TestRestore(t *testing.T) {
	s := attackStory()
	cfg := testConfig()
	c, _ := newTest(t, cfg, nil)
	// First half before the "crash".
	half := len(s.events) / 2
	sort := func(evs []ocsf.Event) {
		slices.SortStableFunc(evs, func(a, b ocsf.Event) int { return int(a.Time - b.Time) })
	}
	sort(s.events)
	first := story{events: s.events[:half]}
	rest := story{events: s.events[half:]}
	for _, a := range s.alerts {
		if slices.ContainsFunc(first.events, func(e ocsf.Event) bool { return e.Metadata.UID == a.EventIDs[0] }) {
			first.alerts = append(first.alerts, a)
		} else {
			rest.alerts = append(rest.alerts, a)
		}
	}
	f := runInOrder(t, c, first)
	stored := final{}
	for k, v := range f {
		stored[k] = v
	}
	// The correlator that takes the scope over held other state before:
	// Reset forgets it, Restore rebuilds the scope from what was stored.
	c2, _ := newTest(t, cfg, nil)
	other := mkEvent("other-1", "agent", 0, ob(ocsf.EntityHost, "elsewhere"), ob(ocsf.EntityInstance, "i-elsewhere"))
	c2.Process([]ocsf.Event{other}, []alert.Alert{mkAlert("other-a", "r-other", "execution", 3, other, "TA0002")})
	if c2.OpenIncidents() != 1 || c2.TrackedEntities() == 0 {
		t.Fatalf("the other state did not form: %d incidents, %d entities", c2.OpenIncidents(), c2.TrackedEntities())
	}
	if err := c2.Reset(); err != nil {
		t.Fatal(err)
	}
	if c2.OpenIncidents() != 0 || c2.TrackedEntities() != 0 {
		t.Fatalf("after Reset: %d incidents, %d entities, want none", c2.OpenIncidents(), c2.TrackedEntities())
	}
	c2.Restore(f.open(), first.alerts)
	if c2.OpenIncidents() != c.OpenIncidents() {
		t.Errorf("restored %d open incidents, want %d", c2.OpenIncidents(), c.OpenIncidents())
	}
	g := runInOrder(t, c2, rest)
	for k, v := range g {
		if old, ok := stored[k]; ok && v.Version <= old.Version {
			t.Errorf("incident %s: version %d after restore, want > %d", k, v.Version, old.Version)
		}
		stored[k] = v
	}
	attack := stored.containing("a-tgt-lock-2")
	if attack == nil || !slices.Contains(attack.AlertIDs, "a-web-sh") {
		t.Fatal("after restore the chain did not join the restored incident")
	}
	if attack.ID != IncidentID(tenantA, "a-web-sh") {
		t.Errorf("restored incident id changed")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := DefaultConfig()
	bad.DefaultWindow = 0
	bad.HubIPs = []string{"not-a-cidr"}
	bad.Windows = map[ocsf.Entity]time.Duration{"nope": time.Second}
	bad.MaxAlertsPerIncident = 0
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"default window", "not-a-cidr", `"nope"`, "max alerts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := New(bad, nil, nil, nil); err == nil {
		t.Error("New accepted an invalid config")
	}
}

func TestAlertCap(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAlertsPerIncident = 3
	c, _ := newTest(t, cfg, nil)
	f := final{}
	for i := range 7 {
		e := mkEvent("e", "agent", time.Duration(i)*time.Second, ob(ocsf.EntityHost, "h1"))
		f.add(t, c.Process([]ocsf.Event{e}, []alert.Alert{mkAlert("x"+string(rune('a'+i)), "r", "execution", 3, e)}))
	}
	for _, in := range f.open() {
		if len(in.AlertIDs) > 3 {
			t.Errorf("incident with %d alerts, cap 3", len(in.AlertIDs))
		}
	}
}

// An object is tied to the identity that wrote it, not to every reader.
func TestObjectLinksOnlyOnWrites(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	read := mkEvent("r", "cloudtrail", 0, ob(ocsf.EntityAccessKey, "AKIAREADER"), ob(ocsf.EntityObject, "b/appspec.yml"))
	read.API.Operation = "GetObject"
	write := mkEvent("w", "cloudtrail", time.Minute, ob(ocsf.EntityAccessKey, "ASIAWRITER"), ob(ocsf.EntityObject, "b/appspec.yml"))
	write.API.Operation = "PutObject"
	reader := mkEvent("ra", "cloudtrail", 2*time.Minute, ob(ocsf.EntityAccessKey, "AKIAREADER"))
	writer := mkEvent("wa", "cloudtrail", 2*time.Minute, ob(ocsf.EntityAccessKey, "ASIAWRITER"))
	deploy := mkEvent("d", "cloudtrail", 3*time.Minute, ob(ocsf.EntityObject, "b/appspec.yml"), ob(ocsf.EntityDeployment, "d-1"))
	hook := mkEvent("h", "agent", 4*time.Minute, ob(ocsf.EntityDeployment, "d-1"), ob(ocsf.EntityHost, "app-1"))
	f := final{}
	f.add(t, c.Process([]ocsf.Event{read, write, reader, writer, deploy, hook}, []alert.Alert{
		mkAlert("a-reader", "r", "discovery", 2, reader), mkAlert("a-writer", "r", "persistence", 4, writer),
		mkAlert("a-hook", "r", "execution", 4, hook),
	}))
	in := f.containing("a-hook")
	if in == nil || !slices.Contains(in.AlertIDs, "a-writer") {
		t.Fatal("hook alert not joined to the writer through object → deployment lineage")
	}
	if slices.Contains(in.AlertIDs, "a-reader") {
		t.Error("a reader of the object was glued to the deployment")
	}
}

func TestNodeCap(t *testing.T) {
	cfg := testConfig()
	cfg.MaxNodesPerIncident = 6
	c, reg := newTest(t, cfg, nil)
	f := final{}
	for i := range 4 {
		e := mkEvent("e", "agent", time.Duration(i)*time.Second, ob(ocsf.EntityHost, "h1"),
			ob(ocsf.EntityFile, "/tmp/f"+string(rune('a'+i))), ob(ocsf.EntityProcess, "h1:"+string(rune('1'+i))))
		f.add(t, c.Process([]ocsf.Event{e}, []alert.Alert{mkAlert("x"+string(rune('a'+i)), "r", "execution", 3, e)}))
	}
	open := f.open()
	if len(open) != 1 || len(open[0].AlertIDs) != 4 {
		t.Fatalf("got %d incidents, want 1 with 4 alerts", len(open))
	}
	if n := len(open[0].Nodes); n > 6 {
		t.Errorf("%d nodes, cap 6", n)
	}
	for _, e := range open[0].Edges {
		if !slices.ContainsFunc(open[0].Nodes, func(n incident.Node) bool { return n.ID == e.Source }) ||
			!slices.ContainsFunc(open[0].Nodes, func(n incident.Node) bool { return n.ID == e.Target }) {
			t.Errorf("edge %s → %s points outside the capped graph", e.Source, e.Target)
		}
	}
	if got := metricValue(t, reg, "musubi_correlate_dropped_total", "reason", "incident_node_cap"); got < 1 {
		t.Errorf("node cap drops = %v, want ≥ 1", got)
	}
}

// Storage restores only the alerts of the longest window; older alerts of
// an open incident come back from its own graph, so the incident keeps its
// id and every alert.
func TestRestoreWithoutOldAlerts(t *testing.T) {
	cfg := testConfig()
	c, _ := newTest(t, cfg, nil)
	e1 := mkEvent("e1", "agent", 0, ob(ocsf.EntityHost, "h1"), ob(ocsf.EntityInstance, "i-1"))
	e2 := mkEvent("e2", "agent", 90*time.Minute, ob(ocsf.EntityHost, "h1"))
	old, recent := mkAlert("x-old", "r1", "initial_access", 4, e1, "TA0001"), mkAlert("x-new", "r2", "execution", 3, e2, "TA0002")
	f := final{}
	f.add(t, c.Process([]ocsf.Event{e1}, []alert.Alert{old}))
	f.add(t, c.Process([]ocsf.Event{e2}, []alert.Alert{recent}))
	before := f.open()[0]

	// Round-trip through JSON, as storage does with the timeline.
	var stored []incident.Incident
	b, _ := json.Marshal(f.open())
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	c2, _ := newTest(t, cfg, nil)
	c2.Restore(stored, []alert.Alert{recent})
	e3 := mkEvent("e3", "agent", 100*time.Minute, ob(ocsf.EntityHost, "h1"))
	r := c2.Process([]ocsf.Event{e3}, []alert.Alert{mkAlert("x-3", "r3", "impact", 5, e3, "TA0040")})
	f.add(t, r)
	if len(r.Incidents) != 1 {
		t.Fatalf("emitted %d incidents, want the restored one", len(r.Incidents))
	}
	after := r.Incidents[0]
	if after.ID != before.ID {
		t.Errorf("incident re-keyed after restore: %s, want %s", after.ID, before.ID)
	}
	if !slices.Contains(after.AlertIDs, "x-old") || len(after.AlertIDs) != 3 {
		t.Errorf("alerts after restore = %v, want the old one kept", after.AlertIDs)
	}
	if !slices.Contains(after.Tactics, "TA0001") || after.FirstSeen != before.FirstSeen {
		t.Errorf("restored incident lost history: tactics %v, first seen %d", after.Tactics, after.FirstSeen)
	}
	if !slices.Contains(nodeIDs(&after), "instance:i-1") {
		t.Error("the old alert's entities were not restored")
	}
}

// Hosts that talk to the same service are not glued by its address; a
// host's own address and the address an API caller acted from do link.
func TestPeerAddressesDoNotLink(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	conn := func(uid, host, own string, d time.Duration) ocsf.Event {
		e := mkEvent(uid, "agent", d, ocsf.NewObservable(ocsf.EntityHost, "device.hostname", host),
			ocsf.NewObservable(ocsf.EntityIP, "device.ip", own), ocsf.NewObservable(ocsf.EntityIP, "dst_endpoint.ip", "10.0.0.5"))
		e.ClassUID = ocsf.ClassNetworkActivity
		return e
	}
	a, b := conn("c1", "h1", "10.0.1.1", 0), conn("c2", "h2", "10.0.1.2", time.Minute)
	ha := mkEvent("ha", "agent", 2*time.Minute, ob(ocsf.EntityHost, "h1"))
	hb := mkEvent("hb", "agent", 2*time.Minute, ob(ocsf.EntityHost, "h2"))
	// An API call from h2's own address by some key.
	api := mkEvent("api", "cloudtrail", 3*time.Minute, ocsf.NewObservable(ocsf.EntityIP, "src_endpoint.ip", "10.0.1.2"),
		ocsf.NewObservable(ocsf.EntityAccessKey, "actor.user.credential_uid", "ASIAH2"))
	api.ClassUID = ocsf.ClassAPIActivity
	ka := mkEvent("ka", "cloudtrail", 4*time.Minute, ob(ocsf.EntityAccessKey, "ASIAH2"))
	f := final{}
	f.add(t, c.Process([]ocsf.Event{a, b, ha, hb, api, ka}, []alert.Alert{
		mkAlert("xa", "r", "execution", 3, ha), mkAlert("xb", "r", "execution", 3, hb), mkAlert("xk", "r", "discovery", 3, ka),
	}))
	if x, y := f.containing("xa"), f.containing("xb"); x == nil || y == nil || x.ID == y.ID {
		t.Error("two hosts glued by the address of a service they both talk to")
	}
	if x, y := f.containing("xb"), f.containing("xk"); x == nil || y == nil || x.ID != y.ID {
		t.Error("a key used from a host's own address did not join the host (h2 ↔ 10.0.1.2 ↔ key)")
	}
}

// An address that becomes a hub only after it glued two incidents lets go
// of them: the result is the same as if it had been a hub from the start.
func TestLateHubSplitsWhatItGlued(t *testing.T) {
	cfg := testConfig()
	cfg.HubPartnerLimit = 4
	call := func(uid, user string, d time.Duration) ocsf.Event {
		e := mkEvent(uid, "cloudtrail", d, ocsf.NewObservable(ocsf.EntityPrincipal, "actor.user.uid", "arn:aws:iam::1:user/"+user),
			ocsf.NewObservable(ocsf.EntityIP, "src_endpoint.ip", "192.0.2.200"))
		e.ClassUID = ocsf.ClassAPIActivity
		return e
	}
	alertOn := func(uid, user string, d time.Duration) (ocsf.Event, alert.Alert) {
		e := mkEvent(uid, "cloudtrail", d, ocsf.NewObservable(ocsf.EntityPrincipal, "actor.user.uid", "arn:aws:iam::1:user/"+user))
		return e, mkAlert("x-"+user, "r", "discovery", 3, e)
	}
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	run := func(alertsFirst bool) final {
		c, _ := newTest(t, cfg, nil)
		f := final{}
		noise := func() {
			for i, u := range users {
				f.add(t, c.Process([]ocsf.Event{call("n-"+u, u, time.Duration(i)*time.Second)}, nil))
			}
		}
		alerts := func() {
			for _, u := range users[:2] {
				e, a := alertOn("a-"+u, u, time.Minute)
				f.add(t, c.Process([]ocsf.Event{e}, []alert.Alert{a}))
			}
		}
		if alertsFirst {
			// The first two callers, their alerts, then the rest of the
			// office: the address glues alice and bob until it turns hub.
			for i, u := range users[:2] {
				f.add(t, c.Process([]ocsf.Event{call("n-"+u, u, time.Duration(i)*time.Second)}, nil))
			}
			alerts()
			if got := len(f.open()); got != 1 {
				t.Fatalf("before the address is a hub: %d incidents, want 1 (glued)", got)
			}
			noise()
		} else {
			noise()
			alerts()
		}
		return f
	}
	glued, clean := run(true), run(false)
	if n := len(clean.open()); n != 2 {
		t.Fatalf("hub known first: %d incidents, want 2", n)
	}
	if got, want := fingerprint(t, glued), fingerprint(t, clean); got != want {
		t.Errorf("late hub left other incidents than an early one\n got %s\nwant %s", got, want)
	}
}

// An incident evicted from memory and rebuilt later (a replayed alert)
// still gets a higher version, so storage keeps the newer row.
func TestVersionsGrowAfterEviction(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	e := mkEvent("e1", "agent", 0, ob(ocsf.EntityHost, "h1"))
	a := mkAlert("x1", "r", "execution", 3, e)
	first := c.Process([]ocsf.Event{e}, []alert.Alert{a}).Incidents[0]
	c.Advance(t0.Add(96 * time.Hour))
	if c.OpenIncidents() != 0 {
		t.Fatal("incident not evicted")
	}
	r := c.Process([]ocsf.Event{e}, []alert.Alert{a})
	if len(r.Incidents) != 1 || r.Incidents[0].ID != first.ID {
		t.Fatalf("replayed alert gave %+v, want the same incident id", r.Incidents)
	}
	if r.Incidents[0].Version <= first.Version {
		t.Errorf("version %d after eviction, want > %d", r.Incidents[0].Version, first.Version)
	}
}

// TestIncidentEmittedBeforeEviction feeds one batch whose events span more
// than the longest window: an incident created early in the batch closes
// before the batch ends, and must still be emitted (once with its alert)
// before it is forgotten — as must the incident another merged into. A
// batch like this is a replay's chunk or a backlog serve catches up on.
func TestIncidentEmittedBeforeEviction(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	e1 := mkEvent("e1", "agent", 0, ob(ocsf.EntityHost, "h1"))
	e2 := mkEvent("e2", "agent", time.Minute, ob(ocsf.EntityHost, "h2"))
	e3 := mkEvent("e3", "agent", 2*time.Minute, ob(ocsf.EntityHost, "h1"), ob(ocsf.EntityHost, "h2"))
	late := mkEvent("e4", "agent", 96*time.Hour, ob(ocsf.EntityHost, "h9"))
	res := c.Process([]ocsf.Event{e1, e2, e3, late}, []alert.Alert{
		mkAlert("x1", "r", "execution", 3, e1), mkAlert("x2", "r", "execution", 3, e2), mkAlert("x3", "r", "execution", 3, e3),
	})
	f := final{}
	f.add(t, res)
	f.add(t, c.Advance(t0.Add(200*time.Hour)))
	open := f.open()
	if len(open) != 1 || len(open[0].AlertIDs) != 3 {
		t.Fatalf("got %d open incidents %+v, want one with the three alerts", len(open), open)
	}
	for _, in := range f {
		if in.Status == "merged" && in.MergedInto == "" {
			t.Errorf("incident %s merged into nothing", in.ID)
		}
	}
}

// Only the partners an address was linked with within the window make it
// a hub: a partner long gone may or may not have been evicted yet,
// depending on how far the watermark moved, that is on how the input was
// cut into batches; it must count the same (not at all) either way.
func TestHubPartnersCountWithinWindow(t *testing.T) {
	cfg := testConfig()
	cfg.HubPartnerLimit = 3
	cfg.Windows[ocsf.EntityPrincipal] = 30 * time.Minute
	call := func(user string, d time.Duration) ocsf.Event {
		e := mkEvent("n-"+user, "cloudtrail", d, ocsf.NewObservable(ocsf.EntityPrincipal, "actor.user.uid", "arn:aws:iam::1:user/"+user),
			ocsf.NewObservable(ocsf.EntityIP, "src_endpoint.ip", "192.0.2.200"))
		e.ClassUID = ocsf.ClassAPIActivity
		return e
	}
	// Three callers at midnight, two more after the principals' window.
	events := []ocsf.Event{call("alice", 0), call("bob", time.Second), call("carol", 2*time.Second),
		call("dave", 90*time.Minute), call("erin", 2*time.Hour)}
	hubs := func(batches [][]ocsf.Event) float64 {
		c, reg := newTest(t, cfg, nil)
		for _, b := range batches {
			c.Process(b, nil)
		}
		return metricValue(t, reg, "musubi_correlate_dropped_total", "reason", "hub")
	}
	var single [][]ocsf.Event
	for _, e := range events {
		single = append(single, []ocsf.Event{e})
	}
	one, each := hubs([][]ocsf.Event{events}), hubs(single)
	if one != each || one != 0 {
		t.Errorf("hubs: %v in one batch, %v in batches of one event; want 0 in both: at most two partners were linked within the window", one, each)
	}
}
