package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/musubi-xdr/musubi/bench/loadgen"
	"github.com/musubi-xdr/musubi/incident"
)

// How the high incidents of a run are judged. Counting them is not enough:
// a run the time limit stops mid-stream holds chains whose records were
// partly consumed (the engine reads 20 partitions at their own pace, so a
// chain's host events may be in while the CloudTrail records that link
// them are not), and their pieces are several incidents until the rest
// arrives; and a high incident on the background would hide a chain missed.
// So each chain is judged only when the run committed every one of its
// records, by the high incidents holding its identifiers
// (loadgen.ChainIdentifiers), and the high incidents holding no chain's
// identifier are listed apart.

// partition is a topic partition.
type partition struct {
	topic string
	part  int
}

// chainPlaces records where the preload wrote each chain's records: the
// highest offset of each chain per partition.
type chainPlaces struct {
	mu    sync.Mutex
	of    map[string]int // a chain record's value → its chain
	count map[int]int    // records per chain
	last  map[int]map[partition]int64
}

func newChainPlaces() *chainPlaces {
	return &chainPlaces{of: map[string]int{}, count: map[int]int{}, last: map[int]map[partition]int64{}}
}

// add notes a chain record before it is written.
func (c *chainPlaces) add(r loadgen.Record) {
	if r.Chain == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.of[string(r.Value)] = r.Chain
	c.count[r.Chain]++
}

// written is the writer's Completion: kafka-go reports the partition and
// offset of each message it wrote there.
func (c *chainPlaces) written(msgs []kafka.Message, err error) {
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		n, ok := c.of[string(m.Value)]
		if !ok {
			continue
		}
		delete(c.of, string(m.Value))
		if c.last[n] == nil {
			c.last[n] = map[partition]int64{}
		}
		p := partition{m.Topic, m.Partition}
		c.last[n][p] = max(c.last[n][p], m.Offset)
		c.count[n]--
	}
}

// consumed reports whether group has committed every record of chain n.
func (c *chainPlaces) consumed(n int, committed map[partition]int64) bool {
	if c.count[n] != 0 || len(c.last[n]) == 0 {
		return false // a record's offset is unknown
	}
	for p, off := range c.last[n] {
		if committed[p] <= off {
			return false
		}
	}
	return true
}

// committedOffsets returns the offsets group has committed on topics.
func committedOffsets(ctx context.Context, brokers []string, topics []string, group string) (map[partition]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	parts := map[string][]int{}
	for _, t := range topics {
		for p := range partitions {
			parts[t] = append(parts[t], p)
		}
	}
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, err
	}
	out := map[partition]int64{}
	for t, ps := range of.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, p.Error
			}
			out[partition{t, p.Partition}] = p.CommittedOffset
		}
	}
	return out, nil
}

// highIncident is the latest version of an incident of at least high
// severity that was not merged into another.
type highIncident struct {
	ID, Title string
	Entities  []string // "kind:value"
	Rules     []string // titles of its alerts' rules
}

