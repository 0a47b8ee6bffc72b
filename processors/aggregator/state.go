package aggregator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

// Item is one track, artist or album of a user-day with its plays.
type Item struct {
	// Key is the item's 64-bit identity (listen.TrackKey, ArtistKey, AlbumKey).
	Key uint64
	// Name is the day's display spelling: the majority of Spellings
	// (spelling.go).
	Name string
	// Artist is the display name of the item's artist (tracks, albums):
	// the artist item's Name, filled by Day.Items.
	Artist string
	Plays  uint32
	// First is the second of the day of the first listen spelled Name.
	First uint32
	// Spellings lists every spelling of the day, Name's included, in name
	// order, when there is more than one (their plays sum to Plays); nil
	// when Name is the only one, as in topk.Item.
	Spellings []Spelling
	// artist indexes Day.Artists (tracks and albums): the artist item,
	// whatever its spelling.
	artist uint32
}

// seen is one counted listen: within a user-day, the event identity
// (user, played_at second, normalized artist, normalized track) reduces to
// (second of day, track).
type seen struct {
	sec   uint32
	track uint32 // index into Day.Tracks
	// album is the listen's album: 0 none, i+1 Day.Albums[i], or
	// albumUnknown for a listen counted before state version 3 whose
	// album the day's counts do not tell (see inferAlbums).
	album uint32
}

// albumUnknown is seen.album of a listen whose album is not known.
const albumUnknown = ^uint32(0)

// Day is the aggregator's state for one user and UTC day: exact play counts
// per track, artist and album, and the compact set of listens already
// counted, so a duplicate or a replay of any day counts once. It is kept
// forever (compacted table, never deleted).
type Day struct {
	Tracks  []Item
	Artists []Item
	Albums  []Item
	// Total is the number of counted plays.
	Total uint32
	// Version counts the day's changes: every counted listen and every
	// deletion adds one, so it only grows while Total may go down. The
	// flusher writes the day's Cassandra values USING TIMESTAMP Version.
	// A state written before deletions existed (version 1 and 2) had only
	// adds: its Version is its Total.
	Version uint32
	// Changed is what the change that made Version touched: the track,
	// artist and album of the listen Add counted or Delete took out, so
	// the items of state Version-1 and state Version differ only there.
	// Empty when not known: a state decoded from encoding version 3 or
	// older, or rewritten unchanged (the aggregator clears it then); the
	// fan-out then sends every item of the day.
	Changed Touched
	// seen is sorted by (sec, track).
	seen []seen
}

// Touched names one track, artist and album of a Day by index plus one
// (0: none).
type Touched struct{ Track, Artist, Album uint32 }

// Empty reports whether it names no item.
func (t Touched) Empty() bool { return t == Touched{} }

// Index is the index into Day.Items(e) of the item of entity e it names,
// and whether it names one.
func (t Touched) Index(e topk.Entity) (int, bool) {
	var i uint32
	switch e {
	case topk.Tracks:
		i = t.Track
	case topk.Artists:
		i = t.Artist
	case topk.Albums:
		i = t.Album
	}
	return int(i) - 1, i > 0
}

// Items returns the items of an entity, their Artist names filled in.
func (d *Day) Items(e topk.Entity) []Item {
	d.refreshArtists()
	switch e {
	case topk.Tracks:
		return d.Tracks
	case topk.Artists:
		return d.Artists
	case topk.Albums:
		return d.Albums
	}
	return nil
}

// Play is one listen reduced to what a day's state needs.
type Play struct {
	Sec                  uint32 // second of the UTC day
	TrackKey, ArtistKey  uint64
	AlbumKey             uint64 // 0: no album
	Track, Artist, Album string // display spellings as sent
}

// Has reports whether the play was counted already.
func (d *Day) Has(p Play) bool {
	_, ok := d.find(p)
	return ok
}

func (d *Day) find(p Play) (int, bool) {
	t := -1
	for i := range d.Tracks {
		if d.Tracks[i].Key == p.TrackKey {
			t = i
			break
		}
	}
	i := sort.Search(len(d.seen), func(i int) bool {
		s := d.seen[i]
		return s.sec > p.Sec || (s.sec == p.Sec && int64(s.track) >= int64(t))
	})
	if t < 0 {
		return i, false
	}
	return i, i < len(d.seen) && d.seen[i].sec == p.Sec && d.seen[i].track == uint32(t)
}

