// Package sitewide is the sitewide charts' Kafka side: the counts of
// everyone's listens per item and day, built from the aggregator's dedup
// decision so they agree with the per-user charts exactly.
//
// Flow: aggregator table (user|day → Day, with the items each change
// touched) → fan-out (processors/fanout: one Count per touched item, the
// user's absolute plays of it that day) → the counts topic, keyed
// entity|item|day|bucket (Key) → the sitewide group (this package: per
// key, each user's latest plays, so a replayed or redelivered Count sets
// what it set before) → its table (Value) → the sitewide flusher
// (Cassandra) and the recent topic (the api's sitewide view).
//
// The bucket is a hash of the user (BucketOf), so one item's day is split
// over Buckets keys, and Hasher partitions a key by entity|item|bucket
// (not the day): a popular item's load spreads over partitions, and all
// the days of one item's bucket sit in one partition.
package sitewide
