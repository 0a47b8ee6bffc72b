// Package aggregator keeps exact per-user/day play counts: a Goka group on
// user.listen.valid whose table (<group>-table, compacted, never deleted
// from) holds one Day per key user_id|YYYY-MM-DD — counts per track, artist
// and album and the compact set of listens already counted. A duplicate or
// a replay of any day, however old, counts once; plays over the daily cap
// go to the DLQ.
//
// The table's changelog feeds the flusher (Cassandra day values and
// rollups) and the api's view of recent days; both decode it with DayCodec.
//
// Flow: user.listen.valid → aggregator → <group>-table → flusher, views.
package aggregator
