package api

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/internal/ratelimit"
)

// What bounds the cost of a request to the public read routes
// (docs/SECURITY.md, "Limits"):
//
//   - a token bucket per client (rateLimit, on those routes only): past
//     it, 429 with Retry-After; every answer of those routes carries
//     X-RateLimit-Limit, -Remaining, -Reset-In and -Reset (ListenBrainz's
//     names). The client is the connection's peer, or the address a
//     trusted proxy put in X-Forwarded-For (TrustedProxies); IPv6 clients
//     by /64. RateLimit.ExemptLoopback (TOPK_DEV_MODE=1) leaves loopback
//     clients unlimited and without the headers;
//   - the charts service's bound on Cassandra reads at once: a query
//     that found every slot taken for its short wait is a 503 with
//     Retry-After: 1 (busy);
//   - the HTTP server's timeouts (Timeouts).
//
// Refusals are counted in topk_http_rejected_total{reason}.

// RateLimit is the per-client limit of the public read routes.
type RateLimit struct {
	// PerSecond is each client's sustained rate (TOPK_API_RATE_LIMIT); 0:
	// no limit.
	PerSecond float64
	// Burst is the requests a client may send at once (TOPK_API_RATE_BURST);
	// 0: PerSecond.
	Burst int
	// InFlight bounds a client's requests in progress at once
	// (TOPK_API_RATE_IN_FLIGHT): one more gets 429 without taking a token.
	// The bucket paces a client; this keeps its burst from running all at
	// once. Default (0) 4; negative: no bound.
	InFlight int
	// ReadsPerToken is how many Cassandra reads (partitions, day lists,
	// pages of listens) one read token pays for: each ReadsPerToken (or
	// part of them) a request causes cost its client one, from the read
	// bucket — a tally's partitions before they are read, other reads
	// after the answer. Default (0) 4; negative: reads cost nothing. A
	// chart the view or the cache serves costs no read token; a two-year
	// custom range read from Cassandra about seven. (Until bench-api's
	// -attack-view showed that a flood of 429s alone takes ~7 ms of the
	// 10 ms budget on two cores, a request's first 4 reads came free with
	// its request token: an attacker's cheap Cassandra ranges then cost it
	// nothing but requests.)
	ReadsPerToken int
	// ReadBurst is the size of each client's second bucket, the one its
	// reads' tokens come from (TOPK_API_RATE_READ_BURST; it refills at
	// PerSecond too). Requests and reads have a bucket each so that a
	// burst of requests (a chart page) stays cheap while a burst of reads
	// stays small: with one bucket of 40, a client's first second could
	// start ~200 partition reads, which on a machine shared with
	// Cassandra slowed everyone's view-served answers (make bench-api).
	// A request owing more than ReadBurst is admitted with a full bucket
	// and leaves it in debt. Default (0) 10.
	ReadBurst int
	// ExemptLoopback leaves clients on 127.0.0.0/8 and ::1 unlimited:
	// `topk` sets it with TOPK_DEV_MODE=1 (a developer's browser and
	// scripts on the same machine).
	ExemptLoopback bool
}

// Timeouts are the HTTP server's: how long a client may take to send
// the request's headers (ReadHeader) and all of it (Read), how long the
// server may take from the end of the headers to the end of its answer
// (Write; a chart's reads are bounded at 5 s), and how long a kept-alive
// connection may idle (Idle).
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts are the timeouts of fields left zero.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: 2 * time.Minute}

// withDefaults fills the fields left 0: 4 requests in flight, 4 reads
// per token, a read bucket of 10.
func (r RateLimit) withDefaults() RateLimit {
	if r.InFlight == 0 {
		r.InFlight = 4
	}
	if r.ReadsPerToken == 0 {
		r.ReadsPerToken = 4
	}
	if r.ReadBurst <= 0 {
		r.ReadBurst = 10
	}
	return r
}

func (t Timeouts) withDefaults() Timeouts {
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.ReadHeader, &DefaultTimeouts.ReadHeader}, {&t.Read, &DefaultTimeouts.Read},
		{&t.Write, &DefaultTimeouts.Write}, {&t.Idle, &DefaultTimeouts.Idle},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// ipExtractor is how the server finds a request's client: the peer, or,
