package topk

import "cmp"

// Entity names an item kind of the charts.
type Entity string

// The three entities; their string values are stored in Cassandra and
// appear in the api's paths.
const (
	Tracks  Entity = "track"
	Artists Entity = "artist"
	Albums  Entity = "album"
)

// Entities lists them in a fixed order.
var Entities = []Entity{Tracks, Artists, Albums}

// Item is one track, artist or album with its plays over some period (a
// day, a month, a year, a range).
type Item struct {
	// Key is the item's 64-bit identity (listen.TrackKey, ArtistKey,
	// AlbumKey).
	Key uint64
	// Name is the display spelling; Artist the display name of the item's
	// artist (tracks and albums; empty for artists).
	Name, Artist string
	Plays        int64
	// First is when the first listen spelled Name was played (Unix
	// seconds; values written before spellings were kept count from their
	// period's start).
	First int64
	// Spellings lists every spelling of the item in the period, Name's
	// included, in name order, when there is more than one (their plays
	// sum to Plays); nil when Name is the only one (spelling.go).
	Spellings []Spelling
}

// SitewideItem is one item of a sitewide range read from Cassandra
// (store/cassandra's Reader.SitewideRange, the Store of
// charts/sitewide): its plays and display spelling summed over the
// range's days, and Listeners.
type SitewideItem struct {
	Item
	// Listeners counts a user once per day they played the item: the sum
	// over the range's days of each day's distinct listeners, an upper
	// bound of the item's distinct listeners over the range (exact for
	// one day).
	Listeners int64
}

// Compare is the charts' order: plays descending, then name, then
// artist, then key (so equal names of different items still have one
// order). It returns a negative number when a ranks before b.
func Compare(a, b *Item) int {
	if a.Plays != b.Plays {
		return cmp.Compare(b.Plays, a.Plays)
	}
	if c := cmp.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Artist, b.Artist); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

// EntityItem is an item together with its entity: a row of an item table
// (day_items, month_items, year_items) and what a rollup sums.
type EntityItem struct {
	Entity Entity
	Item
}
