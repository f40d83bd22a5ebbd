package storage

import (
	"runtime"
	"strings"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// A String column reserved for its first block holds exactly the block's
// rows afterwards (the row that sized it is gone), and appending them
// allocates about the buffer once instead of growing it step by step.
func TestReserveStringsSizesTheFirstBlock(t *testing.T) {
	rows := make([]string, 256)
	for i := range rows {
		rows[i] = strings.Repeat(string(rune('a'+i%26)), 1000+i)
	}
	size := 0
	for _, r := range rows {
		size += len(r)
	}
	newCol := func() column.Interface {
		col, err := column.Type("String").Column("event_json", nil)
		if err != nil {
			t.Fatal(err)
		}
		return col
	}
	appendBlock := func(reserve bool) (encoded []byte, allocated uint64) {
		col := newCol()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if reserve {
			reserveStrings([]column.Interface{col}, []any{rows}, len(rows))
			if col.Rows() != 0 {
				t.Fatalf("the reserved column holds %d rows, want 0", col.Rows())
			}
		}
		if _, err := col.Append(rows); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		var buf proto.Buffer
		col.Encode(&buf)
		return buf.Buf, after.TotalAlloc - before.TotalAlloc
	}
	// The zeroes the column is sized from are made on first use and kept.
	reserveStrings([]column.Interface{newCol()}, []any{rows}, len(rows))
	plain, grown := appendBlock(false)
	reserved, once := appendBlock(true)
	if string(plain) != string(reserved) {
		t.Fatal("the reserved column encodes other rows than the plain one")
	}
	if once > uint64(size)*3/2 {
		t.Errorf("appending %d bytes to a reserved column allocated %d bytes, want at most 1.5 times the rows", size, once)
	}
	if grown < uint64(size)*2 {
		t.Errorf("appending %d bytes to a new column allocated only %d bytes: the test no longer shows the growth", size, grown)
	}
	t.Logf("rows %d bytes: grown %d, reserved %d bytes allocated", size, grown, once)
}
