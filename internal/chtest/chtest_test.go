package chtest

import (
	"context"
	"testing"
)

// TestDatabase checks the assumptions the project makes about the server:
// typed batch inserts with named columns, ReplacingMergeTree with FINAL,
// Nullable, Array and LowCardinality.
func TestDatabase(t *testing.T) {
	_, conn := Database(t)
	ctx := context.Background()
	if err := conn.Exec(ctx, `CREATE TABLE t (id String, v UInt64, tags Array(String), kind LowCardinality(String), n Nullable(String), ts DateTime)
		ENGINE = ReplacingMergeTree(v) PARTITION BY toYYYYMM(ts) ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v <= 2; v++ {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO t (id, v, tags, kind, n, ts)")
		if err != nil {
			t.Fatal(err)
		}
		var n *string
		if err := b.Append("a", v, []string{"x", "y"}, "k", n, fixedTime); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	var count uint64
	var v uint64
	if err := conn.QueryRow(ctx, "SELECT count(), max(v) FROM t FINAL WHERE id = ?", "a").Scan(&count, &v); err != nil {
		t.Fatal(err)
	}
	if count != 1 || v != 2 {
		t.Fatalf("got count %d version %d, want 1 and 2", count, v)
	}
}
