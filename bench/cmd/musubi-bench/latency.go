package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/musubi-xdr/musubi/bench/loadgen"
)

// latencyResult is the detection latency run.
type latencyResult struct {
	Rate       float64 // offered events/s
	Seconds    float64
	Produced   int
	Chains     int
	Detected   int
	P50, P99   time.Duration
	Max        time.Duration
	Poll       time.Duration
	LagAtEnd   int64
	CPUPerSec  float64 // engine CPU seconds per wall second over the run
	Err        string
	Samples    []time.Duration
	Rules      int
	PeakRSS    int64
	WarmupSecs float64
	// Split: the split roles' run (one detect, one correlate), not the
	// -role all reference (split-roles section only).
	Split bool
}

type pendingChain struct {
	uid      string
	appended time.Time
}

// runLatency produces the stream at rate events/s in real time (event time
// = wall-clock time) for d, with a chain every second after a warm-up, and
// measures for each chain the time from the Kafka append (the broker's
// acknowledgement) of its last record to an incident of at least high
// severity holding that record's alert being queryable in ClickHouse.
func (h *harness) runLatency(ctx context.Context, rulesDir string, nRules int, rate float64, d time.Duration) (latencyResult, error) {
	return h.latency(ctx, "latency", h.live, nRules, rate, d, func(db, group string) (engineProcs, error) {
		cfgPath, err := h.engineConfig("latency", group, h.live, rulesDir, db)
		if err != nil {
			return nil, err
		}
		return start(pinned(h.engine, "serve", "-config", cfgPath), filepath.Join(h.work, "latency.log"))
	})
}

