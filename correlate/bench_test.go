package correlate

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// lineageEvent is an agent-like event: host ↔ instance ↔ private address,
// three tracked entities and three links.
func lineageEvent(i int, t int64) ocsf.Event {
	ev := ocsf.Event{Time: t}
	ev.Metadata.UID = fmt.Sprintf("ev-%d", i)
	ev.Metadata.LogName = "agent"
	ev.Observables = []ocsf.Observable{
		ocsf.NewObservable(ocsf.EntityHost, "device.hostname", fmt.Sprintf("ip-10-%d-%d-%d", i>>16&255, i>>8&255, i&255)),
		ocsf.NewObservable(ocsf.EntityInstance, "device.instance_uid", fmt.Sprintf("i-%017x", i)),
		ocsf.NewObservable(ocsf.EntityIP, "device.ip", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)),
	}
	return ev
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkTrackedEntityMemory measures the heap held per tracked entity
// with ~1M entities (b.N scales the count: run with -benchtime=1x for 1M).
// Each event adds three linked entities (host, instance, address), the
// shape of agent telemetry; the string data of the values is included.
func BenchmarkTrackedEntityMemory(b *testing.B) {
	const events = 1 << 20 / 3
	for range b.N {
		c, err := New(DefaultConfig(), nil, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		t := t0.UnixMilli()
		batch := make([]ocsf.Event, 0, 1024)
		for i := range events {
			batch = append(batch, lineageEvent(i, t+int64(i%1000)))
			if len(batch) == cap(batch) {
				c.Process(batch, nil)
				batch = batch[:0]
			}
		}
		c.Process(batch, nil)
		after := heapInUse()
		n := c.TrackedEntities()
		b.ReportMetric(float64(after-before)/float64(n), "bytes/entity")
		b.ReportMetric(float64(n), "entities")
		runtime.KeepAlive(c)
	}
}

// BenchmarkAlertJoinLatency measures how long Process takes to put the
// last alert of a chain into its incident (through two lineage links) while
// the correlator tracks ~300k entities.
func BenchmarkAlertJoinLatency(b *testing.B) {
	c, err := New(testConfig(), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	t := t0.UnixMilli()
	batch := make([]ocsf.Event, 0, 1024)
	for i := range 100_000 {
		batch = append(batch, lineageEvent(i, t))
		if len(batch) == cap(batch) {
			c.Process(batch, nil)
			batch = batch[:0]
		}
	}
	c.Process(batch, nil)
	s := attackStory()
	runInOrder(b, c, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// A fresh alert on a target host, joined through host → deployment →
		// object lineage to the attack incident.
		ev := mkEvent(fmt.Sprintf("late-%d", i), "agent", 61*time.Minute, ob(ocsf.EntityHost, "tgt-1"),
			ob(ocsf.EntityDeployment, "d-ATTACK0001"))
		a := mkAlert(fmt.Sprintf("x-%d", i), "agent.late", "impact", 5, ev)
		r := c.Process([]ocsf.Event{ev}, []alert.Alert{a})
		if len(r.Incidents) == 0 {
			b.Fatal("no incident updated")
		}
	}
}

// BenchmarkProcessEvents measures plain event throughput (link graph only).
func BenchmarkProcessEvents(b *testing.B) {
	c, err := New(DefaultConfig(), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]ocsf.Event, 1024)
	t := t0.UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % len(evs)
		evs[j] = lineageEvent(i%200_000, t+int64(i/1000))
		if j == len(evs)-1 {
			c.Process(evs, nil)
		}
	}
}
