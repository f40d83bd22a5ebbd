package correlate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
)

// ransomRun is one ransomware run on a host: n renames by one process, one
// alert each, a second apart from start.
func ransomRun(host string, start time.Duration, n int) []alert.Alert {
	var out []alert.Alert
	for i := range n {
		ev := mkEvent(fmt.Sprintf("ev-%s-%d", host, i), "agent", start+time.Duration(i)*time.Second,
			ob(ocsf.EntityHost, host), ob(ocsf.EntityProcess, host+":6210"),
			ocsf.NewObservable(ocsf.EntityFile, "file.path", fmt.Sprintf("/srv/data/f%03d.db.locked", i)))
		out = append(out, mkAlert(fmt.Sprintf("raw-%s-%d", host, i), "host.ransomware_file_renamed", "impact", 5, ev))
	}
	return out
}

func foldConfig() Config {
	cfg := testConfig()
	cfg.FoldWindow = time.Hour
	return cfg
}

// folded returns the detection alerts of the open incidents' latest
// versions as stored: the last version of each alert in the results.
func foldedAlerts(results []Result) map[string]alert.Alert {
	out := map[string]alert.Alert{}
	for _, r := range results {
		for _, a := range r.Alerts {
			out[a.ID] = a
		}
	}
	return out
}

func TestRepeatsFoldIntoOneAlert(t *testing.T) {
	c, _ := newTest(t, foldConfig(), nil)
	run := ransomRun("app-1", 0, 50)
	var results []Result
	for i := 0; i < len(run); i += 7 {
		results = append(results, c.Process(nil, run[i:min(i+7, len(run))]))
	}
	alerts := foldedAlerts(results)
	if len(alerts) != 1 {
		t.Fatalf("got %d stored alerts, want 1 folded alert", len(alerts))
	}
	var a alert.Alert
	for _, x := range alerts {
		a = x
	}
	if a.Count != 50 || a.FirstSeen != run[0].Time || a.LastSeen != run[49].Time || a.Time != a.FirstSeen {
		t.Errorf("got count %d, first %d, last %d, time %d; want 50, %d, %d, the first", a.Count, a.FirstSeen, a.LastSeen, a.Time, run[0].Time, run[49].Time)
	}
	if len(a.EventIDs) != maxFoldSample || a.EventIDs[0] != "ev-app-1-0" || a.EventIDs[len(a.EventIDs)-1] != "ev-app-1-49" {
		t.Errorf("got evidence sample %v, want the 5 earliest and the 5 latest", a.EventIDs)
	}
	files := 0
	for _, o := range a.Entities {
		if o.Entity == ocsf.EntityFile {
			files++
		}
	}
	if files != 1+maxFoldExtra {
		t.Errorf("got %d file entities, want the first match's and %d more", files, maxFoldExtra)
	}
	f := final{}
	for _, r := range results {
		f.add(t, r)
	}
	open := f.open()
	if len(open) != 1 || len(open[0].AlertIDs) != 1 {
		t.Fatalf("got %d incidents, want one with one alert", len(open))
	}
	in := open[0]
	if in.Timeline[0].Count != 50 || in.LastSeen != run[49].Time {
		t.Errorf("got timeline count %d, incident last seen %d; want 50 and the last repeat's time", in.Timeline[0].Count, in.LastSeen)
	}
	for _, n := range in.Nodes {
		if n.Kind == incident.NodeAlert && !strings.HasSuffix(n.Title, "(×50)") {
			t.Errorf("got alert node title %q, want the count", n.Title)
		}
	}
}

func TestFoldingIsOrderFree(t *testing.T) {
	run := append(ransomRun("app-1", 0, 30), ransomRun("app-2", 10*time.Second, 30)...)
	want := ""
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 20 {
		c, _ := newTest(t, foldConfig(), nil)
		in := slices.Clone(run)
		if round > 0 {
			rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		}
		var results []Result
		for i := 0; i < len(in); i += 5 {
			results = append(results, c.Process(nil, in[i:min(i+5, len(in))]))
		}
		alerts := foldedAlerts(results)
		var got []string
		for _, a := range alerts {
			slices.SortFunc(a.Entities, func(x, y ocsf.Observable) int { return strings.Compare(x.Value, y.Value) })
			got = append(got, fmt.Sprint(a.ID, a.Count, a.FirstSeen, a.LastSeen, a.EventIDs, a.Title, len(a.Entities)))
		}
		slices.Sort(got)
		s := strings.Join(got, "\n")
		if len(alerts) != 2 {
			t.Fatalf("round %d: got %d folded alerts, want one per host", round, len(alerts))
		}
		if round == 0 {
			want = s
		} else if s != want {
			t.Fatalf("round %d: folded alerts differ from file order:\n%s\nwant\n%s", round, s, want)
		}
	}
}

