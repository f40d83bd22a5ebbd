// Package stage holds benchmarks of each stage of the engine — decode and
// normalize, rules, correlate, write — and of the whole Processor, on the
// mixed stream of bench/loadgen rather than on one sample record, so their
// per-event costs add up to what the end-to-end benchmark measures.
//
//	go test ./bench/stage -run '^$' -bench . -cpu 1 -benchmem
//	go test ./bench/stage -run '^$' -bench 'Processor/rules=300' -cpu 1 -cpuprofile cpu.out
//
// Every benchmark reports ns/event (b.N counts events, not batches).
package stage
