package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Signals join the split roles. A `-role detect` process publishes, per
// batch and tenant, one or more signal messages to the signals topic, keyed
// by the tenant (the correlation scope), once the batch's events are
// durable and before it commits its raw offsets; a `-role correlate`
// process consumes them (see Processor). The format is versioned JSON:
//
//	{"v": 1, "tenant": "acme",
//	 "sources": [{"log_name": "cloudtrail", "time": 1763650000000}],
//	 "links":   [<OCSF event reduced to uid, log name, tenant, time, class,
//	             operation and tracked observables>],
//	 "events":  [<OCSF event a sequence rule's stage may match>],
//	 "alerts":  [<alert, with "keyed">]}
//
// A reader rejects a version it does not know (a dead letter, reason
// ReasonSignalVersion) rather than guess at it.

// SignalVersion is the version of the signal format this build writes and
// reads.
const SignalVersion = 1

// Signal is one signal message.
type Signal struct {
	Version int    `json:"v"`
	Tenant  string `json:"tenant"`
	// Sources is the newest event time per source of the tenant's events
	// in the batch: the watermark's share of every event, also those the
	// correlator needs nothing else of.
	Sources []correlate.SourceTime `json:"sources,omitempty"`
	// Links are the events that touch the entity-link graph, reduced
	// (correlate.LinkSignal).
	Links []ocsf.Event `json:"links,omitempty"`
	// Events are the whole events a sequence rule's stage may match.
	Events []ocsf.Event `json:"events,omitempty"`
	// Alerts are the detection rules' alerts, before folding.
	Alerts []SignalAlert `json:"alerts,omitempty"`
}

// SignalAlert is an alert as a signal carries it: with Keyed, which the
// alert's own JSON leaves out.
type SignalAlert struct {
	alert.Alert
	Keyed bool `json:"keyed,omitempty"`
}

// Items is the number of signals the message carries: its alerts, link
// facts, events and source times.
func (s *Signal) Items() int {
	return len(s.Alerts) + len(s.Links) + len(s.Events) + len(s.Sources)
}

// EncodedSignal is one signal message ready to publish.
type EncodedSignal struct {
	Tenant string
	Value  []byte
	Items  int
}

// maxSignalBytes bounds one signal message below Kafka's default
// message.max.bytes (1 MB); a larger one is split.
const maxSignalBytes = 512 << 10

// signalBatchBytes bounds the messages kafka-go sends to the signals topic
// as one record batch, by its estimate of their size; the broker holds the
// batch to its message.max.bytes whole (1,048,588 bytes by default), its
// framing included. At twice maxSignalBytes a batch the estimate filled to
// 1,048,576 bytes (a message of the largest size and one a little
// smaller) was about 50 bytes too large on the wire, and the broker
// refused it: the detect process retried it, without committing, until
// stopped (seen in make bench's split runs). A message of the largest
// size and half as much again leave a quarter of the broker's limit for
// framing (TestSignalBatchesFitTheBroker).
const signalBatchBytes = maxSignalBytes + maxSignalBytes/2

// newSignalWriter is the producer of a detect process's signals, keyed by
// tenant: one tenant's signals land on one partition of the signals topic,
// so one correlate process owns its state.
func newSignalWriter(brokers []string, topic string, tr *kafka.Transport) *kafka.Writer {
	return &kafka.Writer{
		Addr: kafka.TCP(brokers...), Topic: topic,
		Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, BatchBytes: signalBatchBytes,
		Transport: tr,
	}
}

// encodeSignal encodes s, split into several messages when it is larger
// than maxSignalBytes.
func encodeSignal(s *Signal) ([]EncodedSignal, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	n := s.Items()
	if len(b) > maxSignalBytes && n <= 1 {
		// One item above the bound (a whole event near ingest's record
		// limit): the broker would refuse it and detect would retry it
		// forever. It is left out, counted and logged; its event is
		// stored all the same.
		return nil, errSignalTooLarge
	}
	if len(b) <= maxSignalBytes {
		return []EncodedSignal{{Tenant: s.Tenant, Value: b, Items: n}}, nil
	}
	a, c := s.halves()
	ea, errA := encodeSignal(&a)
	ec, errC := encodeSignal(&c)
	return append(ea, ec...), errors.Join(errA, errC)
}

// errSignalTooLarge is a single signal item above maxSignalBytes.
var errSignalTooLarge = errors.New("a signal item is larger than a signal message may be; left out")

// halves splits s's items into two signals of about half each, in order:
// sources, links, events, alerts. Every part repeats nothing.
func (s *Signal) halves() (Signal, Signal) {
	a := Signal{Version: s.Version, Tenant: s.Tenant}
	c := a
	half := s.Items() / 2
	i := 0
	take := func() bool { i++; return i <= half }
	a.Sources, c.Sources = divide(s.Sources, take)
	a.Links, c.Links = divide(s.Links, take)
	a.Events, c.Events = divide(s.Events, take)
	a.Alerts, c.Alerts = divide(s.Alerts, take)
	return a, c
}

