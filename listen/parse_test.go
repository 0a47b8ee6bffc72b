package listen

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

const minimal = `{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radiohead","track_name":"Reckoner"}`

// record returns minimal with extra members appended.
func record(extra string) []byte {
	if extra == "" {
		return []byte(minimal)
	}
	return []byte(minimal[:len(minimal)-1] + "," + extra + "}")
}

// withPlayedAt returns a valid record with played_at's JSON value v.
func withPlayedAt(v string) []byte {
	return []byte(`{"user_id":"alice","played_at":` + v + `,"artist_name":"Radiohead","track_name":"Reckoner"}`)
}

func wantReason(t *testing.T, raw []byte, now time.Time, want Reason) {
	t.Helper()
	l, err := Parse(raw, now)
	if got := ReasonOf(err); got != want {
		t.Errorf("Parse(%.80q) = %+v, %v; want reason %q", raw, l, err, want)
	}
}

func TestParseMinimal(t *testing.T) {
	l, err := Parse([]byte(minimal), testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := Listen{UserID: "alice", PlayedAt: time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC), ArtistName: "Radiohead", TrackName: "Reckoner"}
	if l != want {
		t.Fatalf("got %+v, want %+v", l, want)
	}
	if l.PlayedAt.Location() != time.UTC {
		t.Fatalf("PlayedAt in %v, want UTC", l.PlayedAt.Location())
	}
}

func TestParseSizeBoundary(t *testing.T) {
	pad := func(total int) []byte {
		n := total - len(minimal) - len(`,"pad":""`)
		return record(`"pad":"` + strings.Repeat("x", n) + `"`)
	}
	if raw := pad(MaxRecordBytes); len(raw) != 10240 {
		t.Fatalf("pad: %d bytes", len(raw))
	} else if _, err := Parse(raw, testNow); err != nil {
		t.Errorf("exactly 10 KiB: %v", err)
	}
	wantReason(t, pad(MaxRecordBytes+1), testNow, ReasonTooLarge)
	// The size is checked before anything else.
	wantReason(t, []byte(strings.Repeat(" ", MaxRecordBytes+1)), testNow, ReasonTooLarge)
}

func TestParseNilAndEmpty(t *testing.T) {
	wantReason(t, nil, testNow, ReasonNilValue)
	wantReason(t, []byte{}, testNow, ReasonNilValue)
	wantReason(t, []byte(" "), testNow, ReasonNotJSON)
}

func TestParseUserIDBoundary(t *testing.T) {
	for n, want := range map[int]Reason{1: "", 127: "", 128: "", 129: ReasonBadUserID, 0: ReasonBadUserID} {
		raw := []byte(strings.Replace(minimal, `"alice"`, `"`+strings.Repeat("u", n)+`"`, 1))
		wantReason(t, raw, testNow, want)
	}
	// 128 bytes ending in a 2-byte character vs 129.
	wantReason(t, []byte(strings.Replace(minimal, `"alice"`, `"`+strings.Repeat("u", 126)+"é"+`"`, 1)), testNow, "")
	wantReason(t, []byte(strings.Replace(minimal, `"alice"`, `"`+strings.Repeat("u", 127)+"é"+`"`, 1)), testNow, ReasonBadUserID)
}

func TestParsePlayedAtLowerBoundary(t *testing.T) {
	for v, want := range map[string]Reason{
		`"2002-01-01T00:00:00Z"`:      "",
		`"2001-12-31T23:59:59Z"`:      ReasonPlayedAtOutOfRange,
		`"2001-12-31T23:59:59.999Z"`:  ReasonPlayedAtOutOfRange,
		`"2002-01-01T00:59:59+01:00"`: ReasonPlayedAtOutOfRange,
		`"2001-12-31T19:00:00-05:00"`: "",
		`1009843200`:                  "",
		`1009843199`:                  ReasonPlayedAtOutOfRange,
		`1009843199.999`:              ReasonPlayedAtOutOfRange,
		`1009843200000`:               "",
		`1009843199999`:               ReasonPlayedAtOutOfRange,
	} {
		wantReason(t, withPlayedAt(v), testNow, want)
	}
}

func TestParsePlayedAtUpperBoundary(t *testing.T) {
	// now+10min is inclusive, on the played_at truncated to the second.
	for _, now := range []time.Time{testNow, testNow.Add(500 * time.Millisecond)} {
		for v, want := range map[string]Reason{
			`"2026-11-28T12:10:00Z"`:      "",
			`"2026-11-28T12:10:00.999Z"`:  "",
			`"2026-11-28T12:10:01Z"`:      ReasonPlayedAtOutOfRange,
			`"2026-11-28T13:10:00+01:00"`: "",
			`"2026-11-28T13:10:01+01:00"`: ReasonPlayedAtOutOfRange,
			`1795867800`:                  "",
			`1795867801`:                  ReasonPlayedAtOutOfRange,
			`1795867800999`:               "",
			`1795867801000`:               ReasonPlayedAtOutOfRange,
		} {
			wantReason(t, withPlayedAt(v), now, want)
		}
	}
	// Validate agrees.
	l := Listen{UserID: "a", ArtistName: "a", TrackName: "b", PlayedAt: testNow.Add(MaxFutureSkew)}
	if err := l.Validate(testNow); err != nil {
		t.Errorf("now+10min: %v", err)
	}
	l.PlayedAt = l.PlayedAt.Add(time.Second)
	if ReasonOf(l.Validate(testNow)) != ReasonPlayedAtOutOfRange {
		t.Errorf("now+10min+1s accepted")
	}
}

