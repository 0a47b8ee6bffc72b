package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/internal/metrics"
	"github.com/topk-charts/topk/internal/outage"
)

// DefaultOutageLimit is how long a supervised processor may stay down
// (Kafka unreachable, a table that cannot be recovered, …) before the
// service gives up and exits non-zero.
const DefaultOutageLimit = outage.DefaultLimit

var (
	restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_component_restarts_total",
		Help: "In-process restarts of a component after it stopped on an error (Kafka unreachable, …).",
	}, []string{"component"})
	up = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "topk_component_up",
		Help: "1 while a component runs and has recovered its state, else 0.",
	}, []string{"component"})
)

// Supervisor runs a Goka processor and, when it stops on an error, builds
// a new one and runs it again in the same process: Kafka being away for a
// while (a broker restart, a network cut) is waited out instead of ending
// the service. The new processor resumes from the committed offsets, which
// never pass an unfinished message (kafka.OrderedCommits), so nothing is
// skipped; what was processed but not committed is processed again, which
// every topk group tolerates (the aggregator deduplicates, sinks are
// idempotent).
//
// While it is down, Check fails (the service's /readyz is 503),
// topk_component_up is 0 and topk_component_restarts_total counts the
// attempts. The outage bookkeeping is an outage.Tracker: one log line when
// it goes down (with the reason), one when it runs again, none per
// attempt. When it has been down for longer than Limit, Run returns an
// error naming the last reason.
type Supervisor struct {
	// Name labels logs and metrics ("ingest", "aggregator").
	Name string
	// Build makes a fresh processor; called for every (re)start. It may
	// talk to Kafka (topic checks): its error counts as being down.
	Build func(ctx context.Context) (*goka.Processor, error)
	// Limit is the longest outage ridden out. Default DefaultOutageLimit.
	Limit time.Duration
	// Backoff spaces restarts. Default 500 ms doubling to 15 s.
	Backoff outage.Backoff
	// Log receives the state changes (it should name the component).
	// Default slog.Default().
	Log *slog.Logger
	// Ping, if set, asks Kafka for metadata in Check. A processor does not
	// notice a broker that stopped answering (frozen, a network cut) until
	// its client times out, tens of seconds later; readiness should say so
	// at once.
	Ping func(ctx context.Context) error
	// Registerer takes topk_component_restarts_total and
	// topk_component_up (registered by Run); nil:
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer

	once    sync.Once
	tracker *outage.Tracker
	mu      sync.Mutex
	proc    *goka.Processor
}

func (s *Supervisor) init() {
	s.once.Do(func() {
		limit := s.Limit
		if limit <= 0 {
			limit = DefaultOutageLimit
		}
		s.tracker = &outage.Tracker{Name: s.Name, Limit: limit, Log: s.Log}
	})
}

// Processor is the processor running now (nil before the first build):
// for the Goka monitor.
func (s *Supervisor) Processor() *goka.Processor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Check is a readiness check: nil while the processor runs and has
// recovered its tables.
func (s *Supervisor) Check(ctx context.Context) error {
	s.init()
	if err := s.tracker.Err(); err != nil {
		return fmt.Errorf("restarting: %w", err)
	}
	p := s.Processor()
	switch {
	case p == nil:
		return errors.New("starting")
	case !p.Recovered():
		return errors.New("recovering")
	}
	if s.Ping != nil {
		if err := s.Ping(ctx); err != nil {
			return fmt.Errorf("kafka not answering: %w", err)
		}
	}
	return nil
}

// Run runs processors until ctx ends (nil) or the outage limit passes
// (an error).
func (s *Supervisor) Run(ctx context.Context) error {
	s.init()
	if err := metrics.Register(s.Registerer, restarts, up); err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	gauge := up.WithLabelValues(s.Name)
	gauge.Set(0)
	err := outage.Rerun(ctx, s.tracker, s.Backoff, func(ctx context.Context) error {
		defer gauge.Set(0)
		return s.runOnce(ctx, gauge)
	}, restarts.WithLabelValues(s.Name).Inc)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	return nil
}

// runOnce builds one processor and runs it until it stops; once it has
// recovered, the component counts as up again.
func (s *Supervisor) runOnce(ctx context.Context, gauge prometheus.Gauge) error {
	p, err := s.Build(ctx)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		// WaitForReady also returns when the processor stops: only a
		// processor still running counts as up.
		if p.WaitForReadyContext(rctx) != nil || !p.Recovered() {
			return
		}
		gauge.Set(1)
		s.tracker.OK()
	}()
	err = p.Run(rctx)
	cancel()
	<-watched
	return err
}
