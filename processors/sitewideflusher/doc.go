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
//     wrote, from the item's rows of that month, for the months already
//     rolled up (cassandra.SitewideStore.RollupTouched): late listens and
//     imports of old history keep those rollups equal to their days;
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
// # Month rollups
//
// Beside the sink, a loop (at start, then every RollupEvery, an hour)
// rolls up whole the months that ended before today − RecentDays (the
// api's view window: the api reads only those months whole from
// Cassandra): sets the month's started flag, sums each item's rows, writes
// its rollup USING TIMESTAMP the sum of the rows' write timestamps (a
// rollup summed from older or fewer rows has a smaller one and loses),
// then sets done, from when readers use the rollups. Step 3 reads started
// after writing its rows, the roll-up sets it before reading any row: a
// row is either read by the roll-up or followed by its item's recompute,
// so a done month's rollups equal its rows once the flusher has caught
// up. Copies rolling up one month at once write the same rollups.
//
// Freshness: the api's sitewide view serves the recent days from Kafka,
// so Cassandra may lag by seconds; the default flush interval is 5 s,
// which coalesces a popular key's many changes into one write.
//
// Flow: sitewide group → <group>-table → sitewide flusher → Cassandra
// sitewide_days → charts' sitewide service (older days) → api.
package sitewideflusher
