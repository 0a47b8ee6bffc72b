package listen

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParse: Parse never panics; an error is always an *InvalidError with a
// known reason, and is not_json exactly when encoding/json disagrees about
// the syntax; an accepted record is a JSON object, passes Validate, is
// canonical, round-trips through Codec (and encoding/json) to the same
// Listen, and its state key splits back.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		minimal,
		`{"user_id":"björk fan","played_at":1795857300123,"artist_name":" Sigur\u00a0Rós ","track_name":"Hoppípolla","album_name":"Takk...","duration_ms":268000.0,"x":[{"y":null}]}`,
		`{"user_id":"a","played_at":"2026-11-28T10:15:00.5+01:00","artist_name":"\ud83c\udfb5","track_name":"b\u0000","user\u005fid":"c"}`,
		`{"user_id":"a","played_at":1.7958573e9,"artist_name":"a","track_name":"\ud800"}`,
		`[1,"x",{"a":true}]`,
		`{"a":1}{`,
		"",
	} {
		f.Add([]byte(seed))
	}
	known := map[Reason]bool{}
	for _, r := range Reasons() {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := Parse(raw, testNow)
		if err != nil {
			ie, ok := err.(*InvalidError)
			if !ok || !known[ie.Reason] {
				t.Fatalf("error %T %v", err, err)
			}
			if len(raw) > 0 && len(raw) <= MaxRecordBytes {
				syntaxOK := utf8.Valid(raw) && json.Valid(raw)
				if syntaxOK == (ie.Reason == ReasonNotJSON) {
					t.Fatalf("reason %s, but utf8+json.Valid = %v", ie.Reason, syntaxOK)
				}
			}
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("accepted, but encoding/json: %v", err)
		}
		if err := l.Validate(testNow); err != nil {
			t.Fatalf("accepted, but Validate: %v", err)
		}
		if l != l.Canonical() {
			t.Fatalf("not canonical: %+v", l)
		}
		data, err := Codec{}.Encode(l)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		got, err := Codec{}.Decode(data)
		if err != nil {
			t.Fatalf("Decode(%s): %v", data, err)
		}
		if got.(Listen) != l {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, l)
		}
		var std Listen
		if err := json.Unmarshal(data, &std); err != nil || std != l {
			t.Fatalf("encoding/json read %s as %+v, %v", data, std, err)
		}
		if len(data) <= MaxRecordBytes {
			if again, err := Parse(data, testNow); err != nil || again != l {
				t.Fatalf("Parse(Encode) = %+v, %v", again, err)
			}
		}
		if u, d, ok := SplitKey(l.Key()); !ok || u != l.UserID || d.Format(DayLayout) != l.Day() {
			t.Fatalf("SplitKey(%q) = %q, %v, %v", l.Key(), u, d, ok)
		}
	})
}

// FuzzNormalize: Normalize and CollapseSpace are idempotent and never
// panic; Normalize leaves no whitespace but single inner ASCII spaces;
// foldString is fold.String.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Radiohead", "Beyonce\u0301", "İstanbul ß", "\u0390\u1e9b\u0323", " a\u3000\tb ", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if got, want := foldString(s), fold.String(s); got != want {
			t.Fatalf("foldString(%+q) = %+q, fold.String %+q", s, got, want)
		}
		if !utf8.ValidString(s) {
			return
		}
		if Normalize(n) != n {
			t.Fatalf("Normalize(%+q) = %+q, again %+q", s, n, Normalize(n))
		}
		if c := CollapseSpace(s); CollapseSpace(c) != c {
			t.Fatalf("CollapseSpace not idempotent on %+q", s)
		}
		if CollapseSpace(n) != n {
			t.Fatalf("Normalize(%+q) = %+q has whitespace left", s, n)
		}
	})
}
