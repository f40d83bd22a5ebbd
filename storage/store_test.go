package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/ocsf"
)

// testStore opens a migrated Store on a fresh test database.
func testStore(t testing.TB) *Store {
	t.Helper()
	db, _ := chtest.Database(t)
	cfg := Default()
	cfg.Addr = []string{chtest.Addr()}
	cfg.Database = db
	cfg.StoreRaw = true
	cfg.RetryMin = 5 * time.Millisecond
	cfg.RetryMax = 20 * time.Millisecond
	ctx := context.Background()
	s, err := Open(ctx, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func ms(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

func testEvent(tenant, uid string, at time.Duration) ocsf.Event {
	var e ocsf.Event
	e.SetClass(ocsf.ClassAPIActivity, 1, "Create")
	e.Time = ms(at)
	e.SeverityID = ocsf.SeverityInformational
	e.Metadata.UID = uid
	e.Metadata.TenantUID = tenant
	e.Metadata.LogName = "cloudtrail"
	e.Metadata.Product.Name = "CloudTrail"
	e.Cloud.Account.UID = "111122223333"
	e.Cloud.Region = "eu-west-1"
	e.API.Operation = "PutObject"
	e.API.Service.Name = "s3.amazonaws.com"
	e.Actor.User.Name = "web-role"
	e.Actor.User.CredentialUID = "ASIAEXAMPLE"
	e.Actor.Session.UID = "arn:aws:sts::111122223333:assumed-role/web-role/i-0abc"
	e.SrcEndpoint.IP = "203.0.113.7"
	e.AddObservable(ocsf.EntityIP, "src_endpoint.ip", "203.0.113.7")
	e.AddObservable(ocsf.EntityAccessKey, "actor.user.credential_uid", "ASIAEXAMPLE")
	e.AddObservable(ocsf.EntityBucket, "resources.uid", "artifacts")
	e.Raw = []byte(`{"eventID":"` + uid + `","eventName":"PutObject"}`)
	return e
}

// blockRows sends INSERTs in blocks of n rows for the rest of the test.
func blockRows(t *testing.T, n int) {
	old := sendBlockRows
	sendBlockRows = n
	t.Cleanup(func() { sendBlockRows = old })
}

func testAlert(tenant, id string, at time.Duration, events ...string) alert.Alert {
	return alert.Alert{
		ID: id, TenantUID: tenant, RuleID: "aws.s3.appspec_tamper", RuleVersion: "3", Title: "appspec.yml rewritten",
		Severity: ocsf.SeverityHigh, Stage: "tampering", Tactics: []string{"TA0040"}, Techniques: []string{"T1565"},
		Time: ms(at), AccountUID: "111122223333", Region: "eu-west-1", Source: "cloudtrail",
		Entities: []ocsf.Observable{ocsf.NewObservable(ocsf.EntityBucket, "resources.uid", "artifacts")},
		EventIDs: events, Summary: "s", Count: 1, FirstSeen: ms(at), LastSeen: ms(at),
	}
}

func testIncident(tenant, id string, version uint64, alerts ...alert.Alert) incident.Incident {
	in := incident.Incident{ID: id, Version: version, TenantUID: tenant, Title: "Pipeline poisoning " + id,
		Severity: ocsf.SeverityHigh, RiskScore: 80, Status: "open", Stages: []string{}, Tactics: []string{},
		Techniques: []string{}, Accounts: []string{"111122223333"}}
	for i, a := range alerts {
		if i == 0 || a.Time < in.FirstSeen {
			in.FirstSeen = a.Time
		}
		in.LastSeen = max(in.LastSeen, a.Time)
		in.AlertIDs = append(in.AlertIDs, a.ID)
		in.RuleIDs = append(in.RuleIDs, a.RuleID)
		in.Nodes = append(in.Nodes, incident.Node{ID: "alert:" + a.ID, Kind: incident.NodeAlert, Value: a.ID, Title: a.Title, Severity: a.Severity, FirstSeen: a.Time})
		in.Timeline = append(in.Timeline, incident.TimelineEntry{Time: a.Time, AlertID: a.ID, RuleID: a.RuleID, Title: a.Title, Stage: a.Stage, Severity: a.Severity})
	}
	in.Nodes = append(in.Nodes, incident.Node{ID: "bucket:artifacts", Kind: incident.NodeEntity, Entity: ocsf.EntityBucket, Value: "artifacts", Title: "artifacts", Subtitle: "bucket", FirstSeen: in.FirstSeen})
	for _, a := range alerts {
		in.Edges = append(in.Edges, incident.Edge{ID: fmt.Sprintf("e:%s", a.ID), Source: "alert:" + a.ID, Target: "bucket:artifacts",
			Relation: "touches", RuleID: a.RuleID, RuleVersion: a.RuleVersion, JoinKey: "bucket", GapMS: 1500, Time: a.Time, EventIDs: a.EventIDs})
	}
	return in
}

func count(t testing.TB, s *Store, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestMigrateTwice(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	st, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied || m.Changed {
			t.Errorf("migration %d %s: applied %v changed %v, want applied and unchanged", m.Version, m.Name, m.Applied, m.Changed)
		}
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableMigrations)+" FINAL"); int(n) != len(st) {
		t.Errorf("got %d schema_migrations rows, want %d", n, len(st))
	}
	for _, tbl := range Tables() {
		if tbl == TableViews {
			continue // a principal's, keyed by owner: no tenant's data
		}
		if n := count(t, s, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = 'tenant_uid'", s.cfg.Database, tbl); n != 1 {
			t.Errorf("table %s: tenant_uid column missing", tbl)
		}
	}
}

func TestWriteIsIdempotent(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	e1, e2 := testEvent("t1", "ev-1", 0), testEvent("t1", "ev-2", time.Minute)
	a := testAlert("t1", "al-1", time.Minute, "ev-1", "ev-2")
	b := Batch{
		Events:      []ocsf.Event{e1, e2},
		Alerts:      []alert.Alert{a},
		Incidents:   []incident.Incident{testIncident("t1", "inc-1", 1, a)},
		DeadLetters: []DeadLetter{{TenantUID: "t1", Source: "cloudtrail", Topic: "raw.cloudtrail", Partition: 3, Offset: 42, Raw: []byte("{bad"), Reason: "bad_json", Error: "unexpected EOF", Time: t0}},
	}
	// The first write of each table fails once before sending, then once
	// after the rows were stored (a lost acknowledgement), so the identical
	// rows are sent twice; then a replay writes them a third time.
	fails := map[string]int{}
	attemptHook = func(step string, done bool) error {
		if fails[step] == 0 && !done || fails[step] == 1 && done {
			fails[step]++
			return fmt.Errorf("dial: %w", &netErr{})
		}
		return nil
	}
	t.Cleanup(func() { attemptHook = nil })
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	attemptHook = nil
	// A replay writes the same batch again.
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	for tbl, want := range map[string]uint64{TableEvents: 2, TableAlerts: 1, TableIncidents: 1, TableNodes: 2, TableEdges: 1, TableLinks: 1, TableDeadLetters: 1} {
		if raw := count(t, s, "SELECT count() FROM "+s.t(tbl)); raw != 3*want {
			t.Errorf("%s: got %d raw rows, want %d (stored three times)", tbl, raw, 3*want)
		}
		if n := count(t, s, "SELECT count() FROM "+s.t(tbl)+" FINAL"); n != want {
			t.Errorf("%s: got %d rows after FINAL, want %d", tbl, n, want)
		}
	}
	if got := testutilCounter(t, s, TableEvents); got != 4 {
		t.Errorf("insert_rows_total{events}: got %v, want 4 (two acknowledged writes of 2)", got)
	}
	// The incident's number was claimed once: sent twice (the lost
	// acknowledgement), not again by the replay, which knew it.
	if raw, n := count(t, s, "SELECT count() FROM "+s.t(TableNumbers)), count(t, s, "SELECT count() FROM "+s.t(TableNumbers)+" FINAL"); raw != 2 || n != 1 {
		t.Errorf("incident_numbers: got %d raw rows, %d after FINAL, want 2 and 1", raw, n)
	}
	if got := retriesCounter(t, s); got != 18 {
		t.Errorf("retries_total: got %v, want 18 (two per table, eight tables with the incident numbers, and two of the numbers' lookup)", got)
	}
	dls, err := s.ListDeadLetters(ctx, DeadLetterQuery{Tenants: []string{"t1"}, Source: "cloudtrail"})
	if err != nil {
		t.Fatal(err)
	}
	if want := b.DeadLetters; !reflect.DeepEqual(dls, want) {
		t.Errorf("dead letters:\ngot  %+v\nwant %+v", dls, want)
	}
	// The queue and the detail view see each row once.
	d, err := s.GetIncident(ctx, []string{"t1"}, "inc-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Alerts) != 1 || len(d.Evidence) != 2 || len(d.Nodes) != 2 || len(d.Edges) != 1 {
		t.Errorf("detail after replays: %d alerts, %d evidence, %d nodes, %d edges; want 1, 2, 2, 1", len(d.Alerts), len(d.Evidence), len(d.Nodes), len(d.Edges))
	}
}

func TestWritePermanentError(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	if err := s.exec(ctx, "ALTER TABLE "+s.t(TableAlerts)+" DROP COLUMN summary"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.Write(ctx, Batch{Alerts: []alert.Alert{testAlert("t1", "a", 0, "e")}})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("got %v (ctx %v), want an immediate permanent error", err, ctx.Err())
	}
	if Transient(err) {
		t.Errorf("schema mismatch classified transient: %v", err)
	}
}

func TestWriteTransientUntilCanceled(t *testing.T) {
	s := testStore(t)
	attemptHook = func(string, bool) error { return &netErr{} }
	t.Cleanup(func() { attemptHook = nil })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Write(ctx, Batch{Events: []ocsf.Event{testEvent("t1", "x", 0)}})
	if err == nil {
		t.Fatal("got nil, want the context error")
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableEvents)); n != 0 {
		t.Errorf("got %d rows, want 0", n)
	}
}

// A database outage at any step of a write is waited out: here the
// lookup that precedes claiming incident numbers is refused, as by a
// stopped server, for several attempts; the write still succeeds and
// claims the number once the lookup works again.
func TestWriteWaitsOutAnOutageOfTheNumbersLookup(t *testing.T) {
	s := testStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refused := refusedDial(t)
	lookups := 0
	attemptHook = func(step string, done bool) error {
		if !done && strings.Contains(step, "incident numbers") {
			lookups++
			if lookups <= 4 {
				return fmt.Errorf("read incident numbers: %w", refused)
			}
		}
		return nil
	}
	t.Cleanup(func() { attemptHook = nil })
	a := testAlert("t1", "al-1", 0, "ev-1")
	if err := s.Write(ctx, Batch{Alerts: []alert.Alert{a}, Incidents: []incident.Incident{testIncident("t1", "inc-1", 1, a)}}); err != nil {
		t.Fatalf("write through a refused lookup: %v", err)
	}
	if lookups != 5 {
		t.Errorf("lookup attempts: got %d, want 5 (four refused, one answered)", lookups)
	}
	if got := retriesCounter(t, s); got != 4 {
		t.Errorf("retries_total: got %v, want 4", got)
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableNumbers)+" FINAL WHERE incident_id = 'inc-1'"); n != 1 {
		t.Errorf("incident_numbers rows of inc-1: got %d, want 1", n)
	}
}

