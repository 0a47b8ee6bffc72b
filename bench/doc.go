// Package bench holds topk's benchmarks, one program each (`make bench-…`).
// Every benchmark prints its figures beside a reference measured in the same
// run on the same machine — Kafka's own perf tools, a minimal Goka processor,
// a bare sarama producer — because absolute numbers on a shared 2-core
// machine mean little; ratios travel.
package bench
