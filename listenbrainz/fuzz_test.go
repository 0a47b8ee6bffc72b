package listenbrainz

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/topk-charts/topk/listen"
)

// FuzzParseSubmission: ParseSubmission never panics and answers either a
// submission or a 400 whose body is JSON; the answer is the same twice
// (no map order leaks into it); a body encoding/json finds invalid is a
// parse error; every accepted listen keeps ListenBrainz's guarantees, and
// maps to the event contract or returns an Error.
func FuzzParseSubmission(f *testing.F) {
	for _, b := range [][]byte{
		body("single", track("1443521965")),
		body("import", track("1443521965", `"release_name":" R "`), track(`"1443521966"`, `"additional_info":{"duration":"215","artist_mbids":["`+mbid1+`",""],"tags":["a"]}`)),
		body("playing_now", track("", `"additional_info":{"duration_ms":1000.5,"recording_mbid":"{`+mbid1+`}"}`)),
		body("single", track("1700001800")),
		body("single", `{"listened_at":1443521965,"track_metadata":{"artist_name":"a\u001bb","track_name":"`+strings.Repeat("x", 600)+`"}}`),
		body("single", track("1443521965", `"additional_info":{"x":[["\u0000"]],"k\u0000":1}`)),
		body("single", track("true", `"additional_info":{"tags":"rock","work_mbids":{"`+mbid1+`":1}}`)),
		body("import", "null", `"x"`, `[]`, `{}`),
		[]byte(`{"payload":{"a":1},"listen_type":"single"}`),
		[]byte(`{"a":"\ud800"}`),
		[]byte(`[1e400]`),
		[]byte("\xff"),
		nil,
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sub, err := ParseSubmission(b, testNow)
		sub2, err2 := ParseSubmission(b, testNow)
		if (sub == nil) == (err == nil) {
			t.Fatalf("submission %v and error %v", sub, err)
		}
		if err != nil {
			if err.Code != 400 || err.Message == "" {
				t.Fatalf("error %d %q", err.Code, err.Message)
			}
			out, e := err.MarshalJSON()
			if e != nil {
				t.Fatal(e)
			}
			var m map[string]any
			if e := json.Unmarshal(out, &m); e != nil || m["code"] != 400.0 || m["error"] != strings.ToValidUTF8(err.Message, "\ufffd") {
				t.Fatalf("body %s: %v", out, e)
			}
			if out2, _ := err2.MarshalJSON(); !bytes.Equal(out, out2) {
				t.Fatalf("two answers: %s and %s", out, out2)
			}
			if len(b) <= MaxPayloadBytes && !json.Valid(b) && !strings.HasPrefix(err.Message, "Cannot parse JSON document: ") {
				t.Fatalf("invalid JSON answered %q", err.Message)
			}
			return
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("invalid JSON accepted")
		}
		if a, c := mustMarshal(t, sub), mustMarshal(t, sub2); !bytes.Equal(a, c) {
			t.Fatalf("two answers: %s and %s", a, c)
		}
		if n := len(sub.Listens); n < 1 || n > MaxListensPerRequest || (sub.Type != ListenTypeImport && n != 1) {
			t.Fatalf("%s with %d listens", sub.Type, n)
		}
		for _, s := range sub.Listens {
			if s.TrackName == "" || s.ArtistName == "" || pyStrip(s.TrackName) != s.TrackName || pyStrip(s.ArtistName) != s.ArtistName || pyStrip(s.ReleaseName) != s.ReleaseName {
				t.Fatalf("names %q %q %q", s.ArtistName, s.TrackName, s.ReleaseName)
			}
			if strings.Contains(s.TrackName+s.ArtistName+s.ReleaseName, "\x00") {
				t.Fatal("a unicode null let through")
			}
			if sub.Type == ListenTypePlayingNow {
				if s.ListenedAt != 0 {
					t.Fatalf("playing_now at %d", s.ListenedAt)
				}
				continue
			}
			if s.ListenedAt < MinListenedAt || s.ListenedAt >= testNow.Unix()+3600 {
				t.Fatalf("listened_at %d", s.ListenedAt)
			}
			l, lerr := s.Listen("user", listen.Limits{}, testNow)
			if lerr != nil {
				if lerr.Code != 400 || lerr.Message == "" || lerr.Listen == nil {
					t.Fatalf("refusal %+v", lerr)
				}
				continue
			}
			if e := l.Validate(testNow); e != nil {
				t.Fatalf("mapped listen invalid: %v", e)
			}
			if rec, _ := json.Marshal(l); len(rec) > listen.MaxRecordBytes {
				t.Fatalf("record of %d bytes", len(rec))
			}
			for _, id := range []string{l.TrackID, l.ArtistID, l.AlbumID} {
				if u, ok := ParseMSID(id); id != "" && (!ok || u != id) {
					t.Fatalf("MBID %q not canonical", id)
				}
			}
			if l.Source != Source || l.DurationMS < 0 || l.DurationMS > MaxDurationMS {
				t.Fatalf("%+v", l)
			}
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
