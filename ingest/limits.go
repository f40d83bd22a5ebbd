package ingest

import (
	"errors"
	"strconv"
)

// Limits bound the work one message can cause. A record above a limit fails
// with ReasonTooLarge, ReasonTooDeep or ReasonTooManyRecords; the rest of the
// message is still decoded.
type Limits struct {
	// MaxRecordBytes bounds one record: a CloudTrail event, a finding, an
	// agent event, a flow log line.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxDepth bounds the JSON nesting of one record; at most MaxDepthLimit.
	MaxDepth int `yaml:"max_depth"`
	// MaxMessageBytes bounds a whole message or file after decompression
	// (a gzip bomb fails here without being inflated in memory); at least
	// MaxRecordBytes.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxRecords bounds the records of one message, and so the memory of
	// the events Decode returns (an event takes about 4 KiB). Decoding stops
	// at the limit; the record that crossed it is reported with
	// ReasonTooManyRecords and the rest of the message is not decoded.
	MaxRecords int `yaml:"max_records"`
}

// MaxDepthLimit caps Limits.MaxDepth: the scanners recurse once per level,
// and a deeper recursion could exhaust the goroutine stack, which no recover
// can catch. encoding/json uses the same bound.
const MaxDepthLimit = 10000

// DefaultLimits returns limits that hold every real record comfortably and
// bound what one message costs: 1 MiB per record (CloudTrail caps its events
// at 256 KB), 64 levels of nesting, 64 MiB per decompressed message and
// 20,000 records per message (a CloudWatch Logs subscription payload holds
// at most 10,000 log events, a CloudTrail delivery file a few thousand
// records; a whole flow log file may need more). An event takes about
// 4 KiB, so the records of one message stay under about 100 MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxRecordBytes:  1 << 20,
		MaxDepth:        64,
		MaxMessageBytes: 64 << 20,
		MaxRecords:      20_000,
	}
}

// Validate reports every limit that is not positive, a depth above
// MaxDepthLimit and a message limit below the record limit, each error
// starting with the limit's key in the ingest section of the
// configuration.
func (l Limits) Validate() error {
	var errs []error
	check := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, errors.New(name+": must be positive, got "+strconv.Itoa(v)))
		}
	}
	check("max_record_bytes", l.MaxRecordBytes)
	check("max_depth", l.MaxDepth)
	check("max_message_bytes", l.MaxMessageBytes)
	check("max_records", l.MaxRecords)
	if l.MaxDepth > MaxDepthLimit {
		errs = append(errs, errors.New("max_depth: must be at most "+strconv.Itoa(MaxDepthLimit)+", got "+strconv.Itoa(l.MaxDepth)))
	}
	if l.MaxMessageBytes > 0 && l.MaxMessageBytes < l.MaxRecordBytes {
		errs = append(errs, errors.New("max_message_bytes: "+strconv.Itoa(l.MaxMessageBytes)+" is below max_record_bytes ("+strconv.Itoa(l.MaxRecordBytes)+")"))
	}
	return errors.Join(errs...)
}

// withDefaults replaces zero or negative limits by their defaults and caps
// MaxDepth.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = d.MaxRecordBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, MaxDepthLimit)
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = d.MaxMessageBytes
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = d.MaxRecords
	}
	return l
}
