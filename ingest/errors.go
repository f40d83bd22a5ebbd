package ingest

import (
	"strconv"

	"github.com/musubi-xdr/musubi/ingest/internal/scan"
)

// Reasons a record fails to decode. Every DecodeError carries one of them;
// they are few and stable, so they can label a metric
// (musubi_ingest_decode_errors_total{source,reason}).
const (
	ReasonInvalidJSON    = scan.ReasonInvalidJSON    // not JSON, or truncated
	ReasonInvalidUTF8    = scan.ReasonInvalidUTF8    // bytes that are not UTF-8
	ReasonTooLarge       = scan.ReasonTooLarge       // record or message above its Limits
	ReasonTooDeep        = scan.ReasonTooDeep        // nesting deeper than Limits.MaxDepth
	ReasonUnknownFormat  = scan.ReasonUnknownFormat  // no decoder recognises the bytes
	ReasonMissingField   = scan.ReasonMissingField   // a field the source always has is absent
	ReasonWrongType      = scan.ReasonWrongType      // a required field has the wrong JSON type
	ReasonInvalidValue   = scan.ReasonInvalidValue   // a required field has an unusable value (a bad timestamp, port, ...)
	ReasonInvalidGzip    = scan.ReasonInvalidGzip    // gzip data that does not decompress
	ReasonInvalidBase64  = scan.ReasonInvalidBase64  // a CloudWatch Logs payload that is not base64
	ReasonUnsupported    = scan.ReasonUnsupported    // a known format with content Musubi does not map (an OCSF class it does not emit)
	ReasonInternal       = scan.ReasonInternal       // a decoder bug, recovered from a panic
	ReasonTooManyRecords = scan.ReasonTooManyRecords // more records in one message than Limits.MaxRecords
)

// DecodeError reports one record that could not be normalized. Record and
// Offset locate it in the message (after decompression; -1 when unknown);
// Raw holds its bytes, for a dead-letter queue. Errors from the decoders are
// wrapped, so errors.As finds them.
type DecodeError struct {
	Source Source
	Reason string
	// Record is the index of the record in the message (its line for flow
	// logs, its element in a Records or Findings array), counted from 0.
	Record int
	// Offset is the byte offset of the record in the decompressed message.
	Offset int
	Raw    []byte
	Err    error
}

func (e *DecodeError) Error() string {
	where := "message"
	if e.Record >= 0 {
		where = "record " + strconv.Itoa(e.Record)
	}
	msg := "ingest: " + string(e.Source) + " " + where + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DecodeError) Unwrap() error { return e.Err }
