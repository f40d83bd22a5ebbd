package replay

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/storage"
)

// TestStreamCarriesInventory: replaying AWS Config files hands the sink
// (musubi replay -write's store) one inventory row per configuration item,
// with the event's tenant and the typed item, as serve writes them.
func TestStreamCarriesInventory(t *testing.T) {
	dir := "../ingest/awsconfig/testdata"
	files := []string{"snapshot_seed_account.json", "history_hardened_account.json", "eventbridge_change_imds.json"}
	var want []awsconfig.Item
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		items, err := awsconfig.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		want, paths = append(want, items...), append(paths, p)
	}
	inputs, cleanup, err := Inputs(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	o := options()
	o.Tenant = func(account string) string { return "t-" + account }
	s, err := NewStream(o, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []storage.InventoryRow
	if _, err := s.Run(context.Background(), inputs, func(b storage.Batch) error {
		rows = append(rows, b.Inventory...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d inventory rows, want %d (one per item)", len(rows), len(want))
	}
	byUID := map[string]storage.InventoryRow{}
	for _, r := range rows {
		byUID[r.ItemUID] = r
	}
	for _, it := range want {
		r, ok := byUID[it.UID()]
		if !ok {
			t.Errorf("no row for %s %s at %d", it.ResourceType, it.ResourceID, it.CaptureTime)
			continue
		}
		js, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		if r.TenantUID != "t-"+it.Account || r.AccountUID != it.Account || r.ResourceID != it.ResourceID ||
			r.CaptureMs != it.CaptureTime || r.Deleted != it.Deleted() || string(r.Item) != string(js) {
			t.Errorf("%s %s: got row of tenant %s, account %s, capture %d, deleted %v, item %s; want tenant t-%s and the item %s",
				it.ResourceType, it.ResourceID, r.TenantUID, r.AccountUID, r.CaptureMs, r.Deleted, r.Item, it.Account, js)
		}
	}
	if !slices.ContainsFunc(rows, func(r storage.InventoryRow) bool { return r.Deleted }) {
		t.Error("the history file's deletion gave no deleted row")
	}
}
