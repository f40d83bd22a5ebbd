package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/musubi-xdr/musubi/ingest/agent"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ingest/cloudtrail"
	"github.com/musubi-xdr/musubi/ingest/guardduty"
	"github.com/musubi-xdr/musubi/ingest/inspector"
	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ingest/malwarescan"
	"github.com/musubi-xdr/musubi/ingest/vpcflow"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Decoder turns messages and files of the supported sources into OCSF
// events. It holds no per-message state: one Decoder may be used by many
// goroutines at once.
type Decoder struct {
	limits     Limits
	flowFormat *vpcflow.Format
	// share lets events' strings share their record's bytes (ShareInput).
	share bool
}

// NewDecoder returns a decoder with the given limits; zero or negative
// limits take their DefaultLimits value and MaxDepth is capped at
// MaxDepthLimit.
func NewDecoder(l Limits) *Decoder {
	return &Decoder{limits: l.withDefaults(), flowFormat: vpcflow.DefaultFormat()}
}

// ShareInput lets the strings of CloudTrail events share the bytes of the
// records they come from instead of a copy of each record, for records that
// are at least half of their payload (a message, or what was unwrapped
// from it). A record of a many-record payload (a delivery file) is still
// copied: a string kept from it, such as an alert's in an open incident,
// then keeps that record alive and not the whole file. The caller promises
// never to modify data once Decode has it, also after the events are
// dropped; the pipeline's Kafka messages, which the client allocates one
// by one, never are. Without it strings never alias data. Call it before
// the decoder is shared.
func (d *Decoder) ShareInput() { d.share = true }

// Limits returns the limits in effect.
func (d *Decoder) Limits() Limits { return d.limits }

// SetFlowFormat sets the field list of flow log lines that arrive without a
// header line (one line per Kafka message, CloudWatch Logs subscriptions),
// written as the header of a flow log file ("version account-id ...", the
// ${field} form of the AWS console also works). The default is the v2 default
// format. Files that start with a header always use their own header. Call
// it before the decoder is shared: it is not safe during Decode calls.
func (d *Decoder) SetFlowFormat(header string) error {
	f, err := vpcflow.ParseHeader(header)
	if err != nil {
		return err
	}
	d.flowFormat = f
	return nil
}

// maxUnwrap bounds nested compression and encodings (gzip in base64 in
// JSON), so that a crafted message cannot recurse.
const maxUnwrap = 4

// batch collects the results of one Decode call.
type batch struct {
	d      *Decoder
	events []ocsf.Event
	errs   []*DecodeError
	n      int // records seen
	full   bool
	// cur is the payload being decoded (a message, or what was unwrapped
	// from it): when decoding stops early, the rest of it is kept.
	cur []byte
	// win, when set, collects the records' event-time window instead of
	// their events (Decoder.Window).
	win *Window
}

// rest is what decoding leaves of the current payload from offset on, so
// that a dead letter for a message cut short loses no record.
func (b *batch) rest(offset int, rec []byte) []byte {
	if offset >= 0 && offset < len(b.cur) && len(b.cur)-offset >= len(rec) {
		return b.cur[offset:]
	}
	return rec
}

// Decode turns one Kafka message or one file's bytes into events. A message
// may hold many records (a CloudTrail delivery file, many flow log lines, a
// findings array, JSON lines, a CloudWatch Logs subscription payload); it may
// be gzip-compressed. Events that decoded are returned even when some records
// failed; each failed record is reported in the returned errors with its raw
// bytes and position, never dropped silently. Decode never panics: a panic
// inside a decoder is recovered and reported as ReasonInternal.
//
// Events may reference data: Raw and the raw API request and response are
// sub-slices of it (or of its decompressed copy), so data must not be
// modified while the events are in use. Strings never alias data unless
// the decoder shares its input (ShareInput).
//
// With SourceAuto the source is detected per message (see Detect);
// EventBridge envelopes and CloudWatch Logs payloads name their content, so
// they are decoded as what they hold whatever src says.
func (d *Decoder) Decode(src Source, data []byte) (events []ocsf.Event, errs []*DecodeError) {
	return d.DecodeAppend(nil, src, data)
}

