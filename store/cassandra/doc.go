// Package cassandra connects to Cassandra, applies the CQL schema in
// schemas/cassandra, and owns every CQL statement topk's services send:
// no other package spells one (tests, and the bare reference writers of
// bench/sinks, aside), and every statement is parameterized (only the
// keyspace and replication factor are templated, into the schema). It
// holds one store per owner of the data:
//
//   - Reader (query.go): the api's reads of day values, rollups, raw
//     listens and the user search, and (sitewide.go) of the sitewide
//     counts of a range (SitewideRange);
//   - DayStore (days.go): the flusher's writes of day_items, user_days,
//     month_items and year_items USING TIMESTAMP a version (a day state's
//     Version, a rollup's sum of its days' versions; deletions make a
//     day's total go down, so the total cannot order its writes), and its
//     reads of them with WRITETIME, its requests bounded in flight. Values
//     written before deletions carry their total, which was their
//     version: they need no migration. Rows with plays 0 (listens
//     deleted) are values like any other; the Reader leaves them out;
//   - RawStore (raw.go): the raw writer's raw_listens batches and
//     users_by_prefix rows;
//   - SitewideStore (sitewide.go): the sitewide flusher's sitewide_days
//     rows, each USING TIMESTAMP its value's Version, in single-partition
//     batches ((entity, month, shard) partitions, SitewideShards per
//     month); and (sitewide_rollup.go) the month and year rollups of
//     sitewide_month_items and sitewide_year_items, each USING TIMESTAMP
//     the sum of the write timestamps it was summed from: whole months
//     and years rolled up once they leave the api's view window
//     (RollUp), then the items the flusher writes recomputed after their
//     rows (RollupTouched).
//
// Consumers declare the small interface they need where they use it (the
// flusher's and the raw writer's store) and are given these types.
//
// Flow: raw writer / flusher / sitewide flusher → Cassandra → api.
package cassandra