// from trusted proxies only, the last untrusted address of
// X-Forwarded-For. (Echo's default trusts X-Forwarded-For and X-Real-IP
// from anyone: a client could pick its own rate-limit key.)
func ipExtractor(trusted []string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, t := range trusted {
		n, err := ParseTrustedProxy(t)
		if err != nil {
			return nil, err
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}

// ParseTrustedProxy reads a trusted proxy: a CIDR network or one address.
func ParseTrustedProxy(s string) (*net.IPNet, error) {
	s = strings.TrimSpace(s)
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR network", s)
	}
	bits := 128
	if ip.To4() != nil {
		ip, bits = ip.To4(), 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// rateLimit is the per-client token bucket of the public read routes.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.limiter.Enabled() {
			return next(c)
		}
		ip := c.RealIP()
		if s.cfg.RateLimit.ExemptLoopback && ratelimit.Loopback(ip) {
			return next(c)
		}
		key := ratelimit.Key(ip)
		inFlight := s.cfg.RateLimit.InFlight
		leave, ok := s.limiter.Enter(key, inFlight)
		if !ok {
			s.rejected.WithLabelValues("in_flight").Inc()
			c.Response().Header().Set(ratelimit.HeaderRetryAfter, "1")
			return Errorf(CodeRateLimited, "", fmt.Sprintf("too many requests at once: at most %d per client; retry when one has been answered", inFlight))
		}
		defer leave()
		d := s.limiter.Allow(key)
		d.SetHeaders(c.Response().Header())
		if !d.Allowed {
			s.rejected.WithLabelValues("rate_limit").Inc()
			return Errorf(CodeRateLimited, "", fmt.Sprintf("too many requests: at most %d at once and %g per second per client; retry in %s s",
				d.Limit, s.cfg.RateLimit.PerSecond, c.Response().Header().Get(ratelimit.HeaderRetryAfter)))
		}
		per := s.cfg.RateLimit.ReadsPerToken
		if per < 0 {
			return next(c)
		}
		// The read tokens a request owes for n reads: one per per reads
		// (or part of them).
		owed := func(n int64) int { return int((n + int64(per) - 1) / int64(per)) }
		ctx, cost := charts.WithCost(c.Request().Context())
		// A query may admit reads from other goroutines (its fills), even
		// after the request has been answered (a fill others still wait
		// for): then it is not this request's to pay, nor its headers to
		// touch.
		var mu sync.Mutex
		paid, answered := 0, false
		cost.Admit = func(reads int) error {
			mu.Lock()
			defer mu.Unlock()
			if answered {
				return nil
			}
			due := owed(cost.Reads()+int64(reads)) - paid
			if due <= 0 {
				return nil
			}
			// Take caps due at the read bucket's size: a larger debt is
			// admitted with a full bucket, the rest charged.
			d := s.reads.Take(key, due)
			if !d.Allowed {
				retry := strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10)
				c.Response().Header().Set(ratelimit.HeaderRetryAfter, retry)
				s.rejected.WithLabelValues("rate_limit").Inc()
				return Errorf(CodeRateLimited, "", fmt.Sprintf("too many Cassandra reads: this request reads %d partitions, which costs %d read tokens; a client has %d (%g per second); retry in %s s",
					reads, due, d.Limit, s.cfg.RateLimit.PerSecond, retry))
			}
			if due > d.Limit {
				s.reads.Charge(key, due-d.Limit)
			}
			paid += due
			s.charged.Add(float64(due))
			return nil
		}
		c.SetRequest(c.Request().WithContext(ctx))
		err := next(c)
		mu.Lock()
		defer mu.Unlock()
		answered = true
		if due := owed(cost.Reads()) - paid; due > 0 { // reads not admitted up front (day lists, listens, …)
			s.reads.Charge(key, due)
			s.charged.Add(float64(due))
		}
		return err
	}
}

// busy marks a query the charts service refused because every Cassandra
// slot was taken: Retry-After: 1, counted; err passes unchanged (a 503).
func (s *Server) busy(c echo.Context, err error) error {
	if errors.Is(err, charts.ErrBusy) {
		c.Response().Header().Set(ratelimit.HeaderRetryAfter, "1")
		s.rejected.WithLabelValues("cassandra_busy").Inc()
	}
	return err
}
