// Package flusher writes the aggregator's per-user/day state to Cassandra:
// a sink (package sink) on the aggregator's changelog topic
// (aggregator.Table, key user_id|YYYY-MM-DD, value aggregator.DayCodec)
// that, once per flush interval and partition:
//
//  1. coalesces the changes: the latest state of each user-day (the one with
//     the highest total), so a user-day is written once per interval however
//     often it changed;
//  2. writes each dirty user-day: every day_items row in one single-partition
//     batch, then its user_days row, all USING TIMESTAMP = the day's total;
//  3. recomputes the month rollup of every (user, month) touched from
//     user_days and day_items, and writes month_items USING TIMESTAMP = the
//     month's total;
//  4. recomputes the year rollup of every (user, year) touched from
//     month_items, and writes year_items USING TIMESTAMP = the year's total;
//
// and only then lets the sink mark the offsets. A failure anywhere retries
// the whole flush (everything it writes is idempotent), so the flusher
// catches up by itself after a Cassandra outage.
//
// Why the writes are exact whatever the order, the replays and the
// concurrency (DESIGN.md, "Flusher exactness"): a day's total only grows,
// and a state with a higher total contains every play of a lower one; as the
// write timestamp, the newest state wins in Cassandra however late an older
// one is written. A rollup is a sum of day values read after they were
// written, at LOCAL_QUORUM: a rollup computed while another flusher (another
// partition: the same user's other days) is writing reads some days before
// their newest state and has a lower total than the one computed after the
// last day write, which reads them all and so wins. The highest total is
// therefore always the complete sum, and a rollup written with total T
// carries all its items. No real-clock timestamp is ever written to these
// tables: a DELETE there must carry USING TIMESTAMP too, or it shadows every
// later write.
//
// Rows of a rollup too large for one batch are written in several batches in
// a fixed order, tracks last: a reader (the year recompute, which sums track
// plays as the total) that sees a complete set of tracks has seen the other
// rows too.
//
// Flow: aggregator → <group>-table → flusher → Cassandra day_items,
// user_days, month_items, year_items → api (older days, long ranges).
package flusher
