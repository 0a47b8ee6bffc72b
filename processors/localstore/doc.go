// Package localstore is the local storage of the aggregator's Goka table:
// LevelDB, like Goka's default, with writes gathered into one batch every
// few milliseconds instead of one journal write per Set and per changelog
// acknowledgement (SetOffset). Reads see unflushed writes.
//
// Why it is safe: a batch carries values and the offset of the latest
// acknowledged changelog record together. After a crash the local store can
// only be behind what it had acknowledged, and Goka recovers it by reading
// the changelog from the stored offset; values ahead of the changelog (a
// write not yet acknowledged) are the window the aggregator closes by
// rewriting the state when a duplicate arrives. The bench-ingest profile
// showed Goka's one-write-per-call LevelDB use as the aggregator's largest
// cost.
//
// Flow: aggregator (Goka processor) → localstore → LevelDB files under
// TOPK_STATE_DIR.
package localstore
