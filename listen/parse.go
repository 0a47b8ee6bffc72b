package listen

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
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

// splitObject checks that b is one JSON object in valid UTF-8 and stores the
// value of each field of the contract in spans (nil: absent): the
// raw-message first pass, so that each field's type is judged on its own.
// The syntax is checked by encoding/json (json.Valid); the scan below only
// splits the top-level members. It replaces json.Unmarshal because that
// matches struct field names case-insensitively and silently keeps the last
// of duplicate names (into map[string]json.RawMessage too, at the cost of a
// map), which other languages' parsers do not all do. It stays
// bounds-checked so that it cannot panic even if the two disagree.
func splitObject(b []byte, spans *[numFields][]byte) *InvalidError {
	if !utf8.Valid(b) {
		return invalid(ReasonNotJSON, "", "not valid UTF-8")
	}
	if !json.Valid(b) {
		return invalid(ReasonNotJSON, "", "not one valid JSON value")
	}
	i := skipSpace(b, 0)
	if i >= len(b) {
		return invalid(ReasonNotJSON, "", "only whitespace")
	}
	if b[i] != '{' {
		return invalid(ReasonNotObject, "", "a JSON "+kindOf(b[i])+", not an object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		if b[i] != '"' {
			return malformed()
		}
		end := endOfString(b, i)
		if end < 0 {
			return malformed()
		}
		name := b[i+1 : end-1]
		f := -1
		if bytes.IndexByte(name, '\\') < 0 {
			f = fieldIndex(name)
		} else if s, ok := unescape(name); ok {
			f = fieldIndex([]byte(s))
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return malformed()
		}
		i = skipSpace(b, i+1)
		end = endOfValue(b, i)
		if end <= i {
			return malformed()
		}
		if f >= 0 {
			if spans[f] != nil {
				return invalid(ReasonDuplicateField, fieldNames[f], "appears more than once")
			}
			spans[f] = b[i:end]
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return malformed()
		}
		switch b[i] {
		case '}':
			return nil
		case ',':
			i = skipSpace(b, i+1)
		default:
			return malformed()
		}
	}
	return malformed()
}

// malformed is the error for what json.Valid accepted but the member scan
// did not (it should not happen).
func malformed() *InvalidError { return invalid(ReasonNotJSON, "", "malformed object") }

func kindOf(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the string starting at b[i] == '"',
// or -1.
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

// endOfValue returns the index after the JSON value starting at b[i], or -1.
func endOfValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := endOfString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

func isNull(v []byte) bool { return len(v) == 4 && string(v) == "null" }

// requiredString decodes a required string field.
func requiredString(v []byte, f int) (string, *InvalidError) {
	if v == nil || isNull(v) {
		return "", invalid(ReasonMissingField, fieldNames[f], "required")
	}
	return stringValue(v, f)
}

// optionalString decodes an optional string field; absent or null is "".
func optionalString(v []byte, f int) (string, *InvalidError) {
	if v == nil || isNull(v) {
		return "", nil
	}
	return stringValue(v, f)
}

func stringValue(v []byte, f int) (string, *InvalidError) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", invalid(ReasonBadFieldType, fieldNames[f], "a JSON "+kindOf(v[0])+", not a string")
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	s, ok := unescape(inner)
	if !ok {
		return "", invalid(ReasonBadString, fieldNames[f], "lone UTF-16 surrogate escape")
	}
	return s, nil
}

