package pipeline

import (
	"encoding/json"

	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ingest/inspector"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// InventoryOf returns the asset inventory rows of events: one per AWS
// Config event (Inventory Info events of log awsconfig, whose
// unmapped.asset is the typed configuration item) and one per Inspector
// finding on an EC2 instance (exposure.VulnerabilityResourceType; a closed
// finding is a deletion), for the tenant each event was assigned. The
// rows are derived only from the record, so the same record always gives
// the same row, and a redelivered one folds. An event that carries no
// readable item (which the decoders never produce) gives no row: the event
// itself is still stored.
func InventoryOf(events []ocsf.Event) []storage.InventoryRow {
	var out []storage.InventoryRow
	for i := range events {
		ev := &events[i]
		if ev.Metadata.TenantUID == "" {
			continue
		}
		switch {
		case ev.ClassUID == ocsf.ClassInventoryInfo && ev.Metadata.LogName == awsconfig.LogName:
			if r, ok := configRow(ev); ok {
				out = append(out, r)
			}
		case ev.ClassUID == ocsf.ClassVulnerabilityFinding && ev.Metadata.LogName == inspector.LogName:
			if r, ok := vulnerabilityRow(ev); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// configRow is the row of an AWS Config event.
func configRow(ev *ocsf.Event) (storage.InventoryRow, bool) {
	var um struct {
		Asset json.RawMessage `json:"asset"`
	}
	if len(ev.Unmapped) == 0 || json.Unmarshal(ev.Unmapped, &um) != nil || len(um.Asset) == 0 {
		return storage.InventoryRow{}, false
	}
	var it awsconfig.Item
	if json.Unmarshal(um.Asset, &it) != nil || it.Account == "" || it.ResourceType == "" || it.ResourceID == "" {
		return storage.InventoryRow{}, false
	}
	return storage.InventoryRow{
		TenantUID: ev.Metadata.TenantUID, AccountUID: it.Account, ResourceType: it.ResourceType, ResourceID: it.ResourceID,
		CaptureMs: it.CaptureTime, Region: it.Region, ARN: it.ARN, ResourceName: it.ResourceName,
		Status: it.Status, Deleted: it.Deleted(), ItemUID: it.UID(), Item: um.Asset,
	}, true
}

// inspectorClosed is the activity id of a closed Inspector finding.
const inspectorClosed = 3

// vulnerabilityRow is the row of an Inspector finding on an EC2 instance:
// the finding as exposure.Vulnerability, captured at its update time.
func vulnerabilityRow(ev *ocsf.Event) (storage.InventoryRow, bool) {
	uid, account := ev.FindingInfo.UID, ev.Cloud.Account.UID
	if uid == "" || account == "" || ev.Device.InstanceUID == "" {
		return storage.InventoryRow{}, false
	}
	closed := ev.ActivityID == inspectorClosed
	v, ok := exposure.VulnerabilityOf(ev)
	if closed {
		v = exposure.Vulnerability{InstanceID: ev.Device.InstanceUID, FindingUID: uid}
	} else if !ok {
		return storage.InventoryRow{}, false
	}
	js, err := json.Marshal(v)
	if err != nil {
		return storage.InventoryRow{}, false
	}
	return storage.InventoryRow{
		TenantUID: ev.Metadata.TenantUID, AccountUID: account, ResourceType: exposure.VulnerabilityResourceType, ResourceID: uid,
		CaptureMs: ev.Time, Region: ev.Cloud.Region, ARN: uid, ResourceName: v.CVE, Status: ev.Status,
		Deleted: closed, ItemUID: ev.Metadata.UID, Item: js,
	}, true
}