func TestNumberSecondsThreshold(t *testing.T) {
	for in, want := range map[string]int64{
		"0":                    0,
		"1795857300":           1795857300,
		"1795857300.999":       1795857300,
		"99999999999":          99999999999,
		"99999999999.999":      99999999999,
		"100000000000":         100000000000, // = 10^11: still seconds
		"100000000000.0":       100000000000,
		"100000000000.5":       100000000, // > 10^11: milliseconds
		"100000000001":         100000000,
		"1795857300999":        1795857300,
		"1e11":                 100000000000,
		"1.00000000001e11":     100000000,
		"1.7958573009E+12":     1795857300,
		"-1":                   math.MinInt64,
		"-0":                   math.MinInt64,
		"1e300":                math.MaxInt64,
		"123456789012345678":   math.MaxInt64,
		"12345678901234567":    12345678901234,
		"17958573001234567890": math.MaxInt64,
	} {
		if got := numberSeconds([]byte(in)); got != want {
			t.Errorf("numberSeconds(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestParseRFC3339(t *testing.T) {
	base := time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC).Unix()
	for in, want := range map[string]int64{
		"2026-11-28T09:15:00Z":              base,
		"2026-11-28t09:15:00z":              base,
		"2026-11-28T09:15:00.5Z":            base,
		"2026-11-28T09:15:00.123456789123Z": base,
		"2026-11-28T10:15:00+01:00":         base,
		"2026-11-28T09:15:00-00:00":         base,
		"2026-11-28T03:45:00-05:30":         base,
		"2026-11-29T09:14:00+23:59":         base,
		"2024-02-29T00:00:00Z":              time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).Unix(),
		"2000-02-29T00:00:00Z":              time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC).Unix(),
	} {
		if got, ok := parseRFC3339(in); !ok || got != want {
			t.Errorf("parseRFC3339(%s) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"", "2026-11-28", "2026-11-28T09:15:00", "2026-11-28T09:15Z", "2026-11-28 09:15:00Z",
		"2026-11-28T09:15:00+01", "2026-11-28T09:15:00+0100", "2026-11-28T09:15:00+24:00",
		"2026-11-28T09:15:00+01:60", "2026-11-28T09:15:00,5Z", "2026-11-28T09:15:00.Z",
		"2026-11-28T09:15:00.5", "2026-13-28T09:15:00Z", "2026-00-28T09:15:00Z",
		"2026-11-31T09:15:00Z", "2026-11-00T09:15:00Z", "2100-02-29T09:15:00Z",
		"2026-11-28T24:00:00Z", "2026-11-28T09:60:00Z", "2026-11-28T09:15:60Z",
		"2026-11-28T09:15:00ZZ", "2026-11-28T09:15:00Z ", " 2026-11-28T09:15:00Z",
		"+2026-11-28T09:15:00Z", "2026-11-28T09:15:00+01:00:00", "２０２６-11-28T09:15:00Z",
		"2026-11-28T09:15:00.１Z", "2026-1-28T09:15:00Z",
	} {
		if got, ok := parseRFC3339(in); ok {
			t.Errorf("parseRFC3339(%q) = %d, want refusal", in, got)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for v, want := range map[string]int64{
		"0": 0, "-0": 0, "-0.0": 0, "215000": 215000, "215000.0": 215000, "2.15e5": 215000,
		"9223372036854775807": math.MaxInt64, "null": 0,
	} {
		l, err := Parse(record(`"duration_ms":`+v), testNow)
		if err != nil || l.DurationMS != want {
			t.Errorf("duration_ms %s: %d, %v; want %d", v, l.DurationMS, err, want)
		}
	}
	for v, want := range map[string]Reason{
		"-1": ReasonBadDuration, "-0.5": ReasonBadDuration, "1.5": ReasonBadDuration,
		"9223372036854775808": ReasonBadDuration, "1e19": ReasonBadDuration, "1e400": ReasonBadDuration,
		`"1"`: ReasonBadFieldType, "true": ReasonBadFieldType, "[]": ReasonBadFieldType, "{}": ReasonBadFieldType,
	} {
		wantReason(t, record(`"duration_ms":`+v), testNow, want)
	}
}

func TestParseTypeErrorsPerField(t *testing.T) {
	for _, f := range fieldNames {
		for _, v := range []string{`1`, `true`, `[]`, `{}`} {
			if f == FieldPlayedAt && v == `1` || f == FieldDurationMS && v == `1` {
				continue // numbers are valid there
			}
			// Replace or add the field.
			m := map[string]any{}
			if err := json.Unmarshal([]byte(minimal), &m); err != nil {
				t.Fatal(err)
			}
			m[f] = json.RawMessage(v)
			raw, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(raw, testNow)
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Reason != ReasonBadFieldType || ie.Field != f {
				t.Errorf("%s = %s: %v, want bad_field_type of %s", f, v, err, f)
			}
		}
	}
}

func TestParseNullIsAbsent(t *testing.T) {
	for i, f := range fieldNames {
		raw := []byte(strings.Replace(minimal, `{`, `{"`+f+`":null,`, 1))
		if i <= fTrackName {
			// Now a duplicate of a required field.
			wantReason(t, raw, testNow, ReasonDuplicateField)
			m := map[string]any{}
			_ = json.Unmarshal([]byte(minimal), &m)
			m[f] = nil
			raw, _ = json.Marshal(m)
			wantReason(t, raw, testNow, ReasonMissingField)
			continue
		}
		wantReason(t, raw, testNow, "")
	}
}

func TestParseDoesNotKeepRaw(t *testing.T) {
	raw := record(`"album_name":"In Rainbows","track_id":"t1","source":"s"`)
	l, err := Parse(raw, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := l
	for i := range raw {
		raw[i] = 'X'
	}
	if l != want || l.UserID != "alice" || l.AlbumName != "In Rainbows" {
		t.Fatalf("Listen changed with the buffer: %+v", l)
	}
}

func TestInvalidError(t *testing.T) {
	_, err := Parse(record(`"user_id":"bob"`), testNow)
	if got, want := err.Error(), "listen: invalid record: duplicate_field: user_id: appears more than once"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = Parse([]byte("[]"), testNow)
	if got, want := err.Error(), "listen: invalid record: not_object: a JSON array, not an object"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("ingest: %w", err)
	if ReasonOf(wrapped) != ReasonNotObject {
		t.Errorf("ReasonOf(wrapped) = %q", ReasonOf(wrapped))
	}
	if ReasonOf(errors.New("x")) != "" || ReasonOf(nil) != "" {
		t.Error("ReasonOf of a foreign error is not empty")
	}
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if seen[r] || r == "" || strings.ToLower(string(r)) != string(r) {
			t.Errorf("reason %q duplicate or not lower_snake", r)
		}
		seen[r] = true
	}
}

func TestParseEveryRecordValidates(t *testing.T) {
	// Parse's output passes Validate and is canonical, for the valid vectors.
	v := loadVectors(t)
	for _, c := range v.Validation {
		if !c.OK {
			continue
		}
		l, err := Parse(c.bytes(t), v.Now)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if err := l.Validate(v.Now); err != nil {
			t.Errorf("%s: Validate: %v", c.Name, err)
		}
		if l != l.Canonical() {
			t.Errorf("%s: not canonical: %+v", c.Name, l)
		}
	}
}

var benchRecords = map[string][]byte{
	"ascii":      []byte(`{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radiohead","track_name":"Reckoner","album_name":"In Rainbows","duration_ms":290000,"source":"lastfm"}`),
	"unicode_ms": []byte(`{"user_id":"björk_fan","played_at":1795857300123,"artist_name":"Sigur Rós","track_name":"Hoppípolla","album_name":"Takk...","track_id":"spotify:track:5jM0a7pqHOn5nB9dJk0Zsg","event_id":"e-1"}`),
}

// BenchmarkParse is the ingest hot path: one raw record to a Listen.
// BenchmarkParseReference measures plain json.Unmarshal of the same record
// into a Listen (no validation) for the ratio.
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"ascii", "unicode_ms"} {
		raw := benchRecords[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Parse(raw, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseReference(b *testing.B) {
	raw := []byte(`{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radiohead","track_name":"Reckoner","album_name":"In Rainbows","duration_ms":290000,"source":"lastfm"}`)
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var l Listen
			if err := json.Unmarshal(raw, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIdentityAndKeys: what the aggregator derives per listen, by the
// four methods and by Derive.
func BenchmarkIdentityAndKeys(b *testing.B) {
	for _, name := range []string{"ascii", "unicode_ms"} {
		l, err := Parse(benchRecords[name], testNow)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/methods", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = l.Identity()
				_ = l.ArtistKey()
				_ = l.TrackKey()
				_ = l.AlbumKey()
			}
		})
		b.Run(name+"/Derive", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = l.Derive()
			}
		})
	}
}

func BenchmarkCodecRoundTrip(b *testing.B) {
	l, err := Parse(benchRecords["ascii"], testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		data, err := Codec{}.Encode(l)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (Codec{}).Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
