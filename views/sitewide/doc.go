// Package sitewide holds the api's sitewide view: a Goka view of the
// sitewide group's recent topic (listen.Topics.SitewideRecent: key
// entity|item|day|bucket, value the group's sitewide.Value, partitioned by
// sitewide.Hasher), kept in memory for the recent R days (TOPK_VIEW_DAYS,
// the per-user view's window), bounded in bytes.
//
// Every record is decoded once, as it arrives, into an index per (entity,
// day) → item: the item-day's plays, distinct listeners and spellings
// summed over its keys (the Buckets buckets and their children), and each
// key's listeners as ids of an interned user table. A query never decodes:
// Range sums the item-days of a range (plays, the display spelling), and
// Listeners counts the distinct users of a few items over a range exactly
// (the union of their keys' listener sets: a user is in one key of an
// item-day, but may listen on several days). Readers check Recovered per
// request: a view that is (re)connecting serves partial data, and the api
// then answers from Cassandra. Metrics (per instance, on
// Config.Registerer): topk_sitewide_view_lag, _recovered, _keys, _users,
// _bytes, _skipped_total{reason}, _updates_total, _restarts_total.
//
// Flow: sitewide group (processors/sitewide) → its recent topic (Kafka)
// → this view → charts/sitewide → api.
package sitewide
