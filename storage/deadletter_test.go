package storage

import (
	"context"
	"testing"
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
