package storage

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestAlreadyApplied: an ADD COLUMN that another process applied first —
// 18.16 says so with code 15 or, when the two raced, code 44 — lets the
// migration go on; any other error stops it.
func TestAlreadyApplied(t *testing.T) {
	add := "ALTER TABLE musubi.alerts ADD COLUMN fold_count UInt32 DEFAULT 1"
	for _, tc := range []struct {
		name string
		stmt string
		err  error
		want bool
	}{
		{"duplicate column", add, &clickhouse.Exception{Code: 15, Message: "Column fold_count already exists"}, true},
		{"added concurrently", add, fmt.Errorf("exec: %w", &clickhouse.Exception{Code: 44, Message: "Cannot add column fold_count: column with this name already exists"}), true},
		{"other illegal column", add, &clickhouse.Exception{Code: 44, Message: "Cannot add column x: bad type"}, false},
		{"not an ADD COLUMN", "CREATE TABLE t (a UInt8) ENGINE = Memory", &clickhouse.Exception{Code: 15}, false},
		{"not a server error", add, errors.New("connection reset"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := alreadyApplied(tc.stmt, tc.err); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
