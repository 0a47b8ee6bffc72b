// Package aggregator keeps exact per-user/day play counts: a Goka group on
// user.listen.valid whose table (<group>-table, compacted, never deleted
// from) holds one Day per key user_id|YYYY-MM-DD — counts per track, artist
// and album and the compact set of listens already counted. A duplicate or
// a replay of any day, however old, counts once; plays over the daily cap
// go to the DLQ. Each item keeps every spelling of the day with its plays
// and first second; its Name is the majority (topk.Spelling.Better), and
// Item.Topk hands the spellings on to the flusher and the views.
//
// The table's changelog feeds the flusher (Cassandra day values and
// rollups) and the sitewide fan-out (processors/fanout), which sends the
// items a state's change touched (Day.Changed) to the sitewide group. The values of the recent days (Config.RecentDays, the api's
// TOPK_VIEW_DAYS) are also emitted to user.day.recent (compact,delete),
// which the api's views read, so a view's recovery reads the days it
// serves, not all history; both decode DayCodec.
//
// Flow: user.listen.valid → aggregator → <group>-table → flusher, fanout;
// → user.day.recent → views.
package aggregator
