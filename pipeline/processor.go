package pipeline

import (
	"cmp"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// Record is one raw input record: a Kafka message or a file.
type Record struct {
	Source    ingest.Source
	Topic     string
	Partition int
	Offset    int64
	Value     []byte
	// Time is when the record was appended (Kafka) or read (files).
	Time time.Time
	// Ordered is set when Offset orders the records of Topic and Partition
	// (a Kafka message): the alerts of the record then carry it as their
	// origin, so the correlator counts a match that a crash makes it read
	// again once (alert.Origins).
	Ordered bool
}

// origin is where r was read from, if it has an ordered position.
func (r *Record) origin() []alert.Origin {
	if !r.Ordered {
		return nil
	}
	return []alert.Origin{{Topic: r.Topic, Partition: int32(r.Partition), Offset: r.Offset}}
}

// Evaluator evaluates detection rules on one event.
type Evaluator interface {
	Evaluate(ev *ocsf.Event) []alert.Alert
}

// Correlator turns events and alerts into incident updates.
type Correlator interface {
	Process(events []ocsf.Event, alerts []alert.Alert) correlate.Result
	// Advance moves event time to now while input is idle, firing timers.
	Advance(now time.Time) correlate.Result
}

// TenantFunc maps an AWS account id (possibly empty) to a tenant id.
type TenantFunc func(account string) string

// Processor runs decode → rules → correlate on a batch of records and
// returns what must be written. It is synchronous and not safe for
// concurrent use: the correlator state it drives has a single owner.
type Processor struct {
	decoder    *ingest.Decoder
	rules      Evaluator
	corr       Correlator
	tenant     TenantFunc
	storeRaw   bool
	logger     *slog.Logger
	metrics    *metrics
	lastWarn   time.Time
	suppressed int
	order      []int // reused: a batch's events in event-time order
	recOf      []int // reused: the record each event of a batch came from
	// spare is the events slice of the last durable batch (Recycle), which
	// the next Process decodes into; its length is how many slots hold
	// that batch's events.
	spare []ocsf.Event

	// needs and link, when set (-role detect), make Process publish
	// signals instead of correlating: see Detect.
	needs NeedFunc
	link  func(*ocsf.Event) ocsf.Event
	// signals are the encoded signals of the last Process (-role detect),
	// published by the consumer once the batch is durable.
	signals []EncodedSignal
	// input, when set (-role correlate), makes Process read signal
	// messages and feed them to the correlator: see ReadSignals.
	input func(correlate.Input) correlate.Result
}

// Detect makes p a detect-role processor: Process decodes and evaluates
// rules as usual and returns the events and dead letters to store, but
// instead of correlating it prepares signals (TakeSignals): per tenant the
// alerts and what needs and link say the correlator needs of each plain
// event. The alerts are stored by the correlate role, folded, as `-role
// all` stores them.
func (p *Processor) Detect(needs NeedFunc, link func(*ocsf.Event) ocsf.Event) {
	p.needs, p.link = needs, link
}

// ReadSignals makes p a correlate-role processor: Process reads signal
// messages (a malformed one is a dead letter) and passes them to in (the
// correlator's ProcessInput); it returns the alerts and incidents to store.
func (p *Processor) ReadSignals(in func(correlate.Input) correlate.Result) {
	p.input = in
}

// TakeSignals returns the signals of the last Process (-role detect) and
// forgets them.
func (p *Processor) TakeSignals() []EncodedSignal {
	s := p.signals
	p.signals = nil
	return s
}

// NewProcessor returns a Processor. reg may be nil.
func NewProcessor(dec *ingest.Decoder, ev Evaluator, corr Correlator, tenant TenantFunc, storeRaw bool, logger *slog.Logger, reg prometheus.Registerer) *Processor {
	return &Processor{
		decoder:  dec,
		rules:    ev,
		corr:     corr,
		tenant:   tenant,
		storeRaw: storeRaw,
		logger:   logger.With("component", "pipeline"),
		metrics:  newMetrics(reg),
	}
}

// Recycle hands back the events of a batch Process returned, once nothing
// reads them any more (the batch is durable): the next Process decodes
// into the same slice. Nothing of an event may be kept by reference past
// Recycle but what it points to: the correlator keeps copies, and alerts
// keep strings and slices the decoder allocated, which a reused slot
// never writes into. The events are cleared here, not as the next batch
// reaches their slots: until then they kept the durable batch's Kafka
// messages, decoded strings and observables alive beside the two batches
// in hand (about a third of a batch more memory on average, at 5,000
// events some 20 MB more heap at every collection).
func (p *Processor) Recycle(events []ocsf.Event) {
	clear(events[:cap(events)])
	p.spare = events
}

// Process decodes every record, evaluates rules on every event and feeds the
// correlator. Records that fail to decode become dead letters; nothing is
// dropped.
func (p *Processor) Process(recs []Record) storage.Batch {
	if p.input != nil {
		return p.processSignals(recs)
	}
	// Most records hold one event, and an event is several kilobytes:
	// sized for that, the batch's events are allocated once instead of
	// being copied every time append grows them by a quarter (about five
	// times the batch's events in allocations, copies and clearing, and
	// as much garbage). Once a batch is durable the consumer hands its
	// events back (Recycle) and the next batch decodes into them: a batch
	// of 5,000 events is 18 MB that would otherwise be new memory, and
	// new garbage, every batch.
	events := p.spare
	p.spare = nil
	if cap(events) < len(recs) {
		events = make([]ocsf.Event, 0, len(recs))
	}
	// Recycle cleared every slot: one this batch does not reuse keeps
	// nothing of the last batch alive.
	b := storage.Batch{Events: events[:0]}
	p.recOf = p.recOf[:0]
	for i := range recs {
		r := &recs[i]
		src := r.Source
		if src == ingest.SourceAuto || src == "" {
			src = ingest.Detect(r.Value)
		}
		// Decoding appends to the batch's events: no slice per record, no
		// copy of a large message's events.
		n0 := len(b.Events)
		var errs []*ingest.DecodeError
		b.Events, errs = p.decoder.DecodeAppend(b.Events, src, r.Value)
		events := b.Events[n0:]
		for range events {
			p.recOf = append(p.recOf, i)
		}
		for _, de := range errs {
			raw := de.Raw
			if raw == nil {
				raw = r.Value
			}
			b.DeadLetters = append(b.DeadLetters, storage.DeadLetter{
				TenantUID: p.tenant(""),
				Source:    string(src),
				Topic:     r.Topic,
				Partition: r.Partition,
				Offset:    r.Offset,
				Record:    de.Record,
				Raw:       raw,
				Reason:    de.Reason,
				Error:     de.Error(),
				Time:      r.Time,
			})
			p.metrics.deadLetters.WithLabelValues(string(src), de.Reason).Inc()
		}
		if len(errs) > 0 {
			p.warnThrottled("records sent to dead letters", "source", src, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", errs[0].Reason, "error", errs[0].Error())
		}
		p.metrics.events.WithLabelValues(string(src)).Add(float64(len(events)))
		for j := range events {
			ev := &events[j]
			ev.Metadata.TenantUID = p.tenant(ev.Cloud.Account.UID)
			if !p.storeRaw {
				ev.Raw = nil
			}
		}
	}
	// AWS Config items are also the asset inventory, written with the
	// events (both roles that read raw topics: all and detect).
	b.Inventory = InventoryOf(b.Events)
	// Rules see the batch in event-time order (ties by uid), so what a
	// suppression window keeps — the first event of the window — does not
	// depend on the order the records arrived in.
	p.order = p.order[:0]
	for i := range b.Events {
		p.order = append(p.order, i)
	}
	slices.SortFunc(p.order, func(i, j int) int {
		a, c := &b.Events[i], &b.Events[j]
		if a.Time != c.Time {
			return cmp.Compare(a.Time, c.Time)
		}
		return strings.Compare(a.Metadata.UID, c.Metadata.UID)
	})
	for _, i := range p.order {
		for _, a := range p.rules.Evaluate(&b.Events[i]) {
			if a.TenantUID == "" {
				a.TenantUID = b.Events[i].Metadata.TenantUID
			}
			a.Origins = recs[p.recOf[i]].origin()
			b.Alerts = append(b.Alerts, a)
		}
	}
	p.metrics.alerts.Add(float64(len(b.Alerts)))
	if p.needs != nil {
		p.signals = p.encodeSignals(signalsOf(b.Events, b.Alerts, p.needs, p.link))
		b.Alerts = nil // stored by the correlate role, folded
		return b
	}
	// The correlator folds repeats: what is stored is its alerts.
	res := p.corr.Process(b.Events, b.Alerts)
	b.Alerts = res.Alerts
	b.Incidents = res.Incidents
	b.Links = storedLinks(res.Links)
	b.Stages = storedStages(res.Stages)
	return b
}

// storedStages are the correlator's stage inputs as storage keeps them.
func storedStages(ss []correlate.StageInput) []storage.StageInput {
	if len(ss) == 0 {
		return nil
	}
	out := make([]storage.StageInput, len(ss))
	for i, s := range ss {
		out[i] = storage.StageInput(s)
	}
	return out
}

// storedLinks are the correlator's link signals as storage keeps them.
func storedLinks(ls []correlate.Link) []storage.LinkSignal {
	if len(ls) == 0 {
		return nil
	}
	out := make([]storage.LinkSignal, len(ls))
	for i, l := range ls {
		out[i] = storage.LinkSignal(l)
	}
	return out
}

// Idle advances the correlator's event time to now when no input arrived
// for a while, so absence rules fire and windows close; it returns what that
// produced.
func (p *Processor) Idle(now time.Time) storage.Batch {
	if p.needs != nil {
		return storage.Batch{} // a detect process keeps no event time
	}
	res := p.corr.Advance(now)
	return storage.Batch{Alerts: res.Alerts, Incidents: res.Incidents}
}

// warnThrottled logs at most one warning per second and counts the rest.
func (p *Processor) warnThrottled(msg string, args ...any) {
	now := time.Now()
	if now.Sub(p.lastWarn) < time.Second {
		p.suppressed++
		return
	}
	if p.suppressed > 0 {
		args = append(args, "suppressed", p.suppressed)
	}
	p.logger.Warn(msg, args...)
	p.lastWarn, p.suppressed = now, 0
}

// encodeSignals encodes a batch's signals. An item that cannot be encoded
// or is too large for a message stops nothing: it is left out, logged and
// counted (musubi_signals_encode_errors_total); its event is stored.
func (p *Processor) encodeSignals(sigs []*Signal) []EncodedSignal {
	var out []EncodedSignal
	for _, s := range sigs {
		enc, err := encodeSignal(s)
		if err != nil {
			// The rest of the tenant's signals (enc) are published.
			p.metrics.signalErrors.Inc()
			p.warnThrottled("signal left out", "tenant", s.Tenant, "error", err)
		}
		for _, e := range enc {
			p.metrics.signalItems.Add(float64(e.Items))
			p.metrics.signalBytes.Add(float64(len(e.Value)))
		}
		out = append(out, enc...)
	}
	return out
}

// processSignals is Process of the correlate role: it decodes the signal
// messages of recs (a malformed one becomes a dead letter with its raw
// bytes and the reason) and correlates them as one batch.
func (p *Processor) processSignals(recs []Record) storage.Batch {
	var b storage.Batch
	var in correlate.Input
	for i := range recs {
		r := &recs[i]
		s, err := DecodeSignal(r.Value)
		if err != nil {
			reason := ReasonSignalMalformed
			var es *errSignal
			if errors.As(err, &es) {
				reason = es.reason
			}
			b.DeadLetters = append(b.DeadLetters, p.recordDeadLetter(r, reason, err.Error()))
			p.metrics.deadLetters.WithLabelValues(string(r.Source), reason).Inc()
			p.warnThrottled("signal sent to dead letters", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", reason, "error", err)
			continue
		}
		p.metrics.signalsRead.Add(float64(s.Items()))
		in.Sources = append(in.Sources, s.Sources...)
		in.Links = append(in.Links, s.Links...)
		in.Events = append(in.Events, s.Events...)
		for _, a := range s.Alerts {
			a.Alert.Keyed = a.Keyed
			// The signal's own position: the correlate role's input is
			// the signals topic, read in order and replayed after a crash.
			a.Alert.Origins = r.origin()
			in.Alerts = append(in.Alerts, a.Alert)
		}
	}
	res := p.input(in)
	b.Alerts = res.Alerts
	b.Incidents = res.Incidents
	b.Links = storedLinks(res.Links)
	b.Stages = storedStages(res.Stages)
	return b
}

// recordDeadLetter is the dead letter of a whole Kafka record (Record -1):
// its raw bytes, origin, reason and error message.
func (p *Processor) recordDeadLetter(r *Record, reason, msg string) storage.DeadLetter {
	return storage.DeadLetter{
		TenantUID: p.tenant(""), Source: string(r.Source), Topic: r.Topic,
		Partition: r.Partition, Offset: r.Offset, Record: -1, Raw: r.Value,
		Reason: reason, Error: msg, Time: r.Time,
	}
}
