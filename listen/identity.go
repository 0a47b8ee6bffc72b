package listen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/cespare/xxhash/v2"
)

// Identity is the derived event identity: hash (first 16 bytes of SHA-256)
// over NormalizationVersion, user_id, played_at Unix seconds,
// Normalize(artist), Normalize(track), with unambiguous separators/length
// prefixes. Never the client's event_id.
//
// The hashed bytes, for other implementations (u32/i64: big-endian; str(x):
// u32 byte length of x's UTF-8, then x):
//
//	u32(NormalizationVersion) str(user_id) i64(played_at Unix seconds)
//	str(Normalize(artist_name)) str(Normalize(track_name))
//
// The user_id is hashed as sent (it is an exact identifier, not normalized).
// testdata/vectors.json holds expected values.
type Identity [16]byte

// Identity is the event identity of l; two listens with the same identity
// are the same play, counted once.
func (l Listen) Identity() Identity {
	return identity(l.UserID, l.PlayedAt.Unix(), Normalize(l.ArtistName), Normalize(l.TrackName))
}

// Derived is everything derived from the names of one listen.
type Derived struct {
	Identity  Identity
	ArtistKey uint64
	TrackKey  uint64
	AlbumKey  uint64 // 0: no album
}

// Derive returns l's identity and item keys, normalizing each name once:
// the same values as l.Identity(), l.ArtistKey(), l.TrackKey() and
// l.AlbumKey(), at about a third of their cost together.
func (l Listen) Derive() Derived {
	artist, track, album := Normalize(l.ArtistName), Normalize(l.TrackName), Normalize(l.AlbumName)
	d := Derived{
		Identity:  identity(l.UserID, l.PlayedAt.Unix(), artist, track),
		ArtistKey: itemKey(kindArtist, artist, "", false),
		TrackKey:  itemKey(kindTrack, artist, track, true),
	}
	if album != "" {
		d.AlbumKey = itemKey(kindAlbum, artist, album, true)
	}
	return d
}

// identity hashes already normalized names.
func identity(user string, sec int64, artist, track string) Identity {
	var arr [256]byte
	b := binary.BigEndian.AppendUint32(arr[:0], NormalizationVersion)
	b = appendStr(b, user)
	b = binary.BigEndian.AppendUint64(b, uint64(sec))
	b = appendStr(b, artist)
	b = appendStr(b, track)
	sum := sha256.Sum256(b)
	var id Identity
	copy(id[:], sum[:])
	return id
}

// String is the lowercase hex of id (32 characters).
func (id Identity) String() string {
	return hex.EncodeToString(id[:])
}

// Kinds of item keys: the first hashed byte, so that an artist, a track and
// an album with the same parts never share a key.
const (
	kindArtist byte = 1
	kindTrack  byte = 2
	kindAlbum  byte = 3
)

// ArtistKey is the 64-bit item key of an artist: xxhash64 (XXH64, seed 0) of
//
//	u8(1) u32(NormalizationVersion) str(Normalize(artist))
//
// (encoding as for Identity). Item keys are never 0.
func ArtistKey(artist string) uint64 {
	return itemKey(kindArtist, Normalize(artist), "", false)
}

// TrackKey is the item key of a track, by artist + track: xxhash64 of
//
//	u8(2) u32(NormalizationVersion) str(Normalize(artist)) str(Normalize(track))
func TrackKey(artist, track string) uint64 {
	return itemKey(kindTrack, Normalize(artist), Normalize(track), true)
}

// AlbumKey is the item key of an album, by artist + album: xxhash64 of
//
//	u8(3) u32(NormalizationVersion) str(Normalize(artist)) str(Normalize(album))
//
// An album that normalizes to "" (none, or only whitespace) has key 0: no
// album.
func AlbumKey(artist, album string) uint64 {
	album = Normalize(album)
	if album == "" {
		return 0
	}
	return itemKey(kindAlbum, Normalize(artist), album, true)
}

// ArtistKey is ArtistKey(l.ArtistName).
func (l Listen) ArtistKey() uint64 { return ArtistKey(l.ArtistName) }

// TrackKey is TrackKey(l.ArtistName, l.TrackName).
func (l Listen) TrackKey() uint64 { return TrackKey(l.ArtistName, l.TrackName) }

// AlbumKey is AlbumKey(l.ArtistName, l.AlbumName); 0 when l has no album.
func (l Listen) AlbumKey() uint64 { return AlbumKey(l.ArtistName, l.AlbumName) }

// itemKey hashes already normalized parts.
func itemKey(kind byte, first, second string, two bool) uint64 {
	var arr [256]byte
	b := append(arr[:0], kind)
	b = binary.BigEndian.AppendUint32(b, NormalizationVersion)
	b = appendStr(b, first)
	if two {
		b = appendStr(b, second)
	}
	if k := xxhash.Sum64(b); k != 0 {
		return k
	}
	return 1 // 0 means "no album"; a real hash of 0 (chance 2^-64) moves to 1
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// ItemKeys returns l's artist, track and album keys (album 0: none),
// normalizing each name once: what the aggregator needs per listen.
func (l Listen) ItemKeys() (artist, track, album uint64) {
	a, t, al := Normalize(l.ArtistName), Normalize(l.TrackName), Normalize(l.AlbumName)
	artist, track = itemKey(kindArtist, a, "", false), itemKey(kindTrack, a, t, true)
	if al != "" {
		album = itemKey(kindAlbum, a, al, true)
	}
	return artist, track, album
}
