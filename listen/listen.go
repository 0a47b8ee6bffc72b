package listen

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/topk-charts/topk"
)

// NormalizationVersion is part of every identity and item key; bumping it
// changes all identities. Bump it whenever Normalize, the identity or item
// key layouts, or the Unicode tables behind them (UnicodeVersion) change.
const NormalizationVersion = 1

// MaxRecordBytes: a raw record over this (10 KiB) goes to the DLQ. A record
// of exactly MaxRecordBytes bytes is accepted.
const MaxRecordBytes = 10 << 10

// MaxUserIDBytes is the longest user_id, in bytes of UTF-8.
const MaxUserIDBytes = 128

// DefaultMaxNameChars is the default limit on artist_name, track_name and
// album_name (TOPK_MAX_NAME_CHARS; see Limits): Parse and Validate refuse a
// longer name with ReasonNameTooLong.
const DefaultMaxNameChars = 512

// MinPlayedAtUnix is the earliest accepted played_at, 2002-01-01T00:00:00Z,
// in Unix seconds (inclusive).
const MinPlayedAtUnix = 1009843200

// MaxFutureSkew is how far past the receiver's clock a played_at may lie
// (inclusive): clocks of producers drift.
const MaxFutureSkew = 10 * time.Minute

// MillisThreshold splits numeric played_at values: a number greater than
// this (10^11, i.e. year 5138 as seconds, 1973 as milliseconds) is Unix
// milliseconds, any other number is Unix seconds.
const MillisThreshold = 1e11

// DayLayout is the time layout of a day: the UTC date, as in state keys.
const DayLayout = topk.DayLayout

// maxStoredUnix is 9999-12-31T23:59:59Z, the last second RFC 3339 can
// write: the upper bound of played_at where the receiver's clock does not
// apply (Codec.Decode and Codec.Encode).
const maxStoredUnix = 253402300799

// Listen is one validated, normalized-for-identity listen. Names keep the
// spelling as sent (trimmed, whitespace collapsed); normalization is only for
// identity/keys.
//
// Parse returns canonical Listens: PlayedAt in UTC truncated to the second,
// names passed through CollapseSpace, an album of only whitespace as "".
// The JSON tags are the contract: encoding/json reads and writes a Listen
// compatibly with Parse and Codec.
type Listen struct {
	UserID     string    `json:"user_id"`
	PlayedAt   time.Time `json:"played_at"` // UTC, truncated to the second
	ArtistName string    `json:"artist_name"`
	TrackName  string    `json:"track_name"`
	AlbumName  string    `json:"album_name,omitempty"`
	TrackID    string    `json:"track_id,omitempty"`
	ArtistID   string    `json:"artist_id,omitempty"`
	AlbumID    string    `json:"album_id,omitempty"`
	DurationMS int64     `json:"duration_ms,omitempty"` // 0: unknown
	Source     string    `json:"source,omitempty"`
	EventID    string    `json:"event_id,omitempty"` // metadata only, never trusted for dedup
}

// Validate checks an already-built Listen (the crawler uses it before
// producing) against the contract at time now, with the rules Parse applies
// after decoding: every string valid UTF-8, the user_id rules, played_at
// within [MinPlayedAtUnix, now+MaxFutureSkew] after truncation to the
// second, artist and track names non-empty after CollapseSpace, no control
// characters other than whitespace in names, names at most
// DefaultMaxNameChars characters after CollapseSpace, DurationMS ≥ 0. It
// returns a *InvalidError or nil. l need not be canonical: Validate(l) and
// Validate(l.Canonical()) agree. Limits.Validate applies another name limit.
func (l Listen) Validate(now time.Time) error {
	return Limits{}.Validate(l, now)
}

// check applies the contract with played_at bounded by [lo, hi] Unix
// seconds and names limited to maxNameChars characters (0: no limit),
// fields in the order of the contract table.
func (l Listen) check(lo, hi int64, maxNameChars int) *InvalidError {
	if !utf8.ValidString(l.UserID) {
		return invalid(ReasonBadString, FieldUserID, "not valid UTF-8")
	}
	if err := checkUserID(l.UserID); err != nil {
		return err
	}
	if err := checkPlayedAt(l.PlayedAt.Unix(), lo, hi); err != nil {
		return err
	}
	names := [...]struct {
		field, value string
		required     bool
	}{
		{FieldArtistName, l.ArtistName, true},
		{FieldTrackName, l.TrackName, true},
		{FieldAlbumName, l.AlbumName, false},
	}
	for _, n := range names {
		if !utf8.ValidString(n.value) {
			return invalid(ReasonBadString, n.field, "not valid UTF-8")
		}
		if err := checkName(n.field, CollapseSpace(n.value), n.required, maxNameChars); err != nil {
			return err
		}
	}
	metadata := [...]struct{ field, value string }{
		{FieldTrackID, l.TrackID},
		{FieldArtistID, l.ArtistID},
		{FieldAlbumID, l.AlbumID},
	}
	for _, m := range metadata {
		if !utf8.ValidString(m.value) {
			return invalid(ReasonBadString, m.field, "not valid UTF-8")
		}
	}
	if l.DurationMS < 0 {
		return invalid(ReasonBadDuration, FieldDurationMS, "negative")
	}
	if !utf8.ValidString(l.Source) {
		return invalid(ReasonBadString, FieldSource, "not valid UTF-8")
	}
	if !utf8.ValidString(l.EventID) {
		return invalid(ReasonBadString, FieldEventID, "not valid UTF-8")
	}
	return nil
}

