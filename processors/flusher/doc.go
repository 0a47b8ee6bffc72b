// Package flusher writes the aggregator's per-user/day state to Cassandra:
// a sink (package sink) on the aggregator's changelog topic
// (aggregator.Table, key user_id|YYYY-MM-DD, value aggregator.DayCodec)
// that, once per flush interval and partition:
//
//  1. coalesces the changes: the latest state of each user-day (the one with
//     the highest version), so a user-day is written once per interval
//     however often it changed. The sink keeps only that state as it reads
//     the records (Flusher.Rank), so a flush is bounded by the bytes of the
//     states it writes (Config.MaxBatchBytes), not of the changes read;
//  2. writes each dirty user-day's day_items rows in one single-partition
//     batch, then the user_days rows (one single-partition batch per user),
//     each USING TIMESTAMP = the day's version (aggregator.Day.Version);
//  3. submits the days to the instance's rollup rounds and waits for the
//     round that serves it: for every user touched, one read of user_days
//     of the years touched (plays, and the version as WRITETIME(plays));
//     the month rollup of every month touched is recomputed from the day
//     values and written USING TIMESTAMP = the sum of the versions of the
//     month's days, then the year rollup from the month rollups of that
//     same snapshot, USING TIMESTAMP = the sum of the versions of the
//     year's days. A rollup sums each item's plays and its spellings
//     (topk.Item.Merge): its name and first are the majority spelling's
//     over the period (most plays, ties the earliest first listen, then
//     the smaller string), whatever the order of the periods summed; its
//     artist is the first period's having plays;
//
// and only then lets the sink mark the offsets. A failure anywhere retries
// the whole flush (everything it writes is idempotent), so the flusher
// catches up by itself after a Cassandra outage.
//
// # Versions, not totals, and deletions
//
// Every change to a user-day (a listen counted, a listen deleted)
// increments its Version; a deletion decrements its Total. So the total
// can go down (5 plays at version 5, 4 at 6 after a delete, 5 at 7 after
// another listen) and cannot tell which state is newer, nor identify one:
// everything here that orders or identifies states (the write timestamps,
// Rank and coalesce, the cache's keys, the snapshot's comparisons) uses
// the version. The total is what a state counts, and a consistency check
// (the tracks of a whole state sum to it).
//
// A state written before deletions existed (aggregator state encoding v1
// or v2) decodes with Version = Total, and every state that has seen no
// deletion keeps Version = Total: the values an older flusher wrote USING
// TIMESTAMP the total (a day's, or a rollup's sum of totals) carry exactly
// the timestamps this one would write. Cassandra's tables need no
// migration, and an old and a new flusher agree while they overlap.
//
// A deleted listen's track, artist and album keep their place in the
// state with plays 0 (the aggregator never removes an item). They are
// written as rows with plays 0, which overwrite the item's earlier value;
// a day whose listens were all deleted (Total 0, Version > 0) is written
// too, its user_days row with plays 0. Never a DELETE: a tombstone would
// need a timestamp of its own and would shadow later writes. In a rollup
// a row with plays 0 adds only the item (not its stale name, first or
// artist); an item with plays 0 in every day summed is a row with plays 0
// (the first day's row), so a rollup is exactly the sum of its days, and
// an item's earlier value there is overwritten too. Readers (the api's
// cassandra.Reader, the charts) leave rows with plays 0 out.
//
// # Why the values are exact
//
// Whatever the order, the replays and the concurrency (DESIGN.md, "Flusher
// exactness"): a day's version only grows, and one version is one state
// (the aggregator's changelog of a user-day is a sequence of states, each
// with one version more), a newer state holding every item of an older one
// (items keep their place at plays 0). As the write timestamp, the newest
// state wins in Cassandra however late an older one is written, row by
// row: no row of an older state shows. No real-clock timestamp is ever
// written to these tables: a DELETE there must carry USING TIMESTAMP too,
// or it shadows every later write.
//
// A rollup is labelled with the versions the snapshot gives its days, each
// at most the day's final version; its content is the sum of those states
// (or, for a day read from day_items while a newer state was being
// written, of a newer one: the label is then below the final one anyway).
// So its version is at most the sum of the final versions, and equal only
// when every day is at its final version, its content then exact: the
// complete rollup carries the strictly highest timestamp and wins once it
// is written, over every row an incomplete one wrote (the complete one has
// every item of every state of its days). It is written: every day's final
// state is written by a flush that is marked only after a round that took
// its snapshot of user_days after that write. Of the rounds serving the
// final states of a month's (or a year's) days, the one whose snapshot
// came last saw all their final versions, and nothing newer exists, so
// every day it sums (below) is at its final state: its rollup of that
// month is complete. So is its rollup of that year: each month it sums is
// a rollup of the days its own snapshot lists, at those versions (below),
// hence the complete one. A month is never taken for whatever month_items
// holds when read (behind, its complete rollup written later by another
// round; or a mix of rollups), only when all its rows were written with the
// version the snapshot gives the month, and its tracks sum to the plays
// the snapshot gives it (below). So one snapshot per user and round
// suffices, read before any of the round's writes: no second read after
// the month writes, to be sure they are visible to the year, is needed.
//
// A rollup whose version is not above the highest version this instance
// has written for that period (remembered in the cache, without rows) is
// not written again: if it is the complete rollup, the one written with
// its version is complete too (a rollup whose days are each at most final
// and whose version is the final one has every day at its final state);
// if it is not, nothing needs it.
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
//   - user_days as the source of versions: a round reads the user's
//     user_days rows of the years touched, once (day, plays and
//     WRITETIME(plays), the version; user_days is written after day_items,
//     so day_items holds at least that state) and sums for each day the
//     state the batch just wrote if its version is exactly the snapshot's
//     (not when the batch held a replayed older state), else the cache's
//     if its version is exactly that, else what day_items holds (that
//     state or a newer one).
//   - The cache (cache.go) is content addressed: (user, day, version) →
//     rows. Since one version is one state, an entry can never be stale;
//     it only stops being the current one, which the snapshot's version
//     tells (not its plays: 5 plays at version 5 and 5 at version 7 are
//     two states, TestTheCacheIsKeyedByVersion). It holds the states this
//     instance wrote, and states it read whose rows were all written with
//     the snapshot's version and whose tracks sum to the snapshot's plays
//     (some): one whole state (no row of an older state shows; the batch
//     holding the last tracks with plays landed, so did the others).
//     Rebalances do not matter: whoever wrote a newer state, the snapshot
//     shows a version the entry does not have.
//   - Months of the year rollup: a month the round just recomputed; else
//     a month rollup in the cache (user, month, version) whose version
//     equals the snapshot's sum of the month's versions: when the snapshot
//     shows the final versions, a rollup with that version is the complete
//     one; else the month summed from its days when the batch and the cache
//     hold each at the snapshot's version; else month_items as read, but
//     only when every row's plays were written (WRITETIME) with the
//     snapshot's sum and its tracks sum to the snapshot's plays of the
//     month (some): every write with the final version is the complete
//     rollup, so rows all written with it are that rollup, and the tracks
//     tell its last batch landed; whereas two incomplete rollups with equal
//     versions, written by rounds whose snapshots differed, merge cell by
//     cell into rows that are neither (TestYearDoesNotTakeAMixOfRollupsForTheMonth):
//     taken only when the snapshot shows that version, which is then below
//     the final one, and the year with it; else the month summed from its
//     days, day_items read where needed. Month rollups computed or
//     accepted this way are cached by the snapshot's version.
//   - Concurrency bounds the requests in flight per instance (all
//     partitions together), not per partition.
//
// Rows of a rollup or state too large for one batch are written in several
// batches in a fixed order: the rows with plays 0 first, then artists,
// albums and tracks with plays, so the last batch holds tracks with plays
// whenever the total is not 0. A reader that sees every track with plays
// (the recompute: rows all written with one version, and tracks summing to
// the plays the snapshot gives) has seen the other rows too, those with
// plays 0 included; a write of rows that all have plays 0 tells no such
// thing, so it is never taken as whole.
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