func TestFoldBoundaries(t *testing.T) {
	c, _ := newTest(t, foldConfig(), nil)
	// One match per 40 minutes over three hours: the one-hour buckets hold
	// one or two each.
	var in []alert.Alert
	for i := range 5 {
		ev := mkEvent(fmt.Sprintf("e%d", i), "agent", time.Duration(i)*40*time.Minute, ob(ocsf.EntityHost, "web-1"))
		in = append(in, mkAlert(fmt.Sprintf("x%d", i), "host.miner", "impact", 3, ev))
	}
	// The same rule on another host and another rule on the same host
	// never fold with these.
	other := mkEvent("o1", "agent", time.Minute, ob(ocsf.EntityHost, "web-2"))
	in = append(in, mkAlert("y1", "host.miner", "impact", 3, other))
	same := mkEvent("o2", "agent", time.Minute, ob(ocsf.EntityHost, "web-1"))
	in = append(in, mkAlert("z1", "host.shell", "execution", 3, same))
	r := c.Process(nil, in)
	counts := map[string]int{}
	for _, a := range r.Alerts {
		counts[a.RuleID+"@"+a.Entities[0].Value] += a.Count
	}
	if len(r.Alerts) != 3+2 || counts["host.miner@web-1"] != 5 || counts["host.miner@web-2"] != 1 || counts["host.shell@web-1"] != 1 {
		t.Errorf("got %d alerts with counts %v, want 3 buckets of host.miner on web-1 (5 matches) and one of each other", len(r.Alerts), counts)
	}
	// A replayed match is not counted again.
	r = c.Process(nil, in[:1])
	if len(r.Alerts) != 0 {
		t.Errorf("a replayed match changed %d alerts, want none", len(r.Alerts))
	}
}

func TestFoldingOff(t *testing.T) {
	c, _ := newTest(t, testConfig(), nil)
	r := c.Process(nil, ransomRun("app-1", 0, 5))
	if len(r.Alerts) != 5 || r.Alerts[0].ID != "raw-app-1-0" {
		t.Errorf("got %d alerts, want the 5 matches under their own ids", len(r.Alerts))
	}
}

// TestFoldsSurviveRestore: repeats after a restart count on in the stored
// folded alert instead of opening a new one.
func TestFoldsSurviveRestore(t *testing.T) {
	run := ransomRun("app-1", 0, 10)
	c, _ := newTest(t, foldConfig(), nil)
	r := c.Process(nil, run[:6])
	c2, _ := newTest(t, foldConfig(), nil)
	c2.Restore(r.Incidents, r.Alerts)
	r2 := c2.Process(nil, run[6:])
	if len(r2.Alerts) != 1 || r2.Alerts[0].ID != r.Alerts[0].ID || r2.Alerts[0].Count != 10 {
		t.Fatalf("got %+v, want the stored folded alert at count 10", r2.Alerts)
	}
	if len(r2.Incidents) != 1 || r2.Incidents[0].ID != r.Incidents[0].ID {
		t.Errorf("got incidents %v, want the restored one updated", r2.Incidents)
	}
}

