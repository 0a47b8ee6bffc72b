// The service: Config, the View and Store ports, Top and its plan (which
// days come from the view, which from Cassandra).

package sitewide

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/internal/metrics"
	"github.com/topk-charts/topk/listen"
	swview "github.com/topk-charts/topk/views/sitewide"
)

// View is what the service reads of the api's sitewide view
// (views/sitewide.View implements it).
type View interface {
	// Recovered reports whether the view caught up; checked per request.
	Recovered() bool
	// FirstDay is the oldest day the view holds at now (it holds every
	// later day).
	FirstDay(now time.Time) time.Time
	// Range returns every item of e with plays in the view's days of
	// [from, to], summed, in no particular order.
	Range(e topk.Entity, from, to time.Time) []swview.Tally
	// Listeners returns the exact distinct listeners of each item over
	// the view's days of [from, to].
	Listeners(e topk.Entity, items []uint64, from, to time.Time) []int64
}

var _ View = (*swview.View)(nil)

// StoreItem is one item of a sitewide range read from Cassandra: its
// plays (and spellings) summed over the range's days, and Listeners the
// sum over those days of each day's distinct listeners (a user counts
// once per day played: an upper bound of the range's distinct
// listeners).
type StoreItem = topk.SitewideItem

// Store is what the service reads of Cassandra's sitewide_days
// (store/cassandra's Reader implements it). Every error means the store
// did not answer.
type Store interface {
	// SitewideRange returns every item of e with plays in [from, to],
	// summed over the days (Name and Artist its display spelling), in
	// no particular order. read, unless nil, is called before each
	// Cassandra read it makes, and the function it returns after it
	// (Bounds.Read).
	SitewideRange(ctx context.Context, e topk.Entity, from, to time.Time, read func(context.Context) (done func())) ([]StoreItem, error)
}

// Bounds are the api process's bounds on Cassandra reads, shared with
// the per-user charts (charts.Service implements it): the sitewide
// charts' reads count against the same TOPK_API_CASSANDRA_CONCURRENCY
// fills and TOPK_API_CASSANDRA_READS reads.
type Bounds interface {
	// Fill takes a fill slot for one Cassandra part of a range, waiting
	// a short while (then charts.ErrBusy: 503 with Retry-After).
	Fill(ctx context.Context) (release func(), err error)
	// Read waits for a free read (each partition the part reads).
	Read(ctx context.Context) (done func())
}

var _ Bounds = (*charts.Service)(nil)

// Config configures the sitewide service.
type Config struct {
	// View holds the recent days; nil: the Store answers everything.
	View View
	// Store is Cassandra. Required.
	Store Store
	// Bounds bound the Store's reads (the per-user charts' service, so
	// both count against one process's bounds); nil: no bound.
	Bounds Bounds
	// CacheTTL is how long the Cassandra part of a range (the items of
	// its days before the view's first, per entity, from and to) is
	// reused in this process (TOPK_CACHE_TTL, as the per-user charts);
	// 0 disables it. Those days change only with late or deleted
	// listens, and a range's part is read by every request of that range,
	// so caching it is what lets many requests a second share one read.
	CacheTTL time.Duration
	// CacheBytes bounds the Cassandra parts kept (estimated); the oldest
	// go first. Default (0) 64 MiB.
	CacheBytes int64
	// ViewTTL is how long a ranking over view days (the view's items of
	// the range summed, merged with the Cassandra part and sorted) is
	// reused: many requests a second of the same range then sort it once
	// per ViewTTL, and a listen shows up to ViewTTL later. Default (0)
	// 250 ms; negative: every request ranks anew.
	ViewTTL time.Duration
	// Lag tells how far Cassandra's sitewide_days are behind the view (a
	// charts.LagMonitor on the sitewide flusher); nil: unknown, so an
	// answer that read Cassandra says stale with a null lag.
	Lag charts.LagSource
	// Timeout bounds one Cassandra read. Default 5 s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives store failures. Default slog.Default().
	Log *slog.Logger
	// Registerer takes topk_api_sitewide_cache_requests_total. Default
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// Service answers the sitewide charts.
type Service struct {
	cfg      Config
	log      *slog.Logger
	older    *ttlCache[*older]
	rankings *ttlCache[*ranking]
}

// New builds the service and registers its metrics.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("charts/sitewide: Config needs a Store")
	}
	if cfg.CacheTTL < 0 {
		return nil, errors.New("charts/sitewide: CacheTTL must not be negative")
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 64 << 20
	}
	switch {
	case cfg.ViewTTL == 0:
		cfg.ViewTTL = 250 * time.Millisecond
	case cfg.ViewTTL < 0:
		cfg.ViewTTL = 0
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_api_sitewide_cache_requests_total",
		Help: "Lookups of the sitewide service's in-process caches, by part (cassandra: a range's older days; ranking: a range's merged, sorted items) and result (hit, shared: waited for a fill under way, miss).",
	}, []string{"part", "result"})
	if err := metrics.Register(cfg.Registerer, requests); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Log.With("component", "sitewide-charts")}
	s.older = newTTLCache[*older](cfg.CacheTTL, cfg.CacheBytes, cfg.Timeout, cfg.Now, requests.MustCurryWith(prometheus.Labels{"part": "cassandra"}))
	s.rankings = newTTLCache[*ranking](cfg.ViewTTL, cfg.CacheBytes, cfg.Timeout, cfg.Now, requests.MustCurryWith(prometheus.Labels{"part": "ranking"}))
	return s, nil
}

