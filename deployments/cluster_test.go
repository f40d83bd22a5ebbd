//go:build cluster

// The cluster tests run against the local replicated cluster that
// deployments/local/cluster.sh starts (ZooKeeper, two replicas of shard 1,
// one replica of shard 2) and `make test-cluster` runs them. They need
// MUSUBI_CLUSTER_ADDRS (the servers' native addresses, shard 1's replicas
// first) and fail without it: behind this build tag the cluster is never
// optional.
package deployments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// clusterFromEnv is the cluster of MUSUBI_CLUSTER_ADDRS and
// MUSUBI_CLUSTER_NAME.
func clusterFromEnv(t *testing.T) *clusterTarget {
	t.Helper()
	addrs := os.Getenv("MUSUBI_CLUSTER_ADDRS")
	if addrs == "" {
		t.Fatal("MUSUBI_CLUSTER_ADDRS is not set: run `make test-cluster`, which starts the cluster (deployments/local/cluster.sh)")
	}
	name := os.Getenv("MUSUBI_CLUSTER_NAME")
	if name == "" {
		name = "musubi_cluster"
	}
	tgt := &clusterTarget{addrs: strings.Split(addrs, ","), name: name}
	if len(tgt.addrs) != 3 {
		t.Fatalf("MUSUBI_CLUSTER_ADDRS has %d servers, want 3 (two replicas of shard 1, then shard 2)", len(tgt.addrs))
	}
	return tgt
}

// server opens a connection to one server of the cluster only.
func server(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: "default"}, DialTimeout: 5 * time.Second,
		Settings: clickhouse.Settings{"allow_experimental_low_cardinality_type": 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func queryCount(ctx context.Context, t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestClusterMigrateTwice runs the migrations ON CLUSTER twice and checks
// that every server holds every table in its cluster shape: a replicated
// <table>_local and a Distributed <table>, both with the columns the same
// migrations give a single server, and the shared schema_migrations.
func TestClusterMigrateTwice(t *testing.T) {
	tgt := clusterFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	store, cfg := openStore(ctx, t, tgt)
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	st, err := store.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied || m.Changed {
			t.Errorf("migration %d %s: applied %v changed %v, want applied and unchanged", m.Version, m.Name, m.Applied, m.Changed)
		}
	}
	single, scfg := openStore(ctx, t, nil)
	single.Close()
	want := map[string]string{}
	for _, tbl := range storage.Tables() {
		want[tbl] = columns(ctx, t, server(t, chtest.Addr()), scfg.Database, tbl)
	}
	for _, addr := range tgt.addrs {
		conn := server(t, addr)
		for _, tbl := range storage.Tables() {
			var local, dist string
			if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", cfg.Database, tbl+"_local").Scan(&local); err != nil {
				t.Errorf("%s: %s_local: %v", addr, tbl, err)
			} else if !strings.HasPrefix(local, "Replicated") {
				t.Errorf("%s: %s_local has engine %s, want Replicated*", addr, tbl, local)
			}
			if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", cfg.Database, tbl).Scan(&dist); err != nil {
				t.Errorf("%s: %s: %v", addr, tbl, err)
			} else if dist != "Distributed" {
				t.Errorf("%s: %s has engine %s, want Distributed", addr, tbl, dist)
			}
			// Every migration's columns reached both tables on every
			// server, as on one server.
			for _, name := range []string{tbl, tbl + "_local"} {
				if got := columns(ctx, t, conn, cfg.Database, name); got != want[tbl] {
					t.Errorf("%s: %s has columns\n%s\nwant (as on one server)\n%s", addr, name, got, want[tbl])
				}
			}
		}
		// Every server sees every migration recorded, whichever applied it.
		if n := queryCount(ctx, t, conn, "SELECT uniqExact(version) FROM "+cfg.Database+".schema_migrations"); int(n) != len(st) {
			t.Errorf("%s: schema_migrations has %d versions, want %d", addr, n, len(st))
		}
	}
}

// columns lists the columns of a table with their types, in order.
func columns(ctx context.Context, t *testing.T, conn driver.Conn, db, table string) string {
	t.Helper()
	rows, err := conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", db, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, name+" "+typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Errorf("%s.%s has no columns", db, table)
	}
	return strings.Join(out, ", ")
}

