// Package sitewideflusher writes the sitewide group's counts to
// Cassandra: a sink (package sink) on the group's table topic
// (sitewide.Table, key sitewide.Key, value sitewide.Value) that, once per
// flush interval and partition:
//
//  1. coalesces the changes: the value of each key with the highest
//     Version (every change of a key increments it), so a key is written
//     once per interval however often it changed. The sink keeps only
//     that value as it reads the records (Flusher.Rank), so a flush is
//     bounded by the bytes of the values it writes, not of the changes;
//  2. writes each key's row of sitewide_days (plays = Value.Plays,
//     listeners = Value.ListenerCount, name and artist = Value.Display)
//     USING TIMESTAMP = the value's Version, in single-partition batches
//     (cassandra.SitewideStore);
//  3. recomputes the month rollup (sitewide_month_items) of each item it
//     wrote, from the item's rows of that month, for the months (or
//     years) already rolled up, then its year rollup
//     (sitewide_year_items) from its month rollups for the years already
//     rolled up (cassandra.SitewideStore.RollupTouched): late listens and
//     imports of old history keep the rollups equal to their days;
//
// and only then lets the sink mark the offsets. A failure retries the
// whole flush (everything it writes is idempotent), so the flusher
// catches up by itself after a Cassandra outage.
//
// # Why the rows are exact
//
// A key's values on the table topic are a sequence of states, each with a
// Version one higher than the last change's: as the write timestamp, the
// newest value wins in Cassandra whatever the order of the writes, the
// replays (a rebalance, a restart from committed offsets, the group's
// table read again from the start) and the concurrency of instances. A
// row is one CQL statement: no partial state of a key can show. A key
// whose plays went to 0 (its users' listens deleted) is written with
// plays 0, never deleted: readers (cassandra.Reader.SitewideRange) leave
// items summing to 0 out. No real-clock timestamp is ever written there.
//
// Records that can never be written (a key that is not a sitewide key, a
// tombstone, a value that does not decode, a value with Version 0) are
// logged, counted (topk_sitewide_flusher_records_skipped_total{reason})
// and skipped, as the flusher does with the aggregator's changelog: the
// group writes its own table, so such a record is a bug to see in the
// logs, not input to dead-letter, and it must not stall its partition.
//
// # Month and year rollups
//
// Beside the sink, a loop (at start, then every RollupEvery, 5 minutes)
// rolls up whole the months that ended before the month of today −
// RecentDays (the api's view window: the api reads only those months
// whole from Cassandra) and the years whose December is one of them: a
// year's started flag first, then each month's (started, each item's
// rows summed and written USING TIMESTAMP the sum of the rows' write
// timestamps, done), then the year's sums of its months' rollups (USING
// TIMESTAMP the sum of theirs) and done. A rollup summed from older or
// fewer rows has a smaller timestamp and loses. Step 3 reads the started
// flags after its writes, the roll-up sets them before reading: a row is
// either read by the roll-up or followed by its item's recomputes, so
// done rollups equal their rows once the flusher has caught up. Copies
// rolling up at once write the same rollups.
//
// Freshness: the api's sitewide view serves the recent days from Kafka,
// so Cassandra may lag by seconds; the default flush interval is 5 s,
// which coalesces a popular key's many changes into one write.
//
// Flow: sitewide group → <group>-table → sitewide flusher → Cassandra
// sitewide_days → charts' sitewide service (older days) → api.
package sitewideflusher