// refusedDial returns the error of a real dial to a port nothing listens on.
func refusedDial(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_ = c.Close()
		t.Fatal("a closed port accepted a connection")
	}
	if !Transient(err) {
		t.Fatalf("dial error %v not classified transient", err)
	}
	return err
}

type netErr struct{}

func (*netErr) Error() string   { return "connection refused" }
func (*netErr) Timeout() bool   { return false }
func (*netErr) Temporary() bool { return true }

func TestTransientClassification(t *testing.T) {
	// A real dial error to a closed port is transient.
	cfg := Default()
	cfg.Addr = []string{"127.0.0.1:1"}
	cfg.DialTimeout = time.Second
	_, err := Open(context.Background(), cfg, nil, nil)
	if err == nil || !Transient(err) {
		t.Errorf("dial error %v: transient %v, want true", err, Transient(err))
	}
	// A real server error about the schema is permanent; overload is not.
	s := testStore(t)
	err = s.exec(context.Background(), "SELECT no_such_column FROM "+s.t(TableEvents))
	if err == nil || Transient(err) {
		t.Errorf("unknown column %v: transient %v, want false", err, Transient(err))
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&clickhouse.Exception{Code: 252, Name: "TOO_MANY_PARTS"}, true},
		{fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 241}), true},
		{&clickhouse.Exception{Code: 16, Name: "NO_SUCH_COLUMN_IN_TABLE"}, false},
		{&encodeError{column: "x", err: context.DeadlineExceeded}, false},
		{context.Canceled, false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestEventRowsRoundTrip writes events whose rows differ in every encoded
// column (raw or not, no observables, text that needs escaping) in more
// than one block, and reads back what the columnar encoder stored: the
// OCSF JSON as encoding/json writes it, the entity keys, and the raw bytes.
func TestEventRowsRoundTrip(t *testing.T) {
	s := testStore(t)
	blockRows(t, 3)
	ctx := context.Background()
	var evs []ocsf.Event
	for i := range 8 {
		e := testEvent("tenant-a", fmt.Sprintf("rt-%d", i), time.Duration(i)*time.Second)
		switch i % 4 {
		case 1:
			e.Raw = nil
		case 2:
			e.Observables = nil
		case 3:
			e.Message = "quote\" back\\slash <tag> \u2028 \xff"
			e.AddObservable(ocsf.EntityUser, "actor.user.name", "日本")
		}
		evs = append(evs, e)
	}
	if err := s.Write(ctx, Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.conn.Query(ctx, "SELECT event_uid, event_json, entities, raw, raw_encoding FROM "+s.t(TableEvents)+" FINAL ORDER BY event_uid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var uid, js, raw, enc string
		var ents []string
		if err := rows.Scan(&uid, &js, &ents, &raw, &enc); err != nil {
			t.Fatal(err)
		}
		var i int
		if _, err := fmt.Sscanf(uid, "rt-%d", &i); err != nil {
			t.Fatal(err)
		}
		e := &evs[i]
		var buf bytes.Buffer
		je := json.NewEncoder(&buf)
		je.SetEscapeHTML(false)
		if err := je.Encode(e); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(buf.String(), "\n"); js != want {
			t.Errorf("%s: got event_json %s, want %s", uid, js, want)
		}
		if want := entityKeys(e.Observables); !slices.Equal(ents, want) {
			t.Errorf("%s: got entities %q, want %q", uid, ents, want)
		}
		switch {
		case e.Raw == nil && (raw != "" || enc != ""):
			t.Errorf("%s: got raw %q (%s), want none", uid, raw, enc)
		case e.Raw != nil && (raw != string(e.Raw) || enc != RawNone):
			t.Errorf("%s: got raw %q (%q), want %q as it came", uid, raw, enc, e.Raw)
		}
		got++
	}
	if got != len(evs) {
		t.Errorf("got %d rows, want %d", got, len(evs))
	}
}

// An event whose JSON cannot be written (here an unmapped member that is
// not JSON) is found as its block is written, after earlier blocks of the
// same INSERT went out: the write fails permanently, naming the event, and
// the INSERT is abandoned. ClickHouse 18.16 drops the blocks already sent
// in most runs and keeps them in some (a closed connection mid-INSERT),
// as it may after any failure mid-INSERT: what is stored is then whole
// rows of the blocks before, each exactly its event, and never the event
// that failed. The consumer stores the batch's records as dead letters.
func TestUnencodableEventFailsTheInsert(t *testing.T) {
	s := testStore(t)
	blockRows(t, 3)
	ctx := context.Background()
	var evs []ocsf.Event
	for i := range 8 {
		evs = append(evs, testEvent("tenant-bad", fmt.Sprintf("bad-%d", i), time.Duration(i)*time.Second))
	}
	evs[7].Unmapped = json.RawMessage(`{"tlsDetails":`)
	err := s.Write(ctx, Batch{Events: evs})
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "bad-7") {
		t.Fatalf("Write = %v, want a permanent error naming event bad-7", err)
	}
	rows, err := s.conn.Query(ctx, "SELECT event_uid, event_json FROM "+s.t(TableEvents)+" WHERE tenant_uid = 'tenant-bad' ORDER BY event_uid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stored []string
	for rows.Next() {
		var uid, js string
		if err := rows.Scan(&uid, &js); err != nil {
			t.Fatal(err)
		}
		var i int
		if _, err := fmt.Sscanf(uid, "bad-%d", &i); err != nil || i >= 6 {
			t.Fatalf("event %s stored: only rows of the two blocks sent before the failing one may be", uid)
		}
		if want, _ := evs[i].AppendJSON(nil); js != string(want) {
			t.Errorf("event %s stored as %.80q…, want its own document", uid, js)
		}
		stored = append(stored, uid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 0 && len(stored) != 6 {
		t.Errorf("stored %v, want none or both blocks sent before the failing one", stored)
	}
}

// The events' JSON documents are written one block at a time over one
// arena: its capacity stays near a block's documents, not the batch's.
func TestEventJSONArenaHoldsOneBlock(t *testing.T) {
	blockRows(t, 4)
	arenaRowBytes.Store(0) // sized by this test's rows alone
	s := &Store{cfg: Default()}
	var evs []ocsf.Event
	for i := range 64 {
		e := testEvent("t", fmt.Sprintf("arena-%d", i), 0)
		e.Message = strings.Repeat("m", 1000)
		evs = append(evs, e)
	}
	c, err := s.eventColumns(evs, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.release()
	c.arena.main = nil // an earlier test's pooled arena would hide the growth
	js := c.values[slices.Index(c.names, "event_json")].([]string)
	uids := c.values[slices.Index(c.names, "event_uid")].([]string)
	byUID := map[string]*ocsf.Event{}
	for i := range evs {
		byUID[evs[i].Metadata.UID] = &evs[i]
	}
	total := 0
	for lo := 0; lo < c.rows; lo += sendBlockRows {
		hi := min(lo+sendBlockRows, c.rows)
		if err := c.fill(lo, hi); err != nil {
			t.Fatal(err)
		}
		for i := lo; i < hi; i++ {
			want, _ := byUID[uids[i]].AppendJSON(nil)
			if js[i] != string(want) {
				t.Fatalf("row %d: event_json %.60q…, want the event's", i, js[i])
			}
			total += len(js[i])
		}
	}
	if got := cap(c.arena.main); got > total/4 {
		t.Errorf("arena capacity %d bytes for %d bytes of documents in blocks of %d of %d rows, want about one block's", got, total, sendBlockRows, c.rows)
	}
}

// A batch written after a larger one, whose column slices it may reuse,
// stores its own rows: nothing of the earlier batch's values shows through
// in a column the later one leaves empty (here raw, written for the first
// batch and not for the second).
func TestEventRowsAfterALargerBatch(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	var first, second []ocsf.Event
	for i := range 12 {
		e := testEvent("tenant-a", fmt.Sprintf("a-%02d", i), time.Duration(i)*time.Second)
		e.Device.UID, e.Device.Hostname, e.Message = "i-0first", "first-host", "first message"
		first = append(first, e)
	}
	for i := range 5 {
		var e ocsf.Event
		e.SetClass(ocsf.ClassAPIActivity, 1, "Create")
		e.Time = ms(time.Duration(i) * time.Second)
		e.Metadata.UID, e.Metadata.TenantUID = fmt.Sprintf("b-%02d", i), "tenant-a"
		e.Raw = []byte(`{"eventID":"b"}`)
		second = append(second, e)
	}
	// The second batch is written without raw records, so its raw column
	// is never assigned row by row.
	for i, b := range [][]ocsf.Event{first, second} {
		s.cfg.StoreRaw = i == 0
		if err := s.Write(ctx, Batch{Events: b}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT event_uid, actor_session_uid, access_key_uid, src_ip, device_uid, device_hostname, message, entities, raw FROM "+s.t(TableEvents)+" FINAL WHERE event_uid LIKE 'b-%' ORDER BY event_uid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var uid, session, key, ip, dev, host, msg, raw string
		var ents []string
		if err := rows.Scan(&uid, &session, &key, &ip, &dev, &host, &msg, &ents, &raw); err != nil {
			t.Fatal(err)
		}
		if session+key+ip+dev+host+msg+raw != "" || len(ents) != 0 {
			t.Errorf("%s: got session %q key %q ip %q device %q %q message %q entities %q raw %q, want all empty", uid, session, key, ip, dev, host, msg, ents, raw)
		}
		got++
	}
	if got != len(second) {
		t.Errorf("got %d rows of the second batch, want %d", got, len(second))
	}
}

// take reuses the last batch's slice of the same type where it is large
// enough, cleared, and makes a new one otherwise.
func TestTakeReusesClearedSlices(t *testing.T) {
	old := []any{[]string{"a", "b", "c"}, []int64{1, 2}, []string{"x"}}
	sl := slab{old: old, used: old[:0]}
	s := take[string](&sl, 2)     // reuses old[0]
	n := take[int64](&sl, 3)      // old[1] is too small
	u := take[uint8](&sl, 1)      // old[2] is another type
	extra := take[string](&sl, 1) // nothing left to reuse
	if len(s) != 2 || cap(s) != 3 || s[0] != "" || s[1] != "" {
		t.Errorf("reused slice = %q (cap %d), want two empty strings over the old array", s, cap(s))
	}
	if len(n) != 3 || n[0] != 0 || len(u) != 1 || len(extra) != 1 {
		t.Errorf("new slices = %v %v %v, want zero values of length 3, 1, 1", n, u, extra)
	}
	if len(sl.used) != 4 {
		t.Errorf("used holds %d slices, want the 4 taken", len(sl.used))
	}
}

// The arena an events INSERT's strings are cut from stays the batch's own
// until its last attempt: a batch encoded while the first attempt's retry
// waits (here, in the attempt hook) gets another arena, and the retried
// rows are still the first batch's bytes.
func TestRetriedInsertKeepsItsOwnBytes(t *testing.T) {
	s := testStore(t)
	s.cfg.StoreRaw = true
	ctx := context.Background()
	mine, other := testEvent("t1", "mine-1", 0), testEvent("t1", "other-1", 0)
	mine.Raw = []byte(`{"eventID":"mine-1","note":"` + strings.Repeat("m", 400) + `"}`)
	other.Raw = []byte(`{"eventID":"other-1","note":"` + strings.Repeat("o", 400) + `"}`)
	mine.Message, other.Message = strings.Repeat("M", 300), strings.Repeat("O", 300)
	failed := false
	attemptHook = func(step string, done bool) error {
		if done || failed || !strings.HasSuffix(step, " into "+TableEvents) {
			return nil
		}
		failed = true
		for range 3 {
			c, err := s.eventColumns([]ocsf.Event{other, other, other}, 0)
			if err != nil {
				return err
			}
			c.release()
		}
		return fmt.Errorf("dial: %w", &netErr{})
	}
	t.Cleanup(func() { attemptHook = nil })
	if err := s.Write(ctx, Batch{Events: []ocsf.Event{mine}}); err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Fatal("the events INSERT was not retried")
	}
	var js, raw string
	if err := s.conn.QueryRow(ctx, "SELECT event_json, raw FROM "+s.t(TableEvents)+" WHERE event_uid = 'mine-1'").Scan(&js, &raw); err != nil {
		t.Fatal(err)
	}
	want, err := mine.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if js != string(want) || raw != string(mine.Raw) {
		t.Errorf("stored event_json %.80q… and raw %.80q…, want the event's own", js, raw)
	}
}
