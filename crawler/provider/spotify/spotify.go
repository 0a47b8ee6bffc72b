package spotify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
)

// PageSize is the endpoint's maximum (and the whole history it keeps).
const PageSize = 50

// Config configures the client.
type Config struct {
	// APIURL default https://api.spotify.com/v1.
	APIURL string
	// TokenURL default https://accounts.spotify.com/api/token.
	TokenURL string
	// ClientID and ClientSecret of the application (refresh grant).
	ClientID, ClientSecret string
	// MaxRetryAfter is the longest 429 Retry-After waited in-process;
	// default 30s. A longer one fails the run with a RetryAfterError, and
	// the task is retried after that delay.
	MaxRetryAfter time.Duration
	// Attempts per request for 429, 5xx and network errors; default 3.
	Attempts int
	// HTTPClient default one with a 30 s timeout.
	HTTPClient *http.Client
	// Now default time.Now.
	Now func() time.Time
}

// Client is the Spotify provider.
type Client struct{ cfg Config }

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = "https://api.spotify.com/v1"
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = "https://accounts.spotify.com/api/token"
	}
	for _, u := range []string{cfg.APIURL, cfg.TokenURL} {
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("spotify url: %w", err)
		}
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 30 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// Secrets are the client secret and the basic-auth credentials of the
// token refresh: provider.Redacting removes them from every error.
func (c *Client) Secrets() []string {
	return []string{c.cfg.ClientSecret, base64.StdEncoding.EncodeToString([]byte(c.cfg.ClientID + ":" + c.cfg.ClientSecret))}
}

// Crawl fetches the plays after cursor (Unix milliseconds) in one page.
func (c *Client) Crawl(ctx context.Context, acct provider.Account, cursor int64, emit func(context.Context, provider.Page) error) (provider.Result, error) {
	tokens := acct.Tokens
	if tokens.Access == "" || (!tokens.Expiry.IsZero() && !c.cfg.Now().Before(tokens.Expiry.Add(-30*time.Second))) {
		var err error
		if tokens, err = c.refresh(ctx, acct, tokens); err != nil {
			return provider.Result{}, err
		}
	}
	q := url.Values{"limit": {strconv.Itoa(PageSize)}}
	if cursor > 0 {
		q.Set("after", strconv.FormatInt(cursor, 10))
	}
	u := strings.TrimSuffix(c.cfg.APIURL, "/") + "/me/player/recently-played?" + q.Encode()
	var body []byte
	refreshed := false
	for attempt := 1; ; attempt++ {
		status, b, hdr, err := c.do(ctx, u, tokens.Access)
		switch {
		case err != nil:
			if attempt >= c.cfg.Attempts || ctx.Err() != nil {
				return provider.Result{}, fmt.Errorf("spotify recently-played: %w", err)
			}
			if err := provider.Sleep(ctx, time.Duration(attempt)*time.Second); err != nil {
				return provider.Result{}, err
			}
			continue
		case status == http.StatusUnauthorized && !refreshed:
			refreshed = true
			if tokens, err = c.refresh(ctx, acct, tokens); err != nil {
				return provider.Result{}, err
			}
			continue
		case status == http.StatusUnauthorized:
			return provider.Result{}, provider.Permanent(fmt.Errorf("spotify: 401 with a freshly refreshed token: %s", apiError(b)))
		case status == http.StatusTooManyRequests:
			wait := retryAfter(hdr.Get("Retry-After"))
			err := fmt.Errorf("spotify: 429 rate limited: %s", apiError(b))
			if wait > c.cfg.MaxRetryAfter || attempt >= c.cfg.Attempts {
				return provider.Result{}, &provider.RetryAfterError{After: wait, Err: err}
			}
			if err := provider.Sleep(ctx, wait); err != nil {
				return provider.Result{}, err
			}
			continue
		case status >= 500:
			if attempt >= c.cfg.Attempts {
				return provider.Result{}, fmt.Errorf("spotify: HTTP %d: %s", status, apiError(b))
			}
			if err := provider.Sleep(ctx, time.Duration(attempt)*time.Second); err != nil {
				return provider.Result{}, err
			}
			continue
		case status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusBadRequest:
			return provider.Result{}, provider.Permanent(fmt.Errorf("spotify: HTTP %d: %s", status, apiError(b)))
		case status != http.StatusOK:
			return provider.Result{}, fmt.Errorf("spotify: HTTP %d: %s", status, apiError(b))
		}
		body = b
		break
	}
	var r recentlyPlayed
	if err := json.Unmarshal(body, &r); err != nil {
		return provider.Result{}, fmt.Errorf("spotify: undecodable body: %w", err)
	}
	plays := make([]provider.Play, 0, len(r.Items))
	next := cursor
	fresh := 0
	for i := len(r.Items) - 1; i >= 0; i-- { // newest first on the wire
		it := r.Items[i]
		at, err := time.Parse(time.RFC3339Nano, it.PlayedAt)
		if err != nil {
			return provider.Result{}, fmt.Errorf("spotify: played_at %q: %w", it.PlayedAt, err)
		}
		ms := at.UnixMilli()
		if ms <= cursor {
			continue
		}
		fresh++
		p := provider.Play{
			PlayedAt: at.UTC(), Track: it.Track.Name, TrackID: it.Track.ID, DurationMS: it.Track.DurationMS,
			Album: it.Track.Album.Name, AlbumID: it.Track.Album.ID,
		}
		if len(it.Track.Artists) > 0 {
			p.Artist, p.ArtistID = it.Track.Artists[0].Name, it.Track.Artists[0].ID
		}
		plays = append(plays, p)
		next = max(next, ms)
	}
	res := provider.Result{PossibleGap: fresh >= PageSize}
	if len(plays) == 0 {
		return res, nil
	}
	return res, emit(ctx, provider.Page{Plays: plays, Cursor: next, Done: 1, Total: 1})
}

