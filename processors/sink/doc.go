// Package sink runs "Kafka → store" writers: a sarama consumer group on one
// topic that hands each claimed partition's records, in batches, to a
// Writer, retries a failed batch with backoff until it is written, and only
// then marks its offsets. Offsets are therefore committed for exactly what
// was written, in order, and a restart or a rebalance resumes right after
// the last written batch.
//
// It is not a Goka processor on purpose: Goka marks an offset as soon as its
// callback returns, and a store writer needs to decide when.
//
// Memory: a claimed partition holds its batch (Config.MaxBatchBytes,
// TOPK_SINK_BATCH_BYTES) and its read-ahead (Config.ReadAhead records);
// records are copied out of their fetch responses so that nothing else is
// pinned. A Coalescer (the flusher) keeps only the newest record of each
// key while it collects, so the bound counts the states it will write, not
// the changes it read.
//
// Flow: user.listen.valid → sink (rawwriter) → Cassandra raw listens;
// <aggregator>-table → sink (flusher) → Cassandra day values and rollups.
//
// Ordering: a partition's batches are written one after the other, and a
// batch is marked only after it and every batch before it were written. The
// "out-of-order offset marks" limit of DESIGN.md (a later message's success
// committing past an earlier one still retrying) cannot happen here: a
// failing batch blocks its partition until it succeeds. The price is that
// one bad batch stalls its partition; topk_sink_retrying and
// topk_sink_lag show it.
package sink
