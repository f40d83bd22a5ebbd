package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/storage"
)

// bigExport writes the attack chain's CloudTrail, agent, Falco and flow
// log files repeated copies times, a day apart (times shifted, ids made
// unique), each source as one file: realistic records in files many
// segments long. The CloudTrail file stays pretty-printed, as the
// scenario's, so records span lines.
func bigExport(t *testing.T, dir string, copies int) {
	t.Helper()
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(attackChain, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const day = 24 * time.Hour
	shiftTime := func(v any, k int) string {
		tm, err := time.Parse(time.RFC3339Nano, v.(string))
		if err != nil {
			t.Fatal(err)
		}
		return tm.Add(time.Duration(k) * day).Format(time.RFC3339Nano)
	}

	var ct struct{ Records []map[string]any }
	if err := json.Unmarshal(read("cloudtrail.json"), &ct); err != nil {
		t.Fatal(err)
	}
	var records []map[string]any
	for k := range copies {
		for _, r := range ct.Records {
			c := map[string]any{}
			for key, v := range r {
				c[key] = v
			}
			c["eventID"] = fmt.Sprintf("%v-%d", r["eventID"], k)
			c["eventTime"] = shiftTime(r["eventTime"], k)
			records = append(records, c)
		}
	}
	out, err := json.MarshalIndent(map[string]any{"Records": records}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	write("cloudtrail.json", out)

	jsonLines := func(name string, shift func(m map[string]any, k int)) {
		var buf bytes.Buffer
		lines := strings.Split(strings.TrimSpace(string(read(name))), "\n")
		for k := range copies {
			for _, l := range lines {
				m := map[string]any{}
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatal(err)
				}
				shift(m, k)
				b, _ := json.Marshal(m)
				buf.Write(b)
				buf.WriteByte('\n')
			}
		}
		write(name, buf.Bytes())
	}
	jsonLines("agent.jsonl", func(m map[string]any, k int) {
		m["time"] = m["time"].(float64) + float64(k)*float64(day/time.Millisecond)
		meta := m["metadata"].(map[string]any)
		meta["uid"] = fmt.Sprintf("%v-%d", meta["uid"], k)
	})
	jsonLines("falco.json", func(m map[string]any, k int) {
		m["time"] = shiftTime(m["time"], k)
		m["uuid"] = fmt.Sprintf("%v-%d", m["uuid"], k)
	})

	lines := strings.Split(strings.TrimSpace(string(read("vpcflow.log"))), "\n")
	flow := []string{lines[0]}
	for k := range copies {
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			for _, i := range []int{10, 11} {
				n, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				f[i] = strconv.FormatInt(n+int64(k)*int64(day/time.Second), 10)
			}
			flow = append(flow, strings.Join(f, " "))
		}
	}
	write("vpcflow.log", []byte(strings.Join(flow, "\n")+"\n"))
}

// replayed is everything a replay hands its sink.
type replayed struct {
	events []string // time|uid|tenant, in the order correlated
	alerts []string // ids, sorted
	incs   []incident.Incident
	dead   []storage.DeadLetter
	stats  Stats
}

func replayWith(t *testing.T, o Options, segBytes, segRecords int, paths ...string) replayed {
	t.Helper()
	out, _ := replayStream(t, o, func(s *Stream) { s.SegmentBytes, s.SegmentRecords = segBytes, segRecords }, paths...)
	return out
}

