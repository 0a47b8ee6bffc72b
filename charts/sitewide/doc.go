// Package sitewide answers the sitewide charts: the top tracks, artists
// and albums of everyone over a range, from the api's sitewide view
// (views/sitewide: the recent days, exact plays and listener sets) and
// Cassandra (older days, store/cassandra's sitewide reads), with the
// per-user charts' ranges, paging and answer shape (source, as_of).
//
// Files: answer.go (Query, Answer, Item), service.go (Config, the View
// and Store ports, Top, the view | Cassandra split), rank.go (the
// Cassandra part sorted once, the view part merged with it, paging
// without a sort, listeners), cache.go (the in-process TTL caches with
// shared fills: the Cassandra part per entity and days, CacheTTL; the
// ranking of a range with view days, ViewTTL).
//
// Flow: sitewide group (processors/sitewide) → view | Cassandra → here → api.
package sitewide