// highIncidents reads the latest versions of the incidents of at least
// high severity that were not merged into another.
func highIncidents(ctx context.Context, conn driver.Conn, db string) ([]highIncident, error) {
	rows, err := conn.Query(ctx, `SELECT incident_id, t, e, tl FROM (SELECT incident_id, argMax(title, version) AS t,
		argMax(entities, version) AS e, argMax(timeline_json, version) AS tl, argMax(severity_id, version) AS s, argMax(merged_into, version) AS m
		FROM `+db+`.incidents GROUP BY incident_id) WHERE s >= 4 AND m = '' ORDER BY incident_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []highIncident
	for rows.Next() {
		var in highIncident
		var timeline string
		if err := rows.Scan(&in.ID, &in.Title, &in.Entities, &timeline); err != nil {
			return nil, err
		}
		var tl []incident.TimelineEntry
		_ = json.Unmarshal([]byte(timeline), &tl) // the titles only explain; an unreadable timeline leaves them out
		for _, e := range tl {
			if !slices.Contains(in.Rules, e.Title) {
				in.Rules = append(in.Rules, e.Title)
			}
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// chainTally is how a run's high incidents map onto the injected chains.
type chainTally struct {
	// High counts every high or critical incident (latest, not merged).
	High int
	// Chains were injected; Consumed of them had every record committed
	// by the run, and only those are judged.
	Chains, Consumed int
	// One counts the consumed chains whose identifiers exactly one high
	// incident holds; Split and Missed list those held by several and by
	// none.
	One           int
	Split, Missed []int
	// Glued counts high incidents holding identifiers of two chains or
	// more (each should be its own).
	Glued int
	// Partial counts high incidents holding only chains the run did not
	// consume whole: pieces of a story still arriving, not judged.
	Partial int
	// Unrelated are the high incidents holding no chain's identifier:
	// findings on the generated background, each "title: rule titles".
	Unrelated []string
	Err       string
}

// tally judges incs against the chains of the stream generated with cfg.
// consumed says whether a chain's records were all committed.
func tally(incs []highIncident, cfg loadgen.Config, chains int, consumed func(n int) bool) chainTally {
	t := chainTally{High: len(incs), Chains: chains}
	owner := map[string]int{}
	for n := 1; n <= chains; n++ {
		for _, id := range loadgen.ChainIdentifiers(cfg, n) {
			owner[id] = n
		}
	}
	held := map[int]int{}
	for _, in := range incs {
		of := map[int]bool{}
		for _, e := range in.Entities {
			_, v, _ := strings.Cut(e, ":")
			if n, ok := owner[v]; ok {
				of[n] = true
			}
		}
		whole := false
		for n := range of {
			held[n]++
			whole = whole || consumed(n)
		}
		switch {
		case len(of) == 0:
			t.Unrelated = append(t.Unrelated, fmt.Sprintf("%s: %s", in.Title, strings.Join(in.Rules, "; ")))
		case len(of) > 1:
			t.Glued++
		case !whole:
			t.Partial++
		}
	}
	for n := 1; n <= chains; n++ {
		if !consumed(n) {
			continue
		}
		t.Consumed++
		switch held[n] {
		case 0:
			t.Missed = append(t.Missed, n)
		case 1:
			t.One++
		default:
			t.Split = append(t.Split, n)
		}
	}
	sort.Strings(t.Unrelated)
	return t
}

// ok reports whether every consumed chain is one high incident, of its
// own, and nothing else is high.
func (t chainTally) ok() bool {
	return t.Err == "" && t.One == t.Consumed && t.Glued == 0 && len(t.Unrelated) == 0
}

// cell is the tally in a report table cell: consumed chains that are one
// high incident each, and the other high incidents.
func (t chainTally) cell() string {
	if t.Err != "" {
		return "error"
	}
	s := fmt.Sprintf("%d of %d", t.One, t.Consumed)
	if t.Consumed < t.Chains {
		s += fmt.Sprintf(" consumed (of %d)", t.Chains)
	}
	var more []string
	if len(t.Split) > 0 {
		more = append(more, fmt.Sprintf("%d split", len(t.Split)))
	}
	if len(t.Missed) > 0 {
		more = append(more, fmt.Sprintf("%d missed", len(t.Missed)))
	}
	if t.Glued > 0 {
		more = append(more, fmt.Sprintf("%d glued", t.Glued))
	}
	if len(t.Unrelated) > 0 {
		more = append(more, fmt.Sprintf("**%d high on no chain**", len(t.Unrelated)))
	}
	if t.Partial > 0 {
		more = append(more, fmt.Sprintf("%d on chains still arriving", t.Partial))
	}
	if len(more) > 0 {
		s += "; " + strings.Join(more, ", ")
	}
	return s
}

// short is the tally in a log or summary line.
func (t chainTally) short() string {
	if t.Err != "" {
		return "chains: " + t.Err
	}
	return fmt.Sprintf("%d of %d consumed chains one high incident each (%d injected), %d split, %d missed, %d glued, %d high on no chain, %d on chains still arriving",
		t.One, t.Consumed, t.Chains, len(t.Split), len(t.Missed), t.Glued, len(t.Unrelated), t.Partial)
}

// judgeChains reads the offsets group committed and then the run's high
// incidents, and tallies them against the preloaded chains. In that
// order: the engine writes a record's incidents before it commits the
// record, so a chain committed is a chain whose incidents are all there,
// even while the engine still runs.
func (h *harness) judgeChains(ctx context.Context, conn driver.Conn, db, group string) chainTally {
	committed, err := committedOffsets(ctx, h.brokers, h.load.names(), group)
	if err != nil {
		return chainTally{Err: err.Error()}
	}
	incs, err := highIncidents(ctx, conn, db)
	if err != nil {
		return chainTally{Err: err.Error()}
	}
	return tally(incs, h.gen, h.report.stream.Chains, func(n int) bool { return h.places.consumed(n, committed) })
}
