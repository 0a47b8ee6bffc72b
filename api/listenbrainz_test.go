package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/listenbrainz"
)

// The ListenBrainz routes on the fakes: answers are checked against
// counts made here from the test world's listens, not the service's.

type lbTokens map[string]string

func (f lbTokens) Authenticate(_ context.Context, token string) (string, bool, error) {
	u, ok := f[token]
	return u, ok, nil
}

type fakePublisher struct {
	mu      sync.Mutex
	batches [][]listen.Listen
	deletes []producedRecord
	err     error
}

// producedRecord is a record as crawler.KafkaPublisher produces it.
type producedRecord struct {
	key, value, source string
}

func (p *fakePublisher) PublishDelete(_ context.Context, d listen.Delete, source string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.deletes = append(p.deletes, producedRecord{d.UserID, string(d.Encode()), source})
	return nil
}

func (p *fakePublisher) Publish(_ context.Context, batch []listen.Listen) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.batches = append(p.batches, batch)
	return nil
}

type fakeNowPlaying struct {
	mu  sync.Mutex
	v   map[string][]byte
	ttl map[string]time.Duration
}

func (n *fakeNowPlaying) SetNowPlaying(_ context.Context, user string, v []byte, ttl time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.v == nil {
		n.v, n.ttl = map[string][]byte{}, map[string]time.Duration{}
	}
	n.v[user], n.ttl[user] = v, ttl
	return nil
}

func (n *fakeNowPlaying) GetNowPlaying(_ context.Context, user string) ([]byte, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.v[user]
	return v, ok, nil
}

type lbFixture struct {
	*fixture
	pub *fakePublisher
	np  *fakeNowPlaying
}

const aliceToken = "6f1c5a8e-0000-4000-8000-00000000a11c"

func newLBFixture(t *testing.T, o fixtureOpts) *lbFixture {
	t.Helper()
	f := &lbFixture{fixture: newFixture(t, o), pub: &fakePublisher{}, np: &fakeNowPlaying{}}
	f.srv.MountListenBrainz(ListenBrainzConfig{Charts: f.svc, Tokens: lbTokens{aliceToken: "alice"}, Publisher: f.pub, NowPlaying: f.np})
	return f
}

// send serves one request with a body and headers.
func (f *lbFixture) send(method, path, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.Echo().ServeHTTP(rec, req)
	return rec
}

// lbBody decodes a JSON answer.
func lbBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%d %q: %v", rec.Code, rec.Body.String(), err)
	}
	return m
}

// wantLBError checks a ListenBrainz error answer: status and message.
func wantLBError(t *testing.T, rec *httptest.ResponseRecorder, code int, msg string) {
	t.Helper()
	m := lbBody(t, rec)
	if rec.Code != code || m["code"] != float64(code) || m["error"] != msg {
		t.Fatalf("got %d %s, want %d with error %q", rec.Code, rec.Body.String(), code, msg)
	}
}

func TestLBValidateToken(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	for _, tc := range []struct {
		name, path string
		header     []string
		valid      bool
	}{
		{"header", "/1/validate-token", []string{"Authorization", "Token " + aliceToken}, true},
		{"query", "/1/validate-token?token=" + aliceToken, nil, true},
		{"header wins", "/1/validate-token?token=nope", []string{"Authorization", "token " + aliceToken}, true},
		{"unknown", "/1/validate-token?token=nope", nil, false},
	} {
		rec := f.send(http.MethodGet, tc.path, "", tc.header...)
		m := lbBody(t, rec)
		if rec.Code != 200 || m["valid"] != tc.valid || m["code"] != float64(200) {
			t.Errorf("%s: %d %v", tc.name, rec.Code, m)
		}
		if tc.valid && (m["user_name"] != "alice" || m["message"] != "Token valid.") {
			t.Errorf("%s: %v", tc.name, m)
		}
		if !tc.valid && m["message"] != "Token invalid." {
			t.Errorf("%s: %v", tc.name, m)
		}
	}
	wantLBError(t, f.send(http.MethodGet, "/1/validate-token", ""), 400, "You need to provide an Authorization token.")
}