// TestClusterReadsEqualSingleNode writes the replayed attack scenario
// (events, alerts, incident versions, dead letters) once to a fresh
// database of the single test server and once through the cluster's
// Distributed tables, and checks that the API's reads answer the same on
// both: the incident queue, every incident's detail with its evidence, the
// alert queue, the dead letters, an entity pivot, and the correlator's
// restore (open state, watermark). It also checks that
// the rows really were spread over both shards.
func TestClusterReadsEqualSingleNode(t *testing.T) {
	tgt := clusterFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	single, _ := openStore(ctx, t, nil)
	cluster, ccfg := openStore(ctx, t, tgt)
	batch, tenant := replayScenario(t)
	for _, s := range []*storage.Store{single, cluster} {
		if err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("the batch: %d events, %d alerts, %d incident versions, %d dead letters",
		len(batch.Events), len(batch.Alerts), len(batch.Incidents), len(batch.DeadLetters))
	waitReplicated(ctx, t, tgt, ccfg.Database)

	// Both shards hold part of the sharded tables (the scenario's few
	// incidents may all hash to one shard; its events and alerts do not).
	for _, tbl := range []string{storage.TableEvents, storage.TableAlerts} {
		s1 := queryCount(ctx, t, server(t, tgt.addrs[0]), "SELECT count() FROM "+ccfg.Database+"."+tbl+"_local")
		s2 := queryCount(ctx, t, server(t, tgt.addrs[2]), "SELECT count() FROM "+ccfg.Database+"."+tbl+"_local")
		if s1 == 0 || s2 == 0 {
			t.Errorf("%s: shard 1 holds %d rows, shard 2 %d; want both some", tbl, s1, s2)
		}
		t.Logf("%s: %d rows on shard 1, %d on shard 2", tbl, s1, s2)
	}

	tenants := []string{tenant}
	same := func(what string, read func(*storage.Store) (any, error)) {
		t.Helper()
		want, err := read(single)
		if err != nil {
			t.Fatalf("%s on the single server: %v", what, err)
		}
		got, err := read(cluster)
		if err != nil {
			t.Fatalf("%s on the cluster: %v", what, err)
		}
		got, want = writeClockFree(got), writeClockFree(want)
		if !reflect.DeepEqual(got, want) {
			g, _ := json.MarshalIndent(got, "", " ")
			w, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("%s differs on the cluster:\ncluster %s\nsingle  %s", what, g, w)
		}
	}
	var queue casework.IncidentPage
	for _, sort := range []string{"last_seen", "severity", "risk_score"} {
		same("incident queue by "+sort, func(s *storage.Store) (any, error) {
			p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Sort: sort, Desc: true, Limit: 100})
			queue = p
			return p, err
		})
	}
	if len(queue.Items) == 0 {
		t.Fatal("the queue is empty: the comparison compared nothing")
	}
	// The full-text search runs its subqueries over comments, alert links,
	// alerts and events; a word of an alert's title finds its incident.
	word := strings.Fields(batch.Alerts[0].Title)[0]
	same("incident queue, text search for "+word, func(s *storage.Store) (any, error) {
		p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Text: word, FullText: true, Limit: 100})
		if err == nil && len(p.Items) == 0 {
			err = fmt.Errorf("no incident found for %q", word)
		}
		return p, err
	})
	evidence := 0
	for _, in := range queue.Items {
		same("incident "+in.ID, func(s *storage.Store) (any, error) {
			d, err := s.GetIncident(ctx, tenants, in.ID, "")
			evidence += len(d.Evidence)
			return d, err
		})
	}
	if evidence == 0 {
		t.Error("no incident has evidence: the comparison of evidence compared nothing")
	}
	same("alert queue", func(s *storage.Store) (any, error) {
		return s.ListAlerts(ctx, casework.AlertQuery{Tenants: tenants, Limit: 500})
	})
	same("dead letters", func(s *storage.Store) (any, error) {
		return s.ListDeadLetters(ctx, storage.DeadLetterQuery{Tenants: tenants, Limit: 100})
	})
	// The correlator's restore on start and its watermark.
	from := time.UnixMilli(batch.Alerts[0].Time).Add(-30 * 24 * time.Hour)
	same("open state", func(s *storage.Store) (any, error) {
		st, err := s.LoadOpenState(ctx, from)
		if err == nil && (len(st.Incidents) == 0 || len(st.Alerts) == 0) {
			err = fmt.Errorf("open state has %d incidents and %d alerts, want some", len(st.Incidents), len(st.Alerts))
		}
		return st, err
	})
	same("watermark", func(s *storage.Store) (any, error) { return s.Watermark(ctx) })
	var ip string
	for _, e := range batch.Events {
		for _, o := range e.Observables {
			if o.Entity == ocsf.EntityIP && ip == "" {
				ip = o.Value
			}
		}
	}
	same("entity pivot on "+ip, func(s *storage.Store) (any, error) {
		return s.EntityPivot(ctx, casework.EntityQuery{Tenants: tenants, Type: string(ocsf.EntityIP), Value: ip, Limit: 100})
	})

	// The analyst workflow works through the cluster too: the queue's
	// status filter sees the resolved incident.
	id, _, _ := attackIncident(batch)
	resolve(ctx, t, cluster, tenant, id)
	p, err := cluster.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Status: []string{"resolved"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Items[0].ID != id {
		t.Errorf("resolved incidents on the cluster: %+v, want only %s", p.Items, id)
	}
}

