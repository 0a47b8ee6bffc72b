package topk

import "time"

// Listen is one listen as stored (a raw_listens row): what a user played
// and when, with the provider's ids. It is what the charts page lists;
// the event on the wire is listen.Listen.
type Listen struct {
	PlayedAt time.Time
	// Identity is the listen's identity (listen.Listen.Identity): with
	// PlayedAt it orders a day's listens and positions a page.
	Identity   []byte
	Artist     string
	Track      string
	Album      string
	TrackID    string
	ArtistID   string
	AlbumID    string
	DurationMS int
	Source     string
}

// ListenPos is a position in a day's listens, newest first: the played_at
// and identity of the last listen returned.
type ListenPos struct {
	PlayedAt time.Time
	Identity []byte
}
