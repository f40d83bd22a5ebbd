package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/internal/kafkatest"
	"github.com/musubi-xdr/musubi/storage"
)

// TestServeWritesInventory publishes AWS Config deliveries to the
// awsconfig raw topic of a Kafka broker (kfake, over the wire) — a
// snapshot file, a history file with a deletion, an EventBridge change
// notification and the snapshot once more, as a redelivery — and an
// Inspector finding to the inspector topic, and runs the
// real engine, in -role all and -role detect, into the real ClickHouse.
// Once every offset is committed the inventory must already be stored
// (it is written with the batch's events, before the commit): per tenant,
// as of any time, the latest state of every resource the items describe,
// the redelivered snapshot folded, and the seed account's predicted path
// found on what was stored.
func TestServeWritesInventory(t *testing.T) {
	for _, role := range []string{config.RoleAll, config.RoleDetect} {
		t.Run(role, func(t *testing.T) { serveWritesInventory(t, role) })
	}
}

func serveWritesInventory(t *testing.T, role string) {
	db, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := "../../ingest/awsconfig/testdata"
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	snapshot, history, change := read("snapshot_seed_account.json"), read("history_hardened_account.json"), read("eventbridge_change_imds.json")
	msgs := []kafka.Message{{Value: snapshot}, {Value: history}, {Value: change}, {Value: snapshot}}
	finding, err := os.ReadFile("../../ingest/inspector/testdata/ec2_critical_exploitable.json")
	if err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.Role = role
	topic, inspTopic := cfg.Kafka.Topics["awsconfig"], cfg.Kafka.Topics["inspector"]
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic, inspTopic, cfg.Kafka.SignalsTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.Topics = map[string]string{"awsconfig": topic, "inspector": inspTopic}
	cfg.ClickHouse.Addr = []string{chtest.Addr()}
	cfg.ClickHouse.Database = db
	cfg.Rules.Dir = "../../detections"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Pipeline.FlushInterval = 100 * time.Millisecond
	cfg.Tenants = []config.Tenant{{ID: "acme", Accounts: []string{"111122223333"}}, {ID: "globex", Accounts: []string{"*"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: topic, BatchTimeout: 5 * time.Millisecond, Transport: kafkatest.Transport(t)}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: inspTopic, BatchTimeout: 5 * time.Millisecond, Transport: kafkatest.Transport(t)}
	if err := w.WriteMessages(ctx, kafka.Message{Value: finding}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, stop := startEngine(t, ctx, cfg, logger)
	defer stop()
	waitFor(t, ctx, "every message committed", func() bool { return committed(ctx, cfg) == int64(len(msgs)+1) })

	scfg := storage.Default()
	scfg.Addr, scfg.Database = []string{chtest.Addr()}, db
	store, err := storage.Open(ctx, scfg, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	// What each tenant's inventory must hold as of a time: the latest item
	// of every resource captured by then, unless it records a deletion.
	parse := func(b []byte) []awsconfig.Item {
		items, err := awsconfig.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	byTenant := map[string][]awsconfig.Item{"acme": parse(snapshot)}
	fev, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, finding)
	if len(errs) != 0 || len(fev) != 1 {
		t.Fatalf("inspector fixture: %v", errs)
	}
	findingARN, findingAt := fev[0].FindingInfo.UID, time.UnixMilli(fev[0].Time)
	byTenant["globex"] = append(parse(history), parse(change)...)
	want := func(tenant string, asOf time.Time) []string {
		latest := map[string]awsconfig.Item{}
		for _, it := range byTenant[tenant] {
			k := it.Account + " " + it.ResourceType + " " + it.ResourceID
			if it.CaptureTime <= asOf.UnixMilli() && it.CaptureTime >= latest[k].CaptureTime {
				latest[k] = it
			}
		}
		var out []string
		for k, it := range latest {
			if !it.Deleted() {
				out = append(out, k)
			}
		}
		// Inspector's finding on the seed's web server (open, updated
		// before the snapshot) is kept as a resource of its own.
		if tenant == "acme" && asOf.UnixMilli() >= findingAt.UnixMilli() {
			out = append(out, "111122223333 "+exposure.VulnerabilityResourceType+" "+findingARN)
		}
		slices.Sort(out)
		return out
	}
	got := func(tenant string, asOf time.Time) ([]string, []storage.InventoryRow) {
		rows, err := store.InventoryAsOf(ctx, storage.InventoryQuery{TenantUID: tenant, AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.AccountUID+" "+r.ResourceType+" "+r.ResourceID)
		}
		slices.Sort(out)
		return out, rows
	}
	changeAt := time.UnixMilli(parse(change)[0].CaptureTime)
	for _, tc := range []struct {
		tenant string
		asOf   time.Time
	}{
		{"acme", changeAt.Add(time.Hour)},
		{"acme", time.UnixMilli(parse(snapshot)[0].CaptureTime).Add(-time.Second)},
		{"globex", changeAt.Add(time.Hour)},
		{"globex", changeAt.Add(-time.Second)},
	} {
		g, _ := got(tc.tenant, tc.asOf)
		w := want(tc.tenant, tc.asOf)
		if !slices.Equal(g, w) {
			t.Errorf("%s as of %s: got resources %q, want %q", tc.tenant, tc.asOf.UTC().Format(time.RFC3339), g, w)
		}
	}
	if g, _ := got("globex", changeAt.Add(time.Hour)); slices.Contains(g, "444455556666 AWS::EC2::Instance i-0b00000000000b0ff") {
		t.Error("the instance deleted in the history file is still in the inventory")
	}

	// The redelivered snapshot folded: one row per item.
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".asset_inventory FINAL WHERE tenant_uid = 'acme' AND resource_type != '"+exposure.VulnerabilityResourceType+"'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := len(byTenant["acme"]); int(n) != want {
		t.Errorf("acme has %d inventory rows after FINAL, want %d (one per item)", n, want)
	}

	// The items stored are the typed items: the seed account's path is
	// found on them.
	_, rows := got("acme", changeAt)
	var raw []json.RawMessage
	var vulns []exposure.Vulnerability
	for _, r := range rows {
		if r.ResourceType == exposure.VulnerabilityResourceType {
			var v exposure.Vulnerability
			if err := json.Unmarshal(r.Item, &v); err != nil {
				t.Fatal(err)
			}
			vulns = append(vulns, v)
			continue
		}
		raw = append(raw, r.Item)
	}
	if len(vulns) != 1 || !vulns[0].Serious() {
		t.Errorf("got vulnerabilities %+v, want Inspector's exploitable finding", vulns)
	}
	items, err := exposure.DecodeItems(raw)
	if err != nil {
		t.Fatal(err)
	}
	paths := exposure.Find(exposure.NewInventory(items, vulns))
	if !slices.ContainsFunc(paths, func(p exposure.Path) bool { return p.Kind == exposure.KindInternetToProduction }) {
		t.Errorf("no internet-to-production path on the stored seed account; got %d paths", len(paths))
	}
}
