// Package flusher writes the aggregator's per-user/day state to Cassandra:
// a sink (package sink) on the aggregator's changelog topic
// (aggregator.Table, key user_id|YYYY-MM-DD, value aggregator.DayCodec)
// that, once per flush interval and partition:
//
//  1. coalesces the changes: the latest state of each user-day (the one with
//     the highest total), so a user-day is written once per interval however
//     often it changed. The sink keeps only that state as it reads the
//     records (Flusher.Rank), so a flush is bounded by the bytes of the
//     states it writes (Config.MaxBatchBytes), not of the changes read;
//  2. writes each dirty user-day's day_items rows in one single-partition
//     batch, then the user_days rows (one single-partition batch per user),
//     each USING TIMESTAMP = the day's total;
//  3. submits the days to the instance's rollup rounds and waits for the
//     round that serves it: for every (user, year) touched, the month
//     rollup of every month touched is recomputed from the day values and
//     written USING TIMESTAMP = the month's total, then the year rollup from
//     the month rollups, USING TIMESTAMP = the year's total;
//
// and only then lets the sink mark the offsets. A failure anywhere retries
// the whole flush (everything it writes is idempotent), so the flusher
// catches up by itself after a Cassandra outage.
//
// # Why the values are exact
//
// Whatever the order, the replays and the concurrency (DESIGN.md, "Flusher
// exactness"): a day's total only grows, and a state with a higher total
// contains every play of a lower one (so one total is one state); as the
// write timestamp, the newest state wins in Cassandra however late an older
// one is written. No real-clock timestamp is ever written to these tables:
// a DELETE there must carry USING TIMESTAMP too, or it shadows every later
// write.
//
// A rollup is a sum of period values each at most its final value (item by
// item: a day's state, a month's complete rollup), so its total is at most
// the complete sum, and equal only when every period is at its final value:
// the complete rollup carries the strictly highest timestamp and wins once
// it is written. It is written: every day's final state is written by a
// flush that is marked only after a round that took its snapshot of
// user_days after that write. Of the rounds serving the final states of a
// month's days, the one whose snapshot came last saw all their final
// totals, and nothing newer exists, so every day it sums (below) is at its
// final state: its rollup of that month is complete. Each round reads
// user_days again for the year recompute after its month writes; of the
// rounds serving the final states of a year's days, the one whose second
// snapshot came last therefore read after every complete month rollup of
// the year was written, saw the final totals, and sums complete months
// (below): its year rollup is complete.
//
// # Where a recompute takes its inputs (rollup.go)
//
// Reading every day of a month back for every flush that touches it made a
// catch-up mostly reads (35 CQL reads per user-day flushed), so:
//
//   - Rounds: the partitions an instance claims share one roller. A round
//     takes every submission made while the previous round ran, so the
//     flushes of 16 partitions that touch the same (user, year) share one
//     recompute. A round starts its reads after the submissions it serves,
//     which follow their day writes.
//   - user_days as the source of totals: a round reads the user's
//     user_days rows of the year (day and plays; user_days is written after
//     day_items, so day_items holds at least that state) and sums for each
//     day the state the batch just wrote if its total is exactly those
//     plays (not when the batch held a replayed older state), else the
//     cache's if its total is exactly those plays, else what day_items
//     holds (that state or a newer one).
//   - The cache (cache.go) is content addressed: (user, day, total) → rows.
//     Since one total is one state, an entry can never be stale; it only
//     stops being the current one, which the snapshot's plays tell. It
//     holds the states this instance wrote, and states it read when their
//     track plays equal the snapshot's plays and they have fewer rows than
//     a batch (so no state written in several batches was seen half-way).
//     Rebalances do not matter: whoever wrote a newer state, the snapshot
//     shows a total the entry does not have.
//   - Month rollups this instance computed are cached by (user, month,
//     total) too, and the year recompute takes one when its total equals
//     the sum of the month's plays in its own user_days snapshot, else it
//     reads month_items. When the snapshot shows the final totals, a
//     rollup of this instance with that total is the complete one (each of
//     its days is at most its final state, and the sums are equal).
//     Month rollups read from month_items are never cached: two incomplete
//     rollups with equal totals merge cell by cell in Cassandra, and such a
//     mix must not be remembered as "the rollup with that total".
//   - Concurrency bounds the requests in flight per instance (all
//     partitions together), not per partition.
//
// Rows of a rollup too large for one batch are written in several batches in
// a fixed order, tracks last: a reader (the year recompute, which sums track
// plays as the total) that sees a complete set of tracks has seen the other
// rows too.
//
// Flow: aggregator → <group>-table → flusher → Cassandra day_items,
// user_days, month_items, year_items → api (older days, long ranges).
package flusher
