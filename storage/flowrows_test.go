package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/vpcflow"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestFlowRowsRoundTrip writes the flow log fixtures of every format (those
// a vpcflow.Row holds as typed columns, the others as documents) in one
// batch with an API event, and reads each back as evidence and through an
// entity pivot: the same OCSF document and raw record as written. A search
// finds an incident by an interface id and by the uid of an event that
// only a typed flow row holds.
func TestFlowRowsRoundTrip(t *testing.T) {
	// An interface id that only a typed flow row holds.
	const onlyTyped = "eni-0feedfacecafe0042"
	s := testStore(t)
	ctx := context.Background()
	files, _ := filepath.Glob("../ingest/vpcflow/testdata/*.log")
	jsonl, _ := filepath.Glob("../ingest/vpcflow/testdata/*.jsonl")
	var evs []ocsf.Event
	d := ingest.NewDecoder(ingest.DefaultLimits())
	for _, f := range append(files, jsonl...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, errs := d.Decode(ingest.SourceVPCFlow, data)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs[0])
		}
		evs = append(evs, got...)
	}
	line := fmt.Sprintf("2 111122223333 %s 10.9.9.9 10.9.9.10 1234 22 6 1 60 %d %d REJECT OK", onlyTyped, evs[0].Time/1000, evs[0].Time/1000)
	own, err := vpcflow.DefaultFormat().Normalize([]byte(line), "test", 1)
	if err != nil {
		t.Fatal(err)
	}
	evs = append(evs, own)
	compact := 0
	for i := range evs {
		evs[i].Metadata.TenantUID = "t1"
		if _, ok := vpcflow.RowOf(&evs[i]); ok {
			compact++
		}
	}
	if compact == 0 || compact == len(evs) {
		t.Fatalf("%d of %d fixture records have a row; want some and not all", compact, len(evs))
	}
	api := testEvent("t1", "ev-api", 0)
	api.Time = evs[0].Time
	all := append(slices.Clone(evs), api)
	var ids []string
	first, last := all[0].Time, all[0].Time
	for _, e := range all {
		ids = append(ids, e.Metadata.UID)
		first, last = min(first, e.Time), max(last, e.Time)
	}
	a := testAlert("t1", "al-flow", 0, ids...)
	a.Time, a.FirstSeen, a.LastSeen = last, first, last
	in := testIncident("t1", "inc-flow", 1, a)
	in.FirstSeen, in.LastSeen = first, last
	write(t, s, Batch{Events: all, Alerts: []alert.Alert{a}, Incidents: []incident.Incident{in}})

	if n := count(t, s, "SELECT count() FROM "+s.t(TableEvents)+" WHERE event_json = ''"); n != uint64(compact) {
		t.Errorf("got %d rows without a document, want the %d flow rows", n, compact)
	}
	if n := count(t, s, "SELECT count() FROM "+s.t(TableEvents)+" WHERE event_json != '' AND (flow_version != '' OR flow_bytes != 0 OR flow_interface != '' OR flow_end_ms != 0)"); n != 0 {
		t.Errorf("got %d rows with a document and flow columns set, want none", n)
	}

	want := map[string]*ocsf.Event{}
	for i := range all {
		want[all[i].Metadata.UID] = &all[i]
	}
	check := func(how string, got []casework.Evidence, n int) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("%s: got %d events, want %d", how, len(got), n)
		}
		for _, e := range got {
			w := want[e.ID]
			if w == nil {
				t.Fatalf("%s: unknown event %s", how, e.ID)
			}
			js, err := w.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.Normalized, js) {
				t.Errorf("%s: event %s\n got %s\nwant %s", how, e.ID, e.Normalized, js)
			}
			if e.Raw != string(w.Raw) || e.Time != w.Time || e.Source != w.Metadata.LogName || e.ClassUID != w.ClassUID {
				t.Errorf("%s: event %s: got raw %q time %d source %q class %d, want %q %d %q %d",
					how, e.ID, e.Raw, e.Time, e.Source, e.ClassUID, w.Raw, w.Time, w.Metadata.LogName, w.ClassUID)
			}
		}
	}
	det, err := s.GetIncident(ctx, []string{"t1"}, "inc-flow", "")
	if err != nil {
		t.Fatal(err)
	}
	check("evidence", det.Evidence, len(all))
	act, err := s.EntityPivot(ctx, casework.EntityQuery{Tenants: []string{"t1"}, Type: "account", Value: "111122223333",
		From: msTime(first).Add(-1), To: msTime(last).Add(1), Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for i := range all {
		if slices.Contains(all[i].EntityValues(ocsf.EntityAccount), "111122223333") {
			named++
		}
	}
	check("entity pivot", act.Events, named)

	for text, wantN := range map[string]int{onlyTyped: 1, own.Metadata.UID: 1, "not-" + onlyTyped: 0} {
		p, err := s.ListIncidents(ctx, casework.IncidentQuery{Tenants: []string{"t1"}, Text: text, FullText: true, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != wantN {
			t.Errorf("search %q: got %d incidents, want %d", text, len(p.Items), wantN)
		}
	}
}
