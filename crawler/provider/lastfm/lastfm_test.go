package lastfm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/providertest"
)

// fakeLastfm answers user.getRecentTracks in Last.fm's JSON shape: newest
// first, numbers as strings, a single track as an object, the now-playing
// item on top of page 1, errors in 200 bodies.
type fakeLastfm struct {
	mu         sync.Mutex
	scrobbles  []int64 // uts
	nowPlaying bool
	failures   []int // error codes to answer before succeeding, one per request
	requests   []request
	userAgents []string
}

type request struct{ from, to, page, limit string }

func (f *fakeLastfm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	f.requests = append(f.requests, request{q.Get("from"), q.Get("to"), q.Get("page"), q.Get("limit")})
	f.userAgents = append(f.userAgents, r.UserAgent())
	if q.Get("method") != "user.getrecenttracks" || q.Get("api_key") != "key" || q.Get("format") != "json" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":6,"message":"Invalid parameters"}`)
		return
	}
	if len(f.failures) > 0 {
		code := f.failures[0]
		f.failures = f.failures[1:]
		fmt.Fprintf(w, `{"error":%d,"message":"error %d","links":[]}`, code, code) // status 200, like Last.fm
		return
	}
	from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
	to, _ := strconv.ParseInt(q.Get("to"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	pg, _ := strconv.Atoi(q.Get("page"))
	var in []int64
	for _, s := range f.scrobbles {
		if s >= from && s <= to {
			in = append(in, s)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i] > in[j] })
	total := (len(in) + limit - 1) / limit
	var items []map[string]any
	if pg == 1 && f.nowPlaying {
		items = append(items, map[string]any{
			"artist": map[string]string{"mbid": "", "#text": "Now Artist"}, "name": "Now Track",
			"album": map[string]string{"mbid": "", "#text": ""}, "@attr": map[string]string{"nowplaying": "true"},
			"streamable": "0", "mbid": "", "url": "https://www.last.fm/music/x",
		})
	}
	for i := (pg - 1) * limit; i < pg*limit && i < len(in); i++ {
		s := in[i]
		items = append(items, map[string]any{
			"artist":     map[string]string{"mbid": "a-mbid", "#text": fmt.Sprintf("Artist %d", s%7)},
			"streamable": "0",
			"image":      []map[string]string{{"size": "small", "#text": ""}},
			"mbid":       fmt.Sprintf("t-%d", s),
			"album":      map[string]string{"mbid": "", "#text": "Album"},
			"name":       fmt.Sprintf("Track %d", s),
			"url":        "https://www.last.fm/music/x/_/y",
			"date":       map[string]string{"uts": strconv.FormatInt(s, 10), "#text": time.Unix(s, 0).UTC().Format("02 Jan 2006, 15:04")},
		})
	}
	var track any = items
	if len(items) == 1 {
		track = items[0] // Last.fm's quirk: one track is an object
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"recenttracks": map[string]any{
		"track": track,
		"@attr": map[string]string{"user": q.Get("user"), "totalPages": strconv.Itoa(total), "page": strconv.Itoa(pg),
			"perPage": strconv.Itoa(limit), "total": strconv.Itoa(len(in))},
	}})
}

func newClient(t *testing.T, f *fakeLastfm, now time.Time) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL + "/2.0/", APIKey: "key", RequestsPerSecond: -1, Attempts: 3,
		Backoff: time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func crawl(t *testing.T, c *Client, cursor int64) ([]provider.Page, error) {
	var pages []provider.Page
	_, err := c.Crawl(context.Background(), provider.Account{UserID: "alice", ExternalID: "rj"}, cursor,
		func(_ context.Context, p provider.Page) error { pages = append(pages, p); return nil })
	return pages, err
}

// 450 scrobbles make 3 pages; the walk reads page 1 for the count, then 3, 2
// and emits page 1 last, every page oldest first, the now-playing item
// skipped, the cursor moving forward page by page.
func TestCrawlWalksPagesOldestFirst(t *testing.T) {
	base := int64(1_700_000_000)
	f := &fakeLastfm{nowPlaying: true}
	for i := range int64(450) {
		f.scrobbles = append(f.scrobbles, base+i*60)
	}
	now := time.Unix(base+450*60+5, 0)
	pages, err := crawl(t, newClient(t, f, now), base-1)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3", len(pages))
	}
	var all []provider.Play
	prev := base - 1
	for i, p := range pages {
		if p.Done != i+1 || p.Total != 3 {
			t.Errorf("page %d progress %d/%d", i, p.Done, p.Total)
		}
		if p.Cursor <= prev || p.Cursor != p.Plays[len(p.Plays)-1].PlayedAt.Unix() {
			t.Errorf("page %d cursor %d after %d", i, p.Cursor, prev)
		}
		prev = p.Cursor
		all = append(all, p.Plays...)
	}
	if len(all) != 450 {
		t.Fatalf("%d plays, want 450 (now playing must be skipped)", len(all))
	}
	for i, p := range all {
		if want := base + int64(i)*60; p.PlayedAt.Unix() != want {
			t.Fatalf("play %d at %d, want %d (oldest first)", i, p.PlayedAt.Unix(), want)
		}
		if p.Artist == "" || p.Track == "" || p.Artist == "Now Artist" {
			t.Fatalf("play %d: %+v", i, p)
		}
	}
	if all[0].TrackID != fmt.Sprintf("t-%d", base) || all[0].ArtistID != "a-mbid" || all[0].Album != "Album" {
		t.Errorf("metadata lost: %+v", all[0])
	}
	wantPages := []string{"1", "3", "2"}
	for i, r := range f.requests {
		if r.page != wantPages[i] || r.limit != "200" || r.from != strconv.FormatInt(base, 10) ||
			r.to != strconv.FormatInt(now.Unix(), 10) {
			t.Errorf("request %d: %+v", i, r)
		}
	}
	for _, ua := range f.userAgents {
		if ua != provider.UserAgent {
			t.Errorf("User-Agent %q", ua)
		}
	}
}

