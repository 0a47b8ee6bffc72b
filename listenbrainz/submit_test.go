package listenbrainz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/listen"
)

// testNow is the server's clock in these tests.
var testNow = time.Unix(1700000000, 0)

// body is a submission of listen type typ with the given listens (JSON).
func body(typ string, listens ...string) []byte {
	return []byte(`{"listen_type":"` + typ + `","payload":[` + strings.Join(listens, ",") + `]}`)
}

// track is a listen of ListenBrainz: listened_at (JSON, or "" for none) and
// the members of track_metadata after the names "A" and "T".
func track(listenedAt string, more ...string) string {
	tm := `{"artist_name":"A","track_name":"T"`
	for _, m := range more {
		tm += "," + m
	}
	tm += "}"
	if listenedAt == "" {
		return `{"track_metadata":` + tm + `}`
	}
	return `{"listened_at":` + listenedAt + `,"track_metadata":` + tm + `}`
}

// info is a single listen whose additional_info has the given members.
func info(members ...string) []byte {
	return body("single", track("1443521965", `"additional_info":{`+strings.Join(members, ",")+`}`))
}

const (
	tooHigh = "Value for key listened_at is too high."
	tooLow  = "Value for key listened_at is too low. listened_at timestamp should be greater than 1033410600 (2002-10-01 00:00:00 UTC)."
	notInt  = "JSON document must contain an int value for listened_at."
	mbid1   = "9541592c-0102-4b94-93cc-ee0f3ef89d63"
)