// Add counts a play not counted before and reports whether it did (false:
// a duplicate).
func (d *Day) Add(p Play) bool {
	if d.Has(p) {
		return false
	}
	a := upsert(&d.Artists, p.ArtistKey, p.Artist, p.Sec, 0)
	t := upsert(&d.Tracks, p.TrackKey, p.Track, p.Sec, uint32(a))
	var album uint32
	if p.AlbumKey != 0 {
		album = uint32(upsert(&d.Albums, p.AlbumKey, p.Album, p.Sec, uint32(a))) + 1
	}
	s := seen{p.Sec, uint32(t), album}
	i := sort.Search(len(d.seen), func(i int) bool {
		x := d.seen[i]
		return x.sec > s.sec || (x.sec == s.sec && x.track >= s.track)
	})
	d.seen = append(d.seen, seen{})
	copy(d.seen[i+1:], d.seen[i:])
	d.seen[i] = s
	d.Total++
	d.Version++
	d.Changed = Touched{Track: uint32(t) + 1, Artist: uint32(a) + 1, Album: album}
	return true
}

// albumOf is the seen.album of a listen of artist (an index of Artists)
// stored with album name: 0 for none, the album item with its key and
// a play left, else albumUnknown.
func (d *Day) albumOf(artist uint32, name string) uint32 {
	if listen.CollapseSpace(name) == "" {
		return 0
	}
	key := listen.AlbumKey(d.Artists[artist].Name, name)
	for i, a := range d.Albums {
		if a.Key == key && a.artist == artist && a.Plays > 0 {
			return uint32(i) + 1
		}
	}
	return albumUnknown
}

// refirst sets the First of an item with one spelling left to the second
// of its first listen still counted (the seen entries of), after a
// deletion that may have taken its first listen. An item with several
// spellings keeps its spellings' firsts: which listen had which spelling
// is not kept, so they stay a bound (no later than the first listen).
func (d *Day) refirst(it *Item, of func(seen) bool) {
	if it.Plays == 0 || it.Spellings != nil {
		return
	}
	for _, x := range d.seen { // sorted by second: the first match is the first listen
		if of(x) {
			it.First = x.sec
			return
		}
	}
}

// Deleted is what Day.Delete did.
type Deleted int

const (
	// NotFound: no counted listen of that second has that msid (never
	// counted, or deleted already); the day is unchanged.
	NotFound Deleted = iota
	// Removed: the listen is out of the seen set and of its track's,
	// artist's and album's plays.
	Removed
	// RemovedAlbumUnknown: as Removed, but the listen was counted before
	// state version 3 and the day's counts do not tell its album, so no
	// album lost a play (the caller says so).
	RemovedAlbumUnknown
)

// Delete takes the counted listen at second sec of the day whose track
// has recording msid msid (listen.MSID of any spelling) out of the seen
// set and out of the plays of its track, artist and album, and counts a
// change (Version). The play is taken from the item's majority spelling:
// a listen's own spelling is not kept, and spellings only decide display
// names. An item left with no plays keeps its place (seen entries and
// the flusher refer to it) with Plays 0; readers skip such items.
func (d *Day) Delete(sec uint32, msid string) Deleted { return d.DeleteWithAlbum(sec, msid, nil) }

// DeleteWithAlbum is Delete with the album name the listen was stored
// with (listen.Delete.Album; "" for none), for a listen counted before
// state version 3 whose album the counts do not tell: the play is taken
// from that album. nil: not known.
func (d *Day) DeleteWithAlbum(sec uint32, msid string, album *string) Deleted {
	i := sort.Search(len(d.seen), func(i int) bool { return d.seen[i].sec >= sec })
	for ; i < len(d.seen) && d.seen[i].sec == sec; i++ {
		s := d.seen[i]
		t := &d.Tracks[s.track]
		if listen.MSID(d.Artists[t.artist].Name, t.Name) != msid {
			continue
		}
		d.seen = slices.Delete(d.seen, i, i+1)
		t.remove()
		d.Artists[t.artist].remove()
		d.Total--
		d.Version++
		d.Changed = Touched{Track: s.track + 1, Artist: t.artist + 1}
		d.refirst(t, func(x seen) bool { return x.track == s.track })
		d.refirst(&d.Artists[t.artist], func(x seen) bool { return d.Tracks[x.track].artist == t.artist })
		if s.album == albumUnknown && album != nil {
			s.album = d.albumOf(t.artist, *album)
		}
		switch {
		case s.album == albumUnknown:
			return RemovedAlbumUnknown
		case s.album > 0:
			d.Changed.Album = s.album
			d.Albums[s.album-1].remove()
			d.refirst(&d.Albums[s.album-1], func(x seen) bool { return x.album == s.album })
		}
		return Removed
	}
	return NotFound
}

// upsert adds a play spelled name to the item with key, or appends a new
// item, and returns its index.
func upsert(items *[]Item, key uint64, name string, sec, artist uint32) int {
	for i := range *items {
		if it := &(*items)[i]; it.Key == key {
			it.add(name, sec)
			return i
		}
	}
	*items = append(*items, Item{Key: key, Name: name, Plays: 1, First: sec, artist: artist})
	return len(*items) - 1
}

