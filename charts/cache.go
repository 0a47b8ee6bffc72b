package charts

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"github.com/topk-charts/topk"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
)

// Cache is the shared store of Cassandra answers (Redis): it may lose
// anything, and it may be down.
type Cache interface {
	// Get returns the value of key; nil and no error on a miss.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// RedisCache is Cache on a go-redis client.
type RedisCache struct{ Client *goredis.Client }

// Get implements Cache.
func (r RedisCache) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.Client.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	return b, err
}

// Set implements Cache.
func (r RedisCache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return r.Client.Set(ctx, key, value, ttl).Err()
}

// answers caches Cassandra answers in two tiers: decoded in this process
// (an LRU under a byte budget: a heavy user's all-time tally is too large
// to fetch from Redis and decode on every request) and encoded in Redis
// (shared by every api instance, survives a restart; answers larger than
// maxShared stay in this process only). Both live TTL counted from the
// Cassandra read (as_of); every Redis entry carries the TTL. Requests for
// a missing key share one fill (flights), which is cancelled when every
// request waiting for it has gone; an entry past 3/4 of its TTL is served
// while one background fill replaces it, so a steady stream of requests
// for a key never waits for Cassandra. Every fill that reads Cassandra
// takes one of the service's slots first (slots: a request waits a short
// while for one, then gets ErrBusy; a refresh-ahead skips). Redis errors
// open a breaker for a second: Redis down is served uncached (from
// Cassandra), never failed. Cassandra failing (or busy) on a refill of an
// expired entry serves the expired one (up to MaxStale) rather than a
// 503.
type answers struct {
	shared    Cache // nil: no Redis
	ttl       time.Duration
	maxShared int64 // largest encoding stored in Redis; ≤ 0: any
	prefix    string
	log       *slog.Logger
	now       func() time.Time

	local      *lru
	flights    flights
	slots      *slots
	refreshing sync.Map // key → struct{}: a background refresh runs
	// composed bounds the background fills made of fetches (a chart's
	// all-time names) that run at once: they wait their turn here, then
	// wait for slots (patient) rather than fail busy, so at most a
	// quarter of the slots serve them and the rest serve requests. nil:
	// no bound.
	composed chan struct{}

	// life bounds the background refreshes: the service owns it and
	// close cancels it, then waits for them (background). bgMu orders
	// starting one against close.
	life       context.Context
	stop       context.CancelFunc
	bgMu       sync.Mutex
	background sync.WaitGroup

	sharedDownUntil atomic.Int64 // Unix ns
	requests        *prometheus.CounterVec
	oversize        prometheus.Counter
}

// answersConfig is what the service hands its cache (Config's fields).
type answersConfig struct {
	shared     Cache
	ttl        time.Duration
	localBytes int64
	maxShared  int64
	prefix     string
	maxFills   int           // Cassandra fills at once; ≤ 0: any
	busyWait   time.Duration // how long a request waits for a slot
	log        *slog.Logger
	now        func() time.Time
	reg        prometheus.Registerer
}

// fillTimeout bounds a fill that requests wait for (they leave earlier
// at their own deadline, and the last one leaving cancels it);
// refreshTimeout bounds a background refresh, which nobody waits for.
const (
	fillTimeout    = 10 * time.Second
	refreshTimeout = 30 * time.Second
)

func newAnswers(c answersConfig) (*answers, error) {
	a := &answers{shared: c.shared, ttl: c.ttl, maxShared: c.maxShared, prefix: c.prefix, log: c.log, now: c.now, local: newLRU(c.localBytes)}
	a.life, a.stop = context.WithCancel(context.Background())
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_api_cache_requests_total",
		Help: "Lookups of cached Cassandra answers by tier (local, redis) and result (hit, miss, error, skipped: Redis breaker open; stale: expired, served because Cassandra failed).",
	}, []string{"tier", "result"})
	a.oversize = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_api_cache_oversize_total",
		Help: "Cassandra answers not stored in Redis because their encoding is over TOPK_CACHE_MAX_ENTRY_BYTES (kept in this process only).",
	})
	a.flights.timeout = fillTimeout
	a.flights.cancelled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_api_cache_fills_cancelled_total",
		Help: "Cache fills cancelled because every request waiting for them went away (client gone, deadline).",
	})
	for _, col := range []prometheus.Collector{a.requests, a.oversize, a.flights.cancelled} {
		if err := c.reg.Register(col); err != nil {
			a.stop()
			return nil, err
		}
	}
	if c.maxFills > 0 {
		a.composed = make(chan struct{}, max(1, c.maxFills/4))
	}
	var err error
	if a.slots, err = newSlots(c.maxFills, c.busyWait, c.reg); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