// TestLateMatchCountsOnAfterEviction: a folded alert whose incident was
// evicted is re-created by a late match of the same rule on the same
// entities in the same window, under the same id; the version it stores
// counts the matches folded before the eviction too, so it never
// replaces a stored count with a smaller one.
func TestLateMatchCountsOnAfterEviction(t *testing.T) {
	c, _ := newTest(t, foldConfig(), nil)
	run := ransomRun("app-1", 0, 11)
	before := foldedAlerts([]Result{c.Process(nil, run[:10])})
	if len(before) != 1 {
		t.Fatalf("got %d folded alerts, want 1", len(before))
	}
	var id string
	for k, a := range before {
		id = k
		if a.Count != 10 {
			t.Fatalf("got count %d, want 10", a.Count)
		}
	}
	// Input a month later moves the watermark past the incident's window:
	// it is evicted.
	// (An incident changed since its last emit is evicted by the sweep
	// after the emit: two batches.)
	for i, at := range []time.Duration{30 * 24 * time.Hour, 31 * 24 * time.Hour} {
		far := mkEvent(fmt.Sprint("far-", i), "agent", at, ob(ocsf.EntityHost, "db-9"))
		c.Process([]ocsf.Event{far}, []alert.Alert{mkAlert(fmt.Sprint("far-alert-", i), "host.shell", "execution", 3, far)})
	}
	if _, open := c.folds[id]; open {
		t.Fatal("the folded alert was not evicted; the test needs it evicted")
	}
	after := foldedAlerts([]Result{c.Process(nil, run[10:])})
	a, ok := after[id]
	if !ok {
		t.Fatalf("the late match did not re-create folded alert %s: got %v", id, after)
	}
	if a.Count != 11 || a.FirstSeen != before[id].FirstSeen || a.LastSeen != run[10].Time {
		t.Errorf("re-created folded alert: count %d, seen %d–%d; want 11, %d–%d", a.Count, a.FirstSeen, a.LastSeen, before[id].FirstSeen, run[10].Time)
	}
}

// storedState is what storage holds after results: the latest version of every
// alert and the open incidents, each round-tripped through JSON (the
// timeline is a JSON column).
func storedState(t *testing.T, results []Result) ([]incident.Incident, []alert.Alert) {
	t.Helper()
	f := final{}
	for _, r := range results {
		f.add(t, r)
	}
	var incs []incident.Incident
	b, _ := json.Marshal(f.open())
	if err := json.Unmarshal(b, &incs); err != nil {
		t.Fatal(err)
	}
	alerts := foldedAlerts(results)
	out := make([]alert.Alert, 0, len(alerts))
	for _, a := range alerts {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b alert.Alert) int { return strings.Compare(a.ID, b.ID) })
	return incs, out
}

// TestFoldCountsOnAcrossRestarts: a run of repeats interrupted by a
// restart goes on in the stored folded alert from its stored count and
// first seen time, so the stored row never goes backwards: when the
// folded alert is in the restored window, when only its open incident is
// (its first match is older than the window), and when it was evicted
// from memory before the restart and a late match re-creates it.
func TestFoldCountsOnAcrossRestarts(t *testing.T) {
	run := ransomRun("app-1", 0, 12)
	cases := []struct {
		name string
		// restore restores c2 from what was stored after c processed
		// run[:10] (evict: restored as after the eviction, below).
		restore func(c2 *Correlator, incs []incident.Incident, alerts []alert.Alert)
		evict   bool
	}{
		{"alert in the window", func(c2 *Correlator, incs []incident.Incident, alerts []alert.Alert) {
			c2.RestoreState(State{Incidents: incs, Alerts: alerts})
		}, false},
		{"only its incident in the window", func(c2 *Correlator, incs []incident.Incident, alerts []alert.Alert) {
			c2.RestoreState(State{Incidents: incs})
		}, false},
		{"evicted before the restart", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTest(t, foldConfig(), nil)
			results := []Result{c.Process(nil, run[:4]), c.Process(nil, run[4:10])}
			_, before := storedState(t, results)
			if len(before) != 1 || before[0].Count != 10 {
				t.Fatalf("before the restart: got %v, want one folded alert of 10", before)
			}
			id := before[0].ID
			if tc.evict {
				for i, at := range []time.Duration{30 * 24 * time.Hour, 31 * 24 * time.Hour} {
					far := mkEvent(fmt.Sprint("far-", i), "agent", at, ob(ocsf.EntityHost, "db-9"))
					results = append(results, c.Process([]ocsf.Event{far}, []alert.Alert{mkAlert(fmt.Sprint("far-alert-", i), "host.shell", "execution", 3, far)}))
				}
				if _, open := c.folds[id]; open {
					t.Fatal("the folded alert was not evicted; the test needs it evicted")
				}
			}
			incs, alerts := storedState(t, results)
			if tc.evict {
				// The window holds only the far alerts; the folded
				// alert is stored before it.
				var window, older []alert.Alert
				for _, a := range alerts {
					if a.ID == id {
						older = append(older, a)
					} else {
						window = append(window, a)
					}
				}
				// Its incident is as old: outside the window too.
				incs = slices.DeleteFunc(incs, func(in incident.Incident) bool { return slices.Contains(in.AlertIDs, id) })
				c2, _ := newTest(t, foldConfig(), nil)
				c2.RestoreState(State{Incidents: incs, Alerts: window, Folds: older})
				checkFold(t, c2, run[10:], id, 12)
				return
			}
			c2, _ := newTest(t, foldConfig(), nil)
			tc.restore(c2, incs, alerts)
			checkFold(t, c2, run[10:], id, 12)
		})
	}
}

