package pipeline

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestInventoryOf: AWS Config events give one row per item (the typed item
// as JSON, deletions marked), Inspector findings on instances one row per
// finding update (a closed finding is a deletion of the finding), other
// events none; the same records always give the same rows.
func TestInventoryOf(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("../ingest/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	history := read("awsconfig/testdata/history_hardened_account.json")
	finding := read("inspector/testdata/ec2_critical_exploitable.json")
	closed := bytes.Replace(bytes.Replace(finding, []byte(`"status": "ACTIVE"`), []byte(`"status": "CLOSED"`), 1),
		[]byte(`"updatedAt": "Nov 30, 2026, 7:45:10 AM"`), []byte(`"updatedAt": "Dec 1, 2026, 7:45:10 AM"`), 1)
	if bytes.Equal(closed, finding) {
		t.Fatal("the fixture did not change: the closed case would prove nothing")
	}
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	events := decodeAll(t, dec, history, finding, closed, read("cloudtrail/testdata/s3_putobject_instance_role.json"))
	for i := range events {
		events[i].Metadata.TenantUID = "t1"
	}
	rows := InventoryOf(events)

	items, err := awsconfig.Parse(history)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(items)+2 {
		t.Fatalf("got %d rows, want %d (one per item, two finding updates)", len(rows), len(items)+2)
	}
	for i, it := range items {
		r := rows[i]
		js, _ := json.Marshal(it)
		if r.TenantUID != "t1" || r.ResourceType != it.ResourceType || r.ResourceID != it.ResourceID || r.CaptureMs != it.CaptureTime ||
			r.Deleted != it.Deleted() || r.ItemUID != it.UID() || string(r.Item) != string(js) {
			t.Errorf("item %d: got row %s %s %d deleted=%v %s, want %s", i, r.ResourceType, r.ResourceID, r.CaptureMs, r.Deleted, r.Item, js)
		}
	}
	open, shut := rows[len(items)], rows[len(items)+1]
	var v exposure.Vulnerability
	if err := json.Unmarshal(open.Item, &v); err != nil {
		t.Fatal(err)
	}
	if open.ResourceType != exposure.VulnerabilityResourceType || open.Deleted || !v.Serious() || v.InstanceID == "" || v.CVE == "" || open.ResourceID != v.FindingUID {
		t.Errorf("open finding: got row %s %s deleted=%v, vulnerability %+v; want a serious vulnerability on an instance", open.ResourceType, open.ResourceID, open.Deleted, v)
	}
	if shut.ResourceID != open.ResourceID || !shut.Deleted || shut.CaptureMs <= open.CaptureMs || shut.ItemUID == open.ItemUID {
		t.Errorf("closed finding: got %s deleted=%v at %d (uid %s), want the same finding deleted later than %d", shut.ResourceID, shut.Deleted, shut.CaptureMs, shut.ItemUID, open.CaptureMs)
	}

	again := InventoryOf(events)
	a, _ := json.Marshal(again)
	b, _ := json.Marshal(rows)
	if !bytes.Equal(a, b) {
		t.Error("the same events gave other rows")
	}
	for i := range events {
		events[i].Metadata.TenantUID = ""
	}
	if got := InventoryOf(events); len(got) != 0 {
		t.Errorf("events without a tenant gave %d rows, want none", len(got))
	}
}

func decodeAll(t *testing.T, dec *ingest.Decoder, records ...[]byte) []ocsf.Event {
	t.Helper()
	var out []ocsf.Event
	for _, r := range records {
		evs, errs := dec.Decode(ingest.SourceAuto, r)
		if len(errs) != 0 || len(evs) == 0 {
			t.Fatalf("decode %.60s: %d events, errors %v", r, len(evs), errs)
		}
		out = append(out, evs...)
	}
	return out
}
