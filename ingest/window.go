package ingest

import (
	"strings"

	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Window is the event-time range of the records of one message or file,
// as Decode would give their events' times.
type Window struct {
	// Lo and Hi are the earliest and latest event time, epoch ms; both are
	// zero when no record decodes.
	Lo, Hi int64
	// Records counts the records that decode (those Decode would return as
	// events); Failed those that would be dead letters.
	Records, Failed int
}

func (w *Window) add(t int64) {
	if w.Records == 0 || t < w.Lo {
		w.Lo = t
	}
	if w.Records == 0 || t > w.Hi {
		w.Hi = t
	}
	w.Records++
}

// Window reads data as Decode does — the same envelopes, limits and record
// boundaries — but builds no events where a record's time can be read
// directly: a CloudTrail record's eventTime, an agent event's time, a Falco
// alert's time and a flow log line's start (or end). Other records are
// normalized in full for their time. It costs a fraction of Decode, which
// is what an offline replay needs to order files before it decodes them.
//
// The window never starts later than Decode's events: a record read
// directly may still fail in Decode (a CloudTrail record without a user
// identity, an agent event of a class agents may not send) and so widen the
// window, never narrow it.
func (d *Decoder) Window(src Source, data []byte) (w Window) {
	b := &batch{d: d, win: &w}
	defer func() {
		if r := recover(); r != nil {
			// As Decode: a panic is a failed message, never a crash.
			w.Failed++
		}
	}()
	b.message(src, data, 0, "")
	w.Failed = len(b.errs)
	return w
}

// decodeRecord normalizes one record into the batch, or, when the batch
// only measures a window, reads its time. A record that fails leaves no
// event behind.
func (b *batch) decodeRecord(src Source, rec []byte, context string, idx int) error {
	depth := b.d.limits.MaxDepth
	if b.win == nil {
		// A record that is most of its payload is shared with it; one of
		// many is copied, so that a string kept from it keeps only it.
		share := b.d.share && 2*len(rec) >= len(b.cur)
		if err := normalize(b.next(), src, rec, share, depth, context, idx); err != nil {
			b.drop()
			return err
		}
		return nil
	}
	t, ok := recordTime(src, rec, depth)
	if !ok {
		var ev ocsf.Event
		if err := normalize(&ev, src, rec, false, depth, context, idx); err != nil {
			return err
		}
		t = ev.Time
	}
	b.win.add(t)
	return nil
}

// recordTime reads the event time of a record of the sources whose
// normalizers take it from one top-level member, exactly as they do; ok is
// false when it cannot, and the record must be normalized for its time.
func recordTime(src Source, rec []byte, depth int) (int64, bool) {
	s := scan.New(rec, "", depth)
	if !s.Object() {
		return 0, false
	}
	var (
		t            int64
		found, named bool
		source       bool
	)
	for first := true; s.More(&first); {
		key := s.Key()
		switch {
		case src == SourceCloudTrail && (key == "eventTime" || key == "eventName" || key == "eventSource"):
			v := s.String()
			switch key {
			case "eventTime":
				t, found = scan.TimeMillis(v)
			case "eventName":
				named = v != ""
			default:
				source = v != ""
			}
		case src == SourceFalco && key == "time":
			t, found = scan.TimeMillis(s.String())
		case src == SourceAgent && strings.EqualFold(key, "time"):
			// encoding/json, which decodes agent events, matches keys
			// without case and keeps the last; it takes only a number.
			found = false
			if c := s.Peek(); c == '-' || c >= '0' && c <= '9' {
				t, found = s.Int()
			} else {
				s.Skip()
			}
		default:
			s.Skip()
		}
	}
	s.End()
	if s.Err() != nil || !found {
		return 0, false
	}
	switch src {
	case SourceCloudTrail:
		if !named || !source {
			return 0, false
		}
	case SourceAgent:
		if t <= 0 {
			return 0, false
		}
		if t < 1e11 { // as agent.Normalize: seconds where OCSF wants ms
			t *= 1000
		}
	case SourceFalco:
	default:
		return 0, false
	}
	return t, true
}
