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
//
// The group (Group, Graph, New; group.go) keeps per key each user's
// latest Count by version, so its Value is exact: plays = Σ listeners'
// plays, listeners = users with plays (a user whose listens were all
// deleted stays with 0 plays, so a replayed older Count cannot bring them
// back). A key holds at most Config.KeyBytes (8 KiB): once a new user
// does not fit, the key is Full for good and the Counts of users it does
// not hold go on, unchanged, to a child key (Spill; spill.go), whose own
// children follow when it fills in turn. Each user is in exactly one key
// of its own spill path, so the sum over an item-day's keys is exact.
// Every change raises the key's Value.Version (the flusher's write
// timestamp). The group changes an encoded value in place (edit.go)
// instead of decoding it. Values of the last RecentDays days also go to
// the SitewideRecent topic, as the aggregator's go to its recent topic.
package sitewide