func (c *Client) do(ctx context.Context, u, access string) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("User-Agent", provider.UserAgent)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, resp.Header, err
}

// refresh trades the refresh token for a new access token and saves both.
func (c *Client) refresh(ctx context.Context, acct provider.Account, t provider.Tokens) (provider.Tokens, error) {
	if t.Refresh == "" {
		return t, provider.Permanent(errors.New("spotify: no refresh token stored for this account"))
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t.Refresh}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return t, err
	}
	req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", provider.UserAgent)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return t, fmt.Errorf("spotify token refresh: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return t, fmt.Errorf("spotify token refresh: %w", err)
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	_ = json.Unmarshal(b, &tr)
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized:
		// invalid_grant: the user revoked access; invalid_client: our credentials.
		return t, provider.Permanent(fmt.Errorf("spotify token refresh: HTTP %d %s: %s", resp.StatusCode, tr.Error, tr.Description))
	case resp.StatusCode != http.StatusOK || tr.AccessToken == "":
		return t, fmt.Errorf("spotify token refresh: HTTP %d: %.200s", resp.StatusCode, b)
	}
	nt := provider.Tokens{Access: tr.AccessToken, Refresh: t.Refresh}
	if tr.RefreshToken != "" { // Spotify may rotate the refresh token
		nt.Refresh = tr.RefreshToken
	}
	if tr.ExpiresIn > 0 {
		nt.Expiry = c.cfg.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	if acct.SaveTokens != nil {
		if err := acct.SaveTokens(ctx, nt); err != nil {
			return t, fmt.Errorf("save refreshed spotify tokens: %w", err)
		}
	}
	return nt, nil
}

// retryAfter parses Retry-After (seconds or an HTTP date); default 5 s.
func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 5 * time.Second
}

func apiError(b []byte) string {
	var e struct {
		Error struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return fmt.Sprintf("%.200s", b)
}

// recentlyPlayed is the endpoint's JSON (the fields topk reads).
type recentlyPlayed struct {
	Items []struct {
		Track struct {
			ID         string `json:"id"`
			Name       string `json:"name"`
			DurationMS int64  `json:"duration_ms"`
			Artists    []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"artists"`
			Album struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"album"`
		} `json:"track"`
		PlayedAt string `json:"played_at"`
	} `json:"items"`
	Next    *string `json:"next"`
	Cursors *struct {
		After  string `json:"after"`
		Before string `json:"before"`
	} `json:"cursors"`
	Limit int `json:"limit"`
}
