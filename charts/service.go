package charts

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/views"
)

// View is what the charts read of the Goka view of recent days
// (views.View implements it).
type View interface {
	// Recovered reports whether the view caught up; checked per request.
	Recovered() bool
	// FirstDay is the oldest day the view holds at now (it holds every
	// later day).
	FirstDay(now time.Time) time.Time
	// Range returns the user's days in [from, to] it holds, oldest first.
	Range(user string, from, to time.Time) ([]views.Day, error)
}

// Store is what the charts read of Cassandra's tables
// (cassandra.Reader implements it; chartstest.StoreSuite is its
// contract). Every error means the store did not answer.
type Store interface {
	// FirstDay is the user's first day with plays; ok false: none.
	FirstDay(ctx context.Context, user string) (day time.Time, ok bool, err error)
	// UserDays lists the user's days with plays in [from, to], oldest first.
	UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error)
	// Items reads one entity's items of one day, month or year (a
	// month's or year's are its rollup), in no particular order.
	Items(ctx context.Context, p topk.Period, user string, e topk.Entity) ([]topk.Item, error)
	// Listens returns up to limit listens of a day, newest first (equal
	// played_at: identity ascending), after a position when given.
	Listens(ctx context.Context, user string, day time.Time, after *topk.ListenPos, limit int) ([]topk.Listen, error)
	// SearchUsers returns up to limit users whose folded id
	// (listen.Normalize) starts with the folded prefix, in folded order.
	SearchUsers(ctx context.Context, prefix string, limit int) ([]string, error)
}

// Config configures the charts service.
type Config struct {
	// View holds the recent days; nil: the Store answers everything.
	View View
	// Store is Cassandra. Required.
	Store Store
	// Cache is Redis; nil: answers are cached in this process only.
	Cache Cache
	// CacheTTL is how long a Store answer is reused (TOPK_CACHE_TTL);
	// 0 disables caching.
	CacheTTL time.Duration
	// NamesTTL is how long the Cassandra part of a user's all-time
	// spellings (the days before the view's first, which give a chart's
	// display names) is reused (TOPK_NAMES_TTL). Only listens older than
	// the view's window change it, so it may live much longer than
	// CacheTTL: every view-served chart of a user needs it, and reading it
	// every CacheTTL for every user asked for is most of the api's
	// Cassandra reads. Default (0): CacheTTL.
	NamesTTL time.Duration
	// LocalCacheBytes bounds the answers decoded in this process
	// (TOPK_CACHE_LOCAL_MB). Default (0) 64 MiB; negative: none.
	LocalCacheBytes int64
	// CachePrefix starts every Redis key (the keyspace, so tests and
	// deployments sharing a Redis never meet).
	CachePrefix string
	// CacheMaxEntryBytes is the largest encoded answer stored in Redis
	// (TOPK_CACHE_MAX_ENTRY_BYTES); larger ones are kept in this process
	// only and counted (topk_api_cache_oversize_total). Default (0) 1 MiB;
	// negative: no cap.
	CacheMaxEntryBytes int64
	// MaxCassandra bounds the Cassandra reads (cache fills: a tally, a
	// user's days, a page of listens, a search) that run at once
	// (TOPK_API_CASSANDRA_CONCURRENCY). A query needing one more waits up
	// to BusyWait, then fails with ErrBusy (the api: 503 with
	// Retry-After), unless an expired answer this process holds can serve;
	// answers from the view and from the cache never wait. 0: no bound.
	MaxCassandra int
	// MaxReads bounds the store reads (a partition of items, a day list,
	// a page of listens) that run at once in the whole service: reading
	// and decoding them is CPU work in this process, which view-served
	// requests must not queue behind (TOPK_API_CASSANDRA_READS, 2). 0:
	// no bound.
	MaxReads int
	// BusyWait is how long a query waits for a Cassandra slot. Default
	// 50 ms.
	BusyWait time.Duration
	// Timeout bounds the store reads of one query. Default 5 s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Lag tells how far Cassandra is behind the view (LagMonitor); answers
	// that read Cassandra carry it. nil: unknown.
	Lag LagSource
	// Generations tells, per user, the latest change to the user's older
	// days that Cassandra holds (processors/stored): it is part of the
	// keys of the user's cached answers, so an answer cached before such a
	// change is not used again once the api heard of it. nil: none (the
	// answers are kept their TTL).
	Generations Generations
	// Registerer takes topk_api_cache_requests_total; default
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// Service answers the charts: top items, activity, listens and the user
// search of a user over a range, from the view and the store.
type Service struct {
	cfg   Config
	log   *slog.Logger
	cache *answers
	// rangeNames counts top answers named by their range's spellings:
	// the user's all-time Cassandra part could not be read.
	rangeNames prometheus.Counter
}

// New builds the service and registers its cache metrics.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("charts: Config needs a Store")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LocalCacheBytes == 0 {
		cfg.LocalCacheBytes = 64 << 20
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.CacheMaxEntryBytes == 0 {
		cfg.CacheMaxEntryBytes = 1 << 20
	}
	var reads chan struct{}
	if cfg.MaxReads > 0 {
		reads = make(chan struct{}, cfg.MaxReads)
	}
	cfg.Store = counted{Store: cfg.Store, reads: reads}
	if cfg.NamesTTL <= 0 {
		cfg.NamesTTL = cfg.CacheTTL
	}
	if cfg.BusyWait <= 0 {
		cfg.BusyWait = 50 * time.Millisecond
	}
	cache, err := newAnswers(answersConfig{
		shared: cfg.Cache, ttl: cfg.CacheTTL, localBytes: cfg.LocalCacheBytes, maxShared: cfg.CacheMaxEntryBytes,
		prefix: cfg.CachePrefix + "topk:v3:", maxFills: cfg.MaxCassandra, busyWait: cfg.BusyWait,
		log: log, now: cfg.Now, reg: cfg.Registerer,
	})
	if err != nil {
		return nil, err
	}
	rangeNames := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_api_top_range_names_total",
		Help: "Top answers whose names are the range's majority spellings, not the user's all-time ones, because Cassandra (down or busy) could not give the user's all-time items.",
	})
	if err := cfg.Registerer.Register(rangeNames); err != nil {
		cache.close()
		return nil, err
	}
	return &Service{cfg: cfg, log: log, cache: cache, rangeNames: rangeNames}, nil
}

