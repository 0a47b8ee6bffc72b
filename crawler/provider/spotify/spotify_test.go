package spotify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/providertest"
)

// fakeSpotify answers recently-played and the token endpoint in Spotify's
// JSON shapes.
type fakeSpotify struct {
	mu          sync.Mutex
	access      string  // the currently valid access token
	plays       []int64 // played_at in ms
	rateLimited int     // 429s to answer before succeeding
	retryAfter  string
	refreshes   int
	afters      []string
	revoked     bool
}

func (f *fakeSpotify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/token":
		id, secret, _ := r.BasicAuth()
		if err := r.ParseForm(); err != nil || id != "cid" || secret != "csecret" || r.Form.Get("grant_type") != "refresh_token" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"Invalid client"}`)
			return
		}
		if f.revoked || r.Form.Get("refresh_token") != "refresh-1" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Refresh token revoked"}`)
			return
		}
		f.refreshes++
		f.access = fmt.Sprintf("access-%d", f.refreshes+1)
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","scope":"user-read-recently-played","expires_in":3600}`, f.access)
	case "/v1/me/player/recently-played":
		if r.Header.Get("Authorization") != "Bearer "+f.access {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"status":401,"message":"The access token expired"}}`)
			return
		}
		if f.rateLimited > 0 {
			f.rateLimited--
			w.Header().Set("Retry-After", f.retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"status":429,"message":"API rate limit exceeded"}}`)
			return
		}
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		f.afters = append(f.afters, r.URL.Query().Get("after"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		var items []map[string]any
		for i := len(f.plays) - 1; i >= 0 && len(items) < limit; i-- { // newest first
			ms := f.plays[i]
			if ms <= after {
				continue
			}
			items = append(items, map[string]any{
				"track": map[string]any{
					"id": fmt.Sprintf("t%d", ms), "name": fmt.Sprintf("Track %d", ms), "duration_ms": 200000,
					"artists": []map[string]any{{"id": "a1", "name": "Radiohead", "type": "artist"}},
					"album":   map[string]any{"id": "al1", "name": "In Rainbows", "album_type": "album"},
				},
				"played_at": time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z"),
				"context":   nil,
			})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"items": items, "next": nil, "limit": limit, "href": r.URL.String(),
			"cursors": map[string]string{"after": "0", "before": "0"},
		})
	default:
		http.NotFound(w, r)
	}
}

func newClient(t *testing.T, f *fakeSpotify) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Config{APIURL: srv.URL + "/v1", TokenURL: srv.URL + "/api/token", ClientID: "cid", ClientSecret: "csecret",
		MaxRetryAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type run struct {
	pages []provider.Page
	saved []provider.Tokens
	res   provider.Result
	err   error
}

func crawl(c *Client, tokens provider.Tokens, cursor int64) run {
	var r run
	acct := provider.Account{UserID: "alice", ExternalID: "alice-sp", Tokens: tokens,
		SaveTokens: func(_ context.Context, t provider.Tokens) error { r.saved = append(r.saved, t); return nil }}
	r.res, r.err = c.Crawl(context.Background(), acct, cursor, func(_ context.Context, p provider.Page) error {
		r.pages = append(r.pages, p)
		return nil
	})
	return r
}

// 401 → refresh with the refresh token → the new tokens are saved → the
// request succeeds; plays come oldest first with the cursor in ms.
func TestRefreshOn401(t *testing.T) {
	base := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC).UnixMilli()
	f := &fakeSpotify{access: "access-live", plays: []int64{base, base + 1500, base + 200_000}}
	r := crawl(newClient(t, f), provider.Tokens{Access: "access-stale", Refresh: "refresh-1"}, base)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if f.refreshes != 1 || len(r.saved) != 1 || r.saved[0].Access != "access-2" || r.saved[0].Refresh != "refresh-1" || r.saved[0].Expiry.IsZero() {
		t.Fatalf("refreshes %d, saved %+v", f.refreshes, r.saved)
	}
	if len(r.pages) != 1 || len(r.pages[0].Plays) != 2 {
		t.Fatalf("pages %+v", r.pages)
	}
	p := r.pages[0]
	if p.Plays[0].PlayedAt.UnixMilli() != base+1500 || p.Plays[1].PlayedAt.UnixMilli() != base+200_000 || p.Cursor != base+200_000 {
		t.Fatalf("order or cursor: %+v", p)
	}
	if p.Plays[0].Artist != "Radiohead" || p.Plays[0].Album != "In Rainbows" || p.Plays[0].DurationMS != 200000 || p.Plays[0].TrackID == "" {
		t.Fatalf("fields: %+v", p.Plays[0])
	}
	if f.afters[0] != strconv.FormatInt(base, 10) {
		t.Fatalf("after %q", f.afters[0])
	}
	if r.res.PossibleGap {
		t.Fatal("2 plays reported as a possible gap")
	}
}