// writeClockFree clears what holds the clock of the write rather than the
// data (an incident's UpdatedAt is when its row was inserted, its
// workflow's times when the analyst's change was), so two writes of the
// same batch or change compare equal.
func writeClockFree(v any) any {
	clear := func(in *casework.Incident) {
		in.UpdatedAt = time.Time{}
		w := &in.Workflow
		w.UpdatedAt, w.AcknowledgedAt, w.ResolvedAt, w.ClosedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	}
	switch v := v.(type) {
	case casework.IncidentPage:
		items := slices.Clone(v.Items)
		for i := range items {
			clear(&items[i])
		}
		v.Items = items
		return v
	case casework.IncidentDetail:
		clear(&v.Incident)
		return v
	case casework.Incident:
		clear(&v)
		return v
	case casework.EntityActivity:
		items := slices.Clone(v.Incidents)
		for i := range items {
			items[i].UpdatedAt = time.Time{}
		}
		v.Incidents = items
		return v
	}
	return v
}

// TestClusterDashboards runs the Grafana dashboards' queries (as
// TestDashboardQueries, TestDashboardsBeforeFirstIncident and
// TestDashboardsFilterTenant do on the single server) against a cluster
// database seeded the same way: the panels read the Distributed tables.
func TestClusterDashboards(t *testing.T) {
	seedOn = clusterFromEnv(t)
	defer func() { seedOn = nil }()
	t.Run("queries", TestDashboardQueries)
	t.Run("before first incident", TestDashboardsBeforeFirstIncident)
	t.Run("filter tenant", TestDashboardsFilterTenant)
}

// TestClusterReplicaDownDuringWrites stops one replica of shard 1 while
// the writer stores batches, checks every write succeeds meanwhile and the
// Distributed tables read every row written so far, then restarts it and
// waits for replication to catch up: both replicas of shard 1 hold every
// row, and reads through the Distributed tables of every server find all
// of them. It stops server 2 (a replica the writer does not talk to), then
// server 1 (the writer's first address, which it has open connections to
// and must leave for server 2).
func TestClusterReplicaDownDuringWrites(t *testing.T) {
	tgt := clusterFromEnv(t)
	script := os.Getenv("MUSUBI_CLUSTER_SCRIPT")
	if script == "" {
		t.Fatal("MUSUBI_CLUSTER_SCRIPT is not set: run `make test-cluster`")
	}
	// Whatever happens, the cluster is whole again for the next test.
	t.Cleanup(func() { _, _ = exec.Command(script, "start").CombinedOutput() })
	for _, down := range []int{2, 1} {
		t.Run(fmt.Sprintf("server %d down", down), func(t *testing.T) {
			replicaDown(t, tgt, script, down)
		})
	}
}

