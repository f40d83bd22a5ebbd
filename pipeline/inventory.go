package pipeline

import (
	"encoding/json"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// InventoryOf returns the asset inventory rows of the AWS Config events
// among events (Inventory Info events of log awsconfig, whose
// unmapped.asset is the typed configuration item), for the tenant each
// event was assigned. The item JSON is stored as the decoder wrote it, so
// the same record always gives the same row, and a redelivered one folds.
// An event that carries no readable item (which the awsconfig decoder
// never produces) gives no row: the event itself is still stored.
func InventoryOf(events []ocsf.Event) []storage.InventoryRow {
	var out []storage.InventoryRow
	for i := range events {
		ev := &events[i]
		if ev.ClassUID != ocsf.ClassInventoryInfo || ev.Metadata.LogName != awsconfig.LogName || len(ev.Unmapped) == 0 {
			continue
		}
		var um struct {
			Asset json.RawMessage `json:"asset"`
		}
		if json.Unmarshal(ev.Unmapped, &um) != nil || len(um.Asset) == 0 {
			continue
		}
		var it awsconfig.Item
		if json.Unmarshal(um.Asset, &it) != nil || it.Account == "" || it.ResourceType == "" || it.ResourceID == "" {
			continue
		}
		tenant := ev.Metadata.TenantUID
		if tenant == "" {
			continue
		}
		out = append(out, storage.InventoryRow{
			TenantUID: tenant, AccountUID: it.Account, ResourceType: it.ResourceType, ResourceID: it.ResourceID,
			CaptureMs: it.CaptureTime, Region: it.Region, ARN: it.ARN, ResourceName: it.ResourceName,
			Status: it.Status, Deleted: it.Deleted(), ItemUID: it.UID(), Item: um.Asset,
		})
	}
	return out
}