// checkFold processes the repeats in and checks that folded alert id is
// stored at count want with the run's first time as its first seen.
func checkFold(t *testing.T, c *Correlator, in []alert.Alert, id string, want int) {
	t.Helper()
	after := foldedAlerts([]Result{c.Process(nil, in)})
	a, ok := after[id]
	if !ok {
		t.Fatalf("the repeats after the restart did not update folded alert %s: got %v", id, after)
	}
	first := ransomRun("app-1", 0, 1)[0].Time
	if a.Count != want || a.FirstSeen != first || a.LastSeen != in[len(in)-1].Time {
		t.Errorf("after the restart: count %d, seen %d–%d; want %d, %d–%d", a.Count, a.FirstSeen, a.LastSeen, want, first, in[len(in)-1].Time)
	}
}

// TestReplayedBatchCountsOnce: after a crash between the durable write of
// a batch and its offset commit, the restarted correlator is restored from
// what was stored (which counted the batch) and reads the batch again; the
// folded alert counts each match once. The matches come from two
// partitions, and each batch is folded in event-time order, which is not
// offset order; the replay arrives in another order than the first time.
// Without origins (input without ordered positions, such as files) the
// replay is counted again, which the last case shows, so the test can
// tell the two apart.
func TestReplayedBatchCountsOnce(t *testing.T) {
	run := ransomRun("app-1", 0, 18)
	for i := range run {
		// Offsets fall as event time rises within each batch of 6.
		run[i].Origins = []alert.Origin{{Topic: "agent", Partition: int32(i % 2), Offset: int64(100 + (i/6)*6 + 5 - i%6)}}
	}
	reversed := func(as []alert.Alert) []alert.Alert {
		out := slices.Clone(as)
		slices.Reverse(out)
		return out
	}
	cases := []struct {
		name string
		// restore restores c2 from what was stored after the crash.
		restore   func(c2 *Correlator, incs []incident.Incident, alerts []alert.Alert)
		noOrigins bool
		want      int
	}{
		{"alert in the window", func(c2 *Correlator, incs []incident.Incident, alerts []alert.Alert) {
			c2.RestoreState(State{Incidents: incs, Alerts: alerts})
		}, false, 18},
		{"alert before the window, its incident in it", func(c2 *Correlator, incs []incident.Incident, alerts []alert.Alert) {
			c2.RestoreState(State{Incidents: incs, Folds: alerts})
		}, false, 18},
		{"only its count stored", func(c2 *Correlator, _ []incident.Incident, alerts []alert.Alert) {
			c2.RestoreState(State{Folds: alerts})
		}, false, 18},
		{"input without positions", func(c2 *Correlator, incs []incident.Incident, alerts []alert.Alert) {
			c2.RestoreState(State{Incidents: incs, Alerts: alerts})
		}, true, 24},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(run)
			if tc.noOrigins {
				for i := range in {
					in[i].Origins = nil
				}
			}
			c, reg := newTest(t, foldConfig(), nil)
			// Batch 1 is stored and committed; batch 2 is stored, then
			// the process is killed before the commit.
			results := []Result{c.Process(nil, in[:6]), c.Process(nil, in[6:12])}
			incs, stored := storedState(t, results)
			if len(stored) != 1 || stored[0].Count != 12 {
				t.Fatalf("before the crash: got %v, want one folded alert of 12", stored)
			}
			id := stored[0].ID
			if !tc.noOrigins {
				want := []alert.Origin{{Topic: "agent", Partition: 0, Offset: 111}, {Topic: "agent", Partition: 1, Offset: 110}}
				if got := stored[0].Origins; len(got) != 2 || !slices.ContainsFunc(got, func(o alert.Origin) bool { return o == want[0] }) ||
					!slices.ContainsFunc(got, func(o alert.Origin) bool { return o == want[1] }) {
					t.Fatalf("stored origins %v, want %v", got, want)
				}
			}
			c2, reg2 := newTest(t, foldConfig(), nil)
			tc.restore(c2, incs, stored)
			// The replay of batch 2 (in another order) and batch 3.
			replay := foldedAlerts([]Result{c2.Process(nil, reversed(in[6:12]))})
			after := foldedAlerts([]Result{c2.Process(nil, reversed(in[12:]))})
			a, ok := after[id]
			if !ok {
				t.Fatalf("batch 3 did not update folded alert %s: got %v", id, after)
			}
			if a.Count != tc.want {
				t.Errorf("after the replay and batch 3: got count %d, want %d", a.Count, tc.want)
			}
			if got, ok := replay[id]; !tc.noOrigins && ok && got.Count != 12 {
				t.Errorf("the replay stored count %d, want 12 (nothing new)", got.Count)
			}
			replays := metricValue(t, reg2, "musubi_correlate_fold_replays_total")
			if want := map[bool]float64{false: 6, true: 0}[tc.noOrigins]; replays != want {
				t.Errorf("got %v replays counted, want %v", replays, want)
			}
			if got := metricValue(t, reg, "musubi_correlate_fold_replays_total"); got != 0 {
				t.Errorf("the first process counted %v replays, want 0", got)
			}
		})
	}
}