func TestLBSubmit(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	auth := []string{"Authorization", "Token " + aliceToken}
	at := testNow.Add(-time.Hour).Unix()
	body := fmt.Sprintf(`{"listen_type":"import","payload":[
		{"listened_at":%d,"track_metadata":{"artist_name":" Radiohead ","track_name":"Airbag","release_name":"OK Computer",
		 "additional_info":{"duration_ms":284000,"recording_mbid":"A6A6A6A6-1111-4222-8333-444455556666","tags":["rock"]}}},
		{"listened_at":"%d","track_metadata":{"artist_name":"Björk","track_name":"Jóga"}}]}`, at, at+300)
	rec := f.send(http.MethodPost, "/1/submit-listens", body, auth...)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("import: %d %s", rec.Code, rec.Body.String())
	}
	if len(f.pub.batches) != 1 || len(f.pub.batches[0]) != 2 {
		t.Fatalf("published %v", f.pub.batches)
	}
	l := f.pub.batches[0][0]
	want := listen.Listen{UserID: "alice", PlayedAt: time.Unix(at, 0).UTC(), ArtistName: "Radiohead", TrackName: "Airbag", AlbumName: "OK Computer",
		TrackID: "a6a6a6a6-1111-4222-8333-444455556666", DurationMS: 284000, Source: "listenbrainz"}
	if l != want {
		t.Errorf("first listen\n got %+v\nwant %+v", l, want)
	}
	if l := f.pub.batches[0][1]; l.PlayedAt.Unix() != at+300 || l.ArtistName != "Björk" || l.UserID != "alice" {
		t.Errorf("second listen %+v", l)
	}

	// A single listen; then Kafka down: 503, and the next works again.
	single := fmt.Sprintf(`{"listen_type":"single","payload":[{"listened_at":%d,"track_metadata":{"artist_name":"a","track_name":"t"}}]}`, at)
	if rec := f.send(http.MethodPost, "/1/submit-listens", single, auth...); rec.Code != 200 {
		t.Fatalf("single: %d %s", rec.Code, rec.Body.String())
	}
	f.pub.err = errors.New("kafka: not acknowledged")
	rec = f.send(http.MethodPost, "/1/submit-listens", single, auth...)
	if m := lbBody(t, rec); rec.Code != 503 || m["code"] != float64(503) {
		t.Fatalf("kafka down: %d %s", rec.Code, rec.Body.String())
	}
	f.pub.err = nil
	if rec := f.send(http.MethodPost, "/1/submit-listens", single, auth...); rec.Code != 200 || len(f.pub.batches) != 3 {
		t.Fatalf("after kafka is back: %d %s, %d batches", rec.Code, rec.Body.String(), len(f.pub.batches))
	}
}