// close cancels the background refreshes and waits for them; a fetch
// after it starts none.
func (a *answers) close() {
	a.bgMu.Lock()
	a.stop()
	a.bgMu.Unlock()
	a.background.Wait()
}

// cached is a decoded answer with the time it was read from Cassandra.
type cached struct {
	val  any
	asOf time.Time
	size int64
}

// codec turns an answer into bytes and back; size estimates its memory
// (negative: twice the encoding's length); keep, when set, tells which
// answers may be cached (the others are shared by the requests waiting
// for the fill, then forgotten).
type codec[T any] struct {
	encode func(T) []byte
	decode func([]byte) (T, error)
	size   func(T) int64
	keep   func(T) bool
}

// fetch returns key's answer: from this process, from Redis, or from fill
// (whose result is then cached in both). ttl 0 disables caching. fill
// reads Cassandra: it runs holding one of the service's slots.
func fetch[T any](ctx context.Context, a *answers, key string, c codec[T], fill func(context.Context) (T, error)) (T, time.Time, error) {
	var zero T
	if a.ttl <= 0 {
		release, err := a.slots.acquire(ctx)
		if err != nil {
			return zero, time.Time{}, err
		}
		defer release()
		v, err := fill(ctx)
		return v, time.Now().UTC(), err
	}
	key = a.prefix + key
	now := a.now()
	if e, ok := a.local.get(key); ok && now.Before(e.asOf.Add(a.ttl)) {
		a.requests.WithLabelValues("local", "hit").Inc()
		if now.After(e.asOf.Add(a.ttl * 3 / 4)) {
			a.refreshAhead(key, func(ctx context.Context) (cached, []byte, error) { return load(ctx, a.now().UTC(), fill, c) })
		}
		return e.val.(T), e.asOf, nil
	}
	a.requests.WithLabelValues("local", "miss").Inc()
	e, err := a.flights.do(ctx, key, func(ctx context.Context) (cached, error) {
		if e, ok := a.fromShared(ctx, key, a.ttl, decodeWith(c)); ok {
			return e, nil
		}
		release, err := a.slots.acquire(ctx)
		if err != nil {
			return cached{}, err
		}
		defer release()
		e, b, err := load(ctx, a.now().UTC(), fill, c)
		if err != nil {
			return cached{}, err
		}
		if c.keep == nil || c.keep(e.val.(T)) {
			a.store(ctx, key, a.ttl, e, b)
		}
		return e, nil
	})
	if err != nil {
		if ctx.Err() != nil { // this request went away
			return zero, time.Time{}, err
		}
		// Cassandra failed or is busy: an expired answer this process
		// still holds beats a 503 (as_of tells its age).
		if e, ok := a.local.get(key); ok && now.Before(e.asOf.Add(MaxStale)) {
			a.requests.WithLabelValues("local", "stale").Inc()
			return e.val.(T), e.asOf, nil
		}
		return zero, time.Time{}, err
	}
	return e.val.(T), e.asOf, nil
}

// part is one partition's items read from Cassandra within the TTL, if
// this process holds them (readTally). Items are never changed once read.
func (a *answers) part(key string) ([]topk.Item, bool) {
	if a.ttl <= 0 {
		return nil, false
	}
	e, ok := a.local.get(a.prefix + key)
	if !ok || !a.now().Before(e.asOf.Add(a.ttl)) {
		return nil, false
	}
	items, ok := e.val.([]topk.Item)
	return items, ok
}

// putPart keeps one partition's items just read, under the local tier's
// budget (their size estimated like a tally's).
func (a *answers) putPart(key string, items []topk.Item) {
	if a.ttl <= 0 {
		return
	}
	a.local.put(a.prefix+key, cached{val: items, asOf: a.now().UTC(), size: itemsSize(items)})
}

