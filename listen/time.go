// The time fields: played_at (an RFC 3339 string, or a number of Unix
// seconds or milliseconds) and duration_ms.

package listen

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

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
