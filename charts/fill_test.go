package charts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/ops"
)

// The cache's bounds: fills cancelled when no caller waits, the
// Cassandra slots, the size cap of Redis entries.

// testAnswers is a cache with a TTL of a minute on a clock the test
// advances, built from c (ttl, log, now and reg filled in), and its
// registry.
func testAnswers(t *testing.T, c answersConfig) (*answers, *prometheus.Registry, func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	now := testNow
	reg := prometheus.NewRegistry()
	if c.ttl == 0 {
		c.ttl = time.Minute
	}
	c.localBytes, c.log, c.reg = 1<<20, ops.NewLogger(io.Discard, "error", "text"), reg
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, err := newAnswers(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	return a, reg, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

// waiters is how many callers wait for key's fill.
func (a *answers) waiters(key string) int {
	a.flights.mu.Lock()
	defer a.flights.mu.Unlock()
	if f := a.flights.m[a.prefix+key]; f != nil {
		return f.waiters
	}
	return 0
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A fill goes on while one caller waits for it, even after others left;
// when every caller has left, its context is cancelled (the store sees
// it) and the next caller starts a new fill.
func TestFillCancelledWhenNoCallerWaits(t *testing.T) {
	a, reg, _ := testAnswers(t, answersConfig{})
	var fills atomic.Int32
	release := make(chan struct{})
	cancelled := make(chan struct{}, 4)
	slowStore := func(ctx context.Context) (int, error) { // a store that answers when released
		n := fills.Add(1)
		select {
		case <-release:
			return int(n), nil
		case <-ctx.Done():
			cancelled <- struct{}{}
			return 0, ctx.Err()
		}
	}
	c := jsonCodec[int]()

	// Two callers; the first goes away, the second still waits.
	ctx1, leave1 := context.WithCancel(context.Background())
	errs1 := make(chan error, 1)
	go func() { _, _, err := fetch(ctx1, a, "k", c, slowStore); errs1 <- err }()
	waitFor(t, "the first caller", func() bool { return a.waiters("k") == 1 })
	got2 := make(chan int, 1)
	go func() {
		v, _, err := fetch(context.Background(), a, "k", c, slowStore)
		if err != nil {
			t.Error(err)
		}
		got2 <- v
	}()
	waitFor(t, "the second caller", func() bool { return a.waiters("k") == 2 })
	leave1()
	if err := <-errs1; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left: %v", err)
	}
	select {
	case <-cancelled:
		t.Fatal("the fill was cancelled while a caller still waited")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if v := <-got2; v != 1 || fills.Load() != 1 {
		t.Fatalf("the caller that stayed got %d after %d fills, want 1 after 1", v, fills.Load())
	}

	// One caller, who goes away: the fill's context ends.
	block := make(chan struct{})
	defer close(block)
	blocking := func(ctx context.Context) (int, error) {
		fills.Add(1)
		select {
		case <-block:
			return 0, nil
		case <-ctx.Done():
			cancelled <- struct{}{}
			return 0, ctx.Err()
		}
	}
	ctx3, leave3 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer leave3()
	if _, _, err := fetch(ctx3, a, "j", c, blocking); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller past its deadline: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the fill nobody waits for was not cancelled")
	}
	if v := counterValue(t, reg, "topk_api_cache_fills_cancelled_total"); v != 1 {
		t.Fatalf("fills cancelled: %v, want 1", v)
	}
	// The key is free: the next caller starts a fill of its own.
	before := fills.Load()
	v, _, err := fetch(context.Background(), a, "j", c, func(context.Context) (int, error) { fills.Add(1); return 42, nil })
	if err != nil || v != 42 || fills.Load() != before+1 {
		t.Fatalf("after a cancelled fill: %d %v, fills %d → %d", v, err, before, fills.Load())
	}
}

// A background refresh is not cancelled by a caller leaving, and ends at
// its deadline or when the service closes.
func TestRefreshKeepsItsOwnDeadline(t *testing.T) {
	a, _, advance := testAnswers(t, answersConfig{})
	c := jsonCodec[int]()
	if _, _, err := fetch(context.Background(), a, "k", c, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	advance(50 * time.Second) // past 3/4 of the TTL
	deadline := make(chan time.Time, 1)
	ctx, leave := context.WithCancel(context.Background())
	v, _, err := fetch(ctx, a, "k", c, func(ctx context.Context) (int, error) {
		d, _ := ctx.Deadline()
		deadline <- d
		return 2, nil
	})
	leave() // the request that triggered the refresh is gone
	if err != nil || v != 1 {
		t.Fatalf("served %d %v while refreshing", v, err)
	}
	select {
	case d := <-deadline:
		if left := time.Until(d); left <= 0 || left > refreshTimeout {
			t.Fatalf("refresh deadline in %v, want within %v", left, refreshTimeout)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh")
	}
}

// At most maxFills fills read Cassandra at once: one more waits busyWait,
// then fails fast with ErrBusy (unavailable, 503 in the api); cached
// answers are served meanwhile, a refresh-ahead is skipped, and an
// expired answer still held serves instead of the error.
func TestCassandraSlots(t *testing.T) {
	a, reg, advance := testAnswers(t, answersConfig{maxFills: 1, busyWait: 30 * time.Millisecond})
	c := jsonCodec[int]()
	quick := func(context.Context) (int, error) { return 5, nil }
	if _, _, err := fetch(context.Background(), a, "cached", c, quick); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := fetch(context.Background(), a, "slow", c, func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil
		})
		done <- err
	}()
	<-started
	if v := gaugeValue(t, reg, "topk_api_cassandra_fills_in_flight"); v != 1 {
		t.Fatalf("in flight: %v", v)
	}
	start := time.Now()
	_, _, err := fetch(context.Background(), a, "other", c, quick)
	waited := time.Since(start)
	var de *topk.Error
	if !errors.Is(err, ErrBusy) || !errors.Is(err, topk.ErrUnavailable) || !errors.As(err, &de) || !strings.Contains(de.Message, "retry") {
		t.Fatalf("a fill over the bound: %v, want ErrBusy as unavailable", err)
	}
	if waited < 30*time.Millisecond || waited > time.Second {
		t.Fatalf("refused after %v, want after the 30 ms wait", waited)
	}
	if v, _, err := fetch(context.Background(), a, "cached", c, quick); err != nil || v != 5 {
		t.Fatalf("a cached answer while every slot is taken: %d %v", v, err)
	}
	advance(50 * time.Second) // "cached" is due for a refresh-ahead: skipped
	if v, _, err := fetch(context.Background(), a, "cached", c, quick); err != nil || v != 5 {
		t.Fatalf("a cached answer due for refresh: %d %v", v, err)
	}
	advance(20 * time.Second) // expired: the refill is busy, the expired answer serves
	if v, asOf, err := fetch(context.Background(), a, "cached", c, quick); err != nil || v != 5 || !asOf.Equal(testNow) {
		t.Fatalf("an expired answer while busy: %d %v %v", v, asOf, err)
	}
	if v := counterValue(t, reg, `topk_api_cassandra_busy_total{fill="request"}`); v != 2 {
		t.Fatalf("busy requests: %v, want 2", v)
	}
	if v := counterValue(t, reg, `topk_api_cassandra_busy_total{fill="refresh"}`); v != 1 {
		t.Fatalf("busy refreshes: %v, want 1", v)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _, err := fetch(context.Background(), a, "other", c, quick); err != nil || v != 5 {
		t.Fatalf("after the slot is free: %d %v", v, err)
	}
	if v := gaugeValue(t, reg, "topk_api_cassandra_fills_in_flight"); v != 0 {
		t.Fatalf("in flight after: %v", v)
	}

	// Uncached (TTL 0), the reads take the slots too.
	u, _, _ := testAnswers(t, answersConfig{ttl: -1, maxFills: 1, busyWait: 10 * time.Millisecond})
	hold := make(chan struct{})
	go func() {
		_, _, _ = fetch(context.Background(), u, "a", c, func(context.Context) (int, error) { <-hold; return 0, nil })
	}()
	waitFor(t, "the uncached fill", func() bool { return len(u.slots.ch) == 1 })
	if _, _, err := fetch(context.Background(), u, "b", c, quick); !errors.Is(err, ErrBusy) {
		t.Fatalf("uncached over the bound: %v", err)
	}
	close(hold)
}

// memCache is a Cache in memory that keeps each entry's TTL.
type memCache struct {
	mu  sync.Mutex
	m   map[string][]byte
	ttl map[string]time.Duration
}

func (c *memCache) Get(_ context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key], nil
}

func (c *memCache) Set(_ context.Context, key string, v []byte, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m, c.ttl = map[string][]byte{}, map[string]time.Duration{}
	}
	c.m[key], c.ttl[key] = v, ttl
	return nil
}

// An answer whose encoding is over the cap stays in this process only
// and is counted; the others go to Redis, each with the TTL.
func TestSharedEntrySizeCap(t *testing.T) {
	shared := &memCache{}
	a, reg, _ := testAnswers(t, answersConfig{shared: shared, maxShared: 100})
	c := jsonCodec[string]()
	var fills atomic.Int32
	get := func(key, v string) {
		t.Helper()
		got, _, err := fetch(context.Background(), a, key, c, func(context.Context) (string, error) { fills.Add(1); return v, nil })
		if err != nil || got != v {
			t.Fatalf("%s: %q %v", key, got, err)
		}
	}
	get("small", "x")
	get("big", strings.Repeat("y", 200))
	get("big", strings.Repeat("y", 200)) // from this process
	if fills.Load() != 2 {
		t.Fatalf("%d fills, want 2 (the big answer is kept in the process)", fills.Load())
	}
	if _, ok := shared.m["small"]; !ok || shared.ttl["small"] != time.Minute {
		t.Fatalf("small answer in Redis: %v, TTL %v", ok, shared.ttl["small"])
	}
	if _, ok := shared.m["big"]; ok {
		t.Fatal("an answer over the cap went to Redis")
	}
	if v := counterValue(t, reg, "topk_api_cache_oversize_total"); v != 1 {
		t.Fatalf("oversize: %v", v)
	}
}

// counterValue reads a metric by name, with labels as {k="v"} when it
// has them.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	base, labels, _ := strings.Cut(name, "{")
	labels = strings.TrimSuffix(labels, "}")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != base {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if strings.Join(ls, ",") == labels {
				return metricValue(m)
			}
		}
	}
	return 0
}