// decodeWith is fromShared's decoder of c's answers.
func decodeWith[T any](c codec[T]) func([]byte) (any, int64, error) {
	return func(b []byte) (any, int64, error) {
		v, err := c.decode(b)
		if err != nil {
			return nil, 0, err
		}
		return v, sizeOf(c.size(v), b), nil
	}
}

// peek is fetch for an answer a request can do without: it never waits
// for Cassandra. It returns key's answer from this process (one up to
// MaxStale old, refreshed ahead past 3/4 of the TTL) or from Redis; on a
// miss it starts the fill in the background under the service's context
// (without holding a slot: fill's own fetches take theirs) and reports
// false: a later request finds the answer. ttl is the answer's own
// lifetime, which may differ from the service's (see Config.NamesTTL).
// With caching off (the service's TTL 0) it is fetch, waiting.
func peek[T any](ctx context.Context, a *answers, key string, ttl time.Duration, c codec[T], fill func(context.Context) (T, error)) (T, bool) {
	var zero T
	if a.ttl <= 0 {
		v, _, err := fetch(ctx, a, key, c, fill)
		return v, err == nil
	}
	key = a.prefix + key
	now := a.now()
	loader := func(ctx context.Context) (cached, []byte, error) { return load(ctx, a.now().UTC(), fill, c) }
	if e, ok := a.local.get(key); ok && now.Before(e.asOf.Add(MaxStale)) {
		a.requests.WithLabelValues("local", "hit").Inc()
		if now.After(e.asOf.Add(ttl * 3 / 4)) {
			a.inBackground(key, false, ttl, loader)
		}
		return e.val.(T), true
	}
	a.requests.WithLabelValues("local", "miss").Inc()
	if e, ok := a.fromShared(ctx, key, ttl, decodeWith(c)); ok {
		return e.val.(T), true
	}
	a.inBackground(key, false, ttl, loader)
	return zero, false
}

// MaxStale is how old an answer kept in the process may be when it is
// served because Cassandra failed to give a fresh one.
const MaxStale = time.Hour

func load[T any](ctx context.Context, asOf time.Time, fill func(context.Context) (T, error), c codec[T]) (cached, []byte, error) {
	v, err := fill(ctx)
	if err != nil {
		return cached{}, nil, err
	}
	b := c.encode(v)
	return cached{val: v, asOf: asOf, size: sizeOf(c.size(v), b)}, b, nil
}

func sizeOf(size int64, encoded []byte) int64 {
	if size < 0 {
		return 64 + 2*int64(len(encoded))
	}
	return size
}

// refreshAhead starts a background refresh of key unless one runs, the
// service is closed or every Cassandra slot is taken (the entry is served
// until it expires; a later request tries again).
func (a *answers) refreshAhead(key string, fill func(context.Context) (cached, []byte, error)) {
	a.inBackground(key, true, a.ttl, fill)
}

// inBackground runs fill for key in the background under the service's
// context, once at a time per key; holdSlot: it takes a free Cassandra
// slot first (and does not run without one), as a fill that reads the
// store itself must; a fill made of fetches, which take their own, does
// not (holding one too would need two slots for one read): it waits for
// its turn among such fills (composed), then its fetches wait for their
// slots (patient), up to refreshTimeout each. The answer is stored for
// ttl.
func (a *answers) inBackground(key string, holdSlot bool, ttl time.Duration, fill func(context.Context) (cached, []byte, error)) {
	if _, running := a.refreshing.LoadOrStore(key, struct{}{}); running {
		return
	}
	a.bgMu.Lock()
	if a.life.Err() != nil {
		a.bgMu.Unlock()
		a.refreshing.Delete(key)
		return
	}
	release, ok := func() {}, true
	if holdSlot {
		release, ok = a.slots.try()
	}
	if !ok {
		a.bgMu.Unlock()
		a.refreshing.Delete(key)
		return
	}
	a.background.Add(1)
	a.bgMu.Unlock()
	go func() {
		defer a.background.Done()
		defer a.refreshing.Delete(key)
		defer release()
		ctx := a.life
		if !holdSlot {
			if a.composed != nil {
				t := time.NewTimer(refreshTimeout)
				defer t.Stop()
				select {
				case a.composed <- struct{}{}:
					defer func() { <-a.composed }()
				case <-t.C:
					return
				case <-ctx.Done():
					return
				}
			}
			ctx = patient(ctx)
		}
		a.refresh(ctx, key, ttl, fill)
	}()
}

