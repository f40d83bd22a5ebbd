package ocsf

import (
	"fmt"
	"testing"
)

// A decoder collects observables in a pooled room; the event keeps a list
// of exactly its observables, and the room keeps none of its strings.
func TestKeepObservablesSizesExactly(t *testing.T) {
	var ev Event
	room := ev.CollectObservables()
	for i := range 40 { // more than a room holds at first: it grows
		ev.AddObservable(EntityIP, "src_endpoint.ip", fmt.Sprintf("10.0.0.%d", i))
	}
	ev.AddObservable(EntityIP, "dst_endpoint.ip", "10.0.0.1") // a repeat is not added
	collected := ev.Observables
	ev.KeepObservables(room)
	if len(ev.Observables) != 40 || cap(ev.Observables) != 40 {
		t.Fatalf("got %d observables in room for %d, want 40 in 40", len(ev.Observables), cap(ev.Observables))
	}
	if &ev.Observables[0] == &collected[0] {
		t.Fatal("the event kept the pooled room itself")
	}
	for i, o := range ev.Observables {
		if want := fmt.Sprintf("10.0.0.%d", i); o.Value != want || o.Name != "src_endpoint.ip" || o.Entity != EntityIP {
			t.Errorf("observable %d: got %+v, want %s", i, o, want)
		}
	}
	for i, o := range collected {
		if o != (Observable{}) {
			t.Fatalf("the room still holds observable %d (%+v): it would keep its record alive", i, o)
		}
	}
	if len(*room) != 0 || cap(*room) < 40 {
		t.Errorf("the room went back with %d observables in room for %d, want empty with its grown room", len(*room), cap(*room))
	}

	var none Event
	none.KeepObservables(none.CollectObservables())
	if none.Observables != nil {
		t.Errorf("an event with no observables got %#v, want nil", none.Observables)
	}
}
