package provider

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Redacted is what a secret is replaced with.
const Redacted = "REDACTED"

// minSecretLen is the shortest known value Redact searches for: a shorter
// one would match ordinary words of the error text. Real keys and tokens
// are far longer; a short one is still caught by its parameter name.
const minSecretLen = 8

// SecretHolder is a provider that holds credentials of its own (Last.fm's
// API key, Spotify's client secret). Redacting removes them from every
// error of the provider.
type SecretHolder interface {
	// Secrets are the values that must never appear in an error, in any
	// form the provider sends them in (e.g. a basic-auth header's base64).
	Secrets() []string
}

// The secrets topk knows by name: in query strings and form bodies
// (api_key=…), JSON bodies ("access_token": "…"), Authorization headers
// and bare Bearer tokens, and passwords in URLs. Weak names (code, key,
// sig…) count only right after ? or &, where they are parameters, not
// words. schemas/postgres/0003_redact_errors.sql applies the same rules to
// stored errors; TestIntegrationRedactMigration keeps the two in step.
var redactions = []struct {
	re   *regexp.Regexp
	with string
}{
	// scheme://user:password@host
	{regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@"']*:)[^/\s@"'?#]+@`), "${1}" + Redacted + "@"},
	// Authorization: Bearer x, "Authorization":"Basic x", map[Authorization:[Bearer x]]
	{regexp.MustCompile(`(?i)((?:proxy-)?authorization\\?"?\s*[:=]\s*\[?\\?"?\s*(?:(?:bearer|basic|digest|token|negotiate|oauth)\s+)?)[^\s"',\]}\\]+`), "${1}" + Redacted},
	// Bearer x anywhere else
	{regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*`), "${1}" + Redacted},
	// "access_token": "x" (also inside a quoted string: \"access_token\":\"x\")
	{regexp.MustCompile(`(?i)(\\?"(?:access_token|refresh_token|id_token|client_secret|api_key|apikey|api_secret|token|secret|password|code)\\?"\s*:\s*\\?")[^"\\]*`), "${1}" + Redacted},
	// api_key=x in a query string, a form body, a log line
	{regexp.MustCompile(`(?i)(^|[^A-Za-z0-9_])(api_key|apikey|api_secret|api_sig|access_token|refresh_token|id_token|client_secret|session_key|code_verifier|token|secret|password|passwd)=[^&\s"'#\\;,)]*`), "${1}${2}=" + Redacted},
	// ?code=x, &key=x: only as parameters
	{regexp.MustCompile(`(?i)([?&])(code|key|sig|signature|sk|auth)=[^&\s"'#\\;,)]*`), "${1}${2}=" + Redacted},
}

// RedactText replaces in s every secret by Redacted: each of the known
// values (and its URL-escaped forms) of at least 8 bytes, then every value
// of a secret-bearing parameter, JSON field or header whatever it is, and
// passwords in URLs. What identifies the failure stays: the host, the
// path, the other parameters, the error kind.
func RedactText(s string, secrets ...string) string {
	var known []string
	for _, v := range secrets {
		if len(v) < minSecretLen {
			continue
		}
		known = append(known, v, url.QueryEscape(v), url.PathEscape(v))
	}
	if len(known) > 0 {
		// The longest first: a value that contains another goes whole.
		slices.SortFunc(known, func(a, b string) int { return len(b) - len(a) })
		known = slices.Compact(known)
		pairs := make([]string, 0, 2*len(known))
		for _, v := range known {
			pairs = append(pairs, v, Redacted)
		}
		s = strings.NewReplacer(pairs...).Replace(s)
	}
	for _, r := range redactions {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return s
}

// Redact is err with RedactText applied to its message: the one way a
// provider's error leaves the crawl (Redacting), so its text is what logs,
// PostgreSQL (schedules.last_error, crawl_runs.error), Asynq and the admin
// api see. errors.Is and errors.As still reach the original (Permanent,
// RetryAfter, context errors) for classification; print only the
// returned error. err comes back as it is when nothing was redacted.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := RedactText(msg, secrets...)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Redacting returns p whose errors pass through Redact with every secret
// known during the crawl: p's own (SecretHolder), the account's tokens and
// the tokens p refreshes on the way (it sees them through SaveTokens). The
// crawler's worker wraps every provider with it.
func Redacting(p Provider) Provider {
	if _, ok := p.(*redacting); ok {
		return p
	}
	r := &redacting{p: p}
	if h, ok := p.(SecretHolder); ok {
		r.own = h.Secrets()
	}
	return r
}

type redacting struct {
	p   Provider
	own []string
}

func (r *redacting) Crawl(ctx context.Context, acct Account, cursor int64, emit func(context.Context, Page) error) (Result, error) {
	var mu sync.Mutex
	secrets := append(slices.Clip(r.own), acct.Tokens.Access, acct.Tokens.Refresh)
	save := acct.SaveTokens
	acct.SaveTokens = func(ctx context.Context, t Tokens) error {
		mu.Lock()
		secrets = append(secrets, t.Access, t.Refresh)
		mu.Unlock()
		if save == nil {
			return nil
		}
		return save(ctx, t)
	}
	res, err := r.p.Crawl(ctx, acct, cursor, emit)
	mu.Lock()
	defer mu.Unlock()
	return res, Redact(err, secrets...)
}