// Generations is the source of Config.Generations.
type Generations interface {
	// Generation is the user's latest notice (0: none heard of).
	Generation(user string) int64
}

// userKey is how the user ends the keys of the user's cached answers:
// the user, and the generation of the user's older days when there is
// one, after a '|' (never in a user id: ValidUser).
func (s *Service) userKey(user string) string {
	if s.cfg.Generations == nil {
		return user
	}
	if g := s.cfg.Generations.Generation(user); g != 0 {
		return user + "|g" + strconv.FormatInt(g, 36)
	}
	return user
}

// Close stops the cache's background refreshes (refresh-ahead of answers
// about to expire) and waits for them. Queries still work after it, with
// no refresh-ahead; call it before closing the Store and the Cache.
func (s *Service) Close() {
	if s.cache != nil {
		s.cache.close()
	}
}

// Fill takes one of this api process's Cassandra fill slots
// (Config.MaxCassandra, TOPK_API_CASSANDRA_CONCURRENCY) for a read made
// outside the service (the sitewide charts: charts/sitewide), waiting up
// to Config.BusyWait: past it ErrBusy (as a topk.Error: the api answers
// 503 with Retry-After), ctx's error when ctx ends first. Give the slot
// back with release.
func (s *Service) Fill(ctx context.Context) (release func(), err error) {
	return s.cache.slots.acquire(ctx)
}

// Read is one store read made outside the service under this api
// process's bound on reads at once (Config.MaxReads,
// TOPK_API_CASSANDRA_READS): it counts in ctx's Cost and waits for a
// free read; call done when the read is over. When ctx ends first it
// returns at once (the read then fails with ctx's error).
func (s *Service) Read(ctx context.Context) (done func()) {
	return s.cfg.Store.(counted).read(ctx)
}

// Settle waits for the background fills running now (refresh-ahead, the
// all-time parts of names): tests and benchmarks that want a warm cache
// call it after a first round of queries.
func (s *Service) Settle() {
	if s.cache != nil {
		s.cache.background.Wait()
	}
}

// Now is the service's clock, in UTC.
func (s *Service) Now() time.Time { return s.cfg.Now().UTC() }

// The source of an answer: the view, Cassandra, or both.
const (
	SourceView      = "view"
	SourceCassandra = "cassandra"
	SourceMixed     = "mixed"
)

// sourced is a failure of a query whose source was already known.
type sourced struct {
	err    error
	source string
}

func (e *sourced) Error() string { return e.err.Error() }
func (e *sourced) Unwrap() error { return e.err }

// SourceOf is the source of the answer a failed query was making, when
// it failed after deciding where its days come from (a store read, a
// user without listens); ok false when it failed before.
func SourceOf(err error) (source string, ok bool) {
	var s *sourced
	if errors.As(err, &s) {
		return s.source, true
	}
	return "", false
}

func withSource(err error, source string) error {
	if err == nil {
		return nil
	}
	return &sourced{err: err, source: source}
}

// storeError is a store failure as the caller sees it: unavailable (the
// query was fine), logged with what the query was about. Domain errors
// pass unchanged.
func (s *Service) storeError(err error, about ...any) error {
	var de *topk.Error
	if errors.As(err, &de) || errors.Is(err, ErrOverBudget) {
		return err
	}
	s.log.Warn("store read failed", append(about, "err", err)...)
	if errors.Is(err, context.DeadlineExceeded) {
		return topk.Unavailable("Cassandra did not answer in time and the view cannot answer this request", err)
	}
	return topk.Unavailable("Cassandra is unavailable and the view cannot answer this request", err)
}

func noListens(user string) error {
	return topk.NotFound("user", "no listens of user "+strconv.Quote(user))
}
