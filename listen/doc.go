// Package listen is the event contract every stage of topk shares: the
// names of the listen topics, the Listen type, its validation (Parse,
// Listen.Validate), its codec on user.listen.valid (Codec), normalization
// (Normalize), the derived event identity (Listen.Identity), the item keys
// (ArtistKey, TrackKey, AlbumKey) and the state key user_id|day (Listen.Key,
// SplitKey). It is a leaf: it imports no other package of topk, and no
// other file spells a topic name.
//
// Flow: crawler / any producer → user.listen.raw → ingest (Parse) →
// user.listen.valid (Codec, key Listen.Key) + user.listen.dlq (Reason) →
// raw writer, aggregator (Identity for dedup, item keys for counts).
//
// # The raw listen
//
// One JSON object per record, at most MaxRecordBytes (10 KiB), UTF-8:
//
//	{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radiohead","track_name":"Reckoner","album_name":"In Rainbows"}
//
// Its fields:
//
//   - user_id (required): 1–128 bytes, no control character, no '|', no
//     leading or trailing whitespace. Kept exactly as sent.
//   - played_at (required): an RFC 3339 string with an offset (converted to
//     UTC), or a JSON number of Unix seconds, or of Unix milliseconds when
//     greater than 10^11. Truncated to the second, then it must lie within
//     [2002-01-01T00:00:00Z, now + 10 min].
//   - artist_name, track_name (required), album_name (optional): strings,
//     kept trimmed with whitespace runs collapsed to one space
//     (CollapseSpace); artist and track must not be empty after that; no
//     control characters other than whitespace; at most 512 characters
//     (Unicode code points of the kept name; DefaultMaxNameChars, which a
//     deployment may change: Limits, TOPK_MAX_NAME_CHARS). An album of only
//     whitespace is no album.
//   - track_id, artist_id, album_id, source, event_id (optional): strings,
//     kept as sent as metadata. event_id is never trusted for dedup.
//   - duration_ms (optional): a non-negative integer.
//
// Unknown fields are ignored; null is the same as absent; a field of the
// contract may not appear twice. Anything else is rejected with an
// *InvalidError whose Reason goes to the DLQ header. The machine-readable
// twin is schemas/events/listen.schema.json; testdata/vectors.json holds
// the vectors every implementation of this contract must pass.
//
// # Identity and keys
//
// Event identity is derived, never taken from the client: SHA-256 (first 16
// bytes) over NormalizationVersion, user_id, played_at in Unix seconds and
// the normalized artist and track names. Items are 64-bit xxhash keys of
// normalized names: an artist by name, a track by artist + track, an album
// by artist + album. Normalize is NFC, Unicode case folding, whitespace
// collapsed; changing it (or the Unicode tables behind it, UnicodeVersion)
// requires bumping NormalizationVersion, which changes every identity and
// key. The day of a listen is the UTC date of played_at, and its state key
// is user_id|YYYY-MM-DD.
package listen