// TestParseSubmissionErrors has a case for every message of
// ParseSubmission, in ListenBrainz's order, each asserted exactly.
func TestParseSubmissionErrors(t *testing.T) {
	nulls := strings.TrimSuffix(strings.Repeat("null,", 1001), ",")
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"payload too large", bytes.Repeat([]byte(" "), MaxPayloadBytes+1), "Payload too large. Payload cannot exceed 10240000 bytes"},
		{"empty body", nil, "Cannot parse JSON document: Input is a zero-length, empty document: line 1 column 1 (char 0)"},
		{"only whitespace", []byte(" \n"), "Cannot parse JSON document: input data is empty: line 1 column 1 (char 0)"},
		{"truncated", []byte(`{"payload":[`), "Cannot parse JSON document: unexpected end of data"},
		{"syntax", []byte(`{"payload" 1}`), "Cannot parse JSON document: invalid character '1' after object key"},
		{"trailing comma", []byte(`[1,]`), "Cannot parse JSON document: invalid character ']' looking for beginning of value"},
		{"trailing content", []byte(`{} x`), "Cannot parse JSON document: unexpected content after document"},
		{"two documents", []byte(`{}{}`), "Cannot parse JSON document: unexpected content after document"},
		{"invalid UTF-8", []byte("{\"a\":\"\xff\"}"), "Cannot parse JSON document: not valid UTF-8 at byte 6"},
		{"lone high surrogate", []byte(`{"a":"\ud800x"}`), "Cannot parse JSON document: no low surrogate in string"},
		{"lone low surrogate", []byte(`{"a":"\udc00"}`), "Cannot parse JSON document: invalid high surrogate in string"},
		{"too deep", []byte(strings.Repeat("[", 1025) + strings.Repeat("]", 1025)), "Cannot parse JSON document: array and object recursion depth exceeded"},
		{"infinite number", []byte(`{"a":-1e400}`), "Cannot parse JSON document: number is infinity when parsed as double"},
		{"top level array", []byte(`[]`), "Invalid JSON document submitted. Top level of JSON document should be a json object."},
		{"top level null", []byte(`null`), "Invalid JSON document submitted. Top level of JSON document should be a json object."},
		{"no payload", []byte(`{"listen_type":"single"}`), "Invalid JSON document submitted."},
		{"payload a string", []byte(`{"listen_type":"single","payload":"x"}`), "The payload in the JSON document should be a list of listens."},
		{"payload empty", body("single"), "JSON document does not contain any listens"},
		{"1001 listens", body("import", nulls), "Too many listens. You may not submit more than 1000 listens at once."},
		{"average size", []byte(`{"listen_type":"import","pad":"` + strings.Repeat("x", 2*MaxListenBytes) + `","payload":[null,null]}`), "JSON document is too large. Each listens may not be larger than 10240 bytes."},
		{"no listen_type", []byte(`{"payload":[null]}`), "Invalid JSON document submitted."},
		{"listen_type unknown", body("SINGLE", "null"), "JSON document requires a valid listen_type key."},
		{"listen_type not a string", []byte(`{"listen_type":["single"],"payload":[null]}`), "JSON document requires a valid listen_type key."},
		{"single with two", body("single", track("1443521965"), track("1443521965")), "JSON document contains more than listen for a single/playing_now. It should contain only one."},
		{"playing_now with two", body("playing_now", track(""), track("")), "JSON document contains more than listen for a single/playing_now. It should contain only one."},

		{"null listen", body("import", track("1443521965"), "null"), "Listen is empty and cannot be validated."},
		{"no listened_at", body("single", track("")), "JSON document must contain the key listened_at at the top level."},
		{"listen not an object", body("import", `"listen"`), "JSON document must contain the key listened_at at the top level."},
		{"listened_at null", body("single", track("null")), notInt},
		{"listened_at 1.5 string", body("single", track(`"1.5"`)), notInt},
		{"listened_at words", body("single", track(`"abc"`)), notInt},
		{"listened_at hex", body("single", track(`"0x10"`)), notInt},
		{"listened_at exponent string", body("single", track(`"1e9"`)), notInt},
		{"listened_at double underscore", body("single", track(`"1__443521965"`)), notInt},
		{"listened_at separator", body("single", track(`"\u001c1443521965"`)), notInt},
		{"listened_at array", body("single", track(`[1443521965]`)), notInt},
		{"listened_at object", body("single", track(`{}`)), notInt},
		{"listened_at now+1h", body("single", track("1700003600")), tooHigh},
		{"listened_at huge", body("single", track("123456789012345678901234567890")), tooHigh},
		{"listened_at huge string", body("single", track(`"99999999999999999999999"`)), tooHigh},
		{"listened_at before 2002-10", body("single", track("1033430399")), tooLow},
		{"listened_at true", body("single", track("true")), tooLow},
		{"listened_at negative", body("single", track("-1443521965.5")), tooLow},
		{"no track_metadata", body("single", `{"listened_at":1443521965}`), "JSON document must contain the key track_metadata at the top level."},
		{"extra key", body("single", `{"listened_at":1443521965,"track_metadata":{},"x":1}`), "JSON document may only contain listened_at and track_metadata top level keys"},
		{"playing_now listened_at", body("playing_now", track("1443521965")), "JSON document must not contain listened_at while submitting playing_now."},
		{"playing_now listened_at null", body("playing_now", track("null")), "JSON document must not contain listened_at while submitting playing_now."},
		{"playing_now no track_metadata", body("playing_now", `{}`), "JSON document must contain the key track_metadata at the top level."},
		{"playing_now extra key", body("playing_now", `{"track_metadata":{},"x":1}`), "JSON document may only contain track_metadata as top level key when submitting playing_now."},
		{"track_metadata null", body("single", `{"listened_at":1443521965,"track_metadata":null}`), "JSON document may not have track_metadata with null value."},
		{"track_metadata a string", body("single", `{"listened_at":1443521965,"track_metadata":"T"}`), "JSON document does not contain required field track_metadata.track_name."},
		{"no track_name", body("single", `{"listened_at":1443521965,"track_metadata":{"artist_name":"A"}}`), "JSON document does not contain required field track_metadata.track_name."},
		{"no artist_name", body("single", `{"listened_at":1443521965,"track_metadata":{"track_name":"T"}}`), "JSON document does not contain required field track_metadata.artist_name."},
		{"track_name a number", body("single", `{"listened_at":1443521965,"track_metadata":{"track_name":1,"artist_name":"A"}}`), "track_metadata.track_name must be a single string."},
		{"artist_name null", body("single", `{"listened_at":1443521965,"track_metadata":{"track_name":"T","artist_name":null}}`), "track_metadata.artist_name must be a single string."},
		{"release_name a list", body("single", track("1443521965", `"release_name":["R"]`)), "track_metadata.release_name must be a single string."},
		{"track_name blank", body("single", `{"listened_at":1443521965,"track_metadata":{"track_name":" \u3000\u001f","artist_name":"A"}}`), "field track_metadata.track_name is empty."},
		{"artist_name empty", body("single", `{"listened_at":1443521965,"track_metadata":{"track_name":"T","artist_name":""}}`), "field track_metadata.artist_name is empty."},
		{"51 tags", info(`"tags":[` + strings.TrimSuffix(strings.Repeat(`"t",`, 51), ",") + `]`), "JSON document may not contain more than 50 items in track_metadata.additional_info.tags."},
		{"tags a 51-character string", info(`"tags":"` + strings.Repeat("t", 51) + `"`), "JSON document may not contain more than 50 items in track_metadata.additional_info.tags."},
		{"tag of 65 characters", info(`"tags":["` + strings.Repeat("é", 65) + `"]`), "JSON document may not contain track_metadata.additional_info.tags longer than 64 characters."},
		{"duration and duration_ms", info(`"duration":1`, `"duration_ms":null`), "JSON document should not contain both duration and duration_ms."},
		{"duration 0", info(`"duration":0`), "Value for duration is invalid, should be a positive integer."},
		{"duration 0.9", info(`"duration":0.9`), "Value for duration is invalid, should be a positive integer."},
		{"duration false", info(`"duration":false`), "Value for duration is invalid, should be a positive integer."},
		{"duration null", info(`"duration":null`), "Value for duration is invalid, should be a positive integer."},
		{"duration nan", info(`"duration":"nan"`), "Value for duration is invalid, should be a positive integer."},
		{"duration -inf", info(`"duration":"-inf"`), "Value for duration is invalid, should be a positive integer."},
		{"duration words", info(`"duration":"3 min"`), "Value for duration is invalid, should be a positive integer."},
		{"duration too large", info(`"duration":2073601`), "Value for duration is too large, max permitted value is 2073600"},
		{"duration inf", info(`"duration":"Infinity"`), "Value for duration is too large, max permitted value is 2073600"},
		{"duration_ms -1", info(`"duration_ms":-1`), "Value for duration_ms is invalid, should be a positive integer."},
		{"duration_ms too large", info(`"duration_ms":"2073600001"`), "Value for duration_ms is too large, max permitted value is 2073600000"},
		{"release_mbid", info(`"release_mbid":"not-a-uuid"`), "release_mbid MBID format invalid."},
		{"recording_mbid a number", info(`"recording_mbid":5`), "recording_mbid MBID format invalid."},
		{"release_group_mbid short", info(`"release_group_mbid":"9541592c-0102-4b94-93cc"`), "release_group_mbid MBID format invalid."},
		{"track_mbid true", info(`"track_mbid":true`), "track_mbid MBID format invalid."},
		{"artist_mbids item", info(`"artist_mbids":["` + mbid1 + `","bad"]`), "artist_mbids MBID format invalid."},
		{"artist_mbids a string", info(`"artist_mbids":"` + mbid1 + `"`), "artist_mbids MBID format invalid."},
		{"work_mbids a number", info(`"work_mbids":5`), "work_mbids MBID format invalid."},
		{"unicode null in a name", body("single", `{"listened_at":1443521965,"track_metadata":{"artist_name":"A\u0000","track_name":"T"}}`), "A\x00 contains a unicode null"},
		{"unicode null in a list", info(`"tags":["rock\u0000"]`), "rock\x00 contains a unicode null"},
		{"unicode null in a key", info(`"k\u0000":1`), "k\x00 contains a unicode null"},
		{"unicode null deep in lists", info(`"l":[[{"a":"x\u0000"}]]`), "x\x00 contains a unicode null"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub, err := ParseSubmission(c.body, testNow)
			if err == nil {
				t.Fatalf("accepted: %+v", sub)
			}
			if sub != nil {
				t.Errorf("a submission with the error")
			}
			if err.Code != 400 || err.Message != c.want {
				t.Errorf("got %d %q\nwant 400 %q", err.Code, err.Message, c.want)
			}
		})
		seen[c.want] = true
	}
	t.Logf("%d cases, %d messages", len(cases), len(seen))
}

