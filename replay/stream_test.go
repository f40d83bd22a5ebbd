package replay

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/storage"
)

const (
	scenarios   = "../testdata/scenarios"
	attackChain = "../testdata/scenarios/attack-chain"
	detections  = "../detections"
)

func options() Options {
	cc := correlate.DefaultConfig()
	cc.HubIPs = append(cc.HubIPs, "198.51.100.7/32") // the attack chain's office NAT
	return Options{RulesDir: detections, Correlate: cc}
}

// graphs describes the open incidents: id, severity, alert ids and entity
// nodes, one line each, sorted.
func graphs(incs []incident.Incident) []string {
	var out []string
	for _, in := range LatestVersions(incs) {
		if in.MergedInto != "" {
			continue
		}
		var ents []string
		for _, n := range in.Nodes {
			if n.Kind == incident.NodeEntity {
				ents = append(ents, n.ID)
			}
		}
		alerts := slices.Clone(in.AlertIDs)
		slices.Sort(ents)
		slices.Sort(alerts)
		out = append(out, strings.Join([]string{in.ID, string(rune('0' + in.Severity)), strings.Join(alerts, ","), strings.Join(ents, ",")}, "|"))
	}
	slices.Sort(out)
	return out
}

// streamed replays paths with Stream and returns every batch's incidents,
// the events in the order the correlator received them, and the stats.
func streamed(t *testing.T, o Options, f Filter, paths ...string) ([]incident.Incident, []int64, Stats) {
	t.Helper()

	inputs, cleanup, err := Inputs(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	s, err := NewStream(o, f)
	if err != nil {
		t.Fatal(err)
	}
	s.Chunk = 5 // many chunks: correlation across calls, as serve's batches
	var incs []incident.Incident
	var times []int64
	stats, err := s.Run(context.Background(), inputs, func(b storage.Batch) error {
		incs = append(incs, b.Incidents...)
		for _, ev := range b.Events {
			times = append(times, ev.Time)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return incs, times, stats
}

// serveMessages splits every file of dir into the messages serve consumes
// (JSON documents whole, line files line by line) in event-time order,
// ties by uid.
func serveMessages(t *testing.T, dir string) []pipeline.Record {
	t.Helper()
	files, err := ReadFiles([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	type msg struct {
		rec  pipeline.Record
		time int64
		uid  string
	}
	var msgs []msg
	for _, f := range files {
		src := ingest.Detect(f.Value)
		for _, part := range SplitMessages(src, f.Value) {
			evs, _ := dec.Decode(src, part)
			m := msg{rec: pipeline.Record{Source: src, Topic: f.Topic, Value: part}}
			for i, ev := range evs {
				if i == 0 || ev.Time < m.time {
					m.time, m.uid = ev.Time, ev.Metadata.UID
				}
			}
			msgs = append(msgs, m)
		}
	}
	// Ties in event time by uid, as the correlator orders a batch.
	slices.SortStableFunc(msgs, func(a, b msg) int { return cmp.Or(cmp.Compare(a.time, b.time), strings.Compare(a.uid, b.uid)) })
	out := make([]pipeline.Record, len(msgs))
	for i, m := range msgs {
		out[i] = m.rec
	}
	return out
}

// TestStreamEqualsServe replays each scenario with Stream and through
// serve's pipeline — the Processor serve builds, with the correlator at the
// configured lateness, fed the scenario's messages in batches as Kafka
// delivers them, then idle — and requires the same incidents: ids,
// severities, alerts and entities.
func TestStreamEqualsServe(t *testing.T) {
	// port-scan checks that flow records get serve's uids: its threshold
	// alert is named after the flow record that completes it.
	for _, name := range []string{"attack-chain", "port-scan", "signin-burst-user", "signin-spray-source"} {
		dir := filepath.Join(scenarios, name)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o := options().withDefaults()
			st, err := load(o)
			if err != nil {
				t.Fatal(err)
			}
			proc := pipeline.NewProcessor(ingest.NewDecoder(o.Limits), st.engine, st.corr, o.Tenant, o.StoreRaw, o.Logger, nil)
			msgs := serveMessages(t, dir)
			var served []incident.Incident
			for i := 0; i < len(msgs); i += 5 {
				served = append(served, proc.Process(msgs[i:min(i+5, len(msgs))]).Incidents...)
			}
			served = append(served, proc.Idle(EndOfTime).Incidents...)

			want := graphs(served)
			if len(want) == 0 {
				t.Fatal("serve found no incident: the comparison would prove nothing")
			}
			replayed, _, stats := streamed(t, options(), Filter{}, dir)
			if got := graphs(replayed); !slices.Equal(got, want) {
				t.Errorf("replay's incidents differ from serve's:\n got %q\nwant %q", got, want)
			}
			if stats.Late != 0 || stats.DeadLettersTotal() != 0 {
				t.Errorf("late %d, dead letters %v; want none", stats.Late, stats.DeadLetters)
			}
		})
	}
}

// TestStreamFeedsEventTimeOrder splits the attack chain's line files into
// many overlapping files and checks that the correlator receives every
// event in event-time order and the incidents do not change.
func TestStreamFeedsEventTimeOrder(t *testing.T) {
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(attackChain, "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(f)
		src := ingest.Detect(data)
		if base == "expected.json" || (src != ingest.SourceAgent && src != ingest.SourceVPCFlow) {
			_ = os.WriteFile(filepath.Join(dir, base), data, 0o600)
			continue
		}
		// Round-robin into three files: each spans the whole scenario.
		parts := make([][]string, 3)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		header := ""
		if src == ingest.SourceVPCFlow && !startsWithDigit(lines[0]) {
			header, lines = lines[0], lines[1:]
		}
		for i, l := range lines {
			parts[i%3] = append(parts[i%3], l)
		}
		for i, p := range parts {
			if header != "" {
				p = append([]string{header}, p...)
			}
			_ = os.WriteFile(filepath.Join(dir, base+"."+string(rune('a'+i))), []byte(strings.Join(p, "\n")+"\n"), 0o600)
		}
	}
	want, _, _ := streamed(t, options(), Filter{}, attackChain)
	got, times, stats := streamed(t, options(), Filter{}, dir)
	if !slices.IsSorted(times) {
		t.Errorf("the correlator received events out of event-time order")
	}
	if int64(len(times)) != stats.EventsTotal() || stats.EventsTotal() != stats.Records {
		t.Errorf("correlated %d events, counted %d, scanned %d", len(times), stats.EventsTotal(), stats.Records)
	}
	if g, w := graphs(got), graphs(want); !slices.Equal(g, w) {
		t.Errorf("split files give other incidents:\n got %q\nwant %q", g, w)
	}
}

// TestInputsAsExported replays the attack chain as an `aws s3 sync` tree
// (nested, gzip), a tar.gz and a zip: the same incidents as the directory.
func TestInputsAsExported(t *testing.T) {
	want, _, _ := streamed(t, options(), Filter{}, attackChain)
	files, _ := filepath.Glob(filepath.Join(attackChain, "*"))
	tree := t.TempDir()
	var tgz, zbuf bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	zw := zip.NewWriter(&zbuf)
	for i, f := range files {
		data, _ := os.ReadFile(f)
		name := filepath.Join("AWSLogs", "123456789012", "eu-west-1", "2026", "11", string(rune('a'+i)), filepath.Base(f))
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(data)
		_ = w.Close()
		_ = os.MkdirAll(filepath.Join(tree, filepath.Dir(name)), 0o700)
		if err := os.WriteFile(filepath.Join(tree, name+".gz"), z.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = tw.WriteHeader(&tar.Header{Name: name + ".gz", Mode: 0o600, Size: int64(z.Len()), Typeflag: tar.TypeReg})
		_, _ = tw.Write(z.Bytes())
		zf, _ := zw.Create(name)
		_, _ = zf.Write(data)
	}
	_ = tw.Close()
	_ = gz.Close()
	_ = zw.Close()
	arch := t.TempDir()
	tarPath, zipPath := filepath.Join(arch, "export.tar.gz"), filepath.Join(arch, "export.zip")
	_ = os.WriteFile(tarPath, tgz.Bytes(), 0o600)
	_ = os.WriteFile(zipPath, zbuf.Bytes(), 0o600)
	// An export mounted elsewhere: the root a symbolic link to the tree,
	// and a tree whose files are symbolic links to the tree's files.
	link := filepath.Join(arch, "mounted")
	if err := os.Symlink(tree, link); err != nil {
		t.Fatal(err)
	}
	linked := t.TempDir()
	inputs, cleanup, err := Inputs([]string{tree})
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	for i, in := range inputs {
		if err := os.Symlink(in.Name, filepath.Join(linked, fmt.Sprintf("%03d-%s", i, filepath.Base(in.Name)))); err != nil {
			t.Fatal(err)
		}
	}
	if got, _, err := Inputs([]string{link}); err != nil || len(got) != len(inputs) {
		t.Fatalf("the symlinked root lists %d files (%v), want the tree's %d", len(got), err, len(inputs))
	}
	for _, in := range []string{tree, tarPath, zipPath, link, linked} {
		got, _, stats := streamed(t, options(), Filter{}, in)
		if g, w := graphs(got), graphs(want); !slices.Equal(g, w) {
			t.Errorf("%s: other incidents:\n got %q\nwant %q", filepath.Base(in), g, w)
		}
		if stats.DeadLettersTotal() != 0 {
			t.Errorf("%s: dead letters %v", filepath.Base(in), stats.DeadLetters)
		}
	}
}

// TestStreamFilterAndDeadLetters checks the filters and that a file that is
// not telemetry becomes a dead letter with its raw bytes, counted.
func TestStreamFilterAndDeadLetters(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "junk.log"), []byte("this is not telemetry\n"), 0o600)
	_, _, all := streamed(t, options(), Filter{}, attackChain)

	var dead []storage.DeadLetter
	inputs, cleanup, err := Inputs([]string{attackChain, dir})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	s, err := NewStream(options(), Filter{Sources: []ingest.Source{ingest.SourceVPCFlow, ingest.SourceAuto}})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := s.Run(context.Background(), inputs, func(b storage.Batch) error {
		dead = append(dead, b.DeadLetters...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Events) != 1 || stats.Events["vpcflow"] != all.Events["vpcflow"] {
		t.Errorf("-source vpcflow replayed %v, want only vpcflow's %d", stats.Events, all.Events["vpcflow"])
	}
	if len(dead) != 1 || string(dead[0].Raw) != "this is not telemetry\n" || stats.DeadLettersTotal() != 1 {
		t.Errorf("dead letters %+v, counted %v; want the junk file once with its bytes", dead, stats.DeadLetters)
	}

	// Since/until: only the events of the window are correlated.
	since := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	_, times, win := streamed(t, options(), Filter{Since: since, Until: since.Add(time.Hour)}, attackChain)
	if len(times) == 0 || win.Filtered == 0 || int64(len(times))+win.Filtered != all.Records {
		t.Errorf("window kept %d, filtered %d of %d", len(times), win.Filtered, all.Records)
	}
	for _, tm := range times {
		if tm < since.UnixMilli() || tm >= since.Add(time.Hour).UnixMilli() {
			t.Fatalf("event at %s outside the window", time.UnixMilli(tm).UTC())
		}
	}
}
