package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// With Kafka unreachable the collector gives no sample — unknown, not 0 —
// within its timeout, and a gather does not fail.
func TestLagCollectorKafkaDown(t *testing.T) {
	c := NewLagCollector([]string{"127.0.0.1:1"}, "ingest", "g", "t")
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	start := time.Now()
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 0 {
		t.Fatalf("gathered %v, %v; want nothing and no error", mfs, err)
	}
	if d := time.Since(start); d > LagTimeout+time.Second {
		t.Errorf("took %v, longer than the %v timeout", d, LagTimeout)
	}
}

// A measurement that cannot run because the previous one still waits for
// Kafka reports the last value while it is recent, and fails once it is
// older than LagMaxAge.
func TestLagCollectorBusyReportsLastValue(t *testing.T) {
	c := NewLagCollector([]string{"127.0.0.1:1"}, "ingest", "g", "t")
	defer c.Close()
	c.m.busy <- struct{}{} // a measurement is running
	if _, err := c.Measure(context.Background()); err == nil {
		t.Fatal("busy without a last value: no error")
	}
	c.last, c.at = 42, time.Now().Add(-time.Second)
	if lag, err := c.Measure(context.Background()); err != nil || lag != 42 {
		t.Fatalf("busy with a recent value: %d, %v; want 42", lag, err)
	}
	c.at = time.Now().Add(-LagMaxAge - time.Second)
	if _, err := c.Measure(context.Background()); err == nil {
		t.Fatal("busy with a stale value: no error")
	}
}