// Canonical returns l as Parse would return it: PlayedAt in UTC truncated
// to the second (towards the past), names passed through CollapseSpace.
// Identity, keys and Validate are the same for l and l.Canonical();
// Codec.Encode writes the canonical form.
func (l Listen) Canonical() Listen {
	l.PlayedAt = time.Unix(l.PlayedAt.Unix(), 0).UTC()
	l.ArtistName = CollapseSpace(l.ArtistName)
	l.TrackName = CollapseSpace(l.TrackName)
	l.AlbumName = CollapseSpace(l.AlbumName)
	return l
}

// Day is the UTC date of PlayedAt, "2006-01-02".
func (l Listen) Day() string {
	return l.PlayedAt.UTC().Format(DayLayout)
}

// Key is the state key user_id|day used on user.listen.valid and the
// aggregator table: DayKey(l.UserID, l.PlayedAt).
func (l Listen) Key() string {
	return DayKey(l.UserID, l.PlayedAt)
}

// DayKey is the state key of user on the UTC date of day: user|YYYY-MM-DD.
// user must be a valid user_id (no '|') for SplitKey to split it back.
func DayKey(user string, day time.Time) string {
	b := make([]byte, 0, len(user)+1+len(DayLayout))
	b = append(b, user...)
	b = append(b, '|')
	b = day.UTC().AppendFormat(b, DayLayout)
	return string(b)
}

// SplitKey splits a state key; ok is false for anything that is not
// user|YYYY-MM-DD with a user that passes the user_id rules and a valid
// calendar date written exactly in DayLayout. day is midnight UTC.
func SplitKey(key string) (user string, day time.Time, ok bool) {
	i := strings.IndexByte(key, '|')
	if i < 0 {
		return "", time.Time{}, false
	}
	user, d := key[:i], key[i+1:]
	if !utf8.ValidString(user) || checkUserID(user) != nil || len(d) != len(DayLayout) {
		return "", time.Time{}, false
	}
	for j := 0; j < len(d); j++ {
		if j == 4 || j == 7 {
			if d[j] != '-' {
				return "", time.Time{}, false
			}
		} else if d[j] < '0' || d[j] > '9' {
			return "", time.Time{}, false
		}
	}
	year, month, dom := atoi(d[0:4]), atoi(d[5:7]), atoi(d[8:10])
	if month < 1 || month > 12 || dom < 1 || dom > daysIn(month, year) {
		return "", time.Time{}, false
	}
	return user, time.Date(year, time.Month(month), dom, 0, 0, 0, 0, time.UTC), true
}

// checkUserID applies the user_id rules (UTF-8 validity is checked before).
func checkUserID(s string) *InvalidError {
	if len(s) == 0 {
		return invalid(ReasonBadUserID, FieldUserID, "empty")
	}
	if len(s) > MaxUserIDBytes {
		return invalid(ReasonBadUserID, FieldUserID, "longer than 128 bytes")
	}
	for _, r := range s {
		switch {
		case r == '|':
			return invalid(ReasonBadUserID, FieldUserID, "contains '|'")
		case isControl(r):
			return invalid(ReasonBadUserID, FieldUserID, "contains a control character")
		}
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if isSpace(first) || isSpace(last) {
		return invalid(ReasonBadUserID, FieldUserID, "leading or trailing whitespace")
	}
	return nil
}

// checkPlayedAt checks the window [lo, hi] on Unix seconds.
func checkPlayedAt(sec, lo, hi int64) *InvalidError {
	if sec < lo {
		return invalid(ReasonPlayedAtOutOfRange, FieldPlayedAt, "before 2002-01-01T00:00:00Z")
	}
	if sec > hi {
		return invalid(ReasonPlayedAtOutOfRange, FieldPlayedAt, "too far in the future")
	}
	return nil
}

// checkName checks a name already passed through CollapseSpace: not empty
// when required, no control character, at most maxChars code points
// (0: no limit).
func checkName(field, s string, required bool, maxChars int) *InvalidError {
	if s == "" {
		if required {
			return invalid(ReasonEmptyName, field, "empty or only whitespace")
		}
		return nil
	}
	for _, r := range s {
		if isControl(r) {
			return invalid(ReasonBadName, field, "contains a control character")
		}
	}
	// A string of n bytes has at most n code points: count only when the
	// bytes alone do not settle it.
	if maxChars > 0 && len(s) > maxChars {
		if n := utf8.RuneCountInString(s); n > maxChars {
			return invalid(ReasonNameTooLong, field, strconv.Itoa(n)+" characters, over the limit of "+strconv.Itoa(maxChars))
		}
	}
	return nil
}

// isControl reports the Unicode control characters (general category Cc:
// U+0000–U+001F, U+007F–U+009F).
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
