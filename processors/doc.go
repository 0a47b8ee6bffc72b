// Package processors holds topk's stream processors, one package each, in
// the order listens flow through them:
//
//	user.listen.raw → ingest (Goka: validate, normalize, derive identity)
//	                → user.listen.valid (+ user.listen.dlq)
//	                → aggregator (Goka: per user/day counts and seen set,
//	                  table <group>-table; the recent days also to
//	                  user.day.recent, which the api's views read)
//	<group>-table changelog → flusher (sink: Cassandra day values and rollups)
//	user.listen.valid → raw writer (sink: Cassandra raw listens)
//
// ingest and aggregator are Goka groups; the raw writer and the flusher are
// sinks (package sink): sarama consumer groups that commit an offset only
// once what it covers is written. localstore is the aggregator table's
// local storage. Each sub-package owns its group name, table or topic and
// codec.
//
// This package holds what they share: the Goka settings (Settings: brokers,
// topic setup, local storage, Registerer), the Supervisor that restarts a
// processor in-process when Kafka goes away, dead letters (DeadLetter, the
// reason header), and the operator's DLQ commands (Replay, Quarantine).
package processors
