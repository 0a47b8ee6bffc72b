// Package processors holds topk's Goka processor groups, one package each,
// in the order listens flow through them:
//
//	user.listen.raw → ingest (validate, normalize, derive identity)
//	                → user.listen.valid (+ user.listen.dlq)
//	                → aggregator (per user/day counts and seen set, table <group>-table)
//	                → flusher (changelog → Cassandra day values and rollups)
//	user.listen.valid → raw writer (→ Cassandra raw listens)
//
// Each sub-package owns its group name, table name and codec. This package
// holds what they share: the Goka settings (Settings), the Supervisor that
// restarts a processor in-process when Kafka goes away, dead letters, and
// the operator's DLQ commands (replay, quarantine).
package processors
