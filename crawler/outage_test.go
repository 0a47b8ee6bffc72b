package crawler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/providertest"
	"github.com/topk-charts/topk/internal/outage"
)

type quickBackoff struct{}

func (quickBackoff) Delay(int) time.Duration { return 5 * time.Millisecond }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A round that fails (PostgreSQL or Redis down at start) is retried with
// backoff, not a tick later, until it works; one warning when it starts
// failing, one line when it works again; the ticks go on.
func TestReconcilerRetriesUntilTheStoresAnswer(t *testing.T) {
	buf := &syncBuffer{}
	tr := &outage.Tracker{Name: "postgres or redis", Limit: time.Minute, Log: slog.New(slog.NewTextHandler(buf, nil))}
	var mu sync.Mutex
	calls := 0
	ok := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runReconciler(ctx, 20*time.Millisecond, tr, quickBackoff{}, func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls <= 3 {
				return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
			}
			ok <- struct{}{}
			return nil
		})
	}()
	start := time.Now()
	for range 2 { // the restore after three failures, then a tick
		select {
		case <-ok:
		case <-time.After(5 * time.Second):
			t.Fatal("no successful round")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("two rounds took %v", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Reconciler.Run after cancel = %v", err)
	}
	out := buf.String()
	if strings.Count(out, "level=WARN") != 1 || strings.Count(out, "postgres or redis back") != 1 {
		t.Fatalf("want one warning and one recovery line:\n%s", out)
	}
}

// Redis away for longer than the outage limit: the scheduler's reconciler
// gives up with an error naming the stores and the last error.
func TestReconcilerGivesUpPastTheOutageLimit(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: providertest.ClosedAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	c, err := NewControl(Config{
		Providers:   map[string]ProviderEntry{"simulated": {Interval: time.Minute}},
		OutageLimit: 300 * time.Millisecond,
	}, nil, rdb, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReconciler(c, time.Hour)
	r.backoff = quickBackoff{}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		var le *outage.LimitError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), "postgres or redis down for") ||
			!strings.Contains(err.Error(), "outage limit of 300ms") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Reconciler.Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still retrying 10 s after a 300 ms outage limit")
	}
}

type noProvider struct{}

func (noProvider) Crawl(context.Context, provider.Account, int64, func(context.Context, provider.Page) error) (provider.Result, error) {
	return provider.Result{}, errors.New("not used")
}

// Redis away: Asynq retries by itself, the log says so once (Asynq's own
// error lines are quiet meanwhile), and past the outage limit Server.Run
// shuts the server down and returns an error naming Redis.
func TestServerGivesUpWhenRedisStaysAway(t *testing.T) {
	w, err := NewWorker(Config{Providers: map[string]ProviderEntry{"simulated": {Provider: noProvider{}, Interval: time.Minute}}},
		nil, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(buf, nil))
	done := make(chan error, 1)
	go func() {
		done <- NewServer(asynq.RedisClientOpt{Addr: providertest.ClosedAddr(t), DialTimeout: 100 * time.Millisecond},
			ServerConfig{Concurrency: 1, HealthCheck: 50 * time.Millisecond, OutageLimit: 400 * time.Millisecond, ShutdownTimeout: time.Second}, w, log).Run(context.Background())
	}()
	select {
	case err := <-done:
		var le *outage.LimitError
		if !errors.As(err, &le) || le.Name != "redis" || !strings.Contains(err.Error(), "outage limit of 400ms") {
			t.Fatalf("Server.Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Server.Run still running 20 s after a 400 ms outage limit")
	}
	if out := buf.String(); strings.Count(out, "redis down: retrying") != 1 {
		t.Fatalf("want one line saying Redis is down:\n%s", out)
	}
}
