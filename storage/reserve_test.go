package storage

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// A String column reserved for a block holds exactly the block's
// rows afterwards (the row that sized it is gone), and appending them
// allocates about the buffer once instead of growing it step by step.
func TestReserveStringsSizesTheBlock(t *testing.T) {
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
			reserveStrings([]column.Interface{col}, []any{rows}, []int{size})
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
	reserveStrings([]column.Interface{newCol()}, []any{rows}, []int{size})
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

// colAppender is a column as an INSERT's batch hands it out.
type colAppender struct{ column.Interface }

func (c colAppender) Append(v any) error {
	_, err := c.Interface.Append(v)
	return err
}

// A LowCardinality string column appended row by row (appendRows' way,
// without reflection) holds exactly what clickhouse-go's slice append
// gives it, empty values and repeats included.
func TestLowCardinalityRowsEncodeAsTheSlice(t *testing.T) {
	vals := []string{"CloudTrail", "", "vpcflow", "CloudTrail", "", "agent", "guardduty", "agent", "CloudTrail"}
	encode := func(lc bool) []byte {
		col, err := column.Type("LowCardinality(String)").Column("log_name", nil)
		if err != nil {
			t.Fatal(err)
		}
		if lc {
			if !lowCardinality([]column.Interface{col}, 0) {
				t.Fatal("a LowCardinality(String) column is not recognised as one")
			}
			if err := appendRows(colAppender{col}, true, vals, 2, 8, len(vals)); err != nil {
				t.Fatal(err)
			}
		} else if _, err := col.Append(vals[2:8]); err != nil {
			t.Fatal(err)
		}
		if col.Rows() != 6 {
			t.Fatalf("the column holds %d rows, want 6", col.Rows())
		}
		var buf proto.Buffer
		col.Encode(&buf)
		return buf.Buf
	}
	if string(encode(true)) != string(encode(false)) {
		t.Fatal("row by row the LowCardinality column encodes other rows than the slice append")
	}
}

// An INSERT's String columns are sized for the largest block the table's
// INSERTs held before, not only for its first block; an INSERT of one
// block for that block alone; what is remembered shrinks by an eighth an
// INSERT and is capped at maxZeroBuf. The calls are sendBlocks' own.
func TestBlockMemoRemembersTheLargestBlock(t *testing.T) {
	small, large := strings.Repeat("s", 10), strings.Repeat("L", 1000)
	// Two String columns and an Int64 one; the first block small, the
	// second large.
	values := []any{[]string{small, small, large, large}, []int64{1, 2, 3, 4}, []string{"a", "b", "c", "d"}}
	var m blockMemo
	insert := func(blocks ...[2]int) (reserved []int) {
		most := make([]int, len(values))
		for k, b := range blocks {
			blockBytes(most, values, b[0], b[1])
			if k == 0 {
				reserved = m.want("events", most, len(blocks) > 1)
			}
		}
		m.keep("events", most)
		return reserved
	}
	if got := insert([2]int{0, 2}, [2]int{2, 4}); !slices.Equal(got, []int{20, 0, 2}) {
		t.Errorf("first INSERT: got %v, want its first block's bytes [20 0 2]", got)
	}
	if got := insert([2]int{0, 2}, [2]int{2, 4}); !slices.Equal(got, []int{2000, 0, 2}) {
		t.Errorf("second INSERT: got %v, want the largest block before [2000 0 2]", got)
	}
	if got := insert([2]int{0, 2}); !slices.Equal(got, []int{20, 0, 2}) {
		t.Errorf("an INSERT of one block: got %v, want that block [20 0 2]", got)
	}
	// Three INSERTs of small blocks since the large one: 2000 less an
	// eighth (rounded down) three times.
	insert([2]int{0, 2}, [2]int{0, 2})
	insert([2]int{0, 2}, [2]int{0, 2})
	if got := m.want("events", []int{20, 0, 2}, true); got[0] != 1341 {
		t.Errorf("after three small INSERTs: got %d, want 1341", got[0])
	}
	if got := m.want("alerts", []int{5, 0, 0}, true); !slices.Equal(got, []int{5, 0, 0}) {
		t.Errorf("another table: got %v, want its own first block [5 0 0]", got)
	}
	m.keep("events", []int{64 << 20, 0, 0})
	if got := m.want("events", []int{20, 0, 2}, true); got[0] != maxZeroBuf {
		t.Errorf("after a 64 MiB block: got %d, want at most maxZeroBuf (%d)", got[0], maxZeroBuf)
	}
}
