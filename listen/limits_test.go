package listen

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// withName returns a valid record whose field (artist_name, track_name or
// album_name) is the JSON string of value.
func withName(field, value string) []byte {
	m := map[string]string{FieldArtistName: "R", FieldTrackName: "T"} // short: limits go down to 1
	m[field] = value
	var b strings.Builder
	b.WriteString(`{"user_id":"alice","played_at":"2026-11-28T09:15:00Z"`)
	for _, f := range []string{FieldArtistName, FieldTrackName, FieldAlbumName} {
		if v, ok := m[f]; ok {
			b.WriteString(`,"` + f + `":` + string(appendJSONString(nil, v)))
		}
	}
	b.WriteString("}")
	return []byte(b.String())
}

func nameOf(l Listen, field string) string {
	switch field {
	case FieldArtistName:
		return l.ArtistName
	case FieldTrackName:
		return l.TrackName
	}
	return l.AlbumName
}

func TestNameLimitEachField(t *testing.T) {
	for _, field := range []string{FieldArtistName, FieldTrackName, FieldAlbumName} {
		// One to four bytes per character: the limit counts characters.
		for _, ch := range []string{"x", "é", "宇", "🎵"} {
			at := strings.Repeat(ch, DefaultMaxNameChars)
			l, err := Parse(withName(field, at), testNow)
			if err != nil {
				t.Errorf("%s: %d × %q (exactly at the limit): %v", field, DefaultMaxNameChars, ch, err)
			} else if nameOf(l, field) != at {
				t.Errorf("%s: name not kept", field)
			}
			if err := l.Validate(testNow); err != nil {
				t.Errorf("%s: %d × %q: Validate: %v", field, DefaultMaxNameChars, ch, err)
			}

			over := at + ch
			_, err = Parse(withName(field, over), testNow)
			ie, ok := err.(*InvalidError)
			if !ok || ie.Reason != ReasonNameTooLong || ie.Field != field {
				t.Errorf("%s: %d × %q (one over): %v, want %s on %s", field, DefaultMaxNameChars+1, ch, err, ReasonNameTooLong, field)
				continue
			}
			if !strings.Contains(ie.Detail, "513") || !strings.Contains(err.Error(), field) {
				t.Errorf("%s: error %q does not name the field and its length", field, err)
			}
			// A built Listen over the limit fails Validate the same way.
			built := Listen{UserID: "alice", PlayedAt: testNow, ArtistName: "a", TrackName: "t"}
			switch field {
			case FieldArtistName:
				built.ArtistName = over
			case FieldTrackName:
				built.TrackName = over
			default:
				built.AlbumName = over
			}
			if got := ReasonOf(built.Validate(testNow)); got != ReasonNameTooLong {
				t.Errorf("%s: Validate of a built listen one over: %q", field, got)
			}
		}
	}
}

func TestNameLimitCountsAfterCollapseSpace(t *testing.T) {
	// Surrounding whitespace and whitespace runs do not count: the name as
	// kept does.
	padded := " \t" + strings.Repeat("ab\u3000 ", 170) + "xy\u00a0\n" // 686 characters as sent
	want := strings.Repeat("ab ", 170) + "xy"                         // 512 as kept
	l, err := Parse(withName(FieldTrackName, padded), testNow)
	if err != nil || l.TrackName != want {
		t.Fatalf("%d characters as sent, %d as kept: %q, %v", len([]rune(padded)), len([]rune(want)), l.TrackName, err)
	}
	wantReason(t, withName(FieldTrackName, strings.Replace(padded, "xy", "xyz", 1)), testNow, ReasonNameTooLong)
	if err := (Listen{UserID: "a", PlayedAt: testNow, ArtistName: padded, TrackName: "t"}).Validate(testNow); err != nil {
		t.Errorf("Validate of a non-canonical listen at the limit: %v", err)
	}
	// Code points, not grapheme clusters: "e" + U+0301 counts two, whatever
	// NFC would make of it (names are kept as sent).
	wantReason(t, withName(FieldArtistName, strings.Repeat("e\u0301", DefaultMaxNameChars/2)+"e"), testNow, ReasonNameTooLong)
	wantReason(t, withName(FieldArtistName, strings.Repeat("e\u0301", DefaultMaxNameChars/2)), testNow, "")
}

func TestNameLimitConfigured(t *testing.T) {
	for _, max := range []int{1, 5, 600, 2000} {
		lim := Limits{MaxNameChars: max}
		for _, field := range []string{FieldArtistName, FieldTrackName, FieldAlbumName} {
			at := strings.Repeat("ß", max)
			l, err := lim.Parse(withName(field, at), testNow)
			if err != nil || nameOf(l, field) != at {
				t.Errorf("limit %d, %s at the limit: %+v, %v", max, field, l, err)
			}
			if err := lim.Validate(l, testNow); err != nil {
				t.Errorf("limit %d, %s: Validate: %v", max, field, err)
			}
			_, err = lim.Parse(withName(field, at+"ß"), testNow)
			if ie, ok := err.(*InvalidError); !ok || ie.Reason != ReasonNameTooLong || ie.Field != field ||
				!strings.Contains(ie.Detail, strconv.Itoa(max+1)) || !strings.Contains(ie.Detail, strconv.Itoa(max)) {
				t.Errorf("limit %d, %s one over: %v", max, field, err)
			}
			built := Listen{UserID: "a", PlayedAt: testNow, ArtistName: "a", TrackName: "t", AlbumName: strings.Repeat("x", max+1)}
			if got := ReasonOf(lim.Validate(built, testNow)); got != ReasonNameTooLong {
				t.Errorf("limit %d: Validate of an album one over: %q", max, got)
			}
		}
	}
	// The zero value, and nonsense, mean the default.
	for _, lim := range []Limits{{}, {MaxNameChars: -1}} {
		if _, err := lim.Parse(withName(FieldArtistName, strings.Repeat("x", DefaultMaxNameChars)), testNow); err != nil {
			t.Errorf("%+v at the default: %v", lim, err)
		}
		if _, err := lim.Parse(withName(FieldArtistName, strings.Repeat("x", DefaultMaxNameChars+1)), testNow); ReasonOf(err) != ReasonNameTooLong {
			t.Errorf("%+v over the default: %v", lim, err)
		}
	}
	// Other rules still come first in contract order: a long artist with a
	// bad user_id is a bad_user_id.
	raw := []byte(`{"user_id":"a|b","played_at":"2026-11-28T09:15:00Z","artist_name":"` + strings.Repeat("x", 600) + `","track_name":"t"}`)
	if _, err := (Limits{MaxNameChars: 10}).Parse(raw, testNow); ReasonOf(err) != ReasonBadUserID {
		t.Errorf("order of checks: %v", err)
	}
}

func TestCodecIgnoresNameLimit(t *testing.T) {
	// A listen accepted under a larger configured limit travels through
	// user.listen.valid and decodes again.
	long := strings.Repeat("ü", 3*DefaultMaxNameChars)
	l := Listen{UserID: "alice", PlayedAt: time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC), ArtistName: long, TrackName: long, AlbumName: long}
	if err := (Limits{MaxNameChars: 3 * DefaultMaxNameChars}).Validate(l, testNow); err != nil {
		t.Fatal(err)
	}
	data, err := Codec{}.Encode(l)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := Codec{}.Decode(data)
	if err != nil || got.(Listen) != l {
		t.Fatalf("Decode: %v", err)
	}
}