// divide puts each item of xs, in order, in the first slice while take
// says so and in the second otherwise.
func divide[T any](xs []T, take func() bool) (first, second []T) {
	for _, x := range xs {
		if take() {
			first = append(first, x)
		} else {
			second = append(second, x)
		}
	}
	return first, second
}

// Dead-letter reasons of signals.
const (
	// ReasonSignalMalformed: the message is not a signal (not JSON of the
	// signal's shape).
	ReasonSignalMalformed = "signal_malformed"
	// ReasonSignalVersion: a signal of a version this build does not read.
	ReasonSignalVersion = "signal_version"
)

// errSignal is a signal that can never be read, with its reason.
type errSignal struct {
	reason string
	err    error
}

func (e *errSignal) Error() string { return e.err.Error() }

// DecodeSignal decodes one signal message. Its error is permanent: the
// message goes to the dead letters.
func DecodeSignal(b []byte) (Signal, error) {
	var s Signal
	if err := json.Unmarshal(b, &s); err != nil {
		return Signal{}, &errSignal{ReasonSignalMalformed, fmt.Errorf("signal: %w", err)}
	}
	if s.Version != SignalVersion {
		return Signal{}, &errSignal{ReasonSignalVersion, fmt.Errorf("signal version %d, this build reads %d", s.Version, SignalVersion)}
	}
	if s.Tenant == "" {
		return Signal{}, &errSignal{ReasonSignalMalformed, errors.New("signal without a tenant")}
	}
	for i := range s.Alerts {
		a := &s.Alerts[i]
		if a.ID == "" || a.RuleID == "" {
			return Signal{}, &errSignal{ReasonSignalMalformed, fmt.Errorf("signal alert %d without an id or rule id", i)}
		}
	}
	for _, evs := range [][]ocsf.Event{s.Links, s.Events} {
		for i := range evs {
			if evs[i].Metadata.UID == "" {
				return Signal{}, &errSignal{ReasonSignalMalformed, fmt.Errorf("signal event %d without metadata.uid", i)}
			}
		}
	}
	return s, nil
}

// signalsOf builds the signals of a detected batch: per tenant (in tenant
// order), the source times of its events, the link facts and whole events
// the correlator needs (needs decides), and its alerts.
func signalsOf(events []ocsf.Event, alerts []alert.Alert, needs NeedFunc, link func(*ocsf.Event) ocsf.Event) []*Signal {
	by := map[string]*Signal{}
	get := func(tenant string) *Signal {
		s := by[tenant]
		if s == nil {
			s = &Signal{Version: SignalVersion, Tenant: tenant}
			by[tenant] = s
		}
		return s
	}
	for i := range events {
		ev := &events[i]
		s := get(ev.Metadata.TenantUID)
		switch needs(ev) {
		case correlate.NeedEvent:
			cp := *ev
			cp.Raw = nil
			s.Events = append(s.Events, cp)
		case correlate.NeedLinks:
			s.Links = append(s.Links, link(ev))
		default:
			j := slices.IndexFunc(s.Sources, func(st correlate.SourceTime) bool { return st.LogName == ev.Metadata.LogName })
			if j < 0 {
				s.Sources = append(s.Sources, correlate.SourceTime{LogName: ev.Metadata.LogName, Time: ev.Time})
			} else {
				s.Sources[j].Time = max(s.Sources[j].Time, ev.Time)
			}
		}
	}
	for _, a := range alerts {
		s := get(a.TenantUID)
		s.Alerts = append(s.Alerts, SignalAlert{Alert: a, Keyed: a.Keyed})
	}
	out := make([]*Signal, 0, len(by))
	for _, s := range by {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Signal) int {
		switch {
		case a.Tenant < b.Tenant:
			return -1
		case a.Tenant > b.Tenant:
			return 1
		}
		return 0
	})
	return out
}

// NeedFunc says what the correlator needs of one plain event
// (correlate.Correlator.Needs).
type NeedFunc func(*ocsf.Event) correlate.Need

// OwnedTenants returns the tenants whose signals land on the partitions of
// topic that a assigns: the detect role keys every signal by its tenant
// with kafka-go's Hash balancer over the topic's partitions, so a tenant's
// state belongs to the consumer of that one partition.
func OwnedTenants(tenants []string, a Assignment, topic string) []string {
	n := a.Counts[topic]
	owned := []string{}
	if n <= 0 {
		return owned
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	mine := a.Partitions[topic]
	h := &kafka.Hash{}
	for _, t := range tenants {
		if slices.Contains(mine, h.Balance(kafka.Message{Key: []byte(t)}, ids...)) {
			owned = append(owned, t)
		}
	}
	return owned
}