// TestParseSubmissionBounds: the accepted side of each limit.
func TestParseSubmissionBounds(t *testing.T) {
	nulls := strings.TrimSuffix(strings.Repeat(track("1443521965")+",", 1000), ",")
	for name, b := range map[string][]byte{
		"1000 listens":             body("import", nulls),
		"listened_at now+3599":     body("single", track("1700003599")),
		"listened_at 2002-10-1":    body("single", track("1033430400")),
		"50 tags of 64 characters": info(`"tags":[` + strings.TrimSuffix(strings.Repeat(`"`+strings.Repeat("é", 64)+`",`, 50), ",") + `]`),
		"duration max":             info(`"duration":2073600.9`),
		"duration_ms max":          info(`"duration_ms":2073600000`),
		"depth 1024":               info(`"x":` + strings.Repeat("[", 1019) + strings.Repeat("]", 1019)),
		"surrogate pair":           body("single", track("1443521965", `"release_name":"\ud83d\ude00"`)),
		"average size":             []byte(`{"listen_type":"single","pad":"` + strings.Repeat("x", MaxListenBytes-200) + `","payload":[` + track("1443521965") + `]}`),
	} {
		if _, err := ParseSubmission(b, testNow); err != nil {
			t.Errorf("%s: %s", name, err.Message)
		}
	}
	// A body of exactly MaxPayloadBytes is read (and then found empty).
	_, err := ParseSubmission(bytes.Repeat([]byte(" "), MaxPayloadBytes), testNow)
	if err == nil || !strings.HasPrefix(err.Message, "Cannot parse JSON document: ") {
		t.Errorf("MaxPayloadBytes of spaces: %v", err)
	}
}

