//go:build faults

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
)

// hostileRecord is one record an attacker or a broken producer could put on
// a raw topic, with the dead-letter reason it must get ("" when decoding it
// is acceptable, as long as nothing breaks).
type hostileRecord struct {
	name   string
	value  []byte
	reason string
	// keep is how many raw bytes its dead letter must keep at least (the
	// records of a message cut short that were not decoded).
	keep int
}

func hostileRecords(t *testing.T, good []byte) []hostileRecord {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal(good, &rec); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for key, val := range rec {
			m[key] = val
		}
		m["eventID"] = "hostile-" + k
		m[k] = v
		b, _ := json.Marshal(m)
		return b
	}
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 300; i++ { // 300 MiB inflated, above the 256 MiB message limit
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	lying := bytes.Clone(bomb.Bytes())
	copy(lying[len(lying)-4:], []byte{0xe8, 0x03, 0, 0}) // the trailer claims 1000 bytes
	// A record flood: 50,000 small records in one 1 MiB-ish gzip message,
	// more than the 20,000 records one message may hold.
	var flood bytes.Buffer
	zw, _ = gzip.NewWriterLevel(&flood, gzip.BestCompression)
	line := append(with("eventName", "ListBuckets"), '\n')
	for i := 0; i < 50_000; i++ {
		_, _ = zw.Write(line)
	}
	_ = zw.Close()
	badUTF8 := bytes.Replace(with("userAgent", "UTF8MARK"), []byte("UTF8MARK"), []byte{0xff, 0xfe, 'x'}, 1)
	dup := bytes.Replace(with("eventName", "ListBuckets"), []byte(`"eventName":"ListBuckets"`), []byte(`"eventName":"ListBuckets","eventName":"StopLogging"`), 1)
	return []hostileRecord{
		{"truncated JSON", good[:len(good)/2], ingest.ReasonInvalidJSON, 0},
		{"10 MB field", with("userAgent", strings.Repeat("A", 10<<20)), ingest.ReasonTooLarge, 0},
		{"100k-deep nesting", []byte(`{"Records":[` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `]}`), ingest.ReasonTooDeep, 0},
		{"invalid UTF-8", badUTF8, ingest.ReasonInvalidUTF8, 0},
		{"duplicate keys", dup, "", 0},
		{"number out of range", with("eventTime", json.Number("1e400")), "", 0},
		{"wrong types", with("eventTime", []int{1, 2}), "", 0},
		{fmt.Sprintf("gzip bomb (%d KiB inflating to 300 MiB)", bomb.Len()>>10), bomb.Bytes(), ingest.ReasonTooLarge, 0},
		{"gzip bomb with a lying size trailer", lying, ingest.ReasonTooLarge, 0},
		{fmt.Sprintf("record flood (%d KiB gzip, 50,000 records)", flood.Len()>>10), flood.Bytes(), ingest.ReasonTooManyRecords, 30_000 * len(line)},
	}
}