// latency is runLatency's measurement on the topics ts, of the engine
// launch starts (its data in db, its raw consumer group group).
func (h *harness) latency(ctx context.Context, name string, ts topicSet, nRules int, rate float64, d time.Duration,
	launch func(db, group string) (engineProcs, error)) (latencyResult, error) {
	res := latencyResult{Rate: rate, Rules: nRules, Poll: 100 * time.Millisecond}
	db := h.dbName(name)
	group := "bench-" + name + "-" + h.id
	p, err := launch(db, group)
	if err != nil {
		return res, err
	}
	defer func() { p.stop(); h.dropDB(db) }()
	// Wait until the engine has created its schema, so polls find tables.
	if err := h.waitTable(ctx, p, db); err != nil {
		return res, err
	}

	const warmup = 5 * time.Second
	res.WarmupSecs = warmup.Seconds()
	startWall := time.Now()
	every, span := time.Second, 3*time.Second
	chains := max(int((d-warmup-span)/every)+1, 1)
	g := loadgen.New(loadgen.Config{Seed: h.seed + 1, Start: startWall, Rate: rate, Entities: h.entities,
		ChainEvery: every, ChainStart: warmup, ChainSpan: span, MaxChains: chains})
	w := newWriter(h.brokers)
	defer w.Close()

	var mu sync.Mutex
	pending := map[int]pendingChain{}
	detected := map[int]time.Duration{}
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		h.pollIncidents(pollCtx, db, &mu, pending, detected, res.Poll)
	}()

	cpu0 := p.cpuTime()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := startWall.Add(d)
	var msgs []kafka.Message
	var lasts []loadgen.Record
	lastLog := time.Now()
	for {
		now := time.Now()
		if now.After(end) && g.Pending() == 0 && g.Chains() == chains {
			break
		}
		msgs, lasts = msgs[:0], lasts[:0]
		for g.Now().Before(now) {
			r := g.Next()
			msgs = append(msgs, message(ts, r))
			if r.Last {
				lasts = append(lasts, r)
			}
		}
		if len(msgs) > 0 {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := w.WriteMessages(wctx, msgs...)
			cancel()
			if err != nil {
				stopPoll()
				<-pollDone
				return res, fmt.Errorf("produce: %s", clip(err.Error()))
			}
			acked := time.Now()
			res.Produced += len(msgs)
			mu.Lock()
			for _, r := range lasts {
				pending[r.Chain] = pendingChain{uid: r.EventUID, appended: acked}
			}
			mu.Unlock()
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			mu.Lock()
			h.logf("latency: %d records produced, %d chains, %d detected, %d waiting", res.Produced, g.Chains(), len(detected), len(pending))
			mu.Unlock()
		}
		if err, ok := p.exited(); ok {
			stopPoll()
			<-pollDone
			return res, fmt.Errorf("engine exited (%v):\n%s", err, p.tail())
		}
		select {
		case <-ctx.Done():
			stopPoll()
			<-pollDone
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	res.Seconds = time.Since(startWall).Seconds()
	res.Chains = g.Chains()
	// Give the last chains up to 30 s to show up.
	for wait := time.Now().Add(30 * time.Second); time.Now().Before(wait); {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopPoll()
	<-pollDone
	res.CPUPerSec = (p.cpuTime() - cpu0).Seconds() / time.Since(startWall).Seconds()
	endOff, committed, _ := offsets(ctx, h.brokers, ts, group)
	res.LagAtEnd = endOff - committed
	res.PeakRSS = p.peakRSS()
	mu.Lock()
	defer mu.Unlock()
	for _, l := range detected {
		res.Samples = append(res.Samples, l)
	}
	slices.Sort(res.Samples)
	res.Detected = len(res.Samples)
	if n := len(res.Samples); n > 0 {
		res.P50 = res.Samples[(n-1)*50/100]
		res.P99 = res.Samples[(n-1)*99/100]
		res.Max = res.Samples[n-1]
	}
	return res, nil
}

// pollIncidents looks every interval for the pending chains' last events
// among the alerts, and for those alerts among incidents of at least high
// severity; a chain found is moved from pending to detected with its
// latency.
func (h *harness) pollIncidents(ctx context.Context, db string, mu *sync.Mutex, pending map[int]pendingChain, detected map[int]time.Duration, every time.Duration) {
	conn, err := chConn(h.clickhouse)
	if err != nil {
		fmt.Fprintln(os.Stderr, "poll:", err)
		return
	}
	defer conn.Close()
	for ctx.Err() == nil {
		time.Sleep(every)
		mu.Lock()
		byUID := map[string]int{}
		for c, pc := range pending {
			byUID[pc.uid] = c
		}
		mu.Unlock()
		if len(byUID) == 0 {
			continue
		}
		alertChain := map[string]int{}
		rows, err := conn.Query(ctx, "SELECT alert_id, ev FROM "+db+".alerts ARRAY JOIN event_ids AS ev WHERE ev IN ("+quoteList(mapKeys(byUID))+")")
		if err != nil {
			continue
		}
		for rows.Next() {
			var a, ev string
			if rows.Scan(&a, &ev) == nil {
				alertChain[a] = byUID[ev]
			}
		}
		rows.Close()
		if len(alertChain) == 0 {
			continue
		}
		rows, err = conn.Query(ctx, "SELECT a FROM "+db+".incidents ARRAY JOIN alert_ids AS a WHERE severity_id >= 4 AND a IN ("+quoteList(mapKeys(alertChain))+") GROUP BY a")
		if err != nil {
			continue
		}
		seen := time.Now()
		mu.Lock()
		for rows.Next() {
			var a string
			if rows.Scan(&a) == nil {
				c := alertChain[a]
				if pc, ok := pending[c]; ok {
					detected[c] = seen.Sub(pc.appended)
					delete(pending, c)
				}
			}
		}
		mu.Unlock()
		rows.Close()
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// quoteList renders ids (hex, dashes and dots only, from our own
// generator and engine) as a ClickHouse list of string literals.
func quoteList(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\'')
		b.WriteString(strings.NewReplacer(`\`, ``, `'`, ``).Replace(id))
		b.WriteByte('\'')
	}
	return b.String()
}

// waitTable waits until the engine has migrated db.
func (h *harness) waitTable(ctx context.Context, p engineProcs, db string) error {
	conn, err := chConn(h.clickhouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	for limit := time.Now().Add(2 * time.Minute); time.Now().Before(limit); {
		if err, ok := p.exited(); ok {
			return fmt.Errorf("engine exited (%v):\n%s", err, p.tail())
		}
		var n uint64
		if conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'incidents'", db).Scan(&n) == nil && n > 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("engine did not create %s.incidents within 2 minutes", db)
}
