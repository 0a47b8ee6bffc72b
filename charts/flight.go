package charts

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
)

// flights runs one fill per key for all the callers that want it, and
// cancels a fill that every caller gave up on (golang.org/x/sync's
// singleflight runs a fill to its end even when nobody waits for it any
// more: a client hanging up left its Cassandra reads running).
type flights struct {
	timeout   time.Duration
	cancelled prometheus.Counter

	mu sync.Mutex
	m  map[string]*flight
}

// flight is one fill and the callers waiting for it.
type flight struct {
	done    chan struct{} // closed when val and err are set
	val     cached
	err     error
	waiters int // guarded by flights.mu
	cancel  context.CancelFunc
}

// do returns key's fill: a fill running for key is joined, otherwise fn
// starts under a context of its own, which keeps ctx's values but not its
// cancellation and ends after timeout. A caller whose ctx ends leaves
// with ctx's error while the fill goes on for the others; when the last
// caller leaves, the fill's context is cancelled and key is free for a
// new fill.
func (g *flights) do(ctx context.Context, key string, fn func(context.Context) (cached, error)) (cached, error) {
	g.mu.Lock()
	f := g.m[key]
	if f == nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		if g.m == nil {
			g.m = map[string]*flight{}
		}
		g.m[key] = f
		go func() {
			defer cancel()
			val, err := fn(fctx)
			g.mu.Lock()
			if g.m[key] == f {
				delete(g.m, key)
			}
			g.mu.Unlock()
			f.val, f.err = val, err
			close(f.done)
		}()
	}
	f.waiters++
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	f.waiters--
	abandoned := f.waiters == 0
	if abandoned && g.m[key] == f {
		delete(g.m, key)
	}
	g.mu.Unlock()
	if abandoned {
		select {
		case <-f.done:
		default:
			g.cancelled.Inc() // counted first: the fill sees the cancel at once
			f.cancel()
		}
	}
	return cached{}, ctx.Err()
}

// ErrBusy is the cause of the error a query gets when every Cassandra
// slot (Config.MaxCassandra) stayed taken for Config.BusyWait: the api
// answers 503 with Retry-After. errors.Is(err, ErrBusy) tells it from
// Cassandra being down.
var ErrBusy = errors.New("every Cassandra slot is taken")

func busy() error {
	return topk.Unavailable("too many requests are reading Cassandra at once: retry in a second", ErrBusy)
}

// slots bounds the Cassandra reads (cache fills) of the service that run
// at once: a fill takes a slot before its first read and gives it back
// after its last.
type slots struct {
	ch       chan struct{} // nil: no bound
	wait     time.Duration
	inFlight prometheus.Gauge
	busy     *prometheus.CounterVec
}

func newSlots(n int, wait time.Duration, reg prometheus.Registerer) (*slots, error) {
	s := &slots{wait: wait}
	if n > 0 {
		s.ch = make(chan struct{}, n)
	}
	s.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "topk_api_cassandra_fills_in_flight",
		Help: "Cassandra reads (cache fills) running now in this api process; at most TOPK_API_CASSANDRA_CONCURRENCY.",
	})
	s.busy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_api_cassandra_busy_total",
		Help: "Cassandra reads refused because every slot was taken, by fill: request (answered 503 unless an expired answer could serve; a top answer's all-time names: named by its range instead, topk_api_top_range_names_total) or refresh (a refresh-ahead skipped).",
	}, []string{"fill"})
	for _, c := range []prometheus.Collector{s.inFlight, s.busy} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// patientKey marks the context of a background fill, which nobody waits
// for: its reads wait for a slot as long as the context lives instead of
// giving up after Config.BusyWait. (A names fill that gave up left the
// user's all-time part uncached, so every chart of that user started it
// again: bench-api's ordinary requests kept Cassandra at 0.4 cores.)
type patientKey struct{}

// patient marks ctx as a background fill's (patientKey).
func patient(ctx context.Context) context.Context { return context.WithValue(ctx, patientKey{}, true) }

// acquire takes a slot, waiting up to s.wait for one (as long as ctx
// lives if ctx is patient); ErrBusy (as a topk.Error) past it, ctx's
// error when ctx ends first.
func (s *slots) acquire(ctx context.Context) (release func(), err error) {
	if s.ch == nil {
		return s.took(), nil
	}
	select {
	case s.ch <- struct{}{}:
		return s.took(), nil
	default:
	}
	if ctx.Value(patientKey{}) != nil {
		select {
		case s.ch <- struct{}{}:
			return s.took(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return s.took(), nil
	case <-t.C:
		s.busy.WithLabelValues("request").Inc()
		return nil, busy()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// try takes a slot if one is free now.
func (s *slots) try() (release func(), ok bool) {
	if s.ch == nil {
		return s.took(), true
	}
	select {
	case s.ch <- struct{}{}:
		return s.took(), true
	default:
		s.busy.WithLabelValues("refresh").Inc()
		return nil, false
	}
}

func (s *slots) took() func() {
	s.inFlight.Inc()
	return func() {
		s.inFlight.Dec()
		if s.ch != nil {
			<-s.ch
		}
	}
}