// from = cursor + 1: a crawl resumes after the newest play already published;
// a single new play arrives as an object, not a list.
func TestCrawlResumesAfterCursorAndReadsSingleTrackObject(t *testing.T) {
	base := int64(1_700_000_000)
	f := &fakeLastfm{scrobbles: []int64{base, base + 60}}
	pages, err := crawl(t, newClient(t, f, time.Unix(base+100, 0)), base)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 || len(pages[0].Plays) != 1 || pages[0].Plays[0].PlayedAt.Unix() != base+60 || pages[0].Cursor != base+60 {
		t.Fatalf("pages %+v", pages)
	}
	if f.requests[0].from != strconv.FormatInt(base+1, 10) {
		t.Fatalf("from %s, want cursor+1", f.requests[0].from)
	}
	// Nothing new: no page, no error.
	pages, err = crawl(t, newClient(t, &fakeLastfm{nowPlaying: true}, time.Unix(base+100, 0)), base+60)
	if err != nil || len(pages) != 0 {
		t.Fatalf("%v %v", pages, err)
	}
}

// Errors 11, 16 and 29 arrive in 200 bodies and are retried with backoff.
func TestTransientErrorsRetried(t *testing.T) {
	base := int64(1_700_000_000)
	f := &fakeLastfm{scrobbles: []int64{base}, failures: []int{29, 16}}
	pages, err := crawl(t, newClient(t, f, time.Unix(base+10, 0)), 0)
	if err != nil || len(pages) != 1 {
		t.Fatalf("%v %v", pages, err)
	}
	if len(f.requests) != 3 {
		t.Fatalf("%d requests, want 3", len(f.requests))
	}
	// Out of attempts: a retryable (not permanent) error for the task's retries.
	f = &fakeLastfm{scrobbles: []int64{base}, failures: []int{11, 11, 11, 11}}
	_, err = crawl(t, newClient(t, f, time.Unix(base+10, 0)), 0)
	var le *Error
	if !errors.As(err, &le) || le.Code != 11 || provider.IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
}

// Error 17 (private profile) is permanent and not retried.
func TestPrivateProfileNotRetried(t *testing.T) {
	f := &fakeLastfm{failures: []int{17, 17, 17}}
	_, err := crawl(t, newClient(t, f, time.Unix(1_700_000_000, 0)), 0)
	if !provider.IsPermanent(err) {
		t.Fatalf("err %v is not permanent", err)
	}
	if len(f.requests) != 1 {
		t.Fatalf("%d requests, want 1", len(f.requests))
	}
}

// An emit error stops the walk: a page is never skipped.
func TestEmitErrorStops(t *testing.T) {
	base := int64(1_700_000_000)
	f := &fakeLastfm{}
	for i := range int64(401) {
		f.scrobbles = append(f.scrobbles, base+i)
	}
	c := newClient(t, f, time.Unix(base+1000, 0))
	boom := errors.New("kafka down")
	n := 0
	_, err := c.Crawl(context.Background(), provider.Account{ExternalID: "rj"}, 0, func(context.Context, provider.Page) error {
		n++
		return boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("err %v after %d pages", err, n)
	}
}

func TestNumberAcceptsStringsAndNumbers(t *testing.T) {
	var v struct{ A, B, C number }
	if err := json.Unmarshal([]byte(`{"A":"42","B":7,"C":""}`), &v); err != nil || v.A != 42 || v.B != 7 || v.C != 0 {
		t.Fatalf("%+v %v", v, err)
	}
	if err := json.Unmarshal([]byte(`{"A":"x"}`), &v); err == nil {
		t.Fatal("accepted a non-number")
	}
}

func TestPoliteRate(t *testing.T) {
	base := int64(1_700_000_000)
	f := &fakeLastfm{}
	for i := range int64(1000) {
		f.scrobbles = append(f.scrobbles, base+i)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, APIKey: "key", RequestsPerSecond: 20, Now: func() time.Time { return time.Unix(base+1000, 0) }})
	start := time.Now()
	if _, err := c.Crawl(context.Background(), provider.Account{ExternalID: "rj"}, 0, func(context.Context, provider.Page) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// 5 pages = 5 requests at 20/s: at least 4 intervals of 50 ms.
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("5 requests in %v: not rate limited", d)
	}
}

// The Last.fm client keeps the provider contract against a server in
// Last.fm's JSON shape: 450 scrobbles (3 pages) and a now-playing item.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		base := int64(1_700_000_000)
		f := &fakeLastfm{nowPlaying: true}
		var want []provider.Play
		for i := range int64(450) {
			s := base + i*60
			f.scrobbles = append(f.scrobbles, s)
			// The fields fakeLastfm writes for scrobble s.
			want = append(want, provider.Play{PlayedAt: time.Unix(s, 0), Artist: fmt.Sprintf("Artist %d", s%7),
				Track: fmt.Sprintf("Track %d", s), Album: "Album"})
		}
		return providertest.Fixture{
			Provider: newClient(t, f, time.Unix(base+450*60+5, 0)),
			Account:  provider.Account{UserID: "alice", ExternalID: "rj"},
			Want:     want,
		}
	})
}
