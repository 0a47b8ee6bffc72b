package listen

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func fullListen() Listen {
	return Listen{
		UserID:     "björk_fan",
		PlayedAt:   time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC),
		ArtistName: "Sigur Rós",
		TrackName:  `Hoppípolla "live" <&> \`,
		AlbumName:  "Takk...",
		TrackID:    "t\x00\x1f",
		ArtistID:   "a1",
		AlbumID:    "b1",
		DurationMS: 268000,
		Source:     "lastfm\u2028",
		EventID:    "e-1",
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, l := range []Listen{fullListen(), {UserID: "a", PlayedAt: time.Unix(MinPlayedAtUnix, 0).UTC(), ArtistName: "x", TrackName: "y"}} {
		for _, v := range []any{l, &l} {
			data, err := Codec{}.Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Codec{}.Decode(data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", data, err)
			}
			if got.(Listen) != l {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, l)
			}
			// encoding/json reads the same.
			var std Listen
			if err := json.Unmarshal(data, &std); err != nil || std != l {
				t.Errorf("json.Unmarshal: %+v, %v", std, err)
			}
		}
	}
}

func TestCodecEncodeBytes(t *testing.T) {
	data, err := Codec{}.Encode(fullListen())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user_id":"björk_fan","played_at":"2026-11-28T09:15:00Z","artist_name":"Sigur Rós",` +
		`"track_name":"Hoppípolla \"live\" <&> \\","album_name":"Takk...","track_id":"t\u0000\u001f",` +
		`"artist_id":"a1","album_id":"b1","duration_ms":268000,"source":"lastfm\u2028","event_id":"e-1"}`
	if string(data) != want {
		t.Errorf("Encode:\n got %s\nwant %s", data, want)
	}
	if !json.Valid(data) {
		t.Error("not valid JSON")
	}
}

func TestCodecEncodesCanonical(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	l := Listen{UserID: "alice", PlayedAt: time.Date(2026, 11, 28, 10, 15, 0, 999_999_999, berlin),
		ArtistName: "  Radio\thead ", TrackName: "Reckoner", AlbumName: " \u3000 "}
	data, err := Codec{}.Encode(l)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radio head","track_name":"Reckoner"}`
	if string(data) != want {
		t.Errorf("got %s, want %s", data, want)
	}
	got, err := Codec{}.Decode(data)
	if err != nil || got.(Listen) != l.Canonical() {
		t.Errorf("Decode = %+v, %v; want %+v", got, err, l.Canonical())
	}
	if got.(Listen).Identity() != l.Identity() || got.(Listen).Key() != l.Key() || got.(Listen).TrackKey() != l.TrackKey() {
		t.Error("identity or keys changed by canonicalization")
	}
}

func TestCodecDecodeIgnoresClock(t *testing.T) {
	// Valid records decode whatever the clock: old ones and (clock skew) ones
	// slightly ahead of this machine.
	for _, at := range []string{"2002-01-01T00:00:00Z", "2003-05-01T10:00:00Z", "2999-01-01T00:00:00Z", "9999-12-31T23:59:59Z"} {
		data := []byte(`{"user_id":"a","played_at":"` + at + `","artist_name":"x","track_name":"y"}`)
		got, err := Codec{}.Decode(data)
		if err != nil {
			t.Errorf("%s: %v", at, err)
			continue
		}
		if again, err := (Codec{}).Encode(got); err != nil || string(again) != string(data) {
			t.Errorf("%s: re-encoded %s, %v", at, again, err)
		}
	}
	// The fixed lower bound still holds; records are not size-limited.
	if _, err := (Codec{}).Decode([]byte(`{"user_id":"a","played_at":"2001-12-31T23:59:59Z","artist_name":"x","track_name":"y"}`)); ReasonOf(err) != ReasonPlayedAtOutOfRange {
		t.Errorf("before 2002: %v", err)
	}
	big := []byte(`{"user_id":"a","played_at":"2020-01-01T00:00:00Z","artist_name":"` + strings.Repeat("x", 2*MaxRecordBytes) + `","track_name":"y"}`)
	if _, err := (Codec{}).Decode(big); err != nil {
		t.Errorf("large record: %v", err)
	}
}

func TestCodecRejectsGarbage(t *testing.T) {
	for _, data := range []string{"", "x", "null", "[]", `{}`, `{"user_id":"a"}`, minimal + "x",
		`{"user_id":"a|b","played_at":"2020-01-01T00:00:00Z","artist_name":"x","track_name":"y"}`} {
		got, err := Codec{}.Decode([]byte(data))
		if err == nil || got != nil {
			t.Errorf("Decode(%q) = %v, %v; want an error", data, got, err)
		}
		if ReasonOf(err) == "" {
			t.Errorf("Decode(%q): error without reason: %v", data, err)
		}
	}
	if got, err := (Codec{}).Decode(nil); err == nil || got != nil {
		t.Error("Decode(nil) accepted")
	}
	var nilListen *Listen
	for _, v := range []any{nil, nilListen, "x", 42, Listen{}, Listen{UserID: "a", PlayedAt: testNow, ArtistName: " ", TrackName: "t"},
		Listen{UserID: "a", PlayedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), ArtistName: "x", TrackName: "t"}} {
		if data, err := (Codec{}).Encode(v); err == nil {
			t.Errorf("Encode(%#v) = %s, want an error", v, data)
		}
	}
}

func TestCodecStdlibJSONCompatible(t *testing.T) {
	// A Listen written by json.Marshal (e.g. by a producer that does not use
	// Codec) decodes to the same Listen.
	l := fullListen()
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Codec{}.Decode(data)
	if err != nil || got.(Listen) != l {
		t.Errorf("Decode(json.Marshal) = %+v, %v", got, err)
	}
	if _, err := Parse(data, testNow); err != nil {
		t.Errorf("Parse(json.Marshal): %v", err)
	}
}
