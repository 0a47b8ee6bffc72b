// The JSON scan behind Parse: splitObject splits the top-level members of
// one object, then each string field is decoded on its own (escapes,
// surrogates).

package listen

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

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