// unescape decodes the inside of a JSON string. ok is false for a lone
// surrogate \u escape or a malformed escape.
func unescape(s []byte) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			b = append(b, s[i+1])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
					return "", false
				}
				r2, ok := hex4(s, i+2)
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return string(b), true
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// playedAt decodes played_at to Unix seconds (truncated towards the past).
// A number too large for the arithmetic comes back as math.MaxInt64 or
// math.MinInt64, which the window check rejects.
func playedAt(v []byte) (int64, *InvalidError) {
	if v == nil || isNull(v) {
		return 0, invalid(ReasonMissingField, FieldPlayedAt, "required")
	}
	switch c := v[0]; {
	case c == '"':
		s, err := stringValue(v, fPlayedAt)
		if err != nil {
			return 0, err
		}
		sec, ok := parseRFC3339(s)
		if !ok {
			return 0, invalid(ReasonBadPlayedAt, FieldPlayedAt, "not an RFC 3339 date-time")
		}
		return sec, nil
	case c == '-' || ('0' <= c && c <= '9'):
		return numberSeconds(v), nil
	}
	return 0, invalid(ReasonBadFieldType, FieldPlayedAt, "a JSON "+kindOf(v[0])+", not a string or number")
}

// numberSeconds converts a JSON number of Unix seconds or milliseconds.
func numberSeconds(v []byte) int64 {
	if v[0] == '-' {
		return math.MinInt64 // every negative number is before 2002
	}
	if bytes.ContainsAny(v, "eE") {
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || f > 1e17 {
			return math.MaxInt64
		}
		if f > MillisThreshold {
			f /= 1000
		}
		return int64(math.Floor(f))
	}
	intPart, frac := v, []byte(nil)
	if dot := bytes.IndexByte(v, '.'); dot >= 0 {
		intPart, frac = v[:dot], v[dot+1:]
	}
	if len(intPart) > 17 {
		return math.MaxInt64
	}
	var n int64
	for _, c := range intPart {
		n = n*10 + int64(c-'0')
	}
	if n > MillisThreshold || (n == MillisThreshold && !isZero(frac)) {
		return n / 1000
	}
	return n
}

// parseRFC3339 parses an RFC 3339 date-time (section 5.6) to Unix seconds:
// YYYY-MM-DD, T or t, hh:mm:ss, an optional fraction of one or more digits
// (ignored: truncation), then Z, z or ±hh:mm. Seconds 60 (leap seconds) and
// offsets beyond ±23:59 are refused.
func parseRFC3339(s string) (int64, bool) {
	if len(s) < 20 {
		return 0, false
	}
	digits := func(i, n int) (int, bool) {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := digits(0, 4)
	month, ok2 := digits(5, 2)
	day, ok3 := digits(8, 2)
	hour, ok4 := digits(11, 2)
	minute, ok5 := digits(14, 2)
	second, ok6 := digits(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || second > 59 {
		return 0, false
	}
	i := 19
	if s[i] == '.' {
		i++
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == start || i >= len(s) {
			return 0, false
		}
	}
	offset := 0
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(s)-i != 6 || s[i+3] != ':' {
			return 0, false
		}
		oh, ok1 := digits(i+1, 2)
		om, ok2 := digits(i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = oh*3600 + om*60
		if s[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, false
	}
	if i != len(s) {
		return 0, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	return t.Unix() - int64(offset), true
}

// durationMS decodes duration_ms: absent or null is 0.
func durationMS(v []byte) (int64, *InvalidError) {
	if v == nil || isNull(v) {
		return 0, nil
	}
	c := v[0]
	if c != '-' && (c < '0' || c > '9') {
		return 0, invalid(ReasonBadFieldType, FieldDurationMS, "a JSON "+kindOf(c)+", not a number")
	}
	if c == '-' && !isZero(v[1:]) {
		return 0, invalid(ReasonBadDuration, FieldDurationMS, "negative")
	}
	if !bytes.ContainsAny(v, ".eE") {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, invalid(ReasonBadDuration, FieldDurationMS, "too large")
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	switch {
	case err != nil || f >= 1<<63:
		return 0, invalid(ReasonBadDuration, FieldDurationMS, "too large")
	case f != math.Trunc(f):
		return 0, invalid(ReasonBadDuration, FieldDurationMS, "not an integer")
	}
	return int64(f), nil
}

// isZero reports whether a JSON number (without sign) is zero.
func isZero(v []byte) bool {
	for _, c := range v {
		switch {
		case c == 'e' || c == 'E':
			return true // mantissa was all zeros
		case c != '0' && c != '.':
			return false
		}
	}
	return true
}
