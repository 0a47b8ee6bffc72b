package ratelimit

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config configures a Limiter.
type Config struct {
	// PerSecond is the tokens a client's bucket gains per second (its
	// sustained request rate). Zero or negative: no limit.
	PerSecond float64
	// Burst is the bucket's size: the requests a client with a full
	// bucket may send at once. Default (0): max(1, PerSecond).
	Burst int
	// MaxClients bounds the clients remembered. Past it, idle clients
	// (full buckets) go first, then arbitrary ones, which come back with
	// a full bucket. Default 65536 (a few MB).
	MaxClients int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Limiter is a token bucket per client key. Safe for concurrent use.
type Limiter struct {
	cfg   Config
	limit rate.Limit

	mu        sync.Mutex
	clients   map[string]*client
	lastSweep time.Time
}

type client struct {
	lim      *rate.Limiter
	seen     time.Time
	inFlight int // requests in progress (Enter)
}

// sweepEvery is how often Allow drops the clients whose bucket is full.
const sweepEvery = time.Minute

// New builds a limiter.
func New(cfg Config) *Limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(math.Ceil(cfg.PerSecond)))
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 1 << 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, limit: rate.Limit(cfg.PerSecond), clients: map[string]*client{}}
}

// Enabled reports whether the limiter limits anything.
func (l *Limiter) Enabled() bool { return l != nil && l.cfg.PerSecond > 0 }

// Decision is the limiter's answer to one request and the numbers of
// its headers.
type Decision struct {
	// Allowed: the request may proceed (it took a token).
	Allowed bool
	// Limit is the bucket's size (X-RateLimit-Limit).
	Limit int
	// Remaining is the whole tokens left after this request
	// (X-RateLimit-Remaining).
	Remaining int
	// ResetIn is how long until the bucket is full again
	// (X-RateLimit-Reset-In, in whole seconds rounded up; X-RateLimit-Reset
	// is now plus it, in Unix seconds).
	ResetIn time.Duration
	// RetryAfter is, for a refused request, how long until a token is
	// back (Retry-After, whole seconds rounded up, at least 1).
	RetryAfter time.Duration
	// At is when the decision was taken.
	At time.Time
}

// Allow takes a token from key's bucket if it has one.
func (l *Limiter) Allow(key string) Decision { return l.Take(key, 1) }

// until is how long the bucket takes to gain n tokens.
// Take takes n tokens from key's bucket if it holds them (n is capped at
// the burst), and otherwise nothing: Allowed false, with when to retry.
// Allow is Take of one; an allowed request whose reads turn out to cost
// more takes the rest with Take (up front) or Charge (after).
func (l *Limiter) Take(key string, n int) Decision {
	now := l.cfg.Now()
	if !l.Enabled() || n <= 0 {
		return Decision{Allowed: true, At: now}
	}
	n = min(n, l.cfg.Burst)
	lim := l.bucket(key, now)
	ok := lim.AllowN(now, n)
	tokens := lim.TokensAt(now)
	d := Decision{Allowed: ok, Limit: l.cfg.Burst, Remaining: max(0, int(math.Floor(tokens))), At: now,
		ResetIn: l.until(float64(l.cfg.Burst) - tokens)}
	if !ok {
		d.RetryAfter = max(time.Second, l.until(float64(n)-tokens))
	}
	return d
}

// Charge takes n more tokens from key's bucket after a request was
// allowed — what it turned out to cost — and may leave the bucket in
// debt (at most a burst deep): the client's next requests wait until it
// is repaid. n ≤ 0 does nothing.
func (l *Limiter) Charge(key string, n int) {
	if !l.Enabled() || n <= 0 {
		return
	}
	now := l.cfg.Now()
	l.bucket(key, now).ReserveN(now, min(n, l.cfg.Burst))
}

func (l *Limiter) until(n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(n / float64(l.limit) * float64(time.Second))
}

// bucket is key's limiter, created full.
func (l *Limiter) bucket(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client(key, now).lim
}

// Enter counts one more request of key in progress unless key already
// has max (≤ 0: no bound); leave ends it. Tokens pace a client's
// requests; this bounds how many of them run at once, so that a burst
// of expensive ones cannot all start together.
func (l *Limiter) Enter(key string, max int) (leave func(), ok bool) {
	if !l.Enabled() || max <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.client(key, l.cfg.Now())
	if c.inFlight >= max {
		return nil, false
	}
	c.inFlight++
	return func() {
		l.mu.Lock()
		c.inFlight--
		l.mu.Unlock()
	}, true
}

// client is key's entry, created with a full bucket; it sweeps and
// bounds the map. l.mu is held.
func (l *Limiter) client(key string, now time.Time) *client {
	if c, ok := l.clients[key]; ok {
		c.seen = now
		return c
	}
	if now.Sub(l.lastSweep) >= sweepEvery || len(l.clients) >= l.cfg.MaxClients {
		l.sweep(now)
	}
	if len(l.clients) >= l.cfg.MaxClients {
		// Full of active clients: drop an eighth, arbitrary ones (map
		// order), so that the next new clients do not sweep again.
		for k := range l.clients {
			if len(l.clients) <= l.cfg.MaxClients-max(1, l.cfg.MaxClients/8) {
				break
			}
			delete(l.clients, k)
		}
	}
	c := &client{lim: rate.NewLimiter(l.limit, l.cfg.Burst), seen: now}
	l.clients[key] = c
	return c
}

// sweep drops the clients whose bucket is full: a new bucket behaves the
// same.
func (l *Limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, c := range l.clients {
		if c.inFlight == 0 && c.lim.TokensAt(now) >= float64(l.cfg.Burst) {
			delete(l.clients, k)
		}
	}
}

// Clients is how many clients the limiter remembers.
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// The headers' names (ListenBrainz's; Retry-After is HTTP's).
const (
	HeaderLimit      = "X-RateLimit-Limit"
	HeaderRemaining  = "X-RateLimit-Remaining"
	HeaderResetIn    = "X-RateLimit-Reset-In"
	HeaderReset      = "X-RateLimit-Reset"
	HeaderRetryAfter = "Retry-After"
)

// SetHeaders writes the decision's headers: the four X-RateLimit-* on
// every answer, and Retry-After when the request was refused.
func (d Decision) SetHeaders(h http.Header) {
	resetIn := seconds(d.ResetIn)
	h.Set(HeaderLimit, strconv.Itoa(d.Limit))
	h.Set(HeaderRemaining, strconv.Itoa(d.Remaining))
	h.Set(HeaderResetIn, strconv.FormatInt(resetIn, 10))
	h.Set(HeaderReset, strconv.FormatInt(d.At.Unix()+resetIn, 10))
	if !d.Allowed {
		h.Set(HeaderRetryAfter, strconv.FormatInt(seconds(d.RetryAfter), 10))
	}
}

// seconds is d in whole seconds, rounded up.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Key is the client key of an IP address as text: the address itself for
// IPv4 (and IPv4-mapped IPv6), the /64 network for IPv6, the text as
// given when it does not parse.
func Key(ip string) string {
	p := net.ParseIP(ip)
	switch {
	case p == nil:
		return ip
	case p.To4() != nil:
		return p.To4().String()
	}
	return p.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// Loopback reports whether ip (text) is a loopback address (127.0.0.0/8,
// ::1).
func Loopback(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && p.IsLoopback()
}
