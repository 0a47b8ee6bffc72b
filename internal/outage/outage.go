package outage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultLimit is the longest outage ridden out when none is configured.
const DefaultLimit = 5 * time.Minute

// Backoff spaces attempts: Delay is the wait after the attempt-th failure
// of an outage (1 is the first). sink.Backoff is one.
type Backoff interface {
	Delay(attempt int) time.Duration
}

// defaultBackoff doubles from 500 ms to 15 s, the processors' Supervisor's
// spacing.
type defaultBackoff struct{}

func (defaultBackoff) Delay(attempt int) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < attempt && d < 15*time.Second; i++ {
		d *= 2
	}
	return min(d, 15*time.Second)
}

// LimitError is what waiting gives up with: Name was down for longer than
// the outage limit.
type LimitError struct {
	// Name is the dependency (or what failed: "writes of partition 3").
	Name string
	// Down is how long it had been down; Limit the configured limit.
	Down, Limit time.Duration
	// Err is the last error.
	Err error
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s down for %s, longer than the outage limit of %s: %v", e.Name, e.Down.Round(time.Millisecond), e.Limit, e.Err)
}

func (e *LimitError) Unwrap() error { return e.Err }

// Tracker follows one dependency through its outages. It is up until Fail
// is called, down from the first Fail until the next OK. It logs once when
// it goes down (warning, with the error), once when it is back (info, with
// how long it was down) and once when it gives up (error); repeated
// failures in between are debug lines. Safe for concurrent use; the zero
// value needs a Name.
type Tracker struct {
	// Name is the dependency: "kafka", "cassandra", "postgres", "redis".
	Name string
	// Limit is the longest outage ridden out. Default DefaultLimit.
	Limit time.Duration
	// Log receives the state changes. Default slog.Default().
	Log *slog.Logger

	now func() time.Time // tests

	mu    sync.Mutex
	since time.Time // zero while up
	fails int       // failures in the current outage
	last  error
}

func (t *Tracker) limit() time.Duration {
	if t.Limit <= 0 {
		return DefaultLimit
	}
	return t.Limit
}

func (t *Tracker) log() *slog.Logger {
	if t.Log == nil {
		return slog.Default()
	}
	return t.Log
}

func (t *Tracker) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// Fail records a failed attempt. It returns a *LimitError once the
// dependency has been down (since the first failure after the last OK)
// for longer than the limit, nil before.
func (t *Tracker) Fail(err error) error {
	now := t.clock()
	t.mu.Lock()
	first := t.since.IsZero()
	if first {
		t.since, t.fails = now, 0
	}
	t.fails++
	t.last = err
	down, fails := now.Sub(t.since), t.fails
	t.mu.Unlock()
	limit := t.limit()
	switch {
	case down > limit:
		t.log().Error(t.Name+" down for longer than the outage limit: giving up", "down_for", down.Round(time.Millisecond), "limit", limit, "attempts", fails, "err", Brief(err))
		return &LimitError{Name: t.Name, Down: down, Limit: limit, Err: err}
	case first:
		t.log().Warn(t.Name+" down: retrying with backoff until it is back or the outage limit passes", "limit", limit, "err", Brief(err))
	default:
		t.log().Debug(t.Name+" still down", "down_for", down.Round(time.Millisecond), "attempts", fails, "err", Brief(err))
	}
	return nil
}

// OK records a success: the dependency is up (again).
func (t *Tracker) OK() {
	now := t.clock()
	t.mu.Lock()
	since, fails := t.since, t.fails
	t.since, t.fails, t.last = time.Time{}, 0, nil
	t.mu.Unlock()
	if !since.IsZero() {
		t.log().Info(t.Name+" back", "down_for", now.Sub(since).Round(time.Millisecond), "attempts", fails)
	}
}

// Attempts is the number of failures in the current outage (0 while up):
// the attempt number for a Backoff.
func (t *Tracker) Attempts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fails
}

// Delay is how long to wait before the next attempt: bo's delay for the
// current outage's attempt (nil bo: 500 ms doubling to 15 s), but never
// past the moment the outage reaches the limit, so that giving up happens
// on time rather than a whole backoff step later.
func (t *Tracker) Delay(bo Backoff) time.Duration {
	if bo == nil {
		bo = defaultBackoff{}
	}
	now := t.clock()
	t.mu.Lock()
	since, fails := t.since, t.fails
	t.mu.Unlock()
	d := bo.Delay(max(fails, 1))
	if !since.IsZero() {
		left := t.limit() - now.Sub(since) + time.Millisecond
		d = min(d, max(left, time.Millisecond))
	}
	return d
}

// Err is nil while the dependency is up, else how long it has been down
// and the last error: a readiness detail.
func (t *Tracker) Err() error {
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.since.IsZero() {
		return nil
	}
	return fmt.Errorf("%s down for %s: %w", t.Name, now.Sub(t.since).Round(time.Second), t.last)
}

// Check is Err as a readiness check.
func (t *Tracker) Check(context.Context) error { return t.Err() }

// Retry calls try until it returns nil (then nil), ctx ends (ctx.Err()),
// or t has been down for longer than its limit (a *LimitError). Failures
// are spaced by bo (nil: 500 ms doubling to 15 s).
func Retry(ctx context.Context, t *Tracker, bo Backoff, try func(ctx context.Context) error) error {
	for {
		err := try(ctx)
		if err == nil {
			t.OK()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if lerr := t.Fail(err); lerr != nil {
			return lerr
		}
		if !Sleep(ctx, t.Delay(bo)) {
			return ctx.Err()
		}
	}
}

// Rerun runs a component that should never stop: it calls run again
// whenever run returns while ctx lives, each return counting as a failure
// of t (run calls t.OK itself once it works again), with restarted called
// before each new attempt and the attempts spaced by bo (nil: 500 ms
// doubling to 15 s). It returns nil when ctx ends, or a *LimitError once
// t has been down for longer than its limit.
func Rerun(ctx context.Context, t *Tracker, bo Backoff, run func(ctx context.Context) error, restarted func()) error {
	for {
		err := run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stopped without an error")
		}
		if lerr := t.Fail(err); lerr != nil {
			return lerr
		}
		if restarted != nil {
			restarted()
		}
		if !Sleep(ctx, t.Delay(bo)) {
			return nil
		}
	}
}

// Watch runs check every interval (each call bounded by interval, at least
// 2 s) until ctx ends (nil) or t has been down for longer than its limit
// (a *LimitError): for a dependency a running component needs but does
// not otherwise notice losing.
func Watch(ctx context.Context, t *Tracker, every time.Duration, check func(ctx context.Context) error) error {
	timeout := max(every, 2*time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := check(cctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			t.OK()
		} else if lerr := t.Fail(err); lerr != nil {
			return lerr
		}
		if !Sleep(ctx, every) {
			return nil
		}
	}
}

// Sleep waits d or until ctx ends (false).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// MaxErrText bounds the text of an error in the outage log lines: a
// Goka processor that lost Kafka under load fails with one error per
// message in flight, joined (thousands), and the log takes the first
// of them and their count.
const MaxErrText = 2000

// Brief is err's text, cut after MaxErrText bytes with how much was cut.
func Brief(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) <= MaxErrText {
		return s
	}
	cut := MaxErrText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:cut], len(s)-cut)
}