// TestResultsDoNotChangeWithLaterInput: the consumer writes a batch's
// Result while the correlator already processes the next batch, so
// nothing in a Result may share memory that later input changes. Repeats
// fold into the same alerts across batches (their counts, evidence,
// entities and origins move on) and their incidents grow.
func TestResultsDoNotChangeWithLaterInput(t *testing.T) {
	c, _ := newTest(t, foldConfig(), nil)
	run := append(ransomRun("app-1", 0, 40), ransomRun("app-2", 5*time.Second, 40)...)
	slices.SortStableFunc(run, func(a, b alert.Alert) int { return cmp.Compare(a.Time, b.Time) })
	for i := range run {
		run[i].Origins = []alert.Origin{{Topic: "agent", Partition: int32(i % 2), Offset: int64(i)}}
	}
	var results []Result
	var snaps []string
	for i := 0; i < len(run); i += 7 {
		r := c.Process(nil, run[i:min(i+7, len(run))])
		results = append(results, r)
		snaps = append(snaps, snapshot(t, r))
	}
	refolds := 0
	for _, r := range results[1:] {
		for _, a := range r.Alerts {
			if a.Count > 7 {
				refolds++
			}
		}
	}
	if refolds == 0 {
		t.Fatal("no alert folded across batches: the test shows nothing")
	}
	for i, r := range results {
		if got := snapshot(t, r); got != snaps[i] {
			k := 0
			for k < len(got) && k < len(snaps[i]) && got[k] == snaps[i][k] {
				k++
			}
			k = max(k-200, 0)
			t.Errorf("result %d changed when later batches were processed:\nnow …%.400s\nwas …%.400s", i, got[k:], snaps[i][k:])
		}
	}
}

// snapshot is every field of r as text, those JSON leaves out of an
// alert included.
func snapshot(t *testing.T, r Result) string {
	t.Helper()
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(js)
	for _, a := range r.Alerts {
		fmt.Fprintf(&b, "\n%s keyed=%v origins=%v", a.ID, a.Keyed, a.Origins)
		if a.Unheld != nil {
			fmt.Fprintf(&b, " unheld=%+v", *a.Unheld)
		}
	}
	return b.String()
}
