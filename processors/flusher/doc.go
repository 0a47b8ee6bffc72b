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
//     round that serves it: for every user touched, one read of user_days
//     of the years touched; the month rollup of every month touched is
//     recomputed from the day values and written USING TIMESTAMP = the
//     month's total, then the year rollup from the month rollups of that
//     same snapshot, USING TIMESTAMP = the year's total. A rollup sums
//     each item's plays and its spellings (topk.Item.Merge): its name and
//     first are the majority spelling's over the period (most plays, ties
//     the earliest first listen, then the smaller string), whatever the
//     order of the periods summed; its artist is the first period's;
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
// month's (or a year's) days, the one whose snapshot came last saw all
// their final totals, and nothing newer exists, so every day it sums
// (below) is at its final state: its rollup of that month is complete. So
// is its rollup of that year: each month it sums is a rollup of the days
// its own snapshot lists, at those totals or newer ones (below), hence the
// complete one. A month is never taken for whatever month_items holds when
// read (behind, its complete rollup written later by another round; or a
// mix of rollups), only when all its rows were written with the total the
// snapshot gives the month (below). So one snapshot per user and round
// suffices, read before any of the round's writes: no second read after
// the month writes, to be sure they are visible to the year, is needed.
//
// A rollup whose total is not above the highest total this instance has
// written for that period (remembered in the cache, without rows) is not
// written again: if it is the complete rollup, the one written with its
// total is complete too (a rollup whose days are each at most final and
// whose total is the final one has every day at its final state); if it is
// not, nothing needs it.
//
// # Where a recompute takes its inputs (roller.go, rollup.go)
//
// Reading every day of a month back for every flush that touches it made a
// catch-up mostly reads (35 CQL reads per user-day flushed), so:
//
//   - Rounds: the partitions an instance claims share one roller. A round
//     serves every submission made before it starts, so the flushes of 16
//     partitions that touch the same user share one recompute, and a
//     round waits for the partitions expected to submit soon (writing
//     their days, filling a batch, about to flush on their timer), so that
//     it serves a whole wave of flushes: at most Config.RollupLinger
//     (default FlushInterval) or, if longer, as long as its flushes took
//     to write their days (see roller). A round starts its reads after the
//     submissions it serves, which follow their day writes. It runs under
//     the context of the flush whose submission started it (the sink's
//     session, which all the instance's partitions share).
//   - user_days as the source of totals: a round reads the user's
//     user_days rows of the years touched, once (day and plays; user_days
//     is written after day_items, so day_items holds at least that state)
//     and sums for each day the state the batch just wrote if its total is
//     exactly those plays (not when the batch held a replayed older
//     state), else the cache's if its total is exactly those plays, else
//     what day_items holds (that state or a newer one).
//   - The cache (cache.go) is content addressed: (user, day, total) → rows.
//     Since one total is one state, an entry can never be stale; it only
//     stops being the current one, which the snapshot's plays tell. It
//     holds the states this instance wrote, and states it read whose rows
//     were all written with one timestamp t and whose tracks sum to t: one
//     whole state (a newer state has every item of an older one, so no
//     row of an older state shows; the batch holding the tracks, the last,
//     landed, so did the others). Rebalances do not matter: whoever wrote
//     a newer state, the snapshot shows a total the entry does not have.
//   - Months of the year rollup: a month the round just recomputed; else
//     a month rollup in the cache (user, month, total) whose total equals
//     the snapshot's sum of the month's plays: when the snapshot shows the
//     final totals, a rollup with that total whose days are each at most
//     final is the complete one; else the month summed from its days when
//     the batch and the cache hold each at the snapshot's plays; else
//     month_items as read, but only when every row's plays were written
//     (WRITETIME) with the snapshot's sum: every write with the final total
//     is the complete rollup, so rows all written with it are that rollup;
//     whereas two incomplete rollups with equal totals, written by rounds
//     whose snapshots differed, merge cell by cell into rows whose tracks
//     may sum to the complete total while artists and albums fall short
//     (TestYearDoesNotTakeAMixOfRollupsForTheMonth); else the month summed
//     from its days, day_items read where needed. Month rollups computed
//     or accepted this way are cached by their total.
//   - Concurrency bounds the requests in flight per instance (all
//     partitions together), not per partition.
//
// Rows of a rollup or state too large for one batch are written in several
// batches in a fixed order, tracks last: a reader that sees a complete set
// of tracks (the recompute: rows all written with one total, and tracks
// summing to it) has seen the other rows too.
//
// # Files
//
// flusher.go is the Config, the metrics, New and Run, write.go the sink's
// Writer (coalesce, the day writes), roller.go the rounds, rollup.go the
// recompute, cache.go the cache (rows encoded with the item codec of
// package topk, after an entity code each). store.go is the port: the
// store interface of the four requests the flusher makes,
// implemented by cassandra.DayStore (which holds the CQL: USING TIMESTAMP,
// WRITETIME, the batch splitting in row order, the requests in flight
// bounded by Config.Concurrency) and, in the unit tests, by a model with
// Cassandra's last-write-wins rules (model_test.go). Rows are
// topk.EntityItem; their keys are stored as bigints (the bits of the
// uint64), converted by the store only.
//
// Flow: aggregator → <group>-table → flusher → Cassandra day_items,
// user_days, month_items, year_items → api (older days, long ranges).
package flusher