// refreshArtists fills the Artist display names of tracks and albums.
func (d *Day) refreshArtists() {
	for _, items := range [][]Item{d.Tracks, d.Albums} {
		for i := range items {
			if int(items[i].artist) < len(d.Artists) {
				items[i].Artist = d.Artists[items[i].artist].Name
			}
		}
	}
}

// Seen is the number of distinct listens counted (equals Total).
func (d *Day) Seen() int { return len(d.seen) }

// Encoding (version 4), all integers unsigned varints:
//
//	version total day_version changed_track changed_artist changed_album
//	n_artists { key(8 bytes LE) plays first len name spellings }
//	n_tracks  { key plays first artist_index len name spellings }
//	n_albums  { key plays first artist_index len name spellings }
//	n_seen    { sec_delta track album }   sorted by (sec, track); sec_delta from the previous entry
//
// album is seen.album (0 none, i+1 the i-th album, 2^32-1 unknown);
// changed_* are Day.Changed (i+1 the i-th item, 0 none). Version 3 is
// the same without changed_*: it decodes with Changed empty.
// Version 2 (written before deletions) has no day_version (it is the
// total: every change was an add) and no album per seen entry (inferred
// where the counts tell, see inferAlbums), and items always have plays.
//
// spellings is a count, 0 when name is the only spelling (most items),
// else every spelling, name's included, in name order: { len name plays
// first }. Version 1 (kept in the Kafka tables written before spellings)
// is the same without spellings: each item's one spelling is its name,
// with all its plays, first listened at its second (then the latest
// listen's, as the spelling was).
const (
	encodingVersion   = 4
	encodingVersionV3 = 3
	encodingVersionV2 = 2
	encodingVersionV1 = 1
)

// Encode renders the day compactly.
func (d *Day) Encode() []byte {
	size := 32 + 14*len(d.seen)
	for _, items := range [][]Item{d.Artists, d.Tracks, d.Albums} {
		for _, it := range items {
			size += 25 + len(it.Name)
			for _, sp := range it.Spellings {
				size += 16 + len(sp.Name)
			}
		}
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, encodingVersion)
	b = binary.AppendUvarint(b, uint64(d.Total))
	b = binary.AppendUvarint(b, uint64(d.Version))
	b = binary.AppendUvarint(b, uint64(d.Changed.Track))
	b = binary.AppendUvarint(b, uint64(d.Changed.Artist))
	b = binary.AppendUvarint(b, uint64(d.Changed.Album))
	put := func(items []Item, withArtist bool) {
		b = binary.AppendUvarint(b, uint64(len(items)))
		for _, it := range items {
			b = binary.LittleEndian.AppendUint64(b, it.Key)
			b = binary.AppendUvarint(b, uint64(it.Plays))
			b = binary.AppendUvarint(b, uint64(it.First))
			if withArtist {
				b = binary.AppendUvarint(b, uint64(it.artist))
			}
			b = topk.AppendString(b, it.Name)
			b = appendSpellings(b, it.Spellings)
		}
	}
	put(d.Artists, false)
	put(d.Tracks, true)
	put(d.Albums, true)
	b = binary.AppendUvarint(b, uint64(len(d.seen)))
	var prev uint32
	for _, s := range d.seen {
		b = binary.AppendUvarint(b, uint64(s.sec-prev))
		b = binary.AppendUvarint(b, uint64(s.track))
		b = binary.AppendUvarint(b, uint64(s.album))
		prev = s.sec
	}
	return b
}

// appendSpellings appends an item's spellings (0 for none).
func appendSpellings(b []byte, sp []Spelling) []byte {
	b = binary.AppendUvarint(b, uint64(len(sp)))
	for _, s := range sp {
		b = topk.AppendString(b, s.Name)
		b = binary.AppendUvarint(b, uint64(s.Plays))
		b = binary.AppendUvarint(b, uint64(s.First))
	}
	return b
}

var errCorrupt = errors.New("aggregator: corrupt day state")

