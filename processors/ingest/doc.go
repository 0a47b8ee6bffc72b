// Package ingest is the single gate of the pipeline: a stateless Goka group
// that reads user.listen.raw as bytes (nil values included), parses and
// validates each record against the event contract (package listen), and
// emits valid listens to user.listen.valid keyed user_id|day — partitioned
// by Goka's hasher, so the aggregator's table is co-partitioned — and
// everything else to user.listen.dlq with the original bytes, a reason
// header and the source topic/partition/offset. No input can crash or stall
// it.
//
// Flow: user.listen.raw → ingest → user.listen.valid | user.listen.dlq.
package ingest
