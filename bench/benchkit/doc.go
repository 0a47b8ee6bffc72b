// Package benchkit is what the benchmarks share: a namespaced corner of the
// local stack, listen generation and producing with a progress bar, topk
// subprocesses with their metrics, peak RSS and CPU time, Kafka's tools, and
// tables.
package benchkit
