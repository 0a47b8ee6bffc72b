// Package rawwriter stores every valid listen in Cassandra's raw_listens:
// a sink (package sink) on user.listen.valid whose Writer groups a batch's
// listens by Cassandra partition (user_id, day), writes each group as
// unlogged single-partition batches, several groups at once, and lets the
// sink mark the offsets only when all of them are written.
//
// Rows are keyed by (user_id, day, played_at, identity), with the identity
// derived by package listen, so writing a listen twice — a redelivery, a
// retried batch, a re-crawl, a re-import — overwrites one row: idempotent.
//
// A delete record (listen.Delete, from /1/delete-listen) deletes the row of
// its listen: the rows of that second whose listen.MSID of the artist and
// track names is the delete's are read and deleted by primary key (a
// delete of a listen that is not there is a no-op, counted as not_found).
// Every row and tombstone is written USING TIMESTAMP its record's time
// (the Kafka timestamp, ms, × 10⁶ + offset mod 10⁶, strictly increasing
// within a batch; writeTimes), so the later record wins whatever order the CQL runs
// in — a listen and its later delete in one batch end deleted, a delete
// and the listen sent again end present — and a redelivered or stale
// batch writes the same times again: the end state does not change.
// Within a batch a delete also takes back the listens before it, which are
// then not written.
//
// A record that does not decode, or whose key is not its listen's (or
// delete's) user_id|day, is counted, logged and skipped: ingest is the gate, and the
// aggregator dead-letters such records without counting them. (Listens over
// the aggregator's daily cap are written here: raw_listens holds every valid
// listen, the counts at most the cap.)
//
// For the api's user search it also writes one users_by_prefix row per
// distinct user of a batch (a single-row insert, idempotent), once per user
// and process, so users who only arrived through Kafka are found.
//
// The writes go through a small store interface (rawwriter.go),
// implemented by cassandra.RawStore, which holds the CQL; the unit tests
// use an in-memory one.
//
// Flow: user.listen.valid → raw writer → Cassandra raw_listens → api
// (/listens).
package rawwriter
