// Package pipeline runs Musubi's stages: it consumes raw records from Kafka,
// decodes and normalizes them (ingest), evaluates detection rules (rules),
// correlates alerts into incidents (correlate), writes everything to
// ClickHouse (storage) and only then commits the Kafka offsets.
//
// Concurrency lives here and only here. Processor is synchronous and owns
// the correlator; Consumer is the loop that feeds it, one batch at a time:
//
//	fetch (no auto-commit) → Process → Store.Write (retried until durable) → commit
//
// The last two steps of a batch — the write and the commit — run beside
// the fetch and Process of the next batch, so the engine's CPU works while
// ClickHouse stores; one batch at most is on its way, and the next is
// handed on only after it landed, so commits keep their order and a write
// that fails stops the consumer before anything after it is committed.
//
// A record that can never be processed becomes a dead letter in the same
// batch, so it is written and committed with the rest and the partition
// keeps flowing. A failing write is retried with back-off and nothing is
// committed meanwhile; while it waits the loop processes at most one more
// batch and then fetches nothing, so memory stays bounded by two batches
// plus the Kafka client's prefetch queue.
package pipeline
