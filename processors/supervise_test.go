package processors

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/topk-charts/topk/processors/sink"
)

// Kafka never comes back: the supervisor keeps building, stays unready,
// counts its restarts and gives up past the limit with the last reason.
func TestSupervisorGivesUpPastTheLimit(t *testing.T) {
	var builds atomic.Int32
	s := &Supervisor{
		Name: "test-down",
		Build: func(context.Context) (*goka.Processor, error) {
			builds.Add(1)
			return nil, errors.New("kafka: client has run out of available brokers")
		},
		Limit:   300 * time.Millisecond,
		Backoff: sink.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "out of available brokers") {
		t.Fatalf("check while down: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "outage limit") || !strings.Contains(err.Error(), "out of available brokers") {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the supervisor did not give up")
	}
	if builds.Load() < 3 {
		t.Fatalf("%d builds, want retries", builds.Load())
	}
	if n := testutil.ToFloat64(restarts.WithLabelValues("test-down")); n < 2 {
		t.Fatalf("restarts counted %v", n)
	}
	if v := testutil.ToFloat64(up.WithLabelValues("test-down")); v != 0 {
		t.Fatalf("up gauge %v", v)
	}
}

// Kafka comes back within the limit: the processor runs, the check passes,
// and cancelling ends Run without an error.
func TestSupervisorRecoversWithinTheLimit(t *testing.T) {
	tt := tester.New(t)
	var builds atomic.Int32
	s := &Supervisor{
		Name: "test-up",
		Build: func(context.Context) (*goka.Processor, error) {
			if builds.Add(1) < 3 {
				return nil, errors.New("broker not ready")
			}
			return goka.NewProcessor(nil, goka.DefineGroup("g",
				goka.Input("in", new(codec.String), func(goka.Context, any) {}),
			), goka.WithTester(tt))
		},
		Limit:   time.Minute,
		Backoff: sink.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Check(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v", s.Check(ctx))
		}
		time.Sleep(5 * time.Millisecond)
	}
	tt.Consume("in", "k", "v")
	if s.Processor() == nil || builds.Load() != 3 {
		t.Fatalf("processor %v after %d builds", s.Processor(), builds.Load())
	}
	if v := testutil.ToFloat64(up.WithLabelValues("test-up")); v != 1 {
		t.Fatalf("up gauge %v", v)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

// A broker that stops answering makes the check fail at once, before the
// processor's client notices.
func TestSupervisorCheckPingsKafka(t *testing.T) {
	tt := tester.New(t)
	var down atomic.Bool
	s := &Supervisor{
		Name: "test-ping",
		Build: func(context.Context) (*goka.Processor, error) {
			return goka.NewProcessor(nil, goka.DefineGroup("g2",
				goka.Input("in2", new(codec.String), func(goka.Context, any) {}),
			), goka.WithTester(tt))
		},
		Ping: func(context.Context) error {
			if down.Load() {
				return errors.New("context deadline exceeded")
			}
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Check(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v", s.Check(ctx))
		}
		time.Sleep(5 * time.Millisecond)
	}
	down.Store(true)
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "kafka not answering") {
		t.Fatalf("check with kafka frozen: %v", err)
	}
}
