package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// LagCollector is a Prometheus collector of topk_consumer_lag{component,
// group, topic}: the records of topic a consumer group has not committed
// yet, summed over partitions (a partition without a commit counts from
// its oldest offset, as in GroupLag). It measures when the registry is
// gathered — a /metrics scrape, the status line — with a client of its
// own, connected on first use (the service may start while Kafka is
// down): a request for the group's committed offsets and one per
// partition for its high-water mark. It is the group's lag: every copy of
// a scaled-out group reports the same number (aggregate with max, not
// sum).
//
// Goka's processors export no lag of their own (their stats read the
// high-water marks of a consumer that is not the group's); this is the
// ingest's and the aggregator's. A measurement that fails or takes longer
// than LagTimeout gives no sample (unknown), never 0; one that coincides
// with another still running reports the last value if it is younger
// than LagMaxAge.
type LagCollector struct {
	m            *meter
	desc         *prometheus.Desc
	group, topic string

	mu   sync.Mutex
	last int64
	at   time.Time
}

const (
	// LagTimeout bounds one measurement of a LagCollector.
	LagTimeout = 2 * time.Second
	// LagMaxAge is how old a LagCollector's last value may be to stand in
	// for a measurement that could not run (another one was running).
	LagMaxAge = 30 * time.Second
)

// NewLagCollector measures group on topic through brokers; component
// names the service part in the metric's labels ("ingest",
// "aggregator"). Close it when done.
func NewLagCollector(brokers []string, component, group, topic string) *LagCollector {
	return &LagCollector{
		m: newMeter(brokers, nil, "topk-lag"),
		desc: prometheus.NewDesc("topk_consumer_lag",
			"Records of the topic the consumer group has not committed yet (high-water mark minus committed offset, summed over partitions), measured when scraped.",
			nil, prometheus.Labels{"component": component, "group": group, "topic": topic}),
		group: group, topic: topic,
	}
}

// Describe is prometheus.Collector's.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect is prometheus.Collector's: it measures the lag now.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), LagTimeout)
	defer cancel()
	lag, err := c.Measure(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(lag))
}

// Measure returns the group's lag in records now, or, while an earlier
// measurement still waits for Kafka, the last one if it is younger than
// LagMaxAge.
func (c *LagCollector) Measure(ctx context.Context) (int64, error) {
	lag, err := measure(ctx, c.m, fmt.Sprintf("lag of group %s on %s", c.group, c.topic), func(cl sarama.Client) (int64, error) {
		parts, err := cl.Partitions(c.topic)
		if err != nil {
			return 0, fmt.Errorf("partitions of %s: %w", c.topic, err)
		}
		committed, err := committedOffsets(cl, c.group, c.topic, parts)
		if err != nil {
			return 0, err
		}
		return recordLag(ctx, cl, c.group, c.topic, parts, committed)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.last, c.at = lag, time.Now()
	case errors.Is(err, errBusy) && !c.at.IsZero() && time.Since(c.at) < LagMaxAge:
		return c.last, nil
	}
	return lag, err
}

// Close closes the client.
func (c *LagCollector) Close() error { return c.m.Close() }
