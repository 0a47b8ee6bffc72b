package listen

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/lovoo/goka"
)

// Codec is the codec of user.listen.valid (JSON of Listen): Encode(value
// any) ([]byte, error) accepts Listen or *Listen; Decode(data []byte) (any,
// error) returns Listen. The topic also carries deletions (delete.go):
// Encode takes a Delete, and Decode returns one for a delete record, so a
// caller checks the type (or IsDelete first). Decoding does NOT re-run the time-window check (old
// valid records must still decode later) but must reject garbage with an
// error.
//
// Encode checks the contract except the receiver's clock (played_at from
// 2002-01-01 to 9999-12-31T23:59:59Z) and the name length limit (a
// configurable gate: ingest applies it, see Limits) and writes
// l.Canonical() as compact JSON, fields in struct order, optional fields
// omitted when empty, played_at as "2006-01-02T15:04:05Z", no HTML
// escaping. Decode is Parse with the same fixed window instead of now +
// MaxFutureSkew and without the size and name length limits (records valid
// under an earlier, larger limit must still decode); its errors are
// *InvalidError. Decode(Encode(l)) == l.Canonical().
// The format is also what encoding/json reads and writes for Listen.
type Codec struct{}

var _ goka.Codec = Codec{}

// Encode writes a Listen or *Listen as JSON.
func (Codec) Encode(value any) ([]byte, error) {
	var l Listen
	switch v := value.(type) {
	case Listen:
		l = v
	case *Listen:
		if v == nil {
			return nil, fmt.Errorf("listen: codec: encode nil *Listen")
		}
		l = *v
	case Delete:
		return v.Encode(), nil
	default:
		return nil, fmt.Errorf("listen: codec: encode %T: want Listen or *Listen", value)
	}
	if err := l.check(MinPlayedAtUnix, maxStoredUnix, 0); err != nil {
		return nil, fmt.Errorf("listen: codec: encode: %w", err)
	}
	return l.Canonical().appendJSON(make([]byte, 0, 128+len(l.UserID)+len(l.ArtistName)+len(l.TrackName)+len(l.AlbumName))), nil
}

// Decode reads a Listen written by Encode (or any record Parse accepts,
// apart from the clock and the size).
func (Codec) Decode(data []byte) (any, error) {
	if len(data) == 0 {
		return nil, invalid(ReasonNilValue, "", "empty value")
	}
	if IsDelete(data) {
		d, err := DecodeDelete(data)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	l, err := parse(data, MinPlayedAtUnix, maxStoredUnix, 0)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// appendJSON appends l as JSON; l must be checked and canonical.
func (l Listen) appendJSON(b []byte) []byte {
	b = append(b, `{"user_id":`...)
	b = appendJSONString(b, l.UserID)
	b = append(b, `,"played_at":"`...)
	b = l.PlayedAt.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	b = append(b, `","artist_name":`...)
	b = appendJSONString(b, l.ArtistName)
	b = append(b, `,"track_name":`...)
	b = appendJSONString(b, l.TrackName)
	optional := func(name, v string) {
		if v != "" {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":`...)
			b = appendJSONString(b, v)
		}
	}
	optional(FieldAlbumName, l.AlbumName)
	optional(FieldTrackID, l.TrackID)
	optional(FieldArtistID, l.ArtistID)
	optional(FieldAlbumID, l.AlbumID)
	if l.DurationMS != 0 {
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendInt(b, l.DurationMS, 10)
	}
	optional(FieldSource, l.Source)
	optional(FieldEventID, l.EventID)
	return append(b, '}')
}

// appendJSONString appends s (valid UTF-8) as a JSON string: '"', '\\' and
// control characters escaped, U+2028 and U+2029 escaped as encoding/json
// does, everything else as is.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