func replicaDown(t *testing.T, tgt *clusterTarget, script string, down int) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	store, cfg := openStore(ctx, t, tgt)
	const tenant, batches, perBatch = "t-down", 6, 200
	up := tgt.addrs[2-down] // the other replica of shard 1
	countVia := func(addr string) uint64 {
		t.Helper()
		return queryCount(ctx, t, server(t, addr), "SELECT uniqExact(event_uid) FROM "+cfg.Database+".events WHERE tenant_uid = ?", tenant)
	}
	write := func(b int) {
		t.Helper()
		var evs []ocsf.Event
		for i := range perBatch {
			evs = append(evs, clusterEvent(tenant, fmt.Sprintf("ev-%d-%d", b, i), int64(b*perBatch+i)))
		}
		// The retry's back-off is Write's own: it returns once the rows
		// are stored, or fails the test when the context ends.
		if err := store.Write(ctx, storage.Batch{Events: evs}); err != nil {
			t.Fatalf("write of batch %d: %v", b, err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, script, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", script, args, err, out)
		}
	}

	write(0)
	run("stop-server", fmt.Sprint(down))
	if c, err := net.DialTimeout("tcp", tgt.addrs[down-1], time.Second); err == nil {
		c.Close()
		t.Fatalf("server %d still accepts connections after it was stopped", down)
	}
	for b := 1; b < batches-1; b++ {
		write(b)
		if n, want := countVia(up), uint64((b+1)*perBatch); n != want {
			t.Errorf("with server %d down, after batch %d: %d events read through %s, want %d", down, b, n, up, want)
		}
	}
	run("start")
	write(batches - 1)
	waitReplicated(ctx, t, tgt, cfg.Database)

	want := uint64(batches * perBatch)
	q := "SELECT uniqExact(event_uid) FROM " + cfg.Database + ".events_local WHERE tenant_uid = ?"
	r1 := queryCount(ctx, t, server(t, tgt.addrs[0]), q, tenant)
	r2 := queryCount(ctx, t, server(t, tgt.addrs[1]), q, tenant)
	s2 := queryCount(ctx, t, server(t, tgt.addrs[2]), q, tenant)
	if r1 != r2 || r1+s2 != want || r1 == 0 || s2 == 0 {
		t.Errorf("events: shard 1 replicas hold %d and %d, shard 2 %d; want equal replicas and %d in all over both shards", r1, r2, s2, want)
	}
	for _, addr := range tgt.addrs {
		if n := countVia(addr); n != want {
			t.Errorf("reading through the Distributed table on %s: %d events, want %d", addr, n, want)
		}
	}
}

// clusterEventBase is the time of the first clusterEvent.
var clusterEventBase = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixMilli()

// clusterEvent is a minimal stored event, i milliseconds after
// clusterEventBase.
func clusterEvent(tenant, uid string, i int64) ocsf.Event {
	var e ocsf.Event
	e.SetClass(ocsf.ClassAPIActivity, 1, "Create")
	e.Time = clusterEventBase + i
	e.SeverityID = ocsf.SeverityInformational
	e.Metadata.UID = uid
	e.Metadata.TenantUID = tenant
	e.Metadata.LogName = "cloudtrail"
	e.Metadata.Product.Name = "CloudTrail"
	e.Cloud.Account.UID = "111122223333"
	e.API.Operation = "PutObject"
	e.AddObservable(ocsf.EntityIP, "src_endpoint.ip", "203.0.113.7")
	return e
}