// refresh replaces key's entry in the background, under ctx (the
// service's: cancelled on Close) and at most refreshTimeout.
func (a *answers) refresh(ctx context.Context, key string, ttl time.Duration, fill func(context.Context) (cached, []byte, error)) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	e, b, err := fill(ctx)
	if err != nil {
		return
	}
	a.store(ctx, key, ttl, e, b)
}

// Values in Redis carry as_of: 8 bytes (Unix ms, little endian), then the
// encoded answer.
func (a *answers) fromShared(ctx context.Context, key string, ttl time.Duration, decode func([]byte) (any, int64, error)) (cached, bool) {
	if !a.sharedUp() {
		a.requests.WithLabelValues("redis", "skipped").Inc()
		return cached{}, false
	}
	b, err := a.shared.Get(ctx, key)
	if err != nil {
		a.sharedFailed(err)
		a.requests.WithLabelValues("redis", "error").Inc()
		return cached{}, false
	}
	if len(b) < 8 {
		a.requests.WithLabelValues("redis", "miss").Inc()
		return cached{}, false
	}
	asOf := time.UnixMilli(int64(binary.LittleEndian.Uint64(b))).UTC()
	if !a.now().Before(asOf.Add(ttl)) {
		a.requests.WithLabelValues("redis", "miss").Inc()
		return cached{}, false
	}
	v, size, err := decode(b[8:])
	if err != nil {
		a.log.Warn("undecodable cached answer", "key", key, "err", err)
		a.requests.WithLabelValues("redis", "error").Inc()
		return cached{}, false
	}
	a.requests.WithLabelValues("redis", "hit").Inc()
	e := cached{val: v, asOf: asOf, size: size}
	a.local.put(key, e)
	return e, true
}

// store keeps an answer in this process and, unless its encoding is
// over maxShared, in Redis for ttl.
func (a *answers) store(ctx context.Context, key string, ttl time.Duration, e cached, b []byte) {
	a.local.put(key, e)
	if !a.sharedUp() {
		return
	}
	if a.maxShared > 0 && int64(len(b)) > a.maxShared {
		a.oversize.Inc()
		return
	}
	v := make([]byte, 8, 8+len(b))
	binary.LittleEndian.PutUint64(v, uint64(e.asOf.UnixMilli()))
	v = append(v, b...)
	if err := a.shared.Set(ctx, key, v, ttl); err != nil {
		a.sharedFailed(err)
	}
}

func (a *answers) sharedUp() bool {
	return a.shared != nil && time.Now().UnixNano() >= a.sharedDownUntil.Load()
}

func (a *answers) sharedFailed(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if a.sharedDownUntil.Swap(time.Now().Add(time.Second).UnixNano()) < time.Now().UnixNano() {
		a.log.Warn("redis cache unavailable: serving uncached for a second", "err", err)
	}
}

// lru is a least-recently-used set of decoded answers under a byte
// budget.
type lru struct {
	mu     sync.Mutex
	budget int64
	used   int64
	ll     *list.List
	m      map[string]*list.Element
}

type lruEntry struct {
	key string
	e   cached
}

func newLRU(budget int64) *lru {
	return &lru{budget: budget, ll: list.New(), m: map[string]*list.Element{}}
}

func (l *lru) get(key string) (cached, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.m[key]
	if !ok {
		return cached{}, false
	}
	l.ll.MoveToFront(el)
	return el.Value.(*lruEntry).e, true
}

func (l *lru) put(key string, e cached) {
	if l.budget <= 0 || e.size > l.budget/2 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.m[key]; ok {
		l.used -= el.Value.(*lruEntry).e.size
		el.Value.(*lruEntry).e = e
		l.ll.MoveToFront(el)
	} else {
		l.m[key] = l.ll.PushFront(&lruEntry{key, e})
	}
	l.used += e.size
	for l.used > l.budget {
		el := l.ll.Back()
		le := el.Value.(*lruEntry)
		l.ll.Remove(el)
		delete(l.m, le.key)
		l.used -= le.e.size
	}
}
