package lastfm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/topk-charts/topk/crawler/provider"
)

// PageSize is Last.fm's maximum page size.
const PageSize = 200

// Config configures the client.
type Config struct {
	// BaseURL of the API; default https://ws.audioscrobbler.com/2.0/.
	BaseURL string
	// APIKey is the application's Last.fm API key.
	APIKey string
	// RequestsPerSecond across all users of this process; default 5 (Last.fm
	// asks for no more than 5 per second on average). Negative: unlimited
	// (local test servers).
	RequestsPerSecond float64
	// Attempts per request for the transient errors 11, 16, 29, 8, HTTP 5xx
	// and network errors; default 4. After them the crawl task fails and
	// Asynq retries it later.
	Attempts int
	// Backoff before the second attempt, doubling after each; default 2s.
	Backoff time.Duration
	// HTTPClient; default one with a 30 s timeout.
	HTTPClient *http.Client
	// Now gives the upper bound of a run; default time.Now.
	Now func() time.Time
}

// Client is the Last.fm provider.
type Client struct {
	cfg     Config
	limiter *rate.Limiter
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://ws.audioscrobbler.com/2.0/"
	}
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("lastfm base url: %w", err)
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond = 5
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 4
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 2 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lim := rate.NewLimiter(rate.Inf, 1)
	if cfg.RequestsPerSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), 1)
	}
	return &Client{cfg: cfg, limiter: lim}, nil
}

// Secrets is the API key: provider.Redacting removes it from every error
// (it travels in the query string, which a transport error repeats).
func (c *Client) Secrets() []string { return []string{c.cfg.APIKey} }

// Crawl walks the plays after cursor (Unix seconds) up to now, oldest page
// first. The cursor of each page is its newest play's time.
//
// Pages are counted once, with to = the run's start, so scrobbles arriving
// during the run do not shift them; a late scrobble inside the window can
// only push plays to a higher page number, which the walk has already
// passed or is about to read again: duplicates (the pipeline dedups), never
// a gap.
func (c *Client) Crawl(ctx context.Context, acct provider.Account, cursor int64, emit func(context.Context, provider.Page) error) (provider.Result, error) {
	to := c.cfg.Now().Unix()
	if to <= cursor {
		return provider.Result{}, nil
	}
	from := cursor + 1 // fixed for the run, like to: the page numbering depends on both
	first, err := c.page(ctx, acct.ExternalID, from, to, 1)
	if err != nil {
		return provider.Result{}, err
	}
	total := first.totalPages
	emitted := 0
	send := func(p *page) error {
		emitted++
		plays, next := p.plays(cursor)
		if len(plays) == 0 {
			return nil
		}
		cursor = next
		return emit(ctx, provider.Page{Plays: plays, Cursor: cursor, Done: emitted, Total: total})
	}
	for n := total; n >= 2; n-- {
		p, err := c.page(ctx, acct.ExternalID, from, to, n)
		if err != nil {
			return provider.Result{}, err
		}
		if err := send(p); err != nil {
			return provider.Result{}, err
		}
	}
	// Page 1 (the newest) was read first; with `to` fixed it is still valid.
	// Plays already passed (a shifted page) are dropped by the cursor.
	return provider.Result{}, send(first)
}

type page struct {
	totalPages int
	tracks     []track
}

// plays returns the page's plays after cursor, oldest first, and the newest
// time among them.
func (p *page) plays(cursor int64) ([]provider.Play, int64) {
	out := make([]provider.Play, 0, len(p.tracks))
	next := cursor
	for i := len(p.tracks) - 1; i >= 0; i-- { // Last.fm lists newest first
		t := p.tracks[i]
		if t.Attr.NowPlaying == "true" || t.Date == nil {
			continue // playing right now: it gets a date when it is scrobbled
		}
		uts := int64(t.Date.UTS)
		if uts <= cursor {
			continue
		}
		out = append(out, provider.Play{
			PlayedAt: time.Unix(uts, 0).UTC(),
			Artist:   t.Artist.name(),
			Track:    t.Name,
			Album:    t.Album.Text,
			TrackID:  t.MBID,
			ArtistID: t.Artist.MBID,
			AlbumID:  t.Album.MBID,
		})
		next = max(next, uts)
	}
	return out, next
}