// DecodeAppend is Decode appending the events to dst, so that a caller that
// is done with the events of one message can reuse their slice for the next
// (events are about 4 KiB each: reusing the slice saves their allocation).
func (d *Decoder) DecodeAppend(dst []ocsf.Event, src Source, data []byte) (events []ocsf.Event, errs []*DecodeError) {
	b := &batch{d: d, events: dst}
	defer func() {
		if r := recover(); r != nil {
			b.fail(src, ReasonInternal, -1, -1, data, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
		events, errs = b.events, b.errs
	}()
	b.message(src, data, 0, "")
	return b.events, b.errs
}

func (b *batch) fail(src Source, reason string, record, offset int, raw []byte, err error) {
	if err == nil {
		err = errors.New(reason)
	}
	b.errs = append(b.errs, &DecodeError{Source: src, Reason: reason, Record: record, Offset: offset, Raw: raw, Err: err})
}

// message decodes a whole message (or a payload unwrapped from one).
// context names where it came from, for flow log record ids.
func (b *batch) message(src Source, data []byte, unwrap int, context string) {
	lim := b.d.limits
	defer func(outer []byte) { b.cur = outer }(b.cur)
	b.cur = data
	if len(data) > lim.MaxMessageBytes {
		b.fail(src, ReasonTooLarge, -1, 0, data, fmt.Errorf("message of %d bytes exceeds %d", len(data), lim.MaxMessageBytes))
		return
	}
	if unwrap > maxUnwrap {
		b.fail(src, ReasonUnknownFormat, -1, 0, data, errors.New("too many nested encodings"))
		return
	}
	if isGzip(data) {
		out, err := gunzip(data, lim.MaxMessageBytes)
		if err != nil {
			reason := ReasonInvalidGzip
			if errors.Is(err, errTooLarge) {
				reason = ReasonTooLarge
			}
			b.fail(src, reason, -1, 0, data, err)
			return
		}
		b.message(src, out, unwrap+1, context)
		return
	}
	if bytes.HasPrefix(data, []byte("H4sI")) { // base64 of a gzip header
		out, err := unbase64(data)
		if err != nil {
			b.fail(src, ReasonInvalidBase64, -1, 0, data, err)
			return
		}
		b.message(src, out, unwrap+1, context)
		return
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return
	}
	if src == "" {
		src = SourceAuto
	}
	if src == SourceAuto {
		src = Detect(data)
		// An envelope names its content even when Detect does not know it
		// (a CloudWatch Logs control message, an EventBridge event of
		// another service): unwrap it and detect record by record.
		if src == SourceAuto && !((trimmed[0] == '{' || trimmed[0] == '[') && mayHoldContainer(data)) {
			b.fail(SourceAuto, ReasonUnknownFormat, -1, 0, data, errors.New("no source recognises the message"))
			return
		}
	}
	if src == SourceVPCFlow && trimmed[0] != '{' && trimmed[0] != '[' {
		b.flowText(data, context, b.d.flowFormat)
		return
	}
	if trimmed[0] != '{' && trimmed[0] != '[' {
		if !utf8.Valid(trimmed) {
			b.fail(src, ReasonInvalidUTF8, -1, 0, data, errors.New("message is neither JSON nor UTF-8 text"))
			return
		}
		b.fail(src, ReasonInvalidJSON, -1, 0, data, errors.New("expected a JSON object or array"))
		return
	}
	b.json(src, data, unwrap, context)
}

// containerKeys are the top-level keys of the envelopes Decode unwraps.
// The prefilter searches for the key without its opening quote: a rare first
// byte keeps bytes.Index on its fast path.
var containerKeys = [][]byte{[]byte(`Records"`), []byte(`Findings"`), []byte(`detail-type"`), []byte(`logEvents"`), []byte(`awslogs"`), []byte(`configurationItems"`)}

func mayHoldContainer(data []byte) bool {
	for _, k := range containerKeys {
		if bytes.Contains(data, k) {
			return true
		}
	}
	return false
}

// headLen is how much of a one-line message the fast path searches for
// envelope keys: envelopes written by AWS put them first.
const headLen = 256

// json decodes a JSON message: one record, JSON lines, an array of records or
// an envelope.
func (b *batch) json(src Source, data []byte, unwrap int, context string) {
	lim := b.d.limits
	// Fast path: one compact record per message, the usual Kafka shape. Only
	// the head is searched for envelope keys; should the record fail, the
	// whole message is searched before the failure is reported.
	if data[0] == '{' && len(data) <= lim.MaxRecordBytes && !mayHoldContainer(data[:min(len(data), headLen)]) &&
		bytes.IndexByte(bytes.TrimRight(data, " \t\r\n"), '\n') < 0 {
		idx, ok := b.admit(src, data, 0)
		if !ok {
			return
		}
		err := b.decodeRecord(src, data, context, idx)
		if err == nil {
			return
		}
		if len(data) <= headLen || !mayHoldContainer(data) {
			b.fail(src, scan.ReasonOf(err), idx, 0, data, err)
			return
		}
		b.n-- // not a record after all: decode it as an envelope below
	}
	hint := mayHoldContainer(data)
	// JSON lines: one record per line that starts with '{'. Events are
	// large (about 4 KiB), and append would grow the slice by a quarter
	// at a time, copying each event several times over a big message:
	// size it once for the lines counted.
	b.reserve(bytes.Count(data, []byte("\n{")) + 1)
	s := scan.New(data, "", lim.MaxDepth+2)
	for !b.full && !s.AtEnd() {
		start := s.Pos
		switch s.Peek() {
		case '[':
			b.array(src, &s, data, context)
			if s.Failed() {
				return
			}
			continue
		case '{':
			if hint {
				if end, ok := b.envelope(src, data, start, unwrap, context); ok {
					s.Pos = end
					continue
				}
			}
		}
		s.Skip()
		if err := s.Err(); err != nil {
			// Resynchronise at the next record of a JSON lines file, so
			// that one bad line does not lose the lines after it. A record
			// of JSON lines starts a line with '{' or '['; the indented
			// lines of a pretty-printed record do not, so a truncated
			// pretty-printed record stays one dead letter.
			end := nextRecordLine(data, start)
			b.badRecord(src, data[start:end], start, err)
			s = scan.New(data, "", lim.MaxDepth+2)
			s.Pos = end
			continue
		}
		b.record(src, data[start:s.Pos], start, context)
	}
}

// nextRecordLine returns the offset of the first line after the one holding
// pos that starts with '{' or '[', or len(data).
func nextRecordLine(data []byte, pos int) int {
	for {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return len(data)
		}
		pos += i + 1
		if pos < len(data) && (data[pos] == '{' || data[pos] == '[') {
			return pos
		}
	}
}

// badRecord reports a record that failed before reaching its decoder.
func (b *batch) badRecord(src Source, raw []byte, offset int, err error) {
	idx := b.n
	b.n++
	b.fail(src, scan.ReasonOf(err), idx, offset, raw, err)
}

// array decodes the elements of a JSON array as records.
func (b *batch) array(src Source, s *scan.Scanner, data []byte, context string) {
	if !s.Array() {
		return
	}
	for first := true; !b.full && s.More(&first); {
		start := s.Pos
		s.Skip()
		if err := s.Err(); err != nil {
			b.badRecord(src, data[start:], start, err)
			return
		}
		b.record(src, data[start:s.Pos], start, context)
	}
}

// envelope decodes the object at start if it is one of the envelopes: a
// CloudTrail delivery file {"Records":[…]}, GetFindings output
// {"Findings":[…]}, an EventBridge event, a CloudWatch Logs subscription
// payload, or a Lambda-style {"awslogs":{"data":…}} wrapper. It reports the
// end of the object and whether it was an envelope.
func (b *batch) envelope(src Source, data []byte, start, unwrap int, context string) (int, bool) {
	s := scan.New(data, "", b.d.limits.MaxDepth+2)
	s.Pos = start
	var (
		detail                   []byte
		detailOff                int
		detailType, ebSource     string
		logEvents                = -1
		messageType, group, strm string
		awslogs                  string
		seenRecords              bool
		recordsSrc               = src
	)
	if !s.Object() {
		return 0, false
	}
	for first := true; s.More(&first); {
		switch key := s.Key(); key {
		case "Records", "Findings", "configurationItems":
			if s.Peek() != '[' {
				s.Skip()
				continue
			}
			if key == "Findings" {
				recordsSrc = SourceGuardDuty
			} else if key == "configurationItems" {
				recordsSrc = SourceAWSConfig
			} else if src == SourceAuto || src == SourceGuardDuty {
				recordsSrc = SourceCloudTrail
			}
			seenRecords = true
			b.array(recordsSrc, &s, data, context)
			if s.Failed() {
				return len(data), true
			}
		case "detail":
			s.Peek()
			detailOff = s.Pos
			detail = s.Raw()
		case "detail-type":
			detailType = s.String()
		case "source":
			ebSource = s.String()
		case "logEvents":
			s.Peek()
			logEvents = s.Pos
			s.Skip()
		case "messageType":
			messageType = s.String()
		case "logGroup":
			group = s.String()
		case "logStream":
			strm = s.String()
		case "awslogs":
			if s.Object() {
				for first := true; s.More(&first); {
					if s.Key() == "data" {
						awslogs = s.String()
					} else {
						s.Skip()
					}
				}
			}
		default:
			s.Skip()
		}
	}
	if err := s.Err(); err != nil {
		if seenRecords {
			b.badRecord(src, data[start:], start, err)
			return len(data), true
		}
		return 0, false // not a usable envelope: let the caller report it as a record
	}
	end := s.Pos
	switch {
	case seenRecords:
		return end, true
	case awslogs != "":
		out, err := unbase64([]byte(awslogs))
		if err != nil {
			b.fail(src, ReasonInvalidBase64, -1, start, data[start:end], err)
		} else {
			b.message(src, out, unwrap+1, context)
		}
		return end, true
	case logEvents >= 0 && messageType != "":
		if messageType != "DATA_MESSAGE" {
			return end, true // CONTROL_MESSAGE: a subscription health check, no records
		}
		b.logEvents(src, data, logEvents, group+"/"+strm)
		return end, true
	case detail != nil && detailType != "":
		inner := ebSourceOf(detailType, ebSource)
		if inner == SourceAuto {
			idx := b.n
			b.n++
			b.fail(src, ReasonUnsupported, idx, start, data[start:end], fmt.Errorf("EventBridge detail-type %q is not a supported source", detailType))
			return end, true
		}
		if inner == SourceInspector || inner == SourceMalwareScan {
			// These decoders read the envelope too: a scan result's detail
			// has no account, region or time of its own.
			b.record(inner, data[start:end], start, context)
			return end, true
		}
		b.record(inner, detail, detailOff, context)
		return end, true
	}
	return 0, false
}

// ebSourceOf maps an EventBridge detail-type and source to the source of its
// detail.
func ebSourceOf(detailType, source string) Source {
	switch {
	case detailType == "GuardDuty Malware Protection Object Scan Result":
		return SourceMalwareScan
	case detailType == "Inspector2 Finding" || source == "aws.inspector2":
		return SourceInspector
	case detailType == "Configuration Item Change Notification" || source == "aws.config":
		return SourceAWSConfig
	case detailType == "GuardDuty Finding" || source == "aws.guardduty":
		return SourceGuardDuty
	case bytes.HasSuffix([]byte(detailType), []byte("via CloudTrail")):
		return SourceCloudTrail
	}
	return SourceAuto
}

// logEvents decodes the logEvents array of a CloudWatch Logs subscription
// payload: each message is one record of the source (a CloudTrail event, a
// flow log line, ...).
func (b *batch) logEvents(src Source, data []byte, pos int, context string) {
	s := scan.New(data, "", b.d.limits.MaxDepth+2)
	s.Pos = pos
	if !s.Array() {
		return
	}
	for first := true; !b.full && s.More(&first); {
		start := s.Pos
		var id, msg string
		if s.Object() {
			for first := true; s.More(&first); {
				switch s.Key() {
				case "id":
					id = s.Scalar()
				case "message":
					msg = s.String()
				default:
					s.Skip()
				}
			}
		}
		if err := s.Err(); err != nil {
			b.badRecord(src, data[start:], start, err)
			return
		}
		m := []byte(msg)
		msrc := src
		if msrc == SourceAuto {
			msrc = Detect(m)
		}
		t := bytes.TrimSpace(m)
		switch {
		case len(t) == 0:
		case msrc == SourceVPCFlow && t[0] != '{':
			b.flowLine(b.d.flowFormat, m, start, context+"/"+id, -1)
		case msrc == SourceAuto:
			b.badRecord(src, m, start, scan.Errorf(ReasonUnknownFormat, "no source recognises the log event"))
		default:
			b.record(msrc, m, start, context)
		}
	}
}

// admit counts a record and checks it against the limits and for UTF-8,
// reporting it when it fails. It returns the record's index.
func (b *batch) admit(src Source, rec []byte, offset int) (int, bool) {
	idx := b.n
	b.n++
	lim := b.d.limits
	if b.n > lim.MaxRecords {
		b.full = true
		b.fail(src, ReasonTooManyRecords, idx, offset, b.rest(offset, rec), fmt.Errorf("more than %d records in one message: records from %d on are not decoded and kept here", lim.MaxRecords, idx))
		return idx, false
	}
	if len(rec) > lim.MaxRecordBytes {
		b.fail(src, ReasonTooLarge, idx, offset, rec, fmt.Errorf("record of %d bytes exceeds %d", len(rec), lim.MaxRecordBytes))
		return idx, false
	}
	if !utf8.Valid(rec) {
		b.fail(src, ReasonInvalidUTF8, idx, offset, rec, errors.New("record is not valid UTF-8"))
		return idx, false
	}
	return idx, true
}

// record normalizes one JSON record of src.
func (b *batch) record(src Source, rec []byte, offset int, context string) {
	if src == SourceAuto {
		src = Detect(rec)
	}
	idx, ok := b.admit(src, rec, offset)
	if !ok {
		return
	}
	if err := b.decodeRecord(src, rec, context, idx); err != nil {
		b.fail(src, scan.ReasonOf(err), idx, offset, rec, err)
	}
}

// normalize dispatches one record to its source's decoder, turning a panic
// into an error so that one bad record never costs the rest of a message.
// The event is written into *ev, in place.
//
// With share, the strings of a CloudTrail event are substrings of rec
// itself rather than of a copy (Decoder.ShareInput).
func normalize(ev *ocsf.Event, src Source, rec []byte, share bool, depth int, context string, idx int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = scan.Errorf(ReasonInternal, fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	switch src {
	case SourceCloudTrail:
		if share {
			return cloudtrail.NormalizeText(ev, rec, unsafe.String(unsafe.SliceData(rec), len(rec)), depth)
		}
		return cloudtrail.NormalizeTo(ev, rec, depth)
	case SourceGuardDuty:
		*ev, err = guardduty.Normalize(rec, depth)
	case SourceAgent:
		return agent.NormalizeTo(ev, rec, depth)
	case SourceFalco:
		*ev, err = agent.NormalizeFalco(rec, depth)
	case SourceVPCFlow:
		*ev, err = vpcflow.NormalizeJSON(rec, depth, context, idx)
	case SourceAWSConfig:
		return awsconfig.NormalizeTo(ev, rec, depth)
	case SourceInspector:
		return inspector.NormalizeTo(ev, rec, depth)
	case SourceMalwareScan:
		return malwarescan.NormalizeTo(ev, rec, depth)
	case SourceAuto:
		err = scan.Errorf(ReasonUnknownFormat, "no source recognises the record")
	default:
		err = scan.Errorf(ReasonUnknownFormat, "unknown source "+strconv.Quote(string(src)))
	}
	return err
}

// reserve makes room for n more events (at most MaxRecords in all) in one
// allocation: events are large, so growing by append costs. DecodeAppend
// adds message after message to one slice (a pipeline batch's), so the
// slice grows by at least half of its capacity: growing it to the exact
// size would copy every event already in the batch again for each
// multi-record message (BenchmarkDecodeAppendBatch).
func (b *batch) reserve(n int) {
	n = min(n, b.d.limits.MaxRecords-b.n)
	if b.win != nil || n <= 1 || cap(b.events)-len(b.events) >= n {
		return
	}
	b.events = append(make([]ocsf.Event, 0, len(b.events)+max(n, cap(b.events)/2)), b.events...)
}

// next returns a zero event appended to the batch, to be filled in place;
// drop removes it again when its record failed.
func (b *batch) next() *ocsf.Event {
	if len(b.events) < cap(b.events) {
		// A reused slot (DecodeAppend): clear what the last message left.
		b.events = b.events[:len(b.events)+1]
		ev := &b.events[len(b.events)-1]
		*ev = ocsf.Event{}
		return ev
	}
	b.events = append(b.events, ocsf.Event{})
	return &b.events[len(b.events)-1]
}

func (b *batch) drop() {
	b.events[len(b.events)-1] = ocsf.Event{}
	b.events = b.events[:len(b.events)-1]
}

// flowText decodes flow log lines. A first line that is a header sets the
// field order for the lines after it; without one, format applies.
func (b *batch) flowText(data []byte, context string, format *vpcflow.Format) {
	lim := b.d.limits
	b.reserve(min(bytes.Count(data, []byte{'\n'})+1, 4096))
	line := 0
	for off := 0; off < len(data) && !b.full; line++ {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off
		}
		l := bytes.TrimRight(data[off:end], "\r")
		start := off
		off = end + 1
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if vpcflow.IsHeader(l) {
			if len(l) > lim.MaxRecordBytes || !utf8.Valid(l) {
				b.badRecord(SourceVPCFlow, b.rest(start, l), start, scan.Errorf(ReasonInvalidValue, "unusable header line"))
				return // as below
			}
			f, err := vpcflow.ParseHeader(string(l))
			if err != nil {
				b.badRecord(SourceVPCFlow, b.rest(start, l), start, err)
				return // the lines after it cannot be read without their header: they are kept in the dead letter
			}
			format = f
			continue
		}
		b.flowLine(format, l, start, context, line)
	}
}

// flowLine decodes one flow log line; line is its line number in the file
// (the record index of its errors) or -1 when it has none.
func (b *batch) flowLine(format *vpcflow.Format, l []byte, offset int, context string, line int) {
	idx := b.n
	b.n++
	if line >= 0 {
		idx = line
	}
	lim := b.d.limits
	if b.n > lim.MaxRecords {
		b.full = true
		b.fail(SourceVPCFlow, ReasonTooManyRecords, idx, offset, b.rest(offset, l), fmt.Errorf("more than %d records in one message: lines from %d on are not decoded and kept here", lim.MaxRecords, idx))
		return
	}
	if len(l) > lim.MaxRecordBytes {
		b.fail(SourceVPCFlow, ReasonTooLarge, idx, offset, l, fmt.Errorf("line of %d bytes exceeds %d", len(l), lim.MaxRecordBytes))
		return
	}
	if !utf8.Valid(l) {
		b.fail(SourceVPCFlow, ReasonInvalidUTF8, idx, offset, l, errors.New("line is not valid UTF-8"))
		return
	}
	if b.win != nil {
		if t, ok := format.Time(l); ok {
			b.win.add(t)
			return
		}
		var ev ocsf.Event
		if err := normalizeFlow(&ev, format, l, context, max(line, 0)); err != nil {
			b.fail(SourceVPCFlow, scan.ReasonOf(err), idx, offset, l, err)
			return
		}
		b.win.add(ev.Time)
		return
	}
	if err := normalizeFlow(b.next(), format, l, context, max(line, 0)); err != nil {
		b.drop()
		b.fail(SourceVPCFlow, scan.ReasonOf(err), idx, offset, l, err)
	}
}

func normalizeFlow(ev *ocsf.Event, format *vpcflow.Format, l []byte, context string, line int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = scan.Errorf(ReasonInternal, fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	return format.NormalizeTo(ev, l, context, line)
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

var errTooLarge = errors.New("decompressed data exceeds the message limit")

// maxDeflateRatio bounds how much deflate can inflate: a 258-byte match
// costs at least two bits, so no stream grows more than about 1032 times.
const maxDeflateRatio = 1032

// gunzip inflates data, failing with errTooLarge beyond limit bytes. Memory
// stays near the inflated size, never a multiple of the limit: a gzip
// trailer announcing more than the limit is checked by inflating into
// nothing (a bomb usually tells its size), an honest trailer sizes the
// output exactly, and a lying one costs at most twice the inflated size.
func gunzip(data []byte, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	size := min(limit, len(data)*maxDeflateRatio)
	if len(data) >= 18 {
		// ISIZE, the last member's inflated size modulo 2^32, unless the
		// stream is cut short; no more than deflate can produce is
		// believed.
		announced := int(binary.LittleEndian.Uint32(data[len(data)-4:]))
		if announced > limit && announced <= len(data)*maxDeflateRatio {
			n, err := io.Copy(io.Discard, io.LimitReader(zr, int64(limit)+1))
			if err != nil {
				return nil, err
			}
			if n > int64(limit) {
				return nil, fmt.Errorf("%w: inflates to more than %d bytes", errTooLarge, limit)
			}
			if err := zr.Reset(bytes.NewReader(data)); err != nil {
				return nil, err
			}
		}
		if announced <= size {
			size = announced
		}
	}
	out := make([]byte, size+1) // +1: an exact size reaches EOF unfilled
	n, err := fill(zr, out)
	if err == io.EOF {
		return out[:n], nil
	}
	if err != nil {
		return nil, err
	}
	// The trailer lied (or the stream holds several members): go on in
	// chunks up to the limit and join them once.
	const chunk = 1 << 20
	chunks, total := [][]byte{out}, n
	for err != io.EOF {
		if total > limit {
			return nil, fmt.Errorf("%w: inflates to more than %d bytes", errTooLarge, limit)
		}
		c := make([]byte, min(chunk, limit+1-total))
		n, err = fill(zr, c)
		if err != nil && err != io.EOF {
			return nil, err
		}
		chunks, total = append(chunks, c[:n]), total+n
	}
	if total > limit { // the last read filled its chunk and ended the stream
		return nil, fmt.Errorf("%w: inflates to more than %d bytes", errTooLarge, limit)
	}
	return bytes.Join(chunks, nil), nil
}

// fill reads into buf until it is full or r fails; at the end of r it
// returns io.EOF with what it read. Unlike io.ReadFull it does not turn a
// short read into io.ErrUnexpectedEOF, which gzip itself returns for a
// stream cut short: the two must stay apart.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func unbase64(data []byte) ([]byte, error) {
	data = bytes.TrimSpace(data)
	out := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
	n, err := base64.StdEncoding.Decode(out, data)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}
