package outage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fakeClock moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer is a slog text log in memory.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(level string) int {
	return strings.Count(l.String(), "level="+level)
}

func newTracker(limit time.Duration) (*Tracker, *fakeClock, *logBuffer) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	lb := &logBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &Tracker{Name: "cassandra", Limit: limit, Log: log, now: clk.now}, clk, lb
}

// Down from the first failure to the next OK, one log line per state
// change, a LimitError naming the dependency and its last error once the
// outage is longer than the limit, and the clock starting again after an
// OK.
func TestTrackerStates(t *testing.T) {
	tr, clk, lb := newTracker(time.Minute)
	if tr.Err() != nil || tr.Attempts() != 0 {
		t.Fatal("a new tracker is down")
	}
	refused := errors.New("connection refused")
	for range 5 {
		if err := tr.Fail(refused); err != nil {
			t.Fatalf("gave up within the limit: %v", err)
		}
		clk.add(10 * time.Second)
	}
	if err := tr.Err(); err == nil || !strings.Contains(err.Error(), "cassandra down for 50s") || !errors.Is(err, refused) {
		t.Fatalf("Err while down: %v", err)
	}
	if tr.Attempts() != 5 || lb.count("WARN") != 1 {
		t.Fatalf("attempts %d, warnings %d: want 5 and one warning\n%s", tr.Attempts(), lb.count("WARN"), lb)
	}
	tr.OK()
	if tr.Err() != nil || tr.Attempts() != 0 || lb.count("INFO") != 1 || !strings.Contains(lb.String(), "down_for=50s") {
		t.Fatalf("after OK: %v %d\n%s", tr.Err(), tr.Attempts(), lb)
	}
	tr.OK() // up already: no line
	if lb.count("INFO") != 1 {
		t.Fatalf("OK while up logged\n%s", lb)
	}

	// A new outage: its clock starts at its own first failure.
	clk.add(time.Hour)
	if err := tr.Fail(refused); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	if err := tr.Fail(refused); err != nil {
		t.Fatalf("exactly the limit is still ridden out: %v", err)
	}
	clk.add(time.Millisecond)
	timeout := errors.New("i/o timeout")
	err := tr.Fail(timeout)
	var le *LimitError
	if !errors.As(err, &le) || le.Name != "cassandra" || le.Limit != time.Minute || !errors.Is(err, timeout) {
		t.Fatalf("past the limit: %v", err)
	}
	for _, s := range []string{"cassandra down for 1m0.001s", "outage limit of 1m0s", "i/o timeout"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
	if lb.count("WARN") != 2 || lb.count("ERROR") != 1 {
		t.Fatalf("want a warning per outage and one error\n%s", lb)
	}
}

func TestTrackerDefaultLimit(t *testing.T) {
	tr, clk, _ := newTracker(0)
	_ = tr.Fail(errors.New("x"))
	clk.add(DefaultLimit)
	if err := tr.Fail(errors.New("x")); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	if err := tr.Fail(errors.New("x")); err == nil {
		t.Fatal("no error past the default limit")
	}
}

type fastBackoff struct{ calls []int }

func (b *fastBackoff) Delay(attempt int) time.Duration {
	b.calls = append(b.calls, attempt)
	return time.Millisecond
}

// A dependency that fails three times and then answers: Retry returns nil
// after four calls, with the backoff asked for attempts 1, 2, 3.
func TestRetryUntilUp(t *testing.T) {
	tr, _, lb := newTracker(time.Minute)
	bo := &fastBackoff{}
	calls := 0
	err := Retry(context.Background(), tr, bo, func(context.Context) error {
		calls++
		if calls <= 3 {
			return errors.New("refused")
		}
		return nil
	})
	if err != nil || calls != 4 || len(bo.calls) != 3 || bo.calls[2] != 3 {
		t.Fatalf("err %v, calls %d, backoff %v", err, calls, bo.calls)
	}
	if tr.Err() != nil || lb.count("WARN") != 1 || lb.count("INFO") != 1 {
		t.Fatalf("after Retry: %v\n%s", tr.Err(), lb)
	}
}

// A dependency that never answers: Retry gives up past the limit with a
// LimitError naming it.
func TestRetryPastLimit(t *testing.T) {
	tr, clk, _ := newTracker(time.Minute)
	calls := 0
	err := Retry(context.Background(), tr, &fastBackoff{}, func(context.Context) error {
		calls++
		clk.add(20 * time.Second)
		return errors.New("no route to host")
	})
	var le *LimitError
	if !errors.As(err, &le) || le.Name != "cassandra" || !strings.Contains(err.Error(), "no route to host") {
		t.Fatalf("err %v", err)
	}
	// Down from the first failure: 0, 20, 40, 60 s are ridden out, 80 s is not.
	if calls != 5 {
		t.Fatalf("%d calls, want 5", calls)
	}
}

func TestRetryCancelled(t *testing.T) {
	tr, _, _ := newTracker(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	err := Retry(ctx, tr, nil, func(context.Context) error {
		cancel()
		return errors.New("refused")
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// Watch notices a dependency going away and coming back (one line each)
// and gives up when it stays away past the limit.
func TestWatch(t *testing.T) {
	tr, clk, lb := newTracker(time.Minute)
	var mu sync.Mutex
	plan := []error{nil, errors.New("down"), errors.New("down"), nil, nil}
	i := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := Watch(ctx, tr, time.Millisecond, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		clk.add(10 * time.Second)
		if i < len(plan) {
			i++
			return plan[i-1]
		}
		return errors.New("gone for good")
	})
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "gone for good") {
		t.Fatalf("err %v", err)
	}
	if lb.count("WARN") != 2 || lb.count("INFO") != 1 || lb.count("ERROR") != 1 {
		t.Fatalf("want two outages, one recovery, one give-up\n%s", lb)
	}

	// Cancelled: nil.
	tr2, _, _ := newTracker(time.Minute)
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := Watch(cctx, tr2, time.Millisecond, func(context.Context) error { return errors.New("x") }); err != nil {
		t.Fatalf("cancelled Watch: %v", err)
	}
}

func TestDefaultBackoff(t *testing.T) {
	var b defaultBackoff
	if b.Delay(1) != 500*time.Millisecond || b.Delay(2) != time.Second || b.Delay(10) != 15*time.Second {
		t.Fatalf("delays %v %v %v", b.Delay(1), b.Delay(2), b.Delay(10))
	}
}

// Delay follows the backoff but never waits past the limit: the attempt
// that gives up comes on time, not a whole backoff step late.
func TestDelayStopsAtTheLimit(t *testing.T) {
	tr, clk, _ := newTracker(10 * time.Second)
	bo := constBackoff(8 * time.Second)
	if d := tr.Delay(bo); d != 8*time.Second {
		t.Fatalf("delay while up %v", d)
	}
	_ = tr.Fail(errors.New("x"))
	if d := tr.Delay(bo); d != 8*time.Second {
		t.Fatalf("first delay %v, want 8s", d)
	}
	clk.add(8 * time.Second)
	_ = tr.Fail(errors.New("x"))
	if d := tr.Delay(bo); d != 2*time.Second+time.Millisecond {
		t.Fatalf("delay 8 s into a 10 s limit %v, want 2.001s", d)
	}
	clk.add(3 * time.Second)
	if d := tr.Delay(bo); d != time.Millisecond {
		t.Fatalf("delay past the limit %v, want 1ms", d)
	}
}

type constBackoff time.Duration

func (c constBackoff) Delay(int) time.Duration { return time.Duration(c) }

// A long error is cut in the log, with how much was cut; a short one is
// whole.
func TestBrief(t *testing.T) {
	if got := Brief(errors.New("short")); got != "short" {
		t.Errorf("%q", got)
	}
	long := errors.New(strings.Repeat("é", MaxErrText)) // 2 bytes each
	got := Brief(long)
	if !strings.HasSuffix(got, fmt.Sprintf("… (%d more bytes)", 2*MaxErrText-MaxErrText)) || !utf8.ValidString(got) || len(got) > MaxErrText+40 {
		t.Errorf("%d bytes: %q", len(got), got[len(got)-40:])
	}
	if Brief(nil) != "" {
		t.Error("nil")
	}
}