// TestListenedAtCoercion: listened_at as Python's int() reads it.
func TestListenedAtCoercion(t *testing.T) {
	for in, want := range map[string]int64{
		`1443521965`:                1443521965,
		`1443521965.9`:              1443521965,
		`1.4435219659e9`:            1443521965,
		`16999999999e-1`:            1699999999,
		`1033430400.0`:              1033430400,
		`"1443521965"`:              1443521965,
		`" 1443521965\n"`:           1443521965,
		`"\u00a0+1443521965\u3000"`: 1443521965,
		`"1_443_521_965"`:           1443521965,
		`"0001443521965"`:           1443521965,
		`"١٤٤٣٥٢١٩٦٥"`:              1443521965, // Arabic-Indic digits
		`"𝟏𝟒𝟒𝟑𝟓𝟐𝟏𝟗𝟔𝟓"`: 1443521965, // mathematical bold digits
	} {
		sub, err := ParseSubmission(body("single", track(in)), testNow)
		if err != nil {
			t.Errorf("%s: %s", in, err.Message)
			continue
		}
		s := sub.Listens[0]
		if s.ListenedAt != want {
			t.Errorf("%s: ListenedAt %d, want %d", in, s.ListenedAt, want)
		}
		// Stored back as the integer, as ListenBrainz does.
		if got := s.Object["listened_at"]; got != json.Number(fmt.Sprint(want)) {
			t.Errorf("%s: Object listened_at %#v", in, got)
		}
	}
}

