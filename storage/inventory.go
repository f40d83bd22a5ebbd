package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// TableInventory holds the asset inventory with its history (AWS Config
// configuration items), one row per resource and capture time.
//
// It has no default retention: a resource that does not change has no newer
// row, so dropping old partitions would lose its current state. Set one only
// when Config delivers periodic snapshots more often than the retention.
const TableInventory = "asset_inventory"

// InventoryRow is one configuration item as stored (casework.InventoryRow).
type InventoryRow = casework.InventoryRow

// WriteInventory stores configuration items, retrying transient failures.
// Rows are idempotent: the same item written twice folds into one row.
// Write stores a Batch's Inventory the same way, with its events.
func (s *Store) WriteInventory(ctx context.Context, rows []InventoryRow) error {
	if len(rows) == 0 {
		return nil
	}
	c, err := inventoryColumns(rows, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	return s.insert(ctx, c)
}

// inventoryColumns encodes configuration items as asset_inventory rows.
// inserted_ms (now) is only the ReplacingMergeTree version: a row written
// again has the same sort key (tenant, account, type, id, capture_ms) and
// folds.
func inventoryColumns(rows []InventoryRow, now int64) (*columns, error) {
	n := len(rows)
	tenant, account, rtype, rid := mk[string](n), mk[string](n), mk[string](n), mk[string](n)
	region, arn, name, status, uid, item := mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n)
	ct, cms, ins := mk[time.Time](n), mk[int64](n), mk[int64](n)
	del := mk[uint8](n)
	for i, r := range rows {
		if r.TenantUID == "" || r.AccountUID == "" || r.ResourceType == "" || r.ResourceID == "" {
			return nil, fmt.Errorf("inventory row %d: %w: tenant, account, resource type and id are required", i, ErrPermanent)
		}
		if len(r.Item) > 0 && !json.Valid(r.Item) {
			return nil, fmt.Errorf("inventory row %d: %w: item is not JSON", i, ErrPermanent)
		}
		tenant[i], account[i], rtype[i], rid[i] = r.TenantUID, r.AccountUID, r.ResourceType, r.ResourceID
		region[i], arn[i], name[i], status[i], uid[i], item[i] = r.Region, r.ARN, r.ResourceName, r.Status, r.ItemUID, string(r.Item)
		ct[i], cms[i], ins[i] = time.UnixMilli(r.CaptureMs).UTC().Truncate(time.Second), r.CaptureMs, now
		if r.Deleted {
			del[i] = 1
		}
	}
	return &columns{table: TableInventory, rows: n,
		names: []string{"tenant_uid", "account_uid", "resource_type", "resource_id", "capture_time", "capture_ms",
			"region", "arn", "resource_name", "status", "deleted", "item_uid", "item_json", "inserted_ms"},
		values: []any{tenant, account, rtype, rid, ct, cms, region, arn, name, status, del, uid, item, ins},
	}, nil
}

// InventoryQuery selects the inventory of one tenant as of a time
// (casework.InventoryQuery).
type InventoryQuery = casework.InventoryQuery

// ErrInventoryTruncated is returned with the rows read when more resources
// match than the limit allows.
var ErrInventoryTruncated = casework.ErrInventoryTruncated

// InventoryAsOf returns, for every resource of the tenant, its latest
// configuration item captured at or before q.AsOf, leaving out resources
// whose latest item records their deletion. Rows are ordered by account,
// type and id. When more resources match than the limit, it returns the
// first Limit of them and ErrInventoryTruncated.
func (s *Store) InventoryAsOf(ctx context.Context, q InventoryQuery) ([]InventoryRow, error) {
	if q.TenantUID == "" {
		return nil, fmt.Errorf("storage: inventory query needs a tenant")
	}
	asOf := q.AsOf
	if asOf.IsZero() {
		asOf = time.Now()
	}
	limit := q.Limit
	if limit <= 0 || limit > s.cfg.MaxResultRows {
		limit = s.cfg.MaxResultRows
	}
	where := []string{"tenant_uid = ?", "capture_ms <= ?"}
	args := []any{q.TenantUID, asOf.UnixMilli()}
	if len(q.Accounts) > 0 {
		where = append(where, "account_uid IN "+placeholders(len(q.Accounts)))
		args = append(args, anySlice(q.Accounts)...)
	}
	if len(q.ResourceTypes) > 0 {
		where = append(where, "resource_type IN "+placeholders(len(q.ResourceTypes)))
		args = append(args, anySlice(q.ResourceTypes)...)
	}
	// FINAL folds redelivered items before argMax picks, per resource, the
	// newest capture at or before the time asked for.
	query := `SELECT account_uid, resource_type, resource_id,
        max(capture_ms) AS c, argMax(region, capture_ms), argMax(arn, capture_ms),
        argMax(resource_name, capture_ms), argMax(status, capture_ms), argMax(deleted, capture_ms) AS d,
        argMax(item_uid, capture_ms), argMax(item_json, capture_ms)
FROM ` + s.t(TableInventory) + ` FINAL
WHERE ` + strings.Join(where, " AND ") + `
GROUP BY account_uid, resource_type, resource_id
HAVING d = 0
ORDER BY account_uid, resource_type, resource_id
LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.conn.Query(s.readCtx(ctx), query, args...)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	defer rows.Close()
	var out []InventoryRow
	for rows.Next() {
		r := InventoryRow{TenantUID: q.TenantUID}
		var del uint8
		var item string
		if err := rows.Scan(&r.AccountUID, &r.ResourceType, &r.ResourceID, &r.CaptureMs, &r.Region, &r.ARN,
			&r.ResourceName, &r.Status, &del, &r.ItemUID, &item); err != nil {
			return nil, fmt.Errorf("read inventory: %w", err)
		}
		r.Deleted, r.Item = del == 1, json.RawMessage(item)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	if len(out) > limit {
		return out[:limit], ErrInventoryTruncated
	}
	return out, nil
}

// ResourceHistory returns every stored configuration item of one resource,
// oldest first: how it changed over time.
func (s *Store) ResourceHistory(ctx context.Context, tenant, account, resourceType, resourceID string) ([]InventoryRow, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT capture_ms, region, arn, resource_name, status, deleted, item_uid, item_json
FROM `+s.t(TableInventory)+` FINAL
WHERE tenant_uid = ? AND account_uid = ? AND resource_type = ? AND resource_id = ?
ORDER BY capture_ms
LIMIT ?`, tenant, account, resourceType, resourceID, s.cfg.MaxResultRows)
	if err != nil {
		return nil, fmt.Errorf("read resource history: %w", err)
	}
	defer rows.Close()
	var out []InventoryRow
	for rows.Next() {
		r := InventoryRow{TenantUID: tenant, AccountUID: account, ResourceType: resourceType, ResourceID: resourceID}
		var del uint8
		var item string
		if err := rows.Scan(&r.CaptureMs, &r.Region, &r.ARN, &r.ResourceName, &r.Status, &del, &r.ItemUID, &item); err != nil {
			return nil, fmt.Errorf("read resource history: %w", err)
		}
		r.Deleted, r.Item = del == 1, json.RawMessage(item)
		out = append(out, r)
	}
	return out, rows.Err()
}
