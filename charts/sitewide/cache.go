package sitewide

import (
	"context"
	"time"

	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ttlCache keeps values for a TTL in this process, bounded in (estimated)
// bytes, the oldest going first; a value being filled is shared by every
// request that wants it meanwhile (one read, not one per request). A fill
// runs on its own, bounded by the timeout: a request that gives up does
// not cancel it for the others. Failures are not kept.
//
// The per-user charts cache in Redis as well (charts/cache.go); a
// sitewide answer is the same for every user, so the api's instances each
// hold the few ranges asked for, and one read per range and TTL per
// instance is all Cassandra sees.
type ttlCache[V any] struct {
	ttl      time.Duration
	maxBytes int64
	timeout  time.Duration
	now      func() time.Time
	requests *prometheus.CounterVec // by result

	mu    sync.Mutex
	m     map[string]*centry[V]
	bytes int64
}

type centry[V any] struct {
	done chan struct{}
	v    V
	err  error
	at   time.Time // when the fill started
	size int64
	kept bool
}

func newTTLCache[V any](ttl time.Duration, maxBytes int64, timeout time.Duration, now func() time.Time, requests *prometheus.CounterVec) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, maxBytes: maxBytes, timeout: timeout, now: now, requests: requests, m: map[string]*centry[V]{}}
}

// get returns key's value, filling it when it is missing or older than
// the TTL, and when it was read.
func (c *ttlCache[V]) get(ctx context.Context, key string, fill func(ctx context.Context) (V, int64, error)) (V, time.Time, error) {
	c.mu.Lock()
	e := c.m[key]
	if e != nil {
		select {
		case <-e.done:
			if c.now().Sub(e.at) < c.ttl {
				c.mu.Unlock()
				c.requests.WithLabelValues("hit").Inc()
				return e.v, e.at, nil
			}
			c.drop(key, e)
			e = nil
		default:
			c.mu.Unlock()
			c.requests.WithLabelValues("shared").Inc()
			return c.wait(ctx, e)
		}
	}
	e = &centry[V]{done: make(chan struct{}), at: c.now()}
	if c.ttl > 0 {
		c.m[key] = e
	}
	c.mu.Unlock()
	c.requests.WithLabelValues("miss").Inc()
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		v, size, err := fill(fctx)
		c.mu.Lock()
		e.v, e.err, e.size = v, err, size
		if c.m[key] == e {
			if err != nil || size > c.maxBytes {
				delete(c.m, key)
			} else {
				e.kept = true
				c.bytes += size
				c.evict(key)
			}
		}
		c.mu.Unlock()
		close(e.done)
	}()
	return c.wait(ctx, e)
}

func (c *ttlCache[V]) wait(ctx context.Context, e *centry[V]) (V, time.Time, error) {
	select {
	case <-e.done:
		return e.v, e.at, e.err
	case <-ctx.Done():
		var zero V
		return zero, time.Time{}, ctx.Err()
	}
}

// drop forgets a done entry (c.mu held).
func (c *ttlCache[V]) drop(key string, e *centry[V]) {
	delete(c.m, key)
	if e.kept {
		c.bytes -= e.size
	}
}

// evict drops expired entries, then the oldest, until the kept ones fit
// (c.mu held); keep stays.
func (c *ttlCache[V]) evict(keep string) {
	if c.bytes <= c.maxBytes {
		return
	}
	now := c.now()
	for k, e := range c.m {
		if e.kept && k != keep && now.Sub(e.at) >= c.ttl {
			c.drop(k, e)
		}
	}
	for c.bytes > c.maxBytes {
		oldest := ""
		for k, e := range c.m {
			if e.kept && k != keep && (oldest == "" || e.at.Before(c.m[oldest].at)) {
				oldest = k
			}
		}
		if oldest == "" {
			return
		}
		c.drop(oldest, c.m[oldest])
	}
}

// len is the number of entries kept or being filled (tests).
func (c *ttlCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
