package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/musubi-xdr/musubi/ocsf"
)

// TestEventRowsComeSorted writes a shuffled batch — three tenants, four
// classes, events of one second apart by milliseconds and uids in the
// other order, times before 1970 and past 2106, an event twice — and
// requires that the INSERT's rows are in the order ClickHouse itself sorts
// the table by, so that the server need not sort them again.
func TestEventRowsComeSorted(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var evs []ocsf.Event
	for i := range 600 {
		e := testEvent([]string{"t2", "t10", "t1"}[i%3], fmt.Sprintf("ev-%03d", 599-i), 0)
		e.ClassUID = []int{ocsf.ClassAPIActivity, ocsf.ClassNetworkActivity, ocsf.ClassProcessActivity, 1001}[rng.IntN(4)]
		// Within a second the uids fall as the milliseconds rise.
		e.Time = ms(0) + int64(i/10*1000+i%10*37)
		evs = append(evs, e)
	}
	evs[5].Time, evs[6].Time, evs[7].Time = -5_000, 0, 1<<33*1000
	evs = append(evs, evs[42])
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })

	c, err := s.eventColumns(evs, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	for lo := 0; lo < c.rows; lo += sendBlockRows {
		hi := min(lo+sendBlockRows, c.rows)
		if err := c.fill(lo, hi); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, c.values[1].([]string)[lo:hi]...)
	}
	sent = slices.Clone(sent) // the rows' strings are cut from the arena
	c.release()
	if len(sent) != len(evs) {
		t.Fatalf("got %d rows, want %d", len(sent), len(evs))
	}

	write(t, s, Batch{Events: evs})
	rows, err := s.conn.Query(ctx, "SELECT event_uid FROM "+s.t(TableEvents)+" ORDER BY tenant_uid, class_uid, time, event_uid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var server []string
	for rows.Next() {
		var uid string
		if err := rows.Scan(&uid); err != nil {
			t.Fatal(err)
		}
		server = append(server, uid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sent, server) {
		for i := range min(len(sent), len(server)) {
			if sent[i] != server[i] {
				t.Fatalf("row %d: sent %s, the server's order has %s (of %d and %d rows)", i, sent[i], server[i], len(sent), len(server))
			}
		}
		t.Fatalf("sent %d rows, the server's order has %d", len(sent), len(server))
	}
}
