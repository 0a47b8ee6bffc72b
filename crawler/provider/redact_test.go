package provider_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/lastfm"
	"github.com/topk-charts/topk/crawler/provider/providertest"
	"github.com/topk-charts/topk/crawler/provider/spotify"
)

func TestRedactText(t *testing.T) {
	addr := providertest.ClosedAddr(t)
	_, dialErr := http.Get("http://" + addr + "/2.0/?method=user.getrecenttracks&user=rj&api_key=0123456789abcdef0123456789abcdef&format=json")
	if dialErr == nil {
		t.Fatal("a closed port answered")
	}
	// The texts recognisable by name (shared with the migration's test),
	// then a live transport error and the known-values path.
	type redactCase struct {
		name, in string
		secrets  []string
		want     string
	}
	var cases []redactCase
	for _, l := range providertest.Leaks {
		cases = append(cases, redactCase{l.Name, l.In, nil, l.Want})
	}
	cases = append(cases, []redactCase{
		{"url error from a closed port", dialErr.Error(), nil,
			`Get "http://` + addr + `/2.0/?method=user.getrecenttracks&user=rj&api_key=REDACTED&format=json": dial tcp ` + addr + `: connect: connection refused`},
		{"known value anywhere", "token BQ-secret-4711 was refused (BQ-secret-4711)", []string{"BQ-secret-4711"},
			"token REDACTED was refused (REDACTED)"},
		{"known value URL-escaped", "GET /me?t=a%2Bb%2Fc%3Dsecret and a+b/c=secret", []string{"a+b/c=secret"},
			"GET /me?t=REDACTED and REDACTED"},
		{"known values, the longest first", "abcdefgh-longer and abcdefgh", []string{"abcdefgh", "abcdefgh-longer"},
			"REDACTED and REDACTED"},
		{"short and empty known values are not searched", "provider error 17: retry later", []string{"", "r", "error"},
			"provider error 17: retry later"},
		{"nothing secret", "last.fm error 17: Login: User required to be logged in", []string{"0123456789abcdef"},
			"last.fm error 17: Login: User required to be logged in"},
	}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := provider.RedactText(c.in, c.secrets...)
			if got != c.want {
				t.Fatalf("RedactText(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
			if again := provider.RedactText(got, c.secrets...); again != got {
				t.Fatalf("not idempotent: %q → %q", got, again)
			}
		})
	}
}

// Redact changes the text only; errors.Is and errors.As still classify.
func TestRedactKeepsTheErrorChain(t *testing.T) {
	key := "0123456789abcdef"
	base := fmt.Errorf("get ?api_key=%s: %w", key, context.Canceled)
	for _, err := range []error{
		provider.Permanent(base),
		&provider.RetryAfterError{After: time.Minute, Err: base},
	} {
		r := provider.Redact(err, key)
		if strings.Contains(r.Error(), key) || !strings.Contains(r.Error(), "api_key=REDACTED") {
			t.Fatalf("%q", r)
		}
		if !errors.Is(r, context.Canceled) || provider.IsPermanent(r) != provider.IsPermanent(err) {
			t.Fatalf("%T lost its chain", err)
		}
		if d, ok := provider.RetryAfter(r); ok != (d == time.Minute) {
			t.Fatalf("retry after %v %v", d, ok)
		}
	}
	plain := errors.New("HTTP 503")
	if provider.Redact(plain, key) != plain {
		t.Fatal("an error with nothing to redact was wrapped")
	}
	if provider.Redact(nil, key) != nil {
		t.Fatal("nil became an error")
	}
}

// leaky fails with every secret it saw: its own, the account's tokens and
// the tokens it "refreshed".
type leaky struct{}

func (l *leaky) Secrets() []string { return []string{"own-secret-value"} }

func (l *leaky) Crawl(ctx context.Context, acct provider.Account, _ int64, _ func(context.Context, provider.Page) error) (provider.Result, error) {
	fresh := provider.Tokens{Access: "refreshed-access-1", Refresh: "refreshed-refresh-2"}
	if err := acct.SaveTokens(ctx, fresh); err != nil {
		return provider.Result{}, err
	}
	return provider.Result{}, provider.Permanent(fmt.Errorf("%s %s %s %s %s", "own-secret-value",
		acct.Tokens.Access, acct.Tokens.Refresh, fresh.Access, fresh.Refresh))
}

func TestRedactingKnowsEverySecretOfTheCrawl(t *testing.T) {
	var saved []provider.Tokens
	acct := provider.Account{Tokens: provider.Tokens{Access: "account-access-3", Refresh: "account-refresh-4"},
		SaveTokens: func(_ context.Context, t provider.Tokens) error { saved = append(saved, t); return nil }}
	p := provider.Redacting(&leaky{})
	if provider.Redacting(p) != p {
		t.Fatal("wrapped twice")
	}
	_, err := p.Crawl(context.Background(), acct, 0, nil)
	if err == nil || err.Error() != "REDACTED REDACTED REDACTED REDACTED REDACTED" || !provider.IsPermanent(err) {
		t.Fatalf("%v", err)
	}
	if len(saved) != 1 || saved[0].Access != "refreshed-access-1" {
		t.Fatalf("SaveTokens not passed through: %v", saved)
	}
	acct.SaveTokens = nil // not saved: the provider still works, the tokens are still known
	if _, err = p.Crawl(context.Background(), acct, 0, nil); err == nil || strings.Contains(err.Error(), "refreshed") {
		t.Fatalf("without SaveTokens: %v", err)
	}
}

// The real clients, pointed at a closed port, fail with what tells where
// and why, and nothing secret.
func TestRedactingProvidersAtAClosedPort(t *testing.T) {
	addr := providertest.ClosedAddr(t)
	key := "lastfm-key-0123456789abcdef"
	lf, err := lastfm.New(lastfm.Config{BaseURL: "http://" + addr + "/2.0/", APIKey: key, RequestsPerSecond: -1, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, raw := lf.Crawl(context.Background(), provider.Account{UserID: "rj", ExternalID: "rj"}, 0, nil)
	if raw == nil || !strings.Contains(raw.Error(), key) {
		t.Fatalf("the unwrapped client's error should show the key this test is about: %v", raw)
	}
	_, err = provider.Redacting(lf).Crawl(context.Background(), provider.Account{UserID: "rj", ExternalID: "rj"}, 0, nil)
	check(t, err, []string{key}, addr, "api_key=REDACTED", "connection refused")

	secret, access, refresh := "client-secret-0123456789", "BQ-access-token-0123456789", "AQ-refresh-token-0123456789"
	sp, err := spotify.New(spotify.Config{APIURL: "http://" + addr + "/v1", TokenURL: "http://" + addr + "/api/token",
		ClientID: "client-id", ClientSecret: secret, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []provider.Tokens{{Access: access, Refresh: refresh}, {Refresh: refresh}} { // the API, then the refresh
		_, err = provider.Redacting(sp).Crawl(context.Background(), provider.Account{UserID: "u", Tokens: tok}, 0, nil)
		check(t, err, []string{secret, access, refresh}, addr, "connection refused")
	}
}

func check(t *testing.T, err error, secrets []string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("secret %q in %q", s, err)
		}
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q missing from %q", w, err)
		}
	}
}
