// Python's semantics where ListenBrainz's validation leans on them: the
// int(), float(), str.strip(), len() and truthiness of the values orjson
// hands to it, so that submit.go accepts, refuses and coerces what
// ListenBrainz does (CPython 3.13, orjson 3.11).

package listenbrainz

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pyIsSpace is Python's str.isspace() of one character, the whitespace of
// str.strip(): Go's unicode.IsSpace and U+001C–U+001F (the information
// separators, which Python counts as whitespace and Go does not).
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyStrip is Python's s.strip().
func pyStrip(s string) string {
	return strings.TrimFunc(s, pyIsSpace)
}

// pyDecimal is the value of r as a Unicode decimal digit (general category
// Nd, e.g. '٣' is 3), or -1. Unicode encodes decimal digits in contiguous
// runs of ten from zero to nine (a stability policy); runs may abut, so r's
// value is its distance from the start of its run, modulo ten.
func pyDecimal(r rune) int {
	if r < utf8.RuneSelf {
		if r >= '0' && r <= '9' {
			return int(r - '0')
		}
		return -1
	}
	if !unicode.Is(unicode.Nd, r) {
		return -1
	}
	start := r
	for unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return int(r-start) % 10
}

// pyNumberText is what CPython's int() and float() parse of a str: ASCII
// kept, other whitespace as ' ', other decimal digits as ASCII digits,
// leading and trailing ASCII whitespace removed (the ASCII separators
// U+001C–U+001F are not whitespace here). ok is false when another
// non-ASCII character makes the text unparseable.
func pyNumberText(s string) (string, bool) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x7f:
			b.WriteByte(byte(r))
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			d := pyDecimal(r)
			if d < 0 {
				return "", false
			}
			b.WriteByte(byte('0' + d))
		}
	}
	return strings.Trim(b.String(), " \t\n\v\f\r"), true
}

// scanDigits returns the end of a run of digits of base 10 or 16 at s[i:]
// with single underscores between digits (Python's literal rule), and
// whether there was at least one digit.
func scanDigits(s string, i int, hex bool) (int, bool) {
	isDigit := func(c byte) bool {
		if c >= '0' && c <= '9' {
			return true
		}
		return hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
	}
	if i >= len(s) || !isDigit(s[i]) {
		return i, false
	}
	i++
	for i < len(s) {
		switch {
		case isDigit(s[i]):
			i++
		case s[i] == '_' && i+1 < len(s) && isDigit(s[i+1]):
			i += 2
		default:
			return i, true
		}
	}
	return i, true
}

// pyIntString is Python's int(s) of a str (base 10), or ok false where it
// raises ValueError.
func pyIntString(s string) (*big.Int, bool) {
	t, ok := pyNumberText(s)
	if !ok {
		return nil, false
	}
	i := 0
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		i++
	}
	end, ok := scanDigits(t, i, false)
	if !ok || end != len(t) {
		return nil, false
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(t, "_", ""), 10)
	return n, ok
}

// isIntLiteral reports a JSON number written without fraction or exponent.
func isIntLiteral(n json.Number) bool {
	return !strings.ContainsAny(string(n), ".eE")
}

// minInt64, maxUint64: the integers orjson decodes exactly; it decodes
// integer literals outside [minInt64, maxUint64] as floats.
var (
	minInt64  = big.NewInt(math.MinInt64)
	maxUint64 = new(big.Int).SetUint64(math.MaxUint64)
)

// pyNumber is the Python value orjson makes of a JSON number: an int
// (exact) or a float.
func pyNumber(n json.Number) (i *big.Int, f float64) {
	if isIntLiteral(n) {
		if i, ok := new(big.Int).SetString(string(n), 10); ok && i.Cmp(minInt64) >= 0 && i.Cmp(maxUint64) <= 0 {
			return i, 0
		}
	}
	f, _ = strconv.ParseFloat(string(n), 64) // decodeBody refused ±Inf
	return nil, f
}

// truncFloat is Python's int(f) of a finite float: f truncated toward zero,
// exactly.
func truncFloat(f float64) *big.Int {
	i, _ := new(big.Float).SetFloat64(math.Trunc(f)).Int(nil)
	return i
}

// pyInt is Python's int(v) of a decoded JSON value, or ok false where it
// raises ValueError or TypeError: booleans are 0 and 1, floats truncated
// toward zero, strings as pyIntString; null, arrays and objects fail.
func pyInt(v any) (*big.Int, bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return big.NewInt(1), true
		}
		return big.NewInt(0), true
	case json.Number:
		i, f := pyNumber(v)
		if i == nil {
			i = truncFloat(f)
		}
		return i, true
	case string:
		return pyIntString(v)
	}
	return nil, false
}

// pyFloat is Python's float(v) of a decoded JSON value, or ok false where
// it raises ValueError or TypeError. Strings follow float()'s grammar:
// decimal with optional fraction and exponent, underscores between digits,
// "inf", "infinity" and "nan" in any case, each with an optional sign.
func pyFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64)
		return f, true
	case string:
		return pyFloatString(v)
	}
	return 0, false
}

func pyFloatString(s string) (float64, bool) {
	t, ok := pyNumberText(s)
	if !ok {
		return 0, false
	}
	i := 0
	neg := false
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		neg = t[i] == '-'
		i++
	}
	switch strings.ToLower(t[i:]) {
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	end, intDigits := scanDigits(t, i, false)
	fracDigits := false
	if end < len(t) && t[end] == '.' {
		end, fracDigits = scanDigits(t, end+1, false)
	}
	if !intDigits && !fracDigits {
		return 0, false
	}
	if end < len(t) && (t[end] == 'e' || t[end] == 'E') {
		j := end + 1
		if j < len(t) && (t[j] == '+' || t[j] == '-') {
			j++
		}
		var expDigits bool
		if end, expDigits = scanDigits(t, j, false); !expDigits {
			return 0, false
		}
	}
	if end != len(t) {
		return 0, false
	}
	// The text is now a decimal float literal that ParseFloat reads as
	// Python does; out of range, both give ±Inf or 0.
	f, _ := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	return f, true
}

// pyLen is Python's len(v): characters (code points) of a string, items of
// an array, keys of an object; ok false for null, numbers and booleans.
func pyLen(v any) (int, bool) {
	switch v := v.(type) {
	case string:
		return utf8.RuneCountInString(v), true
	case []any:
		return len(v), true
	case *object:
		return len(v.keys), true
	}
	return 0, false
}

// pyIter is Python's iteration over v: the characters of a string, the
// items of an array, the keys of an object; ok false for null, numbers and
// booleans.
func pyIter(v any) ([]any, bool) {
	switch v := v.(type) {
	case string:
		items := make([]any, 0, len(v))
		for _, r := range v {
			items = append(items, string(r))
		}
		return items, true
	case []any:
		return v, true
	case *object:
		items := make([]any, len(v.keys))
		for i, k := range v.keys {
			items[i] = k
		}
		return items, true
	}
	return nil, false
}

// pyTruthy is Python's bool(v): false for null, false, zero, "", [] and {}.
func pyTruthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64)
		return f != 0
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case *object:
		return len(v.keys) > 0
	}
	return true
}
