package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestSignalRoundTrip encodes a detect batch's signals and decodes them:
// alerts keep Keyed (which alert JSON leaves out), events keep their
// fields, times fold per source, and a signal larger than a message splits
// into parts that together carry every item once.
func TestSignalRoundTrip(t *testing.T) {
	events := []ocsf.Event{
		{ClassUID: 6003, Time: 10, Metadata: ocsf.Metadata{UID: "e1", LogName: "cloudtrail", TenantUID: "acme"}},
		{ClassUID: 6003, Time: 30, Metadata: ocsf.Metadata{UID: "e2", LogName: "cloudtrail", TenantUID: "acme"}},
		{ClassUID: 4001, Time: 20, Metadata: ocsf.Metadata{UID: "e3", LogName: "vpcflow", TenantUID: "acme"},
			Observables: []ocsf.Observable{{Entity: ocsf.EntityIP, Name: "src_endpoint.ip", Value: "203.0.113.9"}, {Entity: ocsf.EntityInstance, Value: "i-1"}}},
		{ClassUID: 1007, Time: 40, Metadata: ocsf.Metadata{UID: "e4", LogName: "agent", TenantUID: "beta"}, Message: "whole"},
	}
	alerts := []alert.Alert{{ID: "a1", RuleID: "r1", TenantUID: "acme", Time: 30, Keyed: true, EventIDs: []string{"e2"}}}
	needs := func(ev *ocsf.Event) correlate.Need {
		switch ev.Metadata.UID {
		case "e3":
			return correlate.NeedLinks
		case "e4":
			return correlate.NeedEvent
		}
		return correlate.NeedTime
	}
	link := func(ev *ocsf.Event) ocsf.Event {
		return ocsf.Event{Time: ev.Time, Metadata: ev.Metadata, Observables: ev.Observables}
	}
	sigs := signalsOf(events, alerts, needs, link)
	if len(sigs) != 2 || sigs[0].Tenant != "acme" || sigs[1].Tenant != "beta" {
		t.Fatalf("got %d signals, want one per tenant in tenant order", len(sigs))
	}
	enc, err := encodeSignal(sigs[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSignal(enc[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Sources) != 1 || got.Sources[0] != (correlate.SourceTime{LogName: "cloudtrail", Time: 30}) {
		t.Errorf("got sources %v, want cloudtrail at its newest time 30", got.Sources)
	}
	if len(got.Links) != 1 || got.Links[0].Metadata.UID != "e3" || len(got.Links[0].Observables) != 2 {
		t.Errorf("got links %+v, want e3 with its two observables", got.Links)
	}
	if len(got.Alerts) != 1 || !got.Alerts[0].Keyed || got.Alerts[0].ID != "a1" {
		t.Errorf("got alerts %+v, want a1, keyed", got.Alerts)
	}
	beta, _ := encodeSignal(sigs[1])
	if b, _ := DecodeSignal(beta[0].Value); len(b.Events) != 1 || b.Events[0].Message != "whole" {
		t.Errorf("got events %+v, want e4 whole", b.Events)
	}

	// A signal above the message bound splits; the parts carry every item.
	big := &Signal{Version: SignalVersion, Tenant: "acme"}
	for i := range 400 {
		big.Links = append(big.Links, ocsf.Event{Metadata: ocsf.Metadata{UID: strings.Repeat("x", 2000) + string(rune('a'+i%26))}})
	}
	parts, err := encodeSignal(big)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range parts {
		if len(p.Value) > maxSignalBytes {
			t.Errorf("a part of %d bytes, want at most %d", len(p.Value), maxSignalBytes)
		}
		s, err := DecodeSignal(p.Value)
		if err != nil {
			t.Fatal(err)
		}
		n += s.Items()
	}
	if len(parts) < 2 || n != 400 {
		t.Errorf("got %d parts carrying %d items, want several carrying 400", len(parts), n)
	}

	// One item above the bound is left out with an error; the rest go.
	huge := &Signal{Version: SignalVersion, Tenant: "acme", Links: []ocsf.Event{{Metadata: ocsf.Metadata{UID: "small"}}, {Metadata: ocsf.Metadata{UID: "huge"}, Message: strings.Repeat("y", maxSignalBytes)}}}
	parts, err = encodeSignal(huge)
	if !errors.Is(err, errSignalTooLarge) || len(parts) != 1 || !strings.Contains(string(parts[0].Value), `"small"`) {
		t.Errorf("got %d parts, error %v; want the small item alone and errSignalTooLarge", len(parts), err)
	}
}

// TestBadSignalsAreDeadLetters feeds a correlate-role processor messages
// that are not signals of this version: each becomes a dead letter with its
// raw bytes and reason, counted, and the good signal beside them is
// correlated.
func TestBadSignalsAreDeadLetters(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewProcessor(nil, nil, nil, func(string) string { return "default" }, false, slog.New(slog.DiscardHandler), reg)
	var fed correlate.Input
	p.ReadSignals(func(in correlate.Input) correlate.Result { fed = in; return correlate.Result{Alerts: in.Alerts} })
	good, _ := json.Marshal(Signal{Version: SignalVersion, Tenant: "acme", Alerts: []SignalAlert{{Alert: alert.Alert{ID: "a1", RuleID: "r"}, Keyed: true}}})
	bad := map[string][]byte{
		"not json":          []byte("{not json"),
		"future version":    []byte(`{"v": 2, "tenant": "acme"}`),
		"no tenant":         []byte(`{"v": 1}`),
		"alert without id":  []byte(`{"v": 1, "tenant": "acme", "alerts": [{"rule_id": "r"}]}`),
		"event without uid": []byte(`{"v": 1, "tenant": "acme", "links": [{"time": 1}]}`),
		"wrong shape":       []byte(`{"v": 1, "tenant": "acme", "alerts": "x"}`),
	}
	want := map[string]string{"not json": ReasonSignalMalformed, "future version": ReasonSignalVersion, "no tenant": ReasonSignalMalformed,
		"alert without id": ReasonSignalMalformed, "event without uid": ReasonSignalMalformed, "wrong shape": ReasonSignalMalformed}
	recs := []Record{{Source: "signals", Topic: "musubi.signals", Offset: 0, Value: good}}
	names := []string{}
	for name, v := range bad {
		names = append(names, name)
		recs = append(recs, Record{Source: "signals", Topic: "musubi.signals", Offset: int64(len(recs)), Value: v})
	}
	b := p.Process(recs)
	if len(b.Alerts) != 1 || len(fed.Alerts) != 1 || !fed.Alerts[0].Keyed {
		t.Errorf("got %d alerts stored, %+v fed, want the good signal's keyed alert", len(b.Alerts), fed.Alerts)
	}
	if len(b.DeadLetters) != len(bad) {
		t.Fatalf("got %d dead letters, want %d", len(b.DeadLetters), len(bad))
	}
	for i, d := range b.DeadLetters {
		name := names[i]
		if string(d.Raw) != string(bad[name]) || d.Reason != want[name] || d.Offset != int64(i+1) || d.Error == "" {
			t.Errorf("%s: got dead letter %q reason %s offset %d error %q, want its raw bytes, reason %s, offset %d and an error", name, d.Raw, d.Reason, d.Offset, d.Error, want[name], i+1)
		}
	}
	count := func(reason string) float64 {
		var m dto.Metric
		if err := p.metrics.deadLetters.WithLabelValues("signals", reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	if got := count(ReasonSignalMalformed) + count(ReasonSignalVersion); got != float64(len(bad)) {
		t.Errorf("dead letters counted %v, want %d", got, len(bad))
	}
}

// FuzzDecodeSignal feeds arbitrary bytes to the correlate role's signal
// decoder: it never panics, and whatever it accepts is a signal of this
// version with a tenant that encodes again.
func FuzzDecodeSignal(f *testing.F) {
	good, _ := json.Marshal(Signal{Version: SignalVersion, Tenant: "acme",
		Sources: []correlate.SourceTime{{LogName: "cloudtrail", Time: 1}},
		Links:   []ocsf.Event{{Metadata: ocsf.Metadata{UID: "e"}, Observables: []ocsf.Observable{{Entity: ocsf.EntityIP, Value: "1.2.3.4"}}}},
		Alerts:  []SignalAlert{{Alert: alert.Alert{ID: "a", RuleID: "r"}, Keyed: true}}})
	f.Add(good)
	f.Add([]byte(`{"v": 2}`))
	f.Add([]byte(`{"v": 1, "tenant": "t", "events": [{"metadata": {"uid": "x"}, "unmapped": {"a": 1}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSignal(b)
		if err != nil {
			var es *errSignal
			if !errors.As(err, &es) || es.reason == "" {
				t.Fatalf("error %v without a dead-letter reason", err)
			}
			return
		}
		if s.Version != SignalVersion || s.Tenant == "" {
			t.Fatalf("accepted version %d tenant %q", s.Version, s.Tenant)
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("accepted signal does not encode: %v", err)
		}
	})
}

// TestOwnedTenantsMatchThePartitionsSignalsLandOn: the tenants a correlate
// process restores for its partitions are exactly the tenants whose
// signals the signals producer (kafka-go's Hash balancer, keyed by tenant)
// put on those partitions of a real Kafka-protocol broker.
func TestOwnedTenantsMatchThePartitionsSignalsLandOn(t *testing.T) {
	const topic, partitions = "signals-owned", 3
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	var tenants []string
	for i := range 40 {
		tenants = append(tenants, fmt.Sprintf("tenant-%02d", i))
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: kafkatest.Transport(t)}
	var msgs []kafka.Message
	for _, tn := range tenants {
		msgs = append(msgs, kafka.Message{Key: []byte(tn), Value: []byte("{}")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: kafkatest.Transport(t)}
	seen := 0
	for p := range partitions {
		resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: 0, MaxBytes: 1 << 20})
		if err != nil || resp.Error != nil {
			t.Fatalf("fetch partition %d: %v %v", p, err, resp.Error)
		}
		var landed []string
		for {
			r, err := resp.Records.ReadRecord()
			if err != nil {
				break
			}
			k, _ := io.ReadAll(r.Key)
			landed = append(landed, string(k))
		}
		slices.Sort(landed)
		seen += len(landed)
		got := OwnedTenants(tenants, Assignment{Partitions: map[string][]int{topic: {p}}, Counts: map[string]int{topic: partitions}}, topic)
		if !slices.Equal(got, landed) {
			t.Errorf("partition %d: owned tenants %v, want the tenants whose signals landed there %v", p, got, landed)
		}
	}
	if seen != len(tenants) {
		t.Errorf("read %d signals back, want %d", seen, len(tenants))
	}
	if got := OwnedTenants(tenants, Assignment{Partitions: map[string][]int{topic: {0, 1, 2}}, Counts: map[string]int{topic: partitions}}, topic); len(got) != len(tenants) {
		t.Errorf("every partition owns %d tenants, want all %d", len(got), len(tenants))
	}
}

// A detect process publishes a batch's signal messages in one call, and
// kafka-go sends as many as its estimate of their size lets into
// signalBatchBytes as one record batch, which the broker holds whole to
// its message.max.bytes (kfake keeps Kafka's default, 1,048,588 bytes).
// The batch's own framing comes on top of the estimate: a batch of
// messages encodeSignal may make, filling the estimate exactly, must
// still go through.
func TestSignalBatchesFitTheBroker(t *testing.T) {
	const topic = "musubi.signals"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	w := newSignalWriter(cluster.ListenAddrs(), topic, &kafka.Transport{})
	w.MaxAttempts = 1 // a refused batch fails the call rather than being retried
	defer w.Close()
	key := []byte("acme")
	// kafka-go's estimate of a message without headers: its value and key
	// with the old message format's framing (Message.totalSize).
	estimate := func(value int) int { return 1 + 4 + 1 + 1 + 4 + len(key) + 4 + value + 8 }
	second := signalBatchBytes - estimate(maxSignalBytes) - estimate(0)
	if second <= 0 || second > maxSignalBytes {
		t.Fatalf("no second message fills a batch: %d bytes", second)
	}
	msgs := []kafka.Message{
		{Key: key, Value: []byte(strings.Repeat("a", maxSignalBytes))},
		{Key: key, Value: []byte(strings.Repeat("b", second))},
		{Key: key, Value: []byte(strings.Repeat("c", maxSignalBytes))},
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("publishing signal messages of %d, %d and %d bytes: %v", maxSignalBytes, second, maxSignalBytes, err)
	}
}
