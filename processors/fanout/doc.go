// Package fanout turns the aggregator's per-user counts into the sitewide
// group's input: a Goka group that reads the aggregator's table topic
// (user_id|YYYY-MM-DD → aggregator.Day) as a stream and emits, for the
// items a state's change touched, one sitewide.Count each — the user's
// absolute plays of the item that day, with the state's Version — to the
// counts topic (listen.Topics.Counts) under sitewide.Key{entity, item,
// day, sitewide.BucketOf(user)}, partitioned by sitewide.Hasher. So the
// sitewide figures come from the aggregator's own dedup decision.
//
// Its table (<group>-table, user|day → the last state version it sent,
// copartitioned with the aggregator's table) decides how much to send:
// the next version with a known Day.Changed sends the changed items;
// anything else (the first state of a key, a gap left by compaction or a
// crash, a replayed or rewritten state not newer than the last) sends
// every item of the day. The sitewide group keeps each user's latest
// Count by version, so a Count sent again changes nothing there, while a
// Count never sent would lose plays: the fan-out errs on the side of
// sending.
//
// Flow: user.listen.valid → aggregator → <aggregator>-table → fanout →
// sitewide.counts → sitewide group (processors/sitewide).
package fanout