// TestHostileInputEndToEnd publishes hostile records, then a good one,
// through Kafka into a running engine, and then puts hostile rules into its
// rules directory: the engine does not crash or stall, every hostile record
// is a dead letter with its reason (or, where the format allows it, a
// normal event), the dead-letter metric counts them, the good record after
// them is stored and raises its alert, and the hostile rule sets are
// rejected while the running rules keep firing.
func TestHostileInputEndToEnd(t *testing.T) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, ctTopic),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(32 << 20)}))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	rulesDir := t.TempDir()
	rule, err := os.ReadFile("testdata/rules/cloudtrail_stopped.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rulesDir, "stopped.yaml"), rule, 0o644); err != nil {
		t.Fatal(err)
	}
	env, base := newClusterEnv(t, cluster, map[string]string{"cloudtrail": ctTopic}, chtest.Addr(), db, rulesDir, "")
	cmd := env.start(t, bin)
	done := watch(cmd)
	defer func() { _ = cmd.Process.Kill() }()

	var stop []json.RawMessage
	data, err := os.ReadFile(stratusStop)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &stop); err != nil {
		t.Fatal(err)
	}
	hostile := hostileRecords(t, stop[0])
	w := &kafka.Writer{Addr: kafka.TCP(env.brokers...), Topic: ctTopic, BatchBytes: 32 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: kafkatest.Transport(t)}
	defer w.Close()
	produced := 0
	for _, h := range hostile {
		if err := w.WriteMessages(ctx, kafka.Message{Value: h.value}); err != nil {
			t.Fatalf("produce %s: %v", h.name, err)
		}
		produced++
	}
	if err := w.WriteMessages(ctx, kafka.Message{Value: stop[0]}); err != nil {
		t.Fatal(err)
	}
	produced++
	maxRSS := 0.0
	for env.committed(ctx) < int64(produced) {
		alive(t, env, done, "on hostile input")
		maxRSS = max(maxRSS, rssMiB(cmd.Process.Pid))
		select {
		case <-ctx.Done():
			t.Fatalf("stalled: committed %d of %d; log:\n%s", env.committed(context.Background()), produced, engineLog(env))
		case <-time.After(200 * time.Millisecond):
		}
	}

	// Every dead-letter row written (before FINAL folds anything), with its
	// raw bytes decompressed.
	rows, err := conn.Query(ctx, "SELECT kafka_offset, reason, raw, raw_encoding FROM dead_letters ORDER BY kafka_offset, record")
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zstd.NewReader(nil)
	defer zr.Close()
	reasons, perRecord, rawKept := map[int64]string{}, map[int64]int{}, map[int64]int{}
	for rows.Next() {
		var off int64
		var reason, raw, enc string
		if err := rows.Scan(&off, &reason, &raw, &enc); err != nil {
			t.Fatal(err)
		}
		b := []byte(raw)
		if enc == "zstd" {
			if b, err = zr.DecodeAll(b, nil); err != nil {
				t.Fatalf("offset %d: raw bytes do not decompress: %v", off, err)
			}
		}
		reasons[off] = reason
		perRecord[off]++
		rawKept[off] += len(b)
	}
	rows.Close()
	fmt.Printf("hostile events: %d records through Kafka into the engine (memory at most %.0f MiB; cap %d MiB, GOMEMLIMIT %s)\n", len(hostile), maxRSS, memCapMiB, engineMemLimit)
	for i, h := range hostile {
		got := reasons[int64(i)]
		outcome := fmt.Sprintf("%d dead letter(s), reason %s, %d raw bytes kept", perRecord[int64(i)], got, rawKept[int64(i)])
		if got == "" {
			outcome = "decoded as an event"
		}
		fmt.Printf("  %-40s → %s\n", h.name, outcome)
		if h.reason != "" && got != h.reason {
			t.Errorf("%s: got dead-letter reason %q, want %q", h.name, got, h.reason)
		}
	}
	var dlRows, dlFinal uint64
	_ = conn.QueryRow(ctx, "SELECT count(), (SELECT count() FROM dead_letters FINAL) FROM dead_letters").Scan(&dlRows, &dlFinal)
	for i, h := range hostile {
		if h.reason != "" && perRecord[int64(i)] != 1 {
			t.Errorf("%s: %d dead letters, want exactly one", h.name, perRecord[int64(i)])
		}
		if rawKept[int64(i)] < h.keep {
			t.Errorf("%s: its dead letter keeps %d raw bytes, want at least %d (the records not decoded)", h.name, rawKept[int64(i)], h.keep)
		}
	}
	// Events: the hostile records that decoded, the 20,000 records of the
	// flood up to the per-message limit, and the good record.
	wantEvents := 20_000 + 1
	for i := range hostile {
		if perRecord[int64(i)] == 0 {
			wantEvents++
		}
	}
	decoded := metric(base, "musubi_pipeline_events_total")
	fmt.Printf("  musubi_pipeline_events_total %.0f (the flood's first 20,000 records among them)\n", decoded)
	if decoded != float64(wantEvents) {
		t.Errorf("musubi_pipeline_events_total = %.0f, want %d", decoded, wantEvents)
	}
	dl := metric(base, "musubi_pipeline_dead_letters_total")
	fmt.Printf("  musubi_pipeline_dead_letters_total %.0f; dead_letters rows %d written, %d after FINAL\n", dl, dlRows, dlFinal)
	if dl != float64(dlRows) {
		t.Errorf("musubi_pipeline_dead_letters_total = %.0f, want %d (the dead letters written)", dl, dlRows)
	}
	if dlFinal != dlRows {
		t.Errorf("dead letters fold after FINAL: %d written, %d left; the dead_letters key must tell the dead letters of one message apart", dlRows, dlFinal)
	}
	if maxRSS > memCapMiB {
		t.Errorf("engine memory reached %.0f MiB on hostile input, want under %d MiB", maxRSS, memCapMiB)
	}
	var goodEvents, goodAlerts uint64
	var stopID struct{ EventID string }
	_ = json.Unmarshal(stop[0], &stopID)
	_ = conn.QueryRow(ctx, "SELECT count() FROM events FINAL WHERE event_uid = ?", stopID.EventID).Scan(&goodEvents)
	_ = conn.QueryRow(ctx, "SELECT count() FROM alerts WHERE rule_id = 'e2e.cloudtrail_stopped'").Scan(&goodAlerts)
	fmt.Printf("  the good record after them: %d event stored, %d alert raised\n", goodEvents, goodAlerts)
	if goodEvents != 1 || goodAlerts < 1 {
		t.Errorf("the good record after the hostile ones: %d events, %d alerts; want 1 and at least 1", goodEvents, goodAlerts)
	}

	// Hostile rules: each file makes the reload fail; the running set stays.
	hostileRules := map[string]string{
		"deep comprehensions": "[[[[1]]]].all(a, a.all(b, b.all(c, c.all(d, d > 0))))",
		"enormous expression": strings.Repeat("event.api.operation == \"x\" || ", 20_000) + "true",
		"catastrophic regex":  `event.api.operation.matches("` + strings.Repeat("(a+)+", 400) + `b")`,
	}
	for name, cond := range hostileRules {
		before := metric(base, "musubi_rules_reloads_total", `outcome="failure"`)
		body := strings.Replace(string(rule), "id: e2e.cloudtrail_stopped", "id: e2e.hostile", 1)
		body = strings.Replace(body, `condition: event.api.operation == "StopLogging" && event.status_id != 2`, "condition: '"+cond+"'", 1)
		path := filepath.Join(rulesDir, "hostile.yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		for metric(base, "musubi_rules_reloads_total", `outcome="failure"`) <= before {
			alive(t, env, done, "on a hostile rule")
			select {
			case <-ctx.Done():
				t.Fatalf("%s: the reload was neither rejected nor reported; log:\n%s", name, engineLog(env))
			case <-time.After(200 * time.Millisecond):
			}
		}
		loaded := metric(base, "musubi_rules_loaded")
		fmt.Printf("hostile rule (%s, %d bytes): reload rejected, %.0f rule(s) still loaded\n", name, len(cond), loaded)
		if loaded != 1 {
			t.Errorf("%s: %.0f rules loaded, want the running 1", name, loaded)
		}
		_ = os.Remove(path)
	}
	// The running rule still fires.
	again := []byte(strings.Replace(string(stop[0]), stopID.EventID, "after-hostile-rules", 1))
	if err := w.WriteMessages(ctx, kafka.Message{Value: again}); err != nil {
		t.Fatal(err)
	}
	produced++
	waitCommitted(t, ctx, env, int64(produced))
	var fired uint64
	_ = conn.QueryRow(ctx, "SELECT count() FROM alerts WHERE rule_id = 'e2e.cloudtrail_stopped'").Scan(&fired)
	// Every match writes a row (a folded alert is rewritten with its new
	// count), so the rows, not the distinct alerts, show that it fired.
	fmt.Printf("  after the hostile rules: e2e.cloudtrail_stopped alert rows %d (was %d)\n", fired, goodAlerts)
	if fired <= goodAlerts {
		t.Errorf("the running rule stopped firing after the hostile reloads")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}
