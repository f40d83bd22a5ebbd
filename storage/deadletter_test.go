package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Several bad records of one message are several dead letters: they share
// topic, partition and offset and differ by record index. A rewrite of the
// same batch still folds.
func TestDeadLettersOfOneMessageStayApart(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	b := Batch{DeadLetters: []DeadLetter{
		{TenantUID: "t1", Source: "cloudtrail", Topic: "raw.cloudtrail", Partition: 1, Offset: 7, Record: 0, Raw: []byte(`{"a":`), Reason: "invalid_json", Time: t0},
		{TenantUID: "t1", Source: "cloudtrail", Topic: "raw.cloudtrail", Partition: 1, Offset: 7, Record: 3, Raw: []byte(`{"b":`), Reason: "invalid_json", Time: t0},
	}}
	for range 2 {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListDeadLetters(ctx, DeadLetterQuery{Tenants: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	var final uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.t(TableDeadLetters)+" FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || final != 2 {
		t.Fatalf("got %d listed and %d after FINAL, want the 2 dead letters once each", len(got), final)
	}
	records := map[int]string{got[0].Record: string(got[0].Raw), got[1].Record: string(got[1].Raw)}
	if records[0] != `{"a":` || records[3] != `{"b":` {
		t.Errorf("got records %v, want record 0 and 3 with their raw bytes", records)
	}
}

// Raw bytes are stored as they came (RawNone); a row an earlier version
// wrote with each record zstd-compressed (RawZstd) still reads back as
// the record.
func TestDeadLetterRawAsItCameAndEarlierZstd(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	bad := []byte(`{"eventVersion":"1.08","eventName":` + strings.Repeat("x", 300))
	if err := s.Write(ctx, Batch{DeadLetters: []DeadLetter{
		{TenantUID: "t1", Source: "cloudtrail", Topic: "raw.cloudtrail", Partition: 0, Offset: 1, Raw: bad, Reason: "invalid_json", Time: t0},
	}}); err != nil {
		t.Fatal(err)
	}
	var raw, enc string
	if err := s.conn.QueryRow(ctx, "SELECT raw, raw_encoding FROM "+s.t(TableDeadLetters)+" WHERE kafka_offset = 1").Scan(&raw, &enc); err != nil {
		t.Fatal(err)
	}
	if raw != string(bad) || enc != RawNone {
		t.Fatalf("stored raw %q (encoding %q), want the record as it came", raw, enc)
	}

	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	old := []byte(`{"eventName":"written by an earlier version"`)
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t(TableDeadLetters)+
		" (tenant_uid, source, topic, kafka_partition, kafka_offset, record, time, time_ms, reason, error, raw, raw_encoding)")
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Append("t1", "cloudtrail", "raw.cloudtrail", int32(0), int64(2), int32(-1), t0, t0.UnixMilli(), "invalid_json", "", string(zw.EncodeAll(old, nil)), RawZstd); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListDeadLetters(ctx, DeadLetterQuery{Tenants: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	byOffset := map[int64]string{}
	for _, d := range got {
		byOffset[d.Offset] = string(d.Raw)
	}
	if byOffset[1] != string(bad) || byOffset[2] != string(old) {
		t.Errorf("read back %v, want offset 1 %q and offset 2 %q", byOffset, bad, old)
	}
}
