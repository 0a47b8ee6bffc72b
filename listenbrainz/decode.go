// Decoding a submission as ListenBrainz does: the body as UTF-8, then one
// JSON document as orjson reads it, objects keeping their keys in document
// order (ListenBrainz's checks walk them in that order).

package listenbrainz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxDepth is orjson's limit on nested arrays and objects: a document 1024
// levels deep is read, one 1025 deep is refused.
const maxDepth = 1024

// object is a decoded JSON object as Python's dict holds it: keys in the
// order of their first appearance, each with the value of its last.
// Values are nil, bool, json.Number, string, []any and *object.
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object {
	return &object{vals: make(map[string]any)}
}

func (o *object) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

func (o *object) has(k string) bool {
	_, ok := o.vals[k]
	return ok
}

// set replaces k's value, in k's place, or adds k at the end.
func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			return
		}
	}
}

// plain is o as plain Go values: maps for objects, recursively.
func (o *object) plain() map[string]any {
	m := make(map[string]any, len(o.keys))
	for _, k := range o.keys {
		m[k] = plainValue(o.vals[k])
	}
	return m
}

func plainValue(v any) any {
	switch v := v.(type) {
	case *object:
		return v.plain()
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = plainValue(item)
		}
		return out
	}
	return v
}

// decodeBody reads body as ListenBrainz does (raw_data.decode("utf-8"),
// then orjson.loads): valid UTF-8, exactly one JSON value, nesting at most
// maxDepth, no lone UTF-16 surrogate escapes, no number that overflows a
// float64. For what topk checks itself the error's text is orjson's
// (without the position, unless it is always the same); for syntax errors
// it is encoding/json's.
func decodeBody(body []byte) (any, error) {
	if len(body) == 0 {
		//lint:ignore ST1005 orjson's message, which clients are shown
		return nil, errors.New("Input is a zero-length, empty document: line 1 column 1 (char 0)")
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("not valid UTF-8 at byte %d", invalidUTF8At(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	switch {
	case err == io.EOF:
		return nil, errors.New("input data is empty: line 1 column 1 (char 0)")
	case err == io.ErrUnexpectedEOF:
		return nil, errors.New("unexpected end of data")
	case err != nil:
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected content after document")
	}
	if err := checkSurrogates(body); err != nil {
		return nil, err
	}
	return v, nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// decodeValue reads the next value from dec, depth levels deep.
func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		if depth+1 > maxDepth {
			return nil, errors.New("array and object recursion depth exceeded")
		}
		if tok == '[' {
			items := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, eof(err)
				}
				items = append(items, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, eof(err)
			}
			return items, nil
		}
		o := newObject()
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, eof(err)
			}
			key, ok := k.(string)
			if !ok {
				return nil, errors.New("object key is not a string")
			}
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, eof(err)
			}
			o.set(key, v)
		}
		if _, err := dec.Token(); err != nil { // '}'
			return nil, eof(err)
		}
		return o, nil
	case json.Number:
		if f, _ := strconv.ParseFloat(string(tok), 64); math.IsInf(f, 0) {
			return nil, errors.New("number is infinity when parsed as double")
		}
		return tok, nil
	}
	return tok, nil // nil, bool, string
}

// eof turns an end of input inside a value into io.ErrUnexpectedEOF.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkSurrogates refuses \u escapes of UTF-16 surrogates that are not a
// high one followed at once by a low one: orjson refuses them, where
// encoding/json reads U+FFFD. b is valid JSON.
func checkSurrogates(b []byte) error {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				r := hex4(b, i+2)
				switch {
				case r >= 0xd800 && r <= 0xdbff:
					if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
						if lo := hex4(b, i+8); lo >= 0xdc00 && lo <= 0xdfff {
							i += 11
							continue
						}
					}
					return errors.New("no low surrogate in string")
				case r >= 0xdc00 && r <= 0xdfff:
					return errors.New("invalid high surrogate in string")
				}
				i += 5
			} else {
				i++
			}
		}
	}
	return nil
}

// hex4 is the value of the 4 hex digits at b[i:], or -1.
func hex4(b []byte, i int) int {
	if i+4 > len(b) {
		return -1
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	if err != nil {
		return -1
	}
	return int(n)
}