// One test per documented error: ListenBrainz's status and message, and
// nothing published.
func TestLBSubmitErrors(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	auth := []string{"Authorization", "Token " + aliceToken}
	at := testNow.Add(-time.Hour).Unix()
	ok := fmt.Sprintf(`{"listened_at":%d,"track_metadata":{"artist_name":"a","track_name":"t"}}`, at)
	many := make([]string, 1001)
	for i := range many {
		many[i] = ok
	}
	for _, tc := range []struct {
		name, body string
		header     []string
		code       int
		msg        string
	}{
		{"no header", `{}`, nil, 401, "You need to provide an Authorization header."},
		{"no token", `{}`, []string{"Authorization", "Token"}, 401, "Provided Authorization header is invalid."},
		{"bad token", `{}`, []string{"Authorization", "Token nope"}, 401, "Invalid authorization token."},
		{"bad listen_type", `{"listen_type":"often","payload":[` + ok + `]}`, auth, 400, "JSON document requires a valid listen_type key."},
		{"missing payload", `{"listen_type":"single"}`, auth, 400, "Invalid JSON document submitted."},
		{"empty payload", `{"listen_type":"import","payload":[]}`, auth, 400, "JSON document does not contain any listens"},
		{"too many", `{"listen_type":"import","payload":[` + strings.Join(many, ",") + `]}`, auth, 400, "Too many listens. You may not submit more than 1000 listens at once."},
		{"two singles", `{"listen_type":"single","payload":[` + ok + `,` + ok + `]}`, auth, 400, "JSON document contains more than listen for a single/playing_now. It should contain only one."},
		{"missing track_name", fmt.Sprintf(`{"listen_type":"single","payload":[{"listened_at":%d,"track_metadata":{"artist_name":"a"}}]}`, at), auth, 400, "JSON document does not contain required field track_metadata.track_name."},
		{"missing listened_at", `{"listen_type":"single","payload":[{"track_metadata":{"artist_name":"a","track_name":"t"}}]}`, auth, 400, "JSON document must contain the key listened_at at the top level."},
		{"playing_now with listened_at", `{"listen_type":"playing_now","payload":[` + ok + `]}`, auth, 400, "JSON document must not contain listened_at while submitting playing_now."},
		{"too far ahead for topk", fmt.Sprintf(`{"listen_type":"single","payload":[{"listened_at":%d,"track_metadata":{"artist_name":"a","track_name":"t"}}]}`, time.Now().Add(30*time.Minute).Unix()), auth, 400, ""},
		{"not JSON", `{"listen_type":`, auth, 400, ""},
	} {
		before := len(f.pub.batches)
		rec := f.send(http.MethodPost, "/1/submit-listens", tc.body, tc.header...)
		m := lbBody(t, rec)
		if rec.Code != tc.code || m["code"] != float64(tc.code) || (tc.msg != "" && m["error"] != tc.msg) || m["error"] == "" {
			t.Errorf("%s: %d %.300s; want %d %q", tc.name, rec.Code, rec.Body.String(), tc.code, tc.msg)
		}
		if len(f.pub.batches) != before {
			t.Errorf("%s: published", tc.name)
		}
	}
	// Over the payload limit: refused before it is parsed.
	huge := `{"listen_type":"import","payload":[` + ok + `],"x":"` + strings.Repeat("a", listenbrainz.MaxPayloadBytes) + `"}`
	wantLBError(t, f.send(http.MethodPost, "/1/submit-listens", huge, auth...), 400, "Payload too large. Payload cannot exceed 10240000 bytes")
}

func TestLBPlayingNow(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	auth := []string{"Authorization", "Token " + aliceToken}
	get := func() []any {
		t.Helper()
		rec := f.send(http.MethodGet, "/1/user/alice/playing-now", "")
		p, _ := lbBody(t, rec)["payload"].(map[string]any)
		if rec.Code != 200 || p["playing_now"] != true || p["user_id"] != "alice" {
			t.Fatalf("playing-now: %d %s", rec.Code, rec.Body.String())
		}
		ls, _ := p["listens"].([]any)
		if p["count"] != float64(len(ls)) {
			t.Fatalf("count %v of %d listens", p["count"], len(ls))
		}
		return ls
	}
	if ls := get(); len(ls) != 0 {
		t.Fatalf("before any: %v", ls)
	}
	pn := `{"listen_type":"playing_now","payload":[{"track_metadata":{"artist_name":"a","track_name":"t","additional_info":{"duration":200}}}]}`
	if rec := f.send(http.MethodPost, "/1/submit-listens", pn, auth...); rec.Code != 200 {
		t.Fatalf("submit: %d %s", rec.Code, rec.Body.String())
	}
	ls := get()
	if len(ls) != 1 || f.np.ttl["alice"] != 200*time.Second {
		t.Fatalf("after submit: %v, ttl %v", ls, f.np.ttl["alice"])
	}
	if md := ls[0].(map[string]any)["track_metadata"].(map[string]any); md["track_name"] != "t" || md["artist_name"] != "a" {
		t.Errorf("listen %v", ls[0])
	}
	if len(f.pub.batches) != 0 {
		t.Errorf("playing now was published as a listen")
	}
	// The same track again keeps the first (and its expiry); another
	// replaces it, with the default expiry.
	same := `{"listen_type":"playing_now","payload":[{"track_metadata":{"artist_name":"a","track_name":"t","release_name":"r"}}]}`
	f.send(http.MethodPost, "/1/submit-listens", same, auth...)
	if f.np.ttl["alice"] != 200*time.Second || strings.Contains(string(f.np.v["alice"]), `"r"`) {
		t.Errorf("the same track replaced the first: %s %v", f.np.v["alice"], f.np.ttl["alice"])
	}
	other := `{"listen_type":"playing_now","payload":[{"track_metadata":{"artist_name":"a","track_name":"u"}}]}`
	f.send(http.MethodPost, "/1/submit-listens", other, auth...)
	if f.np.ttl["alice"] != listenbrainz.DefaultPlayingNowTTL || !strings.Contains(string(f.np.v["alice"]), `"u"`) {
		t.Errorf("another track: %s %v", f.np.v["alice"], f.np.ttl["alice"])
	}
}