// waitReplicated waits until every replicated table of db is caught up on
// every server: no replica read-only or missing its peers, nothing left in
// its replication queue, and the two replicas of shard 1 holding the same
// rows (which also covers log entries not yet copied into a queue).
func waitReplicated(ctx context.Context, t *testing.T, tgt *clusterTarget, db string) {
	t.Helper()
	conns := make([]driver.Conn, len(tgt.addrs))
	for i, a := range tgt.addrs {
		conns[i] = server(t, a)
	}
	const lagging = `SELECT count() FROM system.replicas WHERE database = ?
		AND (is_readonly OR is_session_expired OR queue_size > 0 OR inserts_in_queue > 0
		OR active_replicas < total_replicas)`
	var last string
	for {
		last = ""
		for i, c := range conns {
			var n uint64
			if err := c.QueryRow(ctx, lagging, db).Scan(&n); err != nil {
				last += fmt.Sprintf("%s: %v; ", tgt.addrs[i], err)
			} else if n > 0 {
				last += fmt.Sprintf("%s: %d tables lag; ", tgt.addrs[i], n)
			}
		}
		if last == "" {
			for _, tbl := range storage.Tables() {
				q := "SELECT count() FROM " + db + "." + tbl + "_local"
				var a, b uint64
				errA := conns[0].QueryRow(ctx, q).Scan(&a)
				errB := conns[1].QueryRow(ctx, q).Scan(&b)
				if errA != nil || errB != nil || a != b {
					last += fmt.Sprintf("%s: shard 1 replicas hold %d and %d rows (%v, %v); ", tbl, a, b, errA, errB)
				}
			}
		}
		if last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replication did not catch up: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestClusterWatermarkAndRetention checks the two reads of partition
// metadata on a cluster, each asked of a server of the other shard than
// the one holding the rows that matter: the watermark is the newest alert
// of every shard, and retention drops an expired partition that exists on
// one shard only.
func TestClusterWatermarkAndRetention(t *testing.T) {
	tgt := clusterFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	store, cfg := openStore(ctx, t, tgt)
	const tenant = "t-meta"
	old := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	recent := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	b := storage.Batch{}
	// One event on an old day (so its partition exists on one shard
	// only), many on a recent one.
	b.Events = append(b.Events, clusterEvent(tenant, "ev-old", old.UnixMilli()-clusterEventBase))
	for i := range 100 {
		b.Events = append(b.Events, clusterEvent(tenant, fmt.Sprintf("ev-%d", i), recent.UnixMilli()-clusterEventBase+int64(i)))
	}
	// Many alerts on the recent day, and the newest one the next day (so
	// its partition exists on one shard only).
	for i := range 20 {
		b.Alerts = append(b.Alerts, clusterAlert(tenant, fmt.Sprintf("al-%d", i), recent.UnixMilli()))
	}
	newest := recent.Add(24 * time.Hour)
	b.Alerts = append(b.Alerts, clusterAlert(tenant, "al-newest", newest.UnixMilli()))
	if err := store.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitReplicated(ctx, t, tgt, cfg.Database)

	// otherShard is the address of a server of the shard that does not
	// hold the row of table where cond holds.
	otherShard := func(table, cond string) string {
		t.Helper()
		n := queryCount(ctx, t, server(t, tgt.addrs[2]), "SELECT count() FROM "+cfg.Database+"."+table+"_local WHERE "+cond)
		if n == 0 {
			return tgt.addrs[2]
		}
		return tgt.addrs[0]
	}
	on := func(addr string) *storage.Store {
		t.Helper()
		c := cfg
		c.Addr = []string{addr}
		s, err := storage.Open(ctx, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}

	addr := otherShard(storage.TableAlerts, "alert_id = 'al-newest'")
	wm, err := on(addr).Watermark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !wm.Equal(newest) {
		t.Errorf("watermark asked of %s: %v, want the newest alert's %v", addr, wm, newest)
	}

	addr = otherShard(storage.TableEvents, "event_uid = 'ev-old'")
	// Events are kept 30 days: on the recent day plus 30, the old day has
	// expired and the recent one has not.
	dropped, err := on(addr).DropExpiredPartitions(ctx, recent.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.DroppedPartition{{Table: storage.TableEvents, Partition: old.Format("20060102")}}
	if !reflect.DeepEqual(dropped, want) {
		t.Errorf("retention run on %s dropped %v, want %v", addr, dropped, want)
	}
	for _, a := range tgt.addrs {
		conn := server(t, a)
		if n := queryCount(ctx, t, conn, "SELECT count() FROM "+cfg.Database+".events_local WHERE event_uid = 'ev-old'"); n != 0 {
			t.Errorf("%s still holds the expired event", a)
		}
		if n := queryCount(ctx, t, conn, "SELECT uniqExact(event_uid) FROM "+cfg.Database+".events WHERE tenant_uid = ?", tenant); n != 100 {
			t.Errorf("%s reads %d events through the Distributed table, want the 100 recent ones", a, n)
		}
	}
}

// clusterAlert is a minimal stored alert.
func clusterAlert(tenant, id string, at int64) alert.Alert {
	return alert.Alert{ID: id, TenantUID: tenant, RuleID: "aws.test", RuleVersion: "1", Title: "test alert", Severity: ocsf.SeverityHigh,
		Time: at, FirstSeen: at, LastSeen: at, Count: 1, Source: "cloudtrail", EventIDs: []string{"ev-0"}}
}

// TestClusterWorkflowReadsItsWrites updates an analyst's workflow many
// times in a row through a server of shard 2, for incidents stored on
// shard 1 (two replicas): each update reads the version the previous one
// wrote (its optimistic concurrency check), so every read must see the
// replica the write went to, not the other one that may lag behind.
func TestClusterWorkflowReadsItsWrites(t *testing.T) {
	tgt := clusterFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, cfg := openStore(ctx, t, tgt)
	cfg.Addr = []string{tgt.addrs[2]}
	store, err := storage.Open(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	batch, tenant := replayScenario(t)
	if err := store.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var onShard1 []string
	seen := map[string]bool{}
	for _, in := range batch.Incidents {
		if seen[in.ID] {
			continue
		}
		seen[in.ID] = true
		if queryCount(ctx, t, server(t, tgt.addrs[2]), "SELECT count() FROM "+cfg.Database+".incidents_local WHERE incident_id = ?", in.ID) == 0 {
			onShard1 = append(onShard1, in.ID)
		}
	}
	if len(onShard1) == 0 {
		t.Fatal("no incident of the scenario is stored on shard 1")
	}
	const rounds = 12
	for _, id := range onShard1 {
		for i := range rounds {
			status := []string{"in_progress", "open"}[i%2]
			if _, err := store.UpdateIncidentWorkflow(ctx, casework.WorkflowUpdate{
				Tenants: []string{tenant}, IncidentID: id, ExpectedVersion: uint64(i), Status: &status, Actor: "analyst@example.com",
			}); err != nil {
				t.Fatalf("incident %s, update %d: %v", id, i+1, err)
			}
		}
	}
}

// TestClusterRefusesRandomReplicas opens the store as a user whose profile
// keeps ClickHouse's default load_balancing (random): Open refuses it with
// an error that says what to set, since reads could miss the store's own
// writes (TestClusterWorkflowReadsItsWrites).
func TestClusterRefusesRandomReplicas(t *testing.T) {
	tgt := clusterFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := storage.Default()
	cfg.Addr, cfg.Cluster, cfg.Username = tgt.addrs, tgt.name, "random_replica"
	s, err := storage.Open(ctx, cfg, nil, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a cluster profile with load_balancing = random")
	}
	if !strings.Contains(err.Error(), "load_balancing = random") || !strings.Contains(err.Error(), "in_order") {
		t.Errorf("error does not say what to set: %v", err)
	}
	// The same cluster as the default user, whose profile sets in_order.
	cfg.Username = "default"
	s, err = storage.Open(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestClusterCaseWorkEqualSingleNode runs the case-work writes and reads
// that came after TestClusterReadsEqualSingleNode on a single server and on
// the cluster, and wants the same answers: an analyst's move of an alert
// to another incident (the alert_moves table, read with GLOBAL IN through
// the Distributed tables by the incident, the queue and the alert queue),
// a merge (the survivor serves the merged incident's alerts), saved views
// (created, listed, deleted) and the asset inventory behind the exposures
// (the state as of a time, read with FINAL, and a resource's history).
func TestClusterCaseWorkEqualSingleNode(t *testing.T) {
	tgt := clusterFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	single, _ := openStore(ctx, t, nil)
	cluster, ccfg := openStore(ctx, t, tgt)
	stores := []*storage.Store{single, cluster}
	batch, tenant := replayScenario(t)
	tenants := []string{tenant}
	for _, s := range stores {
		if err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	waitReplicated(ctx, t, tgt, ccfg.Database)
	same := func(what string, read func(*storage.Store) (any, error)) {
		t.Helper()
		want, err := read(single)
		if err != nil {
			t.Fatalf("%s on the single server: %v", what, err)
		}
		got, err := read(cluster)
		if err != nil {
			t.Fatalf("%s on the cluster: %v", what, err)
		}
		got, want = writeClockFree(got), writeClockFree(want)
		if !reflect.DeepEqual(got, want) {
			g, _ := json.MarshalIndent(got, "", " ")
			w, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("%s differs on the cluster:\ncluster %s\nsingle  %s", what, g, w)
		}
	}

	// Move an alert of the attack incident into another open incident.
	attack, _, _ := attackIncident(batch)
	d, err := single.GetIncident(ctx, tenants, attack, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.AlertIDs) < 2 {
		t.Fatalf("attack incident %s has %d alerts, want at least 2 (one to move, one to stay)", attack, len(d.AlertIDs))
	}
	var other string
	for _, in := range batch.Incidents {
		if in.ID != attack && in.MergedInto == "" {
			other = in.ID
			break
		}
	}
	if other == "" {
		t.Fatal("the scenario has no second incident to move an alert to")
	}
	moved := d.AlertIDs[0]
	for _, s := range stores {
		m, err := s.MoveAlert(ctx, casework.AlertMove{Tenants: tenants, AlertID: moved, To: other, Reason: "same host", Actor: "analyst@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if m.From == nil || m.From.ID != attack || m.To.ID != other || !slices.Contains(m.To.AlertIDs, moved) {
			t.Fatalf("move of %s: got %+v, want from %s to %s, which then holds it", moved, m, attack, other)
		}
	}
	for _, id := range []string{attack, other} {
		same("incident "+id+" after the move", func(s *storage.Store) (any, error) {
			d, err := s.GetIncident(ctx, tenants, id, "")
			if err == nil && slices.Contains(d.AlertIDs, moved) != (id == other) {
				err = fmt.Errorf("alert %s in %s: %v, want only in %s", moved, id, d.AlertIDs, other)
			}
			return d, err
		})
		same("queue row of "+id+" after the move", func(s *storage.Store) (any, error) { return s.IncidentRow(ctx, tenants, id) })
	}
	same("incident queue after the move", func(s *storage.Store) (any, error) {
		return s.ListIncidents(ctx, casework.IncidentQuery{Tenants: tenants, Sort: "last_seen", Desc: true, Limit: 100})
	})
	same("alert queue after the move", func(s *storage.Store) (any, error) {
		return s.ListAlerts(ctx, casework.AlertQuery{Tenants: tenants, Limit: 500})
	})

	// Merge the other incident into the attack: the survivor serves the
	// moved alert again, through the merged incident.
	for _, s := range stores {
		if _, err := s.RecordMerge(ctx, tenants, other, attack, "analyst@example.com", "one story"); err != nil {
			t.Fatal(err)
		}
	}
	same("survivor "+attack+" after the merge", func(s *storage.Store) (any, error) {
		d, err := s.GetIncident(ctx, tenants, attack, "")
		if err == nil && (!slices.Contains(d.MergedFrom, other) || !slices.Contains(d.AlertIDs, moved)) {
			err = fmt.Errorf("survivor merged from %v with alerts %v, want %s and %s among them", d.MergedFrom, d.AlertIDs, other, moved)
		}
		return d, err
	})
	same("merged incident "+other, func(s *storage.Store) (any, error) { return s.IncidentRow(ctx, tenants, other) })

	// Saved views: their ids are random, so compare them without.
	views := func(s *storage.Store) (any, error) {
		vs, err := s.ListViews(ctx, "alice")
		var out [][2]string
		for _, v := range vs {
			out = append(out, [2]string{v.Name, v.Query})
		}
		return out, err
	}
	for _, s := range stores {
		for _, name := range []string{"Mine", "critical", "Unassigned"} {
			if _, err := s.CreateView(ctx, casework.SavedView{Owner: "alice", Name: name, Query: "severity_id=5&q=" + name}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateView(ctx, casework.SavedView{Owner: "alice", Name: "MINE", Query: "x=1"}); !errors.Is(err, casework.ErrConflict) {
			t.Errorf("a second view named MINE: got %v, want casework.ErrConflict", err)
		}
	}
	same("saved views", views)
	for _, s := range stores {
		vs, err := s.ListViews(ctx, "alice")
		if err != nil || len(vs) != 3 {
			t.Fatalf("alice's views: got %d, %v; want 3", len(vs), err)
		}
		if _, err := s.DeleteView(ctx, "alice", vs[1].ID); err != nil {
			t.Fatal(err)
		}
	}
	same("saved views after a deletion", func(s *storage.Store) (any, error) {
		out, err := views(s)
		if err == nil && len(out.([][2]string)) != 2 {
			err = fmt.Errorf("views %v, want 2", out)
		}
		return out, err
	})

	// The asset inventory: instances captured twice (the second capture
	// wins after it), a bucket deleted, each item written twice (a
	// redelivery, folded by FINAL). The inventory is sharded by tenant and
	// account; cityHash64 puts the tenant's accounts 111122223333 and
	// 123456789012 on different shards.
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var inv []storage.InventoryRow
	for i := range 20 {
		id, account := fmt.Sprintf("i-%017d", i), []string{"111122223333", "123456789012"}[i%2]
		for c, status := range []string{"pending", "running"} {
			at := base.Add(time.Duration(c) * time.Hour)
			inv = append(inv, storage.InventoryRow{TenantUID: tenant, AccountUID: account, ResourceType: "AWS::EC2::Instance",
				ResourceID: id, CaptureMs: at.UnixMilli(), Region: "eu-west-1", ARN: "arn:aws:ec2:eu-west-1:" + account + ":instance/" + id,
				Status: status, ItemUID: fmt.Sprintf("%s-%d", id, c), Item: json.RawMessage(fmt.Sprintf(`{"configurationItemStatus": %q}`, status))})
		}
	}
	inv = append(inv, storage.InventoryRow{TenantUID: tenant, AccountUID: "111122223333", ResourceType: "AWS::S3::Bucket",
		ResourceID: "artifacts", CaptureMs: base.UnixMilli(), Status: "OK", ItemUID: "b-0", Item: json.RawMessage(`{}`)},
		storage.InventoryRow{TenantUID: tenant, AccountUID: "111122223333", ResourceType: "AWS::S3::Bucket",
			ResourceID: "artifacts", CaptureMs: base.Add(time.Hour).UnixMilli(), Status: "ResourceDeleted", Deleted: true, ItemUID: "b-1", Item: json.RawMessage(`{}`)})
	for _, s := range stores {
		for range 2 {
			if err := s.WriteInventory(ctx, inv); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitReplicated(ctx, t, tgt, ccfg.Database)
	for i, addr := range []string{tgt.addrs[0], tgt.addrs[2]} {
		if n := queryCount(ctx, t, server(t, addr), "SELECT count() FROM "+ccfg.Database+".asset_inventory_local"); n == 0 {
			t.Errorf("shard %d holds no inventory rows; want the items spread over both", i+1)
		}
	}
	for _, at := range []time.Time{base.Add(30 * time.Minute), base.Add(2 * time.Hour)} {
		same("inventory as of "+at.Format(time.RFC3339), func(s *storage.Store) (any, error) {
			rows, err := s.InventoryAsOf(ctx, storage.InventoryQuery{TenantUID: tenant, AsOf: at})
			if err == nil && len(rows) != 20+btoi(at.Before(base.Add(time.Hour))) {
				err = fmt.Errorf("%d resources, want 20 instances and the bucket until its deletion", len(rows))
			}
			return rows, err
		})
	}
	same("resource history", func(s *storage.Store) (any, error) {
		rows, err := s.ResourceHistory(ctx, tenant, "123456789012", "AWS::EC2::Instance", "i-00000000000000007")
		if err == nil && len(rows) != 2 {
			err = fmt.Errorf("%d items, want 2 (a redelivery folds)", len(rows))
		}
		return rows, err
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
