// Package ingest decodes the raw telemetry Musubi reads from Kafka and from
// files — CloudTrail, VPC Flow Logs, GuardDuty findings, OCSF events from
// host agents, Falco alerts, AWS Config configuration items (the asset
// inventory), Inspector findings and GuardDuty Malware Protection for S3
// scan results — into OCSF events (package ocsf), with the
// entities that tie them together listed as observables.
//
// A Decoder turns one message into events:
//
//	d := ingest.NewDecoder(ingest.DefaultLimits())
//	events, errs := d.Decode(ingest.SourceAuto, msg)
//
// One message may hold many records: a CloudTrail delivery file
// ({"Records":[…]}), a JSON array, JSON lines, a GetFindings output
// ({"Findings":[…]}), an AWS Config snapshot or history file
// ({"configurationItems":[…]}), a flow log file with its header line, an EventBridge
// event (its detail-type names the source), a CloudWatch Logs subscription
// payload (gzip, base64 or plain; each log event is a record), each of them
// gzip-compressed or not. Each source package (cloudtrail, vpcflow,
// guardduty, agent, awsconfig, inspector, malwarescan) normalizes one record and is a pure function of its
// bytes; this package unwraps containers, enforces Limits and classifies
// failures.
//
// Flow log lines that arrive without their file's header line (one line per
// Kafka message, CloudWatch Logs subscriptions) are read with the v2 default
// format, or with the custom format set by Decoder.SetFlowFormat.
//
// # Bad input
//
// Decode never panics and never stops at a bad record (only
// Limits.MaxRecords ends a message early). Every record that
// fails is returned as a *DecodeError with its raw bytes, its position
// (record index and byte offset) and a short machine reason (ReasonInvalidJSON,
// ReasonTooLarge, ReasonTooDeep, ReasonInvalidUTF8, ReasonMissingField, ...)
// for a metric label and a dead-letter queue; the other records of the message
// are still decoded. A panic inside a decoder is recovered per record and
// reported as ReasonInternal.
//
//   - Size: a record above Limits.MaxRecordBytes fails with ReasonTooLarge;
//     a message whose decompressed size exceeds Limits.MaxMessageBytes fails
//     as a whole (this bounds gzip bombs).
//   - Depth: JSON nested deeper than Limits.MaxDepth fails with ReasonTooDeep.
//   - Encoding: records must be valid UTF-8; invalid bytes fail the record
//     with ReasonInvalidUTF8 rather than being replaced, so that what rules
//     see and what storage keeps is exactly what the source wrote.
//   - Truncation: a truncated record fails with ReasonInvalidJSON. In JSON
//     lines, decoding resumes at the next line; in a Records or Findings
//     array the elements before the damage are kept.
//   - Types: a mapped field of an unexpected JSON type is ignored (its value
//     stays in the raw record) unless the field is required, in which case
//     the record fails with ReasonWrongType or ReasonMissingField. Numbers
//     out of range are treated the same way. Unknown fields are kept in
//     unmapped (CloudTrail, flow logs) or in the raw record.
//
// # Duplicate keys
//
// When a JSON object repeats a key, the last value wins, as in encoding/json:
// the normalized event (what rules see and what storage keeps in its
// columns) holds the last value. The raw record and the raw request and
// response parameters are kept byte for byte, duplicates included.
//
// # Memory
//
// Decoding allocates little: CloudTrail and flow records are read by a
// validating scanner into typed fields that are substrings of one string
// copy of the record, and each event is filled in place in the returned
// slice. Events keep the record's bytes as sub-slices of the message (Raw,
// and for CloudTrail the raw request and response parameters), so a message
// must not be modified while its events are in use. Strings never alias the
// message, unless the decoder shares its input (Decoder.ShareInput): then a
// CloudTrail record that is at least half of its message is not copied,
// and its event's strings keep the message alive.
//
// # Identity of events
//
// metadata.uid is deterministic, so replaying a message yields the same ids:
// the CloudTrail eventID; the GuardDuty finding id and updatedAt; the agent's
// metadata.uid (or a hash of the record); Falco's uuid (or a hash); for flow
// logs, which have no id, a hash of the line with its file context (format,
// file or log stream, line number).
//
// # Detection
//
// Detect recognises a source by the keys it always writes; pass an explicit
// Source when the topic or file already says what it holds.
package ingest
