// Command rollup is `make bench-rollup`: what the sitewide flusher's
// rollup recompute costs once old history is rolled up.
//
// It writes -base sitewide_days rows over 2024–2025 (3 entities ×
// -items items, random days and buckets, each row a version of its own)
// with the sitewide flusher's store, rolls the 72 months and 6 years up
// (RollUp), then times flushes of new rows into those months, as a second
// import of old history makes them: each flush's WriteSitewide (the
// reference: the rows' own write, same store, same run) and then its
// RollupTouched (the recompute of the touched items' month and year
// rollups). It prints both and their ratio per flush size, then checks
// that every whole year read from the rollups (Reader.SitewideRange)
// equals an independent sum of the newest rows, item by item. It runs in
// a keyspace of its own, dropped at the end.
package main