// Error is an error Last.fm reported (in a 200 body or not).
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("last.fm error %d: %s", e.Code, e.Message) }

// transient are Last.fm's codes worth another try: 8 operation failed,
// 11 service offline, 16 temporarily unavailable, 29 rate limit exceeded.
func transient(code int) bool { return code == 8 || code == 11 || code == 16 || code == 29 }

// permanent are codes retrying cannot fix: 6 no such user, 10 invalid API
// key, 17 private profile ("login required"), 26 suspended API key.
func permanent(code int) bool { return code == 6 || code == 10 || code == 17 || code == 26 }

func (c *Client) page(ctx context.Context, user string, from, to int64, n int) (*page, error) {
	q := url.Values{
		"method":  {"user.getrecenttracks"},
		"user":    {user},
		"api_key": {c.cfg.APIKey},
		"format":  {"json"},
		"limit":   {strconv.Itoa(PageSize)},
		"page":    {strconv.Itoa(n)},
		"from":    {strconv.FormatInt(from, 10)},
		"to":      {strconv.FormatInt(to, 10)},
	}
	u := c.cfg.BaseURL
	if strings.Contains(u, "?") {
		u += "&" + q.Encode()
	} else {
		u += "?" + q.Encode()
	}
	backoff := c.cfg.Backoff
	var last error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		if attempt > 1 {
			if err := provider.Sleep(ctx, backoff); err != nil {
				return nil, err
			}
			backoff *= 2
		}
		p, err := c.get(ctx, u)
		if err == nil {
			return p, nil
		}
		last = err
		var le *Error
		if errors.As(err, &le) && permanent(le.Code) {
			return nil, provider.Permanent(fmt.Errorf("user %s: %w", user, err))
		}
		if errors.As(err, &le) && !transient(le.Code) {
			break // unknown code: let the task's own retries decide
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("user %s page %d: %w", user, n, last)
}

func (c *Client) get(ctx context.Context, u string) (*page, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", provider.UserAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d, undecodable body (%v): %.200s", resp.StatusCode, err, body)
	}
	if r.Error != 0 { // Last.fm reports errors in the body, with status 200 or not
		return nil, &Error{Code: int(r.Error), Message: r.Message}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
	}
	if r.RecentTracks == nil {
		return nil, fmt.Errorf("response without recenttracks: %.200s", body)
	}
	return &page{totalPages: int(r.RecentTracks.Attr.TotalPages), tracks: r.RecentTracks.Track}, nil
}

// response is user.getRecentTracks' JSON.
type response struct {
	Error        number `json:"error"`
	Message      string `json:"message"`
	RecentTracks *struct {
		Track tracks `json:"track"`
		Attr  struct {
			User       string `json:"user"`
			Page       number `json:"page"`
			PerPage    number `json:"perPage"`
			TotalPages number `json:"totalPages"`
			Total      number `json:"total"`
		} `json:"@attr"`
	} `json:"recenttracks"`
}

type track struct {
	Artist text   `json:"artist"`
	Album  text   `json:"album"`
	Name   string `json:"name"`
	MBID   string `json:"mbid"`
	Attr   struct {
		NowPlaying string `json:"nowplaying"`
	} `json:"@attr"`
	Date *struct {
		UTS number `json:"uts"`
	} `json:"date"`
}

// text is Last.fm's {"mbid": "...", "#text": "..."} (extended=1 gives the
// artist a "name" instead).
type text struct {
	Text string `json:"#text"`
	Name string `json:"name"`
	MBID string `json:"mbid"`
}

func (t text) name() string {
	if t.Text != "" {
		return t.Text
	}
	return t.Name
}

// tracks accepts a list or, as Last.fm sends for a single play, one object.
type tracks []track

func (ts *tracks) UnmarshalJSON(b []byte) error {
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) > 0 && b[0] == '{' {
		var t track
		if err := json.Unmarshal(b, &t); err != nil {
			return err
		}
		*ts = tracks{t}
		return nil
	}
	var list []track
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*ts = list
	return nil
}

// number accepts 42 and "42" (Last.fm sends most numbers as strings).
type number int64

func (n *number) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*n = number(v)
	return nil
}