// TestDurationCoercion: duration and duration_ms as int(float(x)).
func TestDurationCoercion(t *testing.T) {
	for in, want := range map[string]json.Number{
		`1`:           "1",
		`1.9`:         "1",
		`true`:        "1",
		`"200"`:       "200",
		`" 2_0 "`:     "20",
		`"1e3"`:       "1000",
		`"1_0.5e1"`:   "105",
		`".5e1"`:      "5",
		`"٣"`:         "3",
		`2073600.999`: "2073600",
		`"+7."`:       "7",
	} {
		sub, err := ParseSubmission(info(`"duration":`+in), testNow)
		if err != nil {
			t.Errorf("%s: %s", in, err.Message)
			continue
		}
		if got := sub.Listens[0].AdditionalInfo["duration"]; got != want {
			t.Errorf("%s: duration %#v, want %s", in, got, want)
		}
	}
	for _, in := range []string{`"1_e3"`, `"1e_3"`, `"_1"`, `"1_"`, `"0x10"`, `"in_f"`, `"1.2.3"`, `"."`, `"e5"`, `"\u001c5"`, `[]`, `{}`} {
		_, err := ParseSubmission(info(`"duration":`+in), testNow)
		if err == nil || err.Message != "Value for duration is invalid, should be a positive integer." {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// TestNormalisations: what ListenBrainz changes in a listen it accepts.
func TestNormalisations(t *testing.T) {
	b := body("import", `{"listened_at":"1443521965","track_metadata":{
		"artist_name":" \u00a0Artist\u001f","track_name":"\tTrack  ","release_name":"  ",
		"additional_info":{"release_mbid":"","recording_mbid":null,"track_mbid":0,"release_group_mbid":"{`+strings.ToUpper(mbid1)+`}",
			"artist_mbids":[null,"","`+mbid1+`"],"work_mbids":[],"tags":["a","b"],"duration_ms":"5000.5","x":{"y":[1,"z"]}}}}`,
		`{"listened_at":1443521966,"track_metadata":{"artist_name":"A","track_name":"T","release_name":" R ","additional_info":{"artist_mbids":{"`+mbid1+`":1,"":2}}}}`)
	sub, err := ParseSubmission(b, testNow)
	if err != nil {
		t.Fatal(err.Message)
	}
	if sub.Type != ListenTypeImport || len(sub.Listens) != 2 {
		t.Fatalf("%+v", sub)
	}
	s := sub.Listens[0]
	if s.ListenedAt != 1443521965 || s.ArtistName != "Artist" || s.TrackName != "Track" || s.ReleaseName != "" {
		t.Errorf("%+v", s)
	}
	wantInfo := map[string]any{
		"release_group_mbid": "{" + strings.ToUpper(mbid1) + "}",
		"artist_mbids":       []any{mbid1},
		"tags":               []any{"a", "b"},
		"duration_ms":        json.Number("5000"),
		"x":                  map[string]any{"y": []any{json.Number("1"), "z"}},
	}
	if !reflect.DeepEqual(s.AdditionalInfo, wantInfo) {
		t.Errorf("AdditionalInfo\n got %#v\nwant %#v", s.AdditionalInfo, wantInfo)
	}
	wantObject := map[string]any{
		"listened_at": json.Number("1443521965"),
		"track_metadata": map[string]any{
			"artist_name": "Artist", "track_name": "Track", "additional_info": wantInfo,
		},
	}
	if !reflect.DeepEqual(s.Object, wantObject) {
		t.Errorf("Object\n got %#v\nwant %#v", s.Object, wantObject)
	}
	s = sub.Listens[1]
	if s.ReleaseName != "R" || !reflect.DeepEqual(s.AdditionalInfo["artist_mbids"], []any{mbid1}) {
		t.Errorf("%+v", s)
	}

	// playing_now: no listened_at; additional_info that is not an object is
	// let through and left out.
	sub, err = ParseSubmission(body("playing_now", `{"track_metadata":{"artist_name":"A","track_name":"T","additional_info":"x"}}`), testNow)
	if err != nil {
		t.Fatal(err.Message)
	}
	if s := sub.Listens[0]; s.ListenedAt != 0 || s.AdditionalInfo != nil || s.Object["track_metadata"].(map[string]any)["additional_info"] != "x" {
		t.Errorf("%+v", s)
	}
}

// TestErrorBody: ListenBrainz's body, the listen's keys merged for a
// listen's error, as it was when the error was found.
func TestErrorBody(t *testing.T) {
	check := func(t *testing.T, e *Error, want string) {
		t.Helper()
		got, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	_, e := ParseSubmission([]byte(`[]`), testNow)
	check(t, e, `{"code":400,"error":"Invalid JSON document submitted. Top level of JSON document should be a json object."}`)

	// listened_at already made an int, track_name already trimmed.
	_, e = ParseSubmission(body("single", `{"listened_at":"1443521965","track_metadata":{"track_name":" T ","artist_name":"","code":1}}`), testNow)
	check(t, e, `{"code":400,"error":"field track_metadata.artist_name is empty.","listened_at":1443521965,"track_metadata":{"artist_name":"","code":1,"track_name":"T"}}`)

	// "code" and "error" of the listen give way.
	_, e = ParseSubmission(body("playing_now", `{"track_metadata":{},"code":7,"error":"x"}`), testNow)
	check(t, e, `{"code":400,"error":"JSON document may only contain track_metadata as top level key when submitting playing_now.","track_metadata":{}}`)

	// The unicode null's body is the innermost object holding the string.
	_, e = ParseSubmission(info(`"x":{"y":"a\u0000<b>"}`), testNow)
	check(t, e, `{"code":400,"error":"a\u0000\u003cb\u003e contains a unicode null","y":"a\u0000\u003cb\u003e"}`)
	raw, _ := e.MarshalJSON() // directly: not HTML-escaped, like Flask
	if want := `{"code":400,"error":"a\u0000<b> contains a unicode null","y":"a\u0000<b>"}`; string(raw) != want {
		t.Errorf("got  %s\nwant %s", raw, want)
	}

	// A payload that is an object is copied too; a null listen is not.
	_, e = ParseSubmission([]byte(`{"payload":{"a":1},"listen_type":"single"}`), testNow)
	check(t, e, `{"a":1,"code":400,"error":"The payload in the JSON document should be a list of listens."}`)
	_, e = ParseSubmission(body("single", "null"), testNow)
	check(t, e, `{"code":400,"error":"Listen is empty and cannot be validated."}`)

	check(t, NewError(401, "Invalid authorization token."), `{"code":401,"error":"Invalid authorization token."}`)
	if NewError(429, "x").Error() != "x" {
		t.Error("Error()")
	}
}

// TestListen: the mapping to the event contract.
func TestListen(t *testing.T) {
	sub, err := ParseSubmission(body("single", track("1699999000",
		`"release_name":" Album "`,
		`"additional_info":{"duration":215,"recording_mbid":"`+strings.ToUpper(mbid1)+`",
			"release_mbid":"urn:uuid:00000000-0000-4000-8000-000000000001",
			"artist_mbids":["","{`+mbid1+`}","00000000-0000-4000-8000-000000000002"],"tags":["x"]}`)), testNow)
	if err != nil {
		t.Fatal(err.Message)
	}
	l, err := sub.Listens[0].Listen("alice", listen.Limits{}, testNow)
	if err != nil {
		t.Fatal(err.Message)
	}
	want := listen.Listen{
		UserID:     "alice",
		PlayedAt:   time.Unix(1699999000, 0).UTC(),
		ArtistName: "A",
		TrackName:  "T",
		AlbumName:  "Album",
		TrackID:    mbid1,
		ArtistID:   mbid1,
		AlbumID:    "00000000-0000-4000-8000-000000000001",
		DurationMS: 215000,
		Source:     "listenbrainz",
	}
	if l != want {
		t.Errorf("got  %+v\nwant %+v", l, want)
	}

	sub, _ = ParseSubmission(info(`"duration_ms":1234.5`), testNow)
	if l, _ := sub.Listens[0].Listen("alice", listen.Limits{}, testNow); l.DurationMS != 1234 || l.TrackID != "" || l.AlbumName != "" {
		t.Errorf("%+v", l)
	}
}

// TestListenRefused: what ListenBrainz accepts and the contract does not.
func TestListenRefused(t *testing.T) {
	long := strings.Repeat("n", 600)
	wide := strings.Repeat("<", 1500)
	cases := []struct {
		name   string
		listen string
		limits listen.Limits
		user   string
		want   string
	}{
		{"listened_at 30 minutes ahead", track("1700001800"), listen.Limits{}, "alice",
			"Value for key listened_at is too high for this server: it accepts listened_at at most 10 minutes ahead of its clock, where ListenBrainz allows one hour."},
		{"track_name too long", `{"listened_at":1443521965,"track_metadata":{"artist_name":"A","track_name":"` + long + `"}}`, listen.Limits{}, "alice",
			"track_metadata.track_name is too long for this server: 600 characters, over its limit of 512."},
		{"release_name over a configured limit", track("1443521965", `"release_name":"`+long+`"`), listen.Limits{MaxNameChars: 100}, "alice",
			"track_metadata.release_name is too long for this server: 600 characters, over its limit of 100."},
		{"control character", `{"listened_at":1443521965,"track_metadata":{"artist_name":"a\u001bb","track_name":"T"}}`, listen.Limits{}, "alice",
			"track_metadata.artist_name contains a control character, which this server does not accept in names (of U+0000–U+001F and U+007F–U+009F, only whitespace)."},
		{"user name", track("1443521965"), listen.Limits{}, "a|b",
			"This server cannot store listens of this user name (contains '|')."},
		{"record too large", `{"listened_at":1443521965,"track_metadata":{"artist_name":"` + wide + `","track_name":"` + wide + `","release_name":"` + wide + `"}}`, listen.Limits{MaxNameChars: 2000}, "alice",
			"This listen is too large for this server: as its record it takes 27127 bytes, over the limit of 10240 bytes."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub, err := ParseSubmission(body("single", c.listen), testNow)
			if err != nil {
				t.Fatalf("ListenBrainz's rules refuse it: %s", err.Message)
			}
			l, err := sub.Listens[0].Listen(c.user, c.limits, testNow)
			if err == nil {
				t.Fatalf("mapped: %+v", l)
			}
			if err.Code != 400 || err.Message != c.want {
				t.Errorf("got %d %q\nwant 400 %q", err.Code, err.Message, c.want)
			}
			if !reflect.DeepEqual(err.Listen, sub.Listens[0].Object) {
				t.Errorf("the error does not carry the listen: %v", err.Listen)
			}
		})
	}
}