// worldListens is user's listens in [from, to) (Unix seconds), newest
// first, from the test world.
func worldListens(f *fixture, user string, from, to int64) []topk.Listen {
	var out []topk.Listen
	for _, ls := range f.w.Listens[user] {
		for _, l := range ls {
			if s := l.PlayedAt.Unix(); s >= from && s < to {
				out = append(out, l)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PlayedAt.After(out[j].PlayedAt) })
	return out
}

func TestLBListenCount(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	for _, user := range []string{"alice", "bob", "carol"} {
		rec := f.send(http.MethodGet, "/1/user/"+user+"/listen-count", "")
		p, _ := lbBody(t, rec)["payload"].(map[string]any)
		if want := len(worldListens(f.fixture, user, 0, 1<<40)); rec.Code != 200 || p["count"] != float64(want) {
			t.Errorf("%s: %d %s, want %d", user, rec.Code, rec.Body.String(), want)
		}
	}
	wantLBError(t, f.send(http.MethodGet, "/1/user/nobody/listen-count", ""), 404, "Cannot find user: nobody")
}

func TestLBListens(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	all := worldListens(f.fixture, "alice", 0, 1<<40)
	type page struct {
		Count                          int
		Listens                        []listenbrainz.Listen
		LatestListenTS, OldestListenTS int64
		UserID                         string
	}
	get := func(q string) page {
		t.Helper()
		rec := f.send(http.MethodGet, "/1/user/alice/listens"+q, "")
		var ans struct {
			Payload struct {
				Count          int                   `json:"count"`
				Listens        []listenbrainz.Listen `json:"listens"`
				LatestListenTS int64                 `json:"latest_listen_ts"`
				OldestListenTS int64                 `json:"oldest_listen_ts"`
				UserID         string                `json:"user_id"`
			} `json:"payload"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &ans) != nil {
			t.Fatalf("%s: %d %s", q, rec.Code, rec.Body.String())
		}
		p := ans.Payload
		if p.Count != len(p.Listens) || p.UserID != "alice" || p.LatestListenTS != all[0].PlayedAt.Unix() || p.OldestListenTS != all[len(all)-1].PlayedAt.Unix() {
			t.Fatalf("%s: count %d of %d, user %q, latest %d oldest %d", q, p.Count, len(p.Listens), p.UserID, p.LatestListenTS, p.OldestListenTS)
		}
		return page{p.Count, p.Listens, p.LatestListenTS, p.OldestListenTS, p.UserID}
	}
	want := func(q string, got page, exp []topk.Listen) {
		t.Helper()
		if len(got.Listens) != len(exp) {
			t.Fatalf("%s: %d listens, want %d", q, len(got.Listens), len(exp))
		}
		for i, l := range got.Listens {
			e := exp[i]
			if l.ListenedAt != e.PlayedAt.Unix() || l.TrackMetadata.TrackName != e.Track || l.TrackMetadata.ArtistName != e.Artist ||
				l.RecordingMSID != listenbrainz.MSID(e.Artist, e.Track) || l.TrackMetadata.AdditionalInfo["recording_msid"] != l.RecordingMSID || l.UserName != "alice" {
				t.Fatalf("%s: listen %d = %+v, want %+v", q, i, l, e)
			}
		}
	}
	want("", get(""), all[:25])
	want("?count=3", get("?count=3"), all[:3])
	maxTS := all[10].PlayedAt.Unix()
	want("max_ts", get(fmt.Sprintf("?count=5&max_ts=%d", maxTS)), all[11:16])
	// min_ts: the oldest count after it, newest first.
	minTS := all[200].PlayedAt.Unix()
	after := worldListens(f.fixture, "alice", minTS+1, 1<<40)
	want("min_ts", get(fmt.Sprintf("?count=7&min_ts=%d", minTS)), after[len(after)-7:])
	want("min_ts and max_ts", get(fmt.Sprintf("?count=1000&min_ts=%d&max_ts=%d", minTS, maxTS)), worldListens(f.fixture, "alice", minTS+1, maxTS))
	if p := get("?count=5000"); len(p.Listens) != min(1000, len(all)) {
		t.Errorf("count 5000 answered %d listens, want it clamped to 1000", len(p.Listens))
	}
	wantLBError(t, f.send(http.MethodGet, "/1/user/alice/listens?min_ts=5&max_ts=5", ""), 400, "max_ts should be greater than min_ts")
	wantLBError(t, f.send(http.MethodGet, "/1/user/alice/listens?max_ts=soon", ""), 400, "Incorrect max_ts timestamp argument: soon")
	wantLBError(t, f.send(http.MethodGet, "/1/user/alice/listens?count=x", ""), 400, "Invalid count argument: x")
}

// statsWant counts the world's listens of user in period p by entity,
// independently of the service: plays per normalized key.
func statsWant(f *fixture, user string, e topk.Entity, p listenbrainz.Period) map[string]int64 {
	out := map[string]int64{}
	for _, l := range worldListens(f, user, p.FromTS(), p.ToTS()) {
		var k string
		switch e {
		case topk.Artists:
			k = listen.Normalize(l.Artist)
		case topk.Tracks:
			k = listen.Normalize(l.Artist) + "\x00" + listen.Normalize(l.Track)
		case topk.Albums:
			if l.Album == "" {
				continue
			}
			k = listen.Normalize(l.Artist) + "\x00" + listen.Normalize(l.Album)
		}
		out[k]++
	}
	return out
}

func TestLBStats(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	for _, tc := range []struct{ path, rng string }{
		{"artists", "all_time"}, {"recordings", "all_time"}, {"releases", "all_time"}, {"release-groups", "year"},
		{"artists", "this_week"}, {"artists", "week"}, {"recordings", "month"}, {"artists", "quarter"},
		{"releases", "half_yearly"}, {"artists", "this_month"}, {"recordings", "this_year"},
	} {
		kind := listenbrainz.StatsEntities[tc.path]
		p, err := listenbrainz.StatsPeriod(tc.rng, testNow)
		if err != nil {
			t.Fatal(err)
		}
		want := statsWant(f.fixture, "alice", kind.Entity, p)
		rec := f.send(http.MethodGet, "/1/stats/user/alice/"+tc.path+"?count=1000&range="+tc.rng, "")
		if len(want) == 0 {
			if rec.Code != http.StatusNoContent {
				t.Errorf("%s %s: %d, want 204 for no listens", tc.path, tc.rng, rec.Code)
			}
			continue
		}
		m := lbBody(t, rec)
		pl, _ := m["payload"].(map[string]any)
		items, _ := pl[kind.ListKey].([]any)
		if rec.Code != 200 || pl["user_id"] != "alice" || pl["range"] != tc.rng || pl[kind.TotalKey] != float64(len(want)) || pl["count"] != float64(len(items)) {
			t.Fatalf("%s %s: %d %.400s; want %d items", tc.path, tc.rng, rec.Code, rec.Body.String(), len(want))
		}
		if tc.rng != "all_time" && (pl["from_ts"] != float64(p.FromTS()) || pl["to_ts"] != float64(p.ToTS())) {
			t.Errorf("%s %s: from_ts %v to_ts %v, want %d %d", tc.path, tc.rng, pl["from_ts"], pl["to_ts"], p.FromTS(), p.ToTS())
		}
		var got []int64
		for _, it := range items {
			got = append(got, int64(it.(map[string]any)["listen_count"].(float64)))
		}
		var exp []int64
		for _, n := range want {
			exp = append(exp, n)
		}
		sort.Slice(exp, func(i, j int) bool { return exp[i] > exp[j] })
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("%s %s: listen counts %v, want %v", tc.path, tc.rng, got, exp)
		}
	}
	// Paging: offset and count.
	rec := f.send(http.MethodGet, "/1/stats/user/alice/artists?count=2&offset=1", "")
	pl, _ := lbBody(t, rec)["payload"].(map[string]any)
	if items, _ := pl["artists"].([]any); rec.Code != 200 || len(items) != 2 || pl["offset"] != float64(1) || pl["count"] != float64(2) {
		t.Errorf("count=2 offset=1: %d %s", rec.Code, rec.Body.String())
	}
	wantLBError(t, f.send(http.MethodGet, "/1/stats/user/alice/artists?range=decade", ""), 400, "Invalid range: decade")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/user/nobody/artists", ""), 404, "Cannot find user: nobody")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/user/alice/artists?count=-1", ""), 400, "'count' should be a non-negative integer")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/user/alice/artists?count=many", ""), 400, "'count' should be a non-negative integer")
	wantLBError(t, f.send(http.MethodGet, "/1/stats/user/alice/artists?offset=-1", ""), 400, "'offset' should be a non-negative integer")
}

func TestLBListeningActivity(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	for _, rng := range []string{"this_week", "week", "month", "year", "all_time", "half_yearly"} {
		_, buckets, err := listenbrainz.ActivityBuckets(rng, testNow)
		if err != nil {
			t.Fatal(err)
		}
		rec := f.send(http.MethodGet, "/1/stats/user/alice/listening-activity?range="+rng, "")
		var ans struct {
			Payload struct {
				Activity []listenbrainz.ActivityRow `json:"listening_activity"`
				Range    string                     `json:"range"`
			} `json:"payload"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &ans) != nil || ans.Payload.Range != rng || len(ans.Payload.Activity) != len(buckets) {
			t.Fatalf("%s: %d %.300s", rng, rec.Code, rec.Body.String())
		}
		for i, row := range ans.Payload.Activity {
			b := buckets[i]
			want := len(worldListens(f.fixture, "alice", b.From.Unix(), b.To.Unix()))
			if row.ListenCount != int64(want) || row.TimeRange != b.Label || row.FromTS != b.FromTS() || row.ToTS != b.ToTS() {
				t.Errorf("%s bucket %d: %+v, want %d listens in %s", rng, i, row, want, b.Label)
			}
		}
	}
	if rec := f.send(http.MethodGet, "/1/stats/user/carol/listening-activity?range=this_week", ""); rec.Code != http.StatusNoContent {
		t.Errorf("no listens in the range: %d, want 204", rec.Code)
	}
}

// The routes answer CORS preflights and carry ListenBrainz's rate-limit
// headers; past the limit, a 429 in ListenBrainz's error shape.
// A delete of one of the user's listens: the token's user, the msid in
// its canonical form, produced with the source header before the 200;
// Kafka down: 503 and nothing produced, the next one works again.
func TestLBDeleteListen(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	auth := []string{"Authorization", "Token " + aliceToken, "Content-Type", "application/json"}
	at := testNow.Add(-time.Hour).Unix()
	msid := listen.MSID("Radiohead", "Airbag")
	body := fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q}`, at, strings.ToUpper(msid))
	rec := f.send(http.MethodPost, "/1/delete-listen", body, auth...)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("delete answer without CORS headers: %v", rec.Header())
	}
	want := producedRecord{
		key: "alice",
		value: fmt.Sprintf(`{"delete":{"user_id":"alice","played_at":"%s","recording_msid":"%s"}}`,
			time.Unix(at, 0).UTC().Format(time.RFC3339), msid),
		source: "listenbrainz",
	}
	if len(f.pub.deletes) != 1 || f.pub.deletes[0] != want {
		t.Fatalf("produced %+v, want %+v", f.pub.deletes, want)
	}
	if d, err := listen.ParseDelete([]byte(want.value), time.Now()); err != nil || d.Key() != listen.DayKey("alice", time.Unix(at, 0)) {
		t.Errorf("the record as ingest reads it: %+v %v", d, err)
	}
	f.pub.err = errors.New("kafka: not acknowledged")
	wantLBError(t, f.send(http.MethodPost, "/1/delete-listen", body, auth...), 503, "We couldn't delete the listen. Please try again later.")
	f.pub.err = nil
	if rec := f.send(http.MethodPost, "/1/delete-listen", body, auth...); rec.Code != 200 || len(f.pub.deletes) != 2 {
		t.Fatalf("after kafka is back: %d %s, %d deletes", rec.Code, rec.Body.String(), len(f.pub.deletes))
	}
	// Without a publisher (Kafka not wired): 503.
	g := &lbFixture{fixture: newFixture(t, fixtureOpts{recovered: true})}
	g.srv.MountListenBrainz(ListenBrainzConfig{Charts: g.svc, Tokens: lbTokens{aliceToken: "alice"}})
	wantLBError(t, g.send(http.MethodPost, "/1/delete-listen", body, auth...), 503, "Listens are not deleted by this server.")
	// Only POST; its preflight.
	if rec := f.send(http.MethodGet, "/1/delete-listen", ""); rec.Code != 405 || lbBody(t, rec)["code"] != float64(405) {
		t.Errorf("GET: %d %s", rec.Code, rec.Body.String())
	}
	rec = f.send(http.MethodOptions, "/1/delete-listen", "", "Origin", "https://example.org", "Access-Control-Request-Method", "POST")
	if h := rec.Header(); rec.Code != 200 || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Methods") != "POST, OPTIONS" {
		t.Errorf("preflight: %d %v", rec.Code, h)
	}
}

// One test per error of /1/delete-listen: ListenBrainz's status and
// message (topk's for a listened_at outside what it holds), and nothing
// produced.
func TestLBDeleteListenErrors(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	auth := []string{"Authorization", "Token " + aliceToken, "Content-Type", "application/json"}
	at := testNow.Add(-time.Hour).Unix()
	msid := listen.MSID("Radiohead", "Airbag")
	ahead := testNow.Add(11 * time.Minute).Unix()
	for _, tc := range []struct {
		name, body string
		header     []string
		code       int
		msg        string
	}{
		{"no header", `{}`, nil, 401, "You need to provide an Authorization header."},
		{"no token", `{}`, []string{"Authorization", "Token"}, 401, "Provided Authorization header is invalid."},
		{"bad token", `{}`, []string{"Authorization", "Token nope", "Content-Type", "application/json"}, 401, "Invalid authorization token."},
		{"no content type", `{}`, []string{"Authorization", "Token " + aliceToken}, 415,
			"Did not attempt to load JSON data because the request Content-Type was not 'application/json'."},
		{"not JSON", `{"listened_at":`, auth, 400, "The browser (or proxy) sent a request that this server could not understand."},
		{"missing listened_at", fmt.Sprintf(`{"recording_msid": %q}`, msid), auth, 400, "Listen timestamp missing."},
		{"bad listened_at", fmt.Sprintf(`{"listened_at": "noon", "recording_msid": %q}`, msid), auth, 400, "noon: Listen timestamp invalid."},
		{"listened_at too old for topk", fmt.Sprintf(`{"listened_at": 1000, "recording_msid": %q}`, msid), auth, 400,
			"1000: Listen timestamp invalid: this server holds no listen before 1009843200 (2002-01-01 00:00:00 UTC)."},
		{"listened_at ahead", fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q}`, ahead, msid), auth, 400,
			fmt.Sprintf("%d: Listen timestamp invalid: it is more than 10 minutes ahead of this server's clock, and this server holds no such listen.", ahead)},
		{"missing msid", fmt.Sprintf(`{"listened_at": %d}`, at), auth, 400, "Recording MSID missing."},
		{"bad msid", fmt.Sprintf(`{"listened_at": %d, "recording_msid": "not-a-uuid"}`, at), auth, 400, "not-a-uuid: Recording MSID format invalid."},
	} {
		rec := f.send(http.MethodPost, "/1/delete-listen", tc.body, tc.header...)
		wantLBError(t, rec, tc.code, tc.msg)
		if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS header", tc.name)
		}
	}
	huge := fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q, "x": "%s"}`, at, msid, strings.Repeat("a", listenbrainz.MaxDeleteBytes))
	wantLBError(t, f.send(http.MethodPost, "/1/delete-listen", huge, auth...), 400, "Payload too large. Payload cannot exceed 10240 bytes")
	if len(f.pub.deletes) != 0 {
		t.Errorf("produced %+v", f.pub.deletes)
	}
}

func TestLBCORSAndRateLimit(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true, api: func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.001, Burst: 2}
	}})
	rec := f.send(http.MethodOptions, "/1/submit-listens", "", "Origin", "https://example.org", "Access-Control-Request-Method", "POST")
	if h := rec.Header(); rec.Code != 200 || h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", rec.Code, rec.Header())
	}
	for i := range 2 {
		rec := f.send(http.MethodGet, "/1/user/alice/listen-count", "", "X-Forwarded-For", "ignored")
		h := rec.Header()
		if rec.Code != 200 || h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != fmt.Sprint(1-i) || h.Get("X-RateLimit-Reset-In") == "" ||
			h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "X-RateLimit-Remaining") {
			t.Fatalf("request %d: %d %v", i, rec.Code, h)
		}
	}
	// delete-listen shares the bucket: past the limit it is a 429 too.
	if rec := f.send(http.MethodPost, "/1/delete-listen", "{}", "Authorization", "Token "+aliceToken); rec.Code != 429 || lbBody(t, rec)["code"] != float64(429) {
		t.Errorf("delete-listen past the limit: %d %s", rec.Code, rec.Body.String())
	}
	rec = f.send(http.MethodGet, "/1/user/alice/listen-count", "")
	if m := lbBody(t, rec); rec.Code != 429 || m["code"] != float64(429) || m["error"] == "" || rec.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("past the limit: %d %v %s", rec.Code, rec.Header(), rec.Body.String())
	}
	// Unknown /1/ paths answer in ListenBrainz's shape too.
	if rec := f.send(http.MethodGet, "/1/nope", ""); rec.Code != 404 || lbBody(t, rec)["code"] != float64(404) {
		t.Errorf("unknown path: %d %s", rec.Code, rec.Body.String())
	}
}

// A delete of a listen stored in raw_listens carries the album it was
// stored with, for the aggregator's states from before each listen's
// album was kept.
func TestLBDeleteListenCarriesTheStoredAlbum(t *testing.T) {
	f := newLBFixture(t, fixtureOpts{recovered: true})
	auth := []string{"Authorization", "Token " + aliceToken, "Content-Type", "application/json"}
	ans, err := f.svc.Listens(context.Background(), charts.ListensQuery{User: "alice", From: charts.Earliest, To: charts.LastDay(f.svc.Now()), Limit: 50})
	if err != nil || len(ans.Listens) == 0 {
		t.Fatalf("alice's listens: %v %v", ans, err)
	}
	i := slices.IndexFunc(ans.Listens, func(l charts.ListenJSON) bool { return l.Album != "" })
	if i < 0 {
		t.Fatal("no listen of alice with an album in the test world")
	}
	l := ans.Listens[i]
	body := fmt.Sprintf(`{"listened_at": %d, "recording_msid": %q}`, l.PlayedAt.Unix(), listen.MSID(l.Artist, l.Track))
	if rec := f.send(http.MethodPost, "/1/delete-listen", body, auth...); rec.Code != 200 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
	}
	d, err := listen.ParseDelete([]byte(f.pub.deletes[0].value), time.Now())
	if err != nil || d.Album == nil || *d.Album != l.Album {
		t.Fatalf("produced %s (%+v, %v), want album %q", f.pub.deletes[0].value, d, err, l.Album)
	}
}