// A revoked grant is permanent: no retry can fix it.
func TestRevokedRefreshIsPermanent(t *testing.T) {
	f := &fakeSpotify{access: "x", revoked: true}
	r := crawl(newClient(t, f), provider.Tokens{Access: "stale", Refresh: "refresh-1"}, 0)
	if !provider.IsPermanent(r.err) {
		t.Fatalf("err %v", r.err)
	}
}

// 429 with a short Retry-After is waited out; a long one fails the run
// with the delay for the task's retry.
func TestRateLimitHonoursRetryAfter(t *testing.T) {
	f := &fakeSpotify{access: "a", plays: []int64{1_800_000_000_000}, rateLimited: 1, retryAfter: "1"}
	start := time.Now()
	r := crawl(newClient(t, f), provider.Tokens{Access: "a", Refresh: "refresh-1"}, 0)
	if r.err != nil || len(r.pages) != 1 {
		t.Fatalf("%+v", r)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("Retry-After 1 not waited: %v", d)
	}
	f = &fakeSpotify{access: "a", rateLimited: 5, retryAfter: "120"}
	r = crawl(newClient(t, f), provider.Tokens{Access: "a", Refresh: "refresh-1"}, 0)
	if d, ok := provider.RetryAfter(r.err); !ok || d != 120*time.Second {
		t.Fatalf("err %v", r.err)
	}
}

// A full page of 50 new plays may hide older ones: a possible gap.
func TestFullPageIsPossibleGap(t *testing.T) {
	base := int64(1_800_000_000_000)
	f := &fakeSpotify{access: "a"}
	for i := range int64(80) {
		f.plays = append(f.plays, base+i*180_000)
	}
	r := crawl(newClient(t, f), provider.Tokens{Access: "a", Refresh: "refresh-1"}, 0)
	if r.err != nil || !r.res.PossibleGap || len(r.pages[0].Plays) != 50 {
		t.Fatalf("%+v", r)
	}
	// Resuming from the cursor: nothing new, no gap, no page.
	r = crawl(newClient(t, f), provider.Tokens{Access: "a", Refresh: "refresh-1"}, base+79*180_000)
	if r.err != nil || r.res.PossibleGap || len(r.pages) != 0 {
		t.Fatalf("%+v", r)
	}
}

// An expired token is refreshed before the request.
func TestExpiredTokenRefreshedFirst(t *testing.T) {
	f := &fakeSpotify{access: "nobody-has-this"}
	r := crawl(newClient(t, f), provider.Tokens{Access: "old", Refresh: "refresh-1", Expiry: time.Now().Add(-time.Minute)}, 0)
	if r.err != nil || f.refreshes != 1 || len(f.afters) != 1 {
		t.Fatalf("%+v refreshes %d requests %d", r, f.refreshes, len(f.afters))
	}
}

// The Spotify client keeps the provider contract against a server in
// Spotify's JSON shapes: 30 plays (fewer than a page of 50, so no gap is
// possible), with millisecond times.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		base := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC).UnixMilli()
		f := &fakeSpotify{access: "access-1"}
		var want []provider.Play
		for i := range int64(30) {
			ms := base + i*180_000 + 123
			f.plays = append(f.plays, ms)
			// The fields fakeSpotify writes for a play at ms.
			want = append(want, provider.Play{PlayedAt: time.UnixMilli(ms), Artist: "Radiohead",
				Track: fmt.Sprintf("Track %d", ms), Album: "In Rainbows"})
		}
		return providertest.Fixture{
			Provider: newClient(t, f),
			Account: provider.Account{UserID: "alice", ExternalID: "alice-sp",
				Tokens: provider.Tokens{Access: "access-1", Refresh: "refresh-1"}},
			Want: want,
		}
	})
}