// plan is where a range's days come from.
type plan struct {
	from, to time.Time // clamped; meaningful when any
	any      bool
	// cass: [cassFrom, cassTo] comes from Cassandra; view: [viewFrom,
	// viewTo] from the view.
	cass, view       bool
	cassFrom, cassTo time.Time
	viewFrom, viewTo time.Time
}

func (p *plan) source() string {
	switch {
	case p.cass && p.view:
		return charts.SourceMixed
	case p.view:
		return charts.SourceView
	}
	return charts.SourceCassandra
}

// plan clamps [from, to] to the days that can hold listens (Earliest to
// tomorrow) and splits it: the days the view holds, when it is recovered
// (checked now), from the view; the days before, from Cassandra.
func (s *Service) plan(from, to, now time.Time) plan {
	p := plan{from: from, to: to}
	if p.from.Before(charts.Earliest) {
		p.from = charts.Earliest
	}
	if last := charts.LastDay(now); p.to.After(last) {
		p.to = last
	}
	p.any = !p.to.Before(p.from)
	if !p.any {
		return p
	}
	first := charts.LastDay(now).AddDate(0, 0, 1) // after every day: the view answers none
	if v := s.cfg.View; v != nil && v.Recovered() {
		first = v.FirstDay(now)
	}
	if !p.to.Before(first) {
		p.view, p.viewFrom, p.viewTo = true, maxTime(p.from, first), p.to
	}
	if p.from.Before(first) {
		p.cass, p.cassFrom, p.cassTo = true, p.from, minTime(p.to, first.AddDate(0, 0, -1))
	}
	return p
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Top is the page [Offset, Offset+K) of the sitewide chart of q.Entity
// over the range: the view's days (when it is recovered) and Cassandra's
// older days, summed by item, ranked by topk.Compare on the range's
// display spellings. Listeners are exact (ListenersExact) when no day
// came from Cassandra; otherwise the view's part is exact and
// Cassandra's is the sum of its days' listeners. The Store down when the
// range needs it is topk.ErrUnavailable. The range "all" starts at
// charts.Earliest (the sitewide chart has no first day to start from).
//
// Freshness is left zero: the lag of the sitewide flusher is not measured
// yet (charts.LagMonitor measures the per-user flusher's, and
// charts.Freshness can only be filled inside package charts).
func (s *Service) Top(ctx context.Context, q Query) (*Answer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	from, to, all, err := charts.Resolve(q.Range, now)
	if err != nil {
		return nil, err
	}
	if all {
		from = charts.Earliest
	}
	p := s.plan(from, to, now)
	ans := &Answer{Entity: string(q.Entity) + "s", Range: charts.RangeJSON{Name: q.Range.Name, From: day(p.from), To: day(p.to)},
		Source: p.source(), AsOf: now, ListenersExact: !p.cass, Items: []Item{}}
	ans.Freshness = charts.FreshnessOf(ans.Source, s.cfg.Lag)
	if !p.any {
		ans.Range.From, ans.Range.To = day(from), day(to)
		return ans, nil
	}
	r, err := s.ranking(ctx, q.Entity, &p)
	if err != nil {
		return nil, s.storeError(err, q.Entity, &p)
	}
	if p.cass {
		ans.AsOf = r.asOf
	} else {
		ans.AsOf = r.made // a ranking is reused for ViewTTL
	}
	ans.Total = r.total
	page := r.page(q.Offset, q.K)
	listeners := r.listeners(s.cfg.View, q.Entity, &p, page)
	withArtist := q.Entity != topk.Artists
	for i := range page {
		it := &page[i]
		item := Item{Rank: q.Offset + i + 1, Name: it.Name, Plays: it.Plays, Listeners: listeners[i],
			IDs: map[string]string{string(q.Entity): charts.HexKey(it.Key)}}
		if withArtist {
			item.Artist = it.Artist
			item.IDs["artist"] = charts.HexKey(listen.ArtistKey(it.Artist))
		}
		ans.Items = append(ans.Items, item)
	}
	return ans, nil
}

// storeError is a store failure as the caller sees it: unavailable (the
// query was fine), logged with what the query was about. Domain errors
// pass unchanged.
func (s *Service) storeError(err error, e topk.Entity, p *plan) error {
	var de *topk.Error
	if errors.As(err, &de) {
		return err
	}
	s.log.Warn("sitewide store read failed", "entity", e, "from", day(p.cassFrom), "to", day(p.cassTo), "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return topk.Unavailable("Cassandra did not answer in time and the view cannot answer this request", err)
	}
	return topk.Unavailable("Cassandra is unavailable and the view cannot answer this request", err)
}

func day(t time.Time) string { return t.Format(topk.DayLayout) }
