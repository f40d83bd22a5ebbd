// Package replay is Musubi's offline pipeline: the serve code path
// (ingest → rules → correlate) run on files instead of Kafka. It is the one
// implementation behind `musubi replay`, `musubi rules test -scenarios`,
// `musubi eval`, the demo's scenario publisher and the tests and benchmarks
// that need the whole pipeline without a broker.
//
// Two modes share the same stages:
//
//   - Batch (NewProcessor, ReadFiles) holds every record in memory and
//     processes them in one call with unlimited lateness, flushing every
//     timer at the end. Scenario checks and the eval scorecard use it,
//     because they shuffle whole inputs to test order invariance.
//   - Stream (Stream.Run) replays exports of any size in bounded memory.
//     A first pass reads every file in parallel for its event time window
//     and record count (ingest.Decoder.Window reads the time members
//     without building events, at a fraction of a decode). The second
//     pass decodes each file once and evaluates the rules on it (one worker
//     per core) when the merge reaches it. The merge takes
//     the runs in event-time order: before the file with the next-earliest
//     start is added, every buffered event earlier than that start is
//     handed on, so the correlator sees one time-ordered stream and late
//     records only where a file's own order leaves them (counted as serve
//     counts them, against correlate.allowed_lateness). Suppression and
//     correlation run in order on one goroutine in chunks, as serve's
//     batches. Memory is the correlator's state, the decoded files waiting
//     for the merge (two per worker) and the files whose time windows
//     overlap the merge point — for delivery
//     files of a few minutes each, a handful — not the input.
//   - A large file (more than Stream.SegmentBytes after gzip, or more
//     records than one message may hold) is never read whole: both passes
//     stream it in segments of whole records (segment.go), each decoded
//     as a message with the usual limits and dead letters, and the merge
//     takes its segments' events in event-time order using their windows
//     from the first pass (large.go). The segments read ahead over all
//     large files share one budget (Stream.SegmentBudget), so overlapping
//     large files do not each read ahead.
//
// Inputs are plain files, gzip files, directories as `aws s3 sync` writes
// them (walked recursively) and tar (extracted to a temporary directory)
// or zip archives (read in place).
package replay
