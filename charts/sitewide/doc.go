// Package sitewide answers the sitewide charts: the top tracks, artists
// and albums of everyone over a range, from the api's sitewide view
// (views/sitewide: the recent days, exact plays and listener sets) and
// Cassandra (older days, store/cassandra's sitewide reads), with the
// per-user charts' ranges, paging and answer shape (source, as_of).
//
// Flow: sitewide group (processors/sitewide) → view | Cassandra → here → api.
package sitewide
