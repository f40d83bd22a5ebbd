package casework

import (
	"encoding/json"
	"errors"
	"time"
)

// InventoryRow is one AWS Config configuration item as stored: its
// identity, capture time and status in columns, the typed item
// (ingest/awsconfig.Item) as JSON, which the exposure package decodes.
type InventoryRow struct {
	TenantUID    string
	AccountUID   string
	ResourceType string
	ResourceID   string
	// CaptureMs is the capture time in milliseconds since the Unix epoch.
	CaptureMs    int64
	Region       string
	ARN          string
	ResourceName string
	Status       string
	Deleted      bool
	// ItemUID is the item's deterministic id.
	ItemUID string
	Item    json.RawMessage
}

// InventoryQuery selects the inventory of one tenant as of a time.
type InventoryQuery struct {
	TenantUID string
	// AsOf is the time the state is wanted for; zero means now.
	AsOf time.Time
	// Accounts and ResourceTypes narrow the result when set.
	Accounts      []string
	ResourceTypes []string
	// Limit caps the resources returned (default and maximum: the
	// store's MaxResultRows).
	Limit int
}

// ErrInventoryTruncated is returned with the rows read when more resources
// match an InventoryQuery than its limit allows.
var ErrInventoryTruncated = errors.New("inventory has more resources than the limit")