// An answer the codec does not keep (a user Cassandra does not know yet)
// is shared by the requests waiting for it but not cached: the next
// request asks again, and the answer found then is cached.
func TestUnkeptAnswersAreNotCached(t *testing.T) {
	shared := &memCache{}
	a, _, _ := testAnswers(t, answersConfig{shared: shared})
	c := jsonCodec[int]()
	c.keep = func(v int) bool { return v > 0 }
	var fills atomic.Int32
	fill := func(context.Context) (int, error) { return int(fills.Add(1)) - 1, nil } // 0 first, then 1
	for i, want := range []int{0, 1, 1} {
		if v, _, err := fetch(context.Background(), a, "first:new", c, fill); err != nil || v != want {
			t.Fatalf("request %d: %d %v, want %d", i+1, v, err, want)
		}
	}
	if fills.Load() != 2 || len(shared.m) != 1 {
		t.Fatalf("%d fills, %d Redis entries; want 2 and 1", fills.Load(), len(shared.m))
	}
}

// A background fill made of fetches (peek's: a chart's all-time names)
// waits for a slot rather than failing busy — nobody waits for it, and
// giving up left the answer uncached, so every request started it again —
// and at most a quarter of the slots (one, here) run such fills at once.
func TestPeekFillsWaitTheirTurn(t *testing.T) {
	a, reg, _ := testAnswers(t, answersConfig{maxFills: 4, busyWait: time.Millisecond})
	c := jsonCodec[int]()
	hold := make(chan struct{})
	var holding sync.WaitGroup
	for i := range 4 { // every slot taken by requests' fills
		holding.Add(1)
		go func() {
			defer holding.Done()
			_, _, _ = fetch(context.Background(), a, fmt.Sprint("held-", i), c, func(context.Context) (int, error) { <-hold; return i, nil })
		}()
	}
	waitFor(t, "every slot taken", func() bool { return len(a.slots.ch) == 4 })
	var running, most atomic.Int32
	peekFill := func(i int) func(ctx context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			v, _, err := fetch(ctx, a, fmt.Sprint("part-", i), c, func(context.Context) (int, error) {
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(5 * time.Millisecond)
				return 10 + i, nil
			})
			return v, err
		}
	}
	for i := range 3 {
		if _, ok := peek(context.Background(), a, fmt.Sprint("names-", i), time.Hour, c, peekFill(i)); ok {
			t.Fatalf("names-%d found before any fill", i)
		}
	}
	time.Sleep(50 * time.Millisecond) // far past busyWait: a request would have failed
	if v := counterValue(t, reg, `topk_api_cassandra_busy_total{fill="request"}`); v != 0 {
		t.Fatalf("background fills counted busy %v times: they must wait", v)
	}
	close(hold)
	holding.Wait()
	a.background.Wait()
	for i := range 3 {
		if v, ok := peek(context.Background(), a, fmt.Sprint("names-", i), time.Hour, c, peekFill(i)); !ok || v != 10+i {
			t.Errorf("names-%d after its background fill: %d %v, want %d", i, v, ok, 10+i)
		}
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d background fills read at once, want 1 (a quarter of 4 slots)", m)
	}
}