// DecodeDay parses Encode's output, and version 1 to 3 states.
func DecodeDay(b []byte) (*Day, error) {
	// One string holds every name: the names are its substrings, so a
	// decode allocates once for them instead of once per item.
	r := topk.NewDecoder(b)
	v := r.Uvarint()
	if v < encodingVersionV1 || v > encodingVersion {
		return nil, fmt.Errorf("aggregator: day state version %d, want %d to %d", v, encodingVersionV1, encodingVersion)
	}
	d := &Day{Total: uint32(r.Uvarint())}
	d.Version = d.Total
	if v >= encodingVersionV3 {
		d.Version = uint32(r.Uvarint())
	}
	if v >= encodingVersion {
		d.Changed = Touched{Track: uint32(r.Uvarint()), Artist: uint32(r.Uvarint()), Album: uint32(r.Uvarint())}
	}
	get := func(withArtist bool) []Item {
		n := r.Count(10)
		if n == 0 {
			return nil
		}
		items := make([]Item, n)
		for i := range items {
			it := &items[i]
			it.Key = r.Uint64()
			it.Plays = uint32(r.Uvarint())
			it.First = uint32(r.Uvarint())
			if withArtist {
				it.artist = uint32(r.Uvarint())
			}
			it.Name = r.String()
			if v != encodingVersionV1 {
				readSpellings(r, it)
			}
		}
		return items
	}
	d.Artists = get(false)
	d.Tracks = get(true)
	d.Albums = get(true)
	n := r.Count(2)
	if n > 0 {
		d.seen = make([]seen, n)
	}
	var sec uint32
	for i := range d.seen {
		sec += uint32(r.Uvarint())
		d.seen[i] = seen{sec: sec, track: uint32(r.Uvarint())}
		if v >= encodingVersionV3 {
			d.seen[i].album = uint32(r.Uvarint())
		}
	}
	if !r.Done() {
		return nil, errCorrupt
	}
	if d.Version < d.Total {
		return nil, errCorrupt
	}
	if c := d.Changed; int64(c.Track) > int64(len(d.Tracks)) || int64(c.Artist) > int64(len(d.Artists)) || int64(c.Album) > int64(len(d.Albums)) {
		return nil, errCorrupt
	}
	for _, items := range [][]Item{d.Tracks, d.Albums} {
		for _, it := range items {
			if int(it.artist) >= len(d.Artists) {
				return nil, errCorrupt
			}
		}
	}
	for _, s := range d.seen {
		if int(s.track) >= len(d.Tracks) || (s.album != albumUnknown && int(s.album) > len(d.Albums)) {
			return nil, errCorrupt
		}
	}
	if v < encodingVersionV3 {
		d.inferAlbums()
	}
	return d, nil
}

// inferAlbums sets the album of every seen entry of a state written
// before version 3 where the day's counts tell it: an artist with no
// album item had no listen with an album; an artist with exactly one
// album item whose plays equal the plays of the artist's tracks had every
// listen on it. Any other entry's album is albumUnknown.
func (d *Day) inferAlbums() {
	trackPlays := make([]uint32, len(d.Artists))
	for _, t := range d.Tracks {
		trackPlays[t.artist] += t.Plays
	}
	albums := make([]int, len(d.Artists)) // how many albums of each artist
	only := make([]uint32, len(d.Artists))
	for i, a := range d.Albums {
		albums[a.artist]++
		only[a.artist] = uint32(i) + 1
	}
	for i := range d.seen {
		a := d.Tracks[d.seen[i].track].artist
		switch {
		case albums[a] == 0:
			d.seen[i].album = 0
		case albums[a] == 1 && d.Albums[only[a]-1].Plays == trackPlays[a]:
			d.seen[i].album = only[a]
		default:
			d.seen[i].album = albumUnknown
		}
	}
}

// readSpellings reads the item's spellings (version 2) and fails r unless they
// are what Add keeps, so a decoded day encodes and sums as the one
// written.
func readSpellings(r *topk.Decoder, it *Item) {
	n := r.Count(3)
	if n == 0 {
		return
	}
	sp := make([]Spelling, n)
	for i := range sp {
		sp[i] = Spelling{Name: r.String(), Plays: uint32(r.Uvarint()), First: uint32(r.Uvarint())}
	}
	if r.Err() != nil {
		return
	}
	if !consistent(it, sp) {
		r.Fail()
		return
	}
	it.Spellings = sp
}

// consistent reports whether sp are the spellings of it: at least two,
// strictly in name order, each played, their plays summing to Plays, and
// the majority being Name first played at First.
func consistent(it *Item, sp []Spelling) bool {
	if len(sp) < 2 {
		return false
	}
	var sum uint64
	for i, s := range sp {
		if s.Plays == 0 || (i > 0 && sp[i-1].Name >= s.Name) {
			return false
		}
		sum += uint64(s.Plays)
	}
	m := majority(sp)
	return sum == uint64(it.Plays) && m.Name == it.Name && m.First == it.First
}

// DayCodec is the Goka codec of the aggregator table.
type DayCodec struct{}

// Encode takes a *Day.
func (DayCodec) Encode(v any) ([]byte, error) {
	d, ok := v.(*Day)
	if !ok {
		return nil, fmt.Errorf("aggregator: cannot encode %T", v)
	}
	return d.Encode(), nil
}

// Decode returns a *Day.
func (DayCodec) Decode(b []byte) (any, error) { return DecodeDay(b) }
