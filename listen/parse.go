// Parse and the contract's fields: their indexes and names, and parse,
// which checks them one by one in the order of the Reason constants.

package listen

import (
	"strconv"
	"time"
)

// Parse decodes one raw record (a value of user.listen.raw) and validates it
// against the contract at time now. A nil or empty value, a record over
// MaxRecordBytes, bytes that are not one JSON object, an unknown type for a
// known field, or any rule broken → *InvalidError. Unknown extra fields are
// ignored. It must never panic on any input (it is fuzzed).
//
// The JSON text must be valid UTF-8 (no byte order mark) and exactly one
// object (surrounding whitespace allowed). Field names match exactly
// (case-sensitive, after unescaping); a field of the contract may appear
// only once. null counts as absent. played_at is an RFC 3339 string (T or
// t, Z or z or ±hh:mm, any fraction) or a JSON number: Unix seconds, or Unix
// milliseconds when it is greater than MillisThreshold; fractions are
// truncated; a numeric string is not accepted. duration_ms is a JSON number
// with an integer value (215000 or 215000.0). Checks run in the order the
// Reason constants describe and the first failure is returned. The
// returned Listen is canonical (see Listen.Canonical) and shares no memory
// with raw.
//
// Names are limited to DefaultMaxNameChars; Limits.Parse applies a
// configured limit.
func Parse(raw []byte, now time.Time) (Listen, error) {
	return Limits{}.Parse(raw, now)
}

// parseRecord is Parse with names limited to maxNameChars characters.
func parseRecord(raw []byte, now time.Time, maxNameChars int) (Listen, error) {
	switch {
	case raw == nil:
		return Listen{}, invalid(ReasonNilValue, "", "nil value (tombstone)")
	case len(raw) == 0:
		return Listen{}, invalid(ReasonNilValue, "", "empty value")
	case len(raw) > MaxRecordBytes:
		return Listen{}, invalid(ReasonTooLarge, "", strconv.Itoa(len(raw))+" bytes, over "+strconv.Itoa(MaxRecordBytes))
	}
	l, err := parse(raw, MinPlayedAtUnix, now.Add(MaxFutureSkew).Unix(), maxNameChars)
	if err != nil {
		return Listen{}, err
	}
	return l, nil
}

// Field indexes, in the order of the contract table (the order of checks).
const (
	fUserID = iota
	fPlayedAt
	fArtistName
	fTrackName
	fAlbumName
	fTrackID
	fArtistID
	fAlbumID
	fDurationMS
	fSource
	fEventID
	numFields
)

var fieldNames = [numFields]string{
	FieldUserID, FieldPlayedAt, FieldArtistName, FieldTrackName, FieldAlbumName,
	FieldTrackID, FieldArtistID, FieldAlbumID, FieldDurationMS, FieldSource, FieldEventID,
}

func fieldIndex(name []byte) int {
	switch string(name) {
	case FieldUserID:
		return fUserID
	case FieldPlayedAt:
		return fPlayedAt
	case FieldArtistName:
		return fArtistName
	case FieldTrackName:
		return fTrackName
	case FieldAlbumName:
		return fAlbumName
	case FieldTrackID:
		return fTrackID
	case FieldArtistID:
		return fArtistID
	case FieldAlbumID:
		return fAlbumID
	case FieldDurationMS:
		return fDurationMS
	case FieldSource:
		return fSource
	case FieldEventID:
		return fEventID
	}
	return -1
}

// parse decodes and validates raw with played_at bounded by [lo, hi] Unix
// seconds and names limited to maxNameChars characters (0: no limit). It
// does not limit the size.
func parse(raw []byte, lo, hi int64, maxNameChars int) (Listen, *InvalidError) {
	var spans [numFields][]byte
	if err := splitObject(raw, &spans); err != nil {
		return Listen{}, err
	}
	var l Listen
	var err *InvalidError

	// user_id
	if l.UserID, err = requiredString(spans[fUserID], fUserID); err != nil {
		return Listen{}, err
	}
	if err = checkUserID(l.UserID); err != nil {
		return Listen{}, err
	}

	// played_at
	sec, err := playedAt(spans[fPlayedAt])
	if err != nil {
		return Listen{}, err
	}
	if err = checkPlayedAt(sec, lo, hi); err != nil {
		return Listen{}, err
	}
	l.PlayedAt = time.Unix(sec, 0).UTC()

	// names
	for _, f := range [...]int{fArtistName, fTrackName, fAlbumName} {
		var s string
		if f == fAlbumName {
			s, err = optionalString(spans[f], f)
		} else {
			s, err = requiredString(spans[f], f)
		}
		if err != nil {
			return Listen{}, err
		}
		s = CollapseSpace(s)
		if err = checkName(fieldNames[f], s, f != fAlbumName, maxNameChars); err != nil {
			return Listen{}, err
		}
		switch f {
		case fArtistName:
			l.ArtistName = s
		case fTrackName:
			l.TrackName = s
		default:
			l.AlbumName = s
		}
	}

	// metadata
	if l.TrackID, err = optionalString(spans[fTrackID], fTrackID); err != nil {
		return Listen{}, err
	}
	if l.ArtistID, err = optionalString(spans[fArtistID], fArtistID); err != nil {
		return Listen{}, err
	}
	if l.AlbumID, err = optionalString(spans[fAlbumID], fAlbumID); err != nil {
		return Listen{}, err
	}
	if l.DurationMS, err = durationMS(spans[fDurationMS]); err != nil {
		return Listen{}, err
	}
	if l.Source, err = optionalString(spans[fSource], fSource); err != nil {
		return Listen{}, err
	}
	if l.EventID, err = optionalString(spans[fEventID], fEventID); err != nil {
		return Listen{}, err
	}
	return l, nil
}