// replayStream replays paths with a Stream that set configures, and
// returns what the sink received and the Stream.
func replayStream(t *testing.T, o Options, set func(*Stream), paths ...string) (replayed, *Stream) {
	t.Helper()
	inputs, cleanup, err := Inputs(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	s, err := NewStream(o, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	s.Chunk = 50
	set(s)
	var out replayed
	out.stats, err = s.Run(context.Background(), inputs, func(b storage.Batch) error {
		for _, ev := range b.Events {
			out.events = append(out.events, fmt.Sprintf("%d|%s|%s", ev.Time, ev.Metadata.UID, ev.Metadata.TenantUID))
		}
		for _, a := range b.Alerts {
			out.alerts = append(out.alerts, a.ID)
		}
		out.incs = append(out.incs, b.Incidents...)
		out.dead = append(out.dead, b.DeadLetters...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out.alerts)
	out.alerts = slices.Compact(out.alerts)
	return out, s
}

// sameReplay requires two replays to have correlated the same events in the
// same order and found the same alerts and incidents.
func sameReplay(t *testing.T, what string, got, want replayed) {
	t.Helper()
	if !slices.Equal(got.events, want.events) {
		t.Errorf("%s: correlated %d events, want %d, or in another order", what, len(got.events), len(want.events))
	}
	if !slices.Equal(got.alerts, want.alerts) {
		t.Errorf("%s: %d alerts, want %d (or other ids)", what, len(got.alerts), len(want.alerts))
	}
	if g, w := graphs(got.incs), graphs(want.incs); !slices.Equal(g, w) {
		t.Errorf("%s: incidents differ:\n got %q\nwant %q", what, g, w)
	}
	if got.stats.Records != want.stats.Records || got.stats.Late != want.stats.Late || !maps.Equal(got.stats.Events, want.stats.Events) {
		t.Errorf("%s: records %d late %d events %v; want %d, %d, %v", what, got.stats.Records, got.stats.Late, got.stats.Events,
			want.stats.Records, want.stats.Late, want.stats.Events)
	}
}

// TestLargeFilesInSegments replays one file per source, each many segments
// long (a pretty-printed CloudTrail envelope, JSON lines, a flow log with
// its header), read whole and in segments, plain and gzip: the same events
// in the same order, the same alerts and incidents.
func TestLargeFilesInSegments(t *testing.T) {
	dir := t.TempDir()
	bigExport(t, dir, 8)
	whole := replayWith(t, options(), 0, 0, dir)
	if whole.stats.Records < 500 || len(whole.alerts) == 0 || len(graphs(whole.incs)) < 2 {
		t.Fatalf("the export replayed %d records, %d alerts, %d incidents: too little to compare", whole.stats.Records, len(whole.alerts), len(graphs(whole.incs)))
	}
	if whole.stats.Late != 0 || len(whole.dead) != 0 {
		t.Fatalf("whole files: late %d, dead letters %d", whole.stats.Late, len(whole.dead))
	}
	// Segments of 8 KiB or 8 records: the CloudTrail file (176 records,
	// 0.2 MiB) is read in 26 segments of 8 KiB, agent's (248 lines) in 31
	// of 8 lines.
	for name, want := range map[string]int{"cloudtrail.json": 26, "agent.jsonl": 31, "vpcflow.log": 10} {
		f, _ := os.Open(filepath.Join(dir, name))
		data, _ := os.ReadFile(filepath.Join(dir, name))
		g := newSegmenter(f, ingest.Detect(data), ingest.DefaultLimits(), 8<<10, 8)
		n := 0
		for {
			sg, err := g.next()
			if err != nil {
				t.Fatal(err)
			}
			if sg == nil {
				break
			}
			n++
		}
		f.Close()
		if n != want {
			t.Errorf("%s: %d segments, want %d", name, n, want)
		}
	}
	seg := replayWith(t, options(), 8<<10, 8, dir)
	sameReplay(t, "segments", seg, whole)
	if len(seg.dead) != 0 {
		t.Errorf("segments: dead letters %v", seg.stats.DeadLetters)
	}

	gz := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(data)
		_ = w.Close()
		if err := os.WriteFile(filepath.Join(gz, filepath.Base(f)+".gz"), z.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sameReplay(t, "gzip segments", replayWith(t, options(), 8<<10, 8, gz), whole)
	if bd := seg.stats.BytesDone; bd != seg.stats.Bytes {
		t.Errorf("bytes done %d of %d", bd, seg.stats.Bytes)
	}
}

// TestLargeFileMalformedRecords puts malformed records in the middle of
// large files: each is one dead letter with its raw bytes and reason, and
// every other record is replayed as without them.
func TestLargeFileMalformedRecords(t *testing.T) {
	clean := t.TempDir()
	bigExport(t, clean, 6)
	want := replayWith(t, options(), 8<<10, 8, clean)

	dir := t.TempDir()
	bigExport(t, dir, 6)
	ct, _ := os.ReadFile(filepath.Join(dir, "cloudtrail.json"))
	// A record that is not JSON, balanced, half-way through the array.
	badCT := `{"eventVersion": "1.09", "eventTime": oops}`
	mid := bytes.Index(ct[len(ct)/2:], []byte("\n  {")) + len(ct)/2
	ct = slices.Concat(ct[:mid], []byte("\n  "+badCT+","), ct[mid:])
	agent, _ := os.ReadFile(filepath.Join(dir, "agent.jsonl"))
	badLine := `{"class_uid":1007,"time":`
	mid = bytes.IndexByte(agent[len(agent)/2:], '\n') + len(agent)/2 + 1
	agent = slices.Concat(agent[:mid], []byte(badLine+"\n"), agent[mid:])
	_ = os.WriteFile(filepath.Join(dir, "cloudtrail.json"), ct, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "agent.jsonl"), agent, 0o600)

	gz := t.TempDir()
	for _, name := range []string{"cloudtrail.json", "agent.jsonl", "falco.json", "vpcflow.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(data)
		_ = w.Close()
		_ = os.WriteFile(filepath.Join(gz, name+".gz"), z.Bytes(), 0o600)
	}
	for name, path := range map[string]string{"plain": dir, "gzip": gz} {
		got := replayWith(t, options(), 8<<10, 8, path)
		sameReplay(t, name, got, want)
		raws := map[string]string{}
		for _, dl := range got.dead {
			raws[strings.TrimSpace(string(dl.Raw))] = dl.Reason
		}
		if len(got.dead) != 2 || raws[badCT] != ingest.ReasonInvalidJSON || raws[badLine] != ingest.ReasonInvalidJSON {
			t.Errorf("%s: dead letters %d %v; want the two malformed records, invalid_json", name, len(got.dead), raws)
		}
		if got.stats.DeadLettersTotal() != 2 {
			t.Errorf("%s: counted dead letters %v", name, got.stats.DeadLetters)
		}
	}
}

// overlappingCloudTrail writes n CloudTrail files, each the attack chain's
// records repeated over three days, file i shifted by i minutes (ids made
// unique): every file's time range overlaps every other's, so the merge
// holds all of them open at once.
func overlappingCloudTrail(t *testing.T, dir string, n int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(attackChain, "cloudtrail.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ct struct{ Records []map[string]any }
	if err := json.Unmarshal(data, &ct); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var records []map[string]any
		for k := range 3 {
			for _, r := range ct.Records {
				c := maps.Clone(r)
				tm, err := time.Parse(time.RFC3339Nano, r["eventTime"].(string))
				if err != nil {
					t.Fatal(err)
				}
				c["eventTime"] = tm.Add(time.Duration(k)*24*time.Hour + time.Duration(i)*time.Minute).Format(time.RFC3339Nano)
				c["eventID"] = fmt.Sprintf("%v-%d-%d", r["eventID"], i, k)
				records = append(records, c)
			}
		}
		out, err := json.Marshal(map[string]any{"Records": records})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ct-%02d.json", i)), out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOverlappingLargeFilesShareBudget replays 12 large files whose time
// ranges all overlap, in segments of 8 records with a budget of 3
// segments: the merge still progresses, never more than budget+1 segments
// (the one the merge waits for) are cut and unmerged at once, and the
// replay equals the one of whole files. Without the budget the same
// replay holds two to four segments per file (25 and more).
func TestOverlappingLargeFilesShareBudget(t *testing.T) {
	const files, budget = 12, 3
	dir := t.TempDir()
	overlappingCloudTrail(t, dir, files)
	whole, _ := replayStream(t, options(), func(*Stream) {}, dir)
	if whole.stats.Records < 700 || len(whole.alerts) == 0 || len(graphs(whole.incs)) < 2 {
		t.Fatalf("the files replayed %d records, %d alerts, %d incidents: too little to compare", whole.stats.Records, len(whole.alerts), len(graphs(whole.incs)))
	}
	for _, workers := range []int{1, 4} {
		got, s := replayStream(t, options(), func(s *Stream) {
			s.SegmentBytes, s.SegmentRecords, s.SegmentBudget, s.Workers = 8<<10, 8, budget, workers
		}, dir)
		sameReplay(t, fmt.Sprintf("workers %d", workers), got, whole)
		if s.budget.peak > budget+1 || s.budget.peak < 1 {
			t.Errorf("workers %d: %d segments cut and unmerged at once, want 1 to %d", workers, s.budget.peak, budget+1)
		}
		if s.budget.used != 0 {
			t.Errorf("workers %d: %d segments still held after the replay", workers, s.budget.used)
		}
	}
}

// BenchmarkSegmenter cuts a pretty-printed CloudTrail file and JSON lines
// into segments (the part of a large file's reading that is not decode).
func BenchmarkSegmenter(b *testing.B) {
	dir := b.TempDir()
	t := &testing.T{}
	bigExport(t, dir, 20)
	for _, name := range []string{"cloudtrail.json", "agent.jsonl"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		src := ingest.Detect(data)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				g := newSegmenter(bytes.NewReader(data), src, ingest.DefaultLimits(), defaultSegmentBytes, defaultSegmentRecords)
				for {
					seg, err := g.next()
					if err != nil {
						b.Fatal(err)
					}
					if seg == nil {
						break
					}
				}
			}
		})
	}
}
