package crawler

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the crawler and the scheduler (topk_ prefix).
type Metrics struct {
	Crawls       *prometheus.CounterVec   // by provider and outcome
	Listens      *prometheus.CounterVec   // published, by provider
	Invalid      *prometheus.CounterVec   // published although Validate refused them (ingest dead-letters them)
	PossibleGaps *prometheus.CounterVec   // Spotify runs that returned a full page of new plays
	Duration     *prometheus.HistogramVec // crawl duration by provider
	Restored     prometheus.Counter       // tasks the reconciler re-created
	Reconciles   prometheus.Counter
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Crawls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "topk_crawler_crawls_total", Help: "Crawl attempts by provider and outcome (ok, retrying, failed, skipped).",
		}, []string{"provider", "outcome"}),
		Listens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "topk_crawler_listens_published_total", Help: "Listens acknowledged by Kafka, by provider.",
		}, []string{"provider"}),
		Invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "topk_crawler_invalid_listens_total", Help: "Published listens that break the event contract (ingest dead-letters them), by provider.",
		}, []string{"provider"}),
		PossibleGaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "topk_crawler_possible_gaps_total", Help: "Runs that returned as many new plays as the provider keeps (plays may be missing), by provider.",
		}, []string{"provider"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "topk_crawler_crawl_duration_seconds", Help: "Duration of a crawl attempt, by provider.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"provider"}),
		Restored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "topk_scheduler_restored_tasks_total", Help: "Crawl tasks the reconciler re-created from PostgreSQL (missing in Redis).",
		}),
		Reconciles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "topk_scheduler_reconciles_total", Help: "Reconciler passes over all active users.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	// A second Metrics on the same registry (the crawler and the scheduler
	// in one process) shares the first one's collectors.
	for _, f := range []func() error{
		func() error { return register(reg, &m.Crawls) },
		func() error { return register(reg, &m.Listens) },
		func() error { return register(reg, &m.Invalid) },
		func() error { return register(reg, &m.PossibleGaps) },
		func() error { return register(reg, &m.Duration) },
		func() error { return register(reg, &m.Restored) },
		func() error { return register(reg, &m.Reconciles) },
	} {
		if err = f(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	return err
}
