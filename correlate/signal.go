package correlate

import (
	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Split roles. With `musubi serve -role detect` the detecting process does
// not correlate: it publishes what the correlator needs of each batch —
// its alerts, and of its plain events only the part the correlator reads —
// and a `-role correlate` process feeds that to ProcessInput. Need decides
// per event what that part is, with the same tests Process applies, so a
// correlator fed the signals of a stream reaches the results of one fed
// the stream itself.

// Need is what the correlator needs of one plain event.
type Need uint8

const (
	// NeedTime: only the event's source and time, for the watermark.
	NeedTime Need = iota
	// NeedLinks: the event's tracked entities too (LinkSignal), for the
	// entity-link graph — identity and deployment lineage, entity
	// lifetimes — and the sources of instance sessions.
	NeedLinks
	// NeedEvent: the whole event, because a sequence rule's stage may
	// match it.
	NeedEvent
)

// SourceTime is the newest event time (ms) seen of one source (log name):
// what the watermark needs of events the correlator needs nothing else of.
type SourceTime struct {
	LogName string `json:"log_name"`
	Time    int64  `json:"time"`
}

// Input is one batch for ProcessInput. Events and Alerts are as for
// Process. Links are events reduced by LinkSignal: they feed the
// entity-link graph and the session sources but no sequence rule. Sources
// advance the watermark.
type Input struct {
	Sources []SourceTime
	Links   []ocsf.Event
	Events  []ocsf.Event
	Alerts  []alert.Alert
}

// Needs reports what the correlator needs of ev (a plain event; its alerts
// travel apart): the whole event when a stage of a sequence rule may match
// it (the stage's source, operation and literal prerequisites admit it; its
// condition is evaluated only by the correlating process), its entities
// of linked kinds when it touches the entity-link graph or names the address an
// instance session calls from, else only its time. It reads the
// correlator's configuration and rules only, never its state, so a detect
// process calls it on a correlator it never feeds.
func (c *Correlator) Needs(ev *ocsf.Event) Need {
	c.applyRules()
	if c.seq != nil {
		for _, rs := range c.seq.rules {
			for _, st := range rs.r.Stages {
				if st.mayMatchEvent(ev) {
					return NeedEvent
				}
			}
		}
	}
	if len(ev.Observables) >= 2 {
		for _, o := range ev.Observables {
			if c.linked[kindIndex[o.Entity]] && o.Value != "" {
				return NeedLinks
			}
		}
	}
	if sessionSource(ev) || ownAddressReport(ev) {
		return NeedLinks
	}
	return NeedTime
}

// sessionSource reports whether noteSource learns from ev.
func sessionSource(ev *ocsf.Event) bool {
	_, _, ok := instanceSessionSource(ev)
	return ok
}

// LinkSignal reduces ev to what the entity-link graph and the session
// sources read: its uid, source, tenant, time, class, operation and the
// observables of the kinds its lineage rules link (and the session, the
// instance and the addresses).
func (c *Correlator) LinkSignal(ev *ocsf.Event) ocsf.Event {
	out := ocsf.Event{ClassUID: ev.ClassUID, Time: ev.Time}
	out.Metadata.UID = ev.Metadata.UID
	out.Metadata.LogName = ev.Metadata.LogName
	out.Metadata.TenantUID = ev.Metadata.TenantUID
	out.API.Operation = ev.API.Operation
	out.Observables = c.linkObservables(ev, nil)
	return out
}

// linkObservables are the observables of ev that LinkSignal keeps. With
// chunk set they are carved from *chunk, which is refilled as needed: the
// links of one batch share a few allocations (see bench/stage
// BenchmarkCorrelate), and live as long as the batch's Result.
func (c *Correlator) linkObservables(ev *ocsf.Event, chunk *[]ocsf.Observable) []ocsf.Observable {
	keep := func(o *ocsf.Observable) bool {
		return (c.linked[kindIndex[o.Entity]] || o.Entity == ocsf.EntitySession || o.Entity == ocsf.EntityIP || o.Entity == ocsf.EntityInstance) && o.Value != ""
	}
	// Counted first so the slice is allocated once, not grown.
	n := 0
	for i := range ev.Observables {
		if keep(&ev.Observables[i]) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	var out []ocsf.Observable
	if chunk == nil {
		out = make([]ocsf.Observable, 0, n)
	} else {
		if cap(*chunk)-len(*chunk) < n {
			*chunk = make([]ocsf.Observable, 0, max(n, obsChunk))
		}
		l := len(*chunk)
		out = (*chunk)[l : l : l+n]
		*chunk = (*chunk)[:l+n]
	}
	for i := range ev.Observables {
		if keep(&ev.Observables[i]) {
			out = append(out, ev.Observables[i])
		}
	}
	return out
}

// obsChunk is how many observables a batch's links take at once.
const obsChunk = 256

// Link is a plain event reduced as LinkSignal reduces it, as a compact
// value: what Result.Links reports and State.Links restores (an
// ocsf.Event is several kilobytes; a batch reports many links).
type Link struct {
	UID, TenantUID, LogName, Operation string
	ClassUID                           int
	Time                               int64
	Observables                        []ocsf.Observable
}

// linkOf is ev as a Link with the observables obs.
func linkOf(ev *ocsf.Event, obs []ocsf.Observable) Link {
	return Link{UID: ev.Metadata.UID, TenantUID: ev.Metadata.TenantUID, LogName: ev.Metadata.LogName, Operation: ev.API.Operation,
		ClassUID: ev.ClassUID, Time: ev.Time, Observables: obs}
}

// event is l as the event the link graph and the session sources read.
func (l *Link) event(ev *ocsf.Event) {
	*ev = ocsf.Event{ClassUID: l.ClassUID, Time: l.Time, Observables: l.Observables}
	ev.Metadata.UID, ev.Metadata.TenantUID, ev.Metadata.LogName = l.UID, l.TenantUID, l.LogName
	ev.API.Operation = l.Operation
}
