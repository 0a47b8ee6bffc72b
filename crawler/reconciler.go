package crawler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/topk-charts/topk/internal/outage"
)

// Reconciler is the scheduler's component: it runs Control.Reconcile at
// start and then at an interval, so that Redis always holds the task of
// every active user's next run.
type Reconciler struct {
	ctl   *Control
	every time.Duration
	// backoff spaces the retries of a failing round (nil: outage's
	// default, 500 ms doubling to 15 s).
	backoff outage.Backoff
}

// NewReconciler returns a reconciler of ctl that reconciles every `every`
// (which must be positive); it does no I/O.
func NewReconciler(ctl *Control, every time.Duration) *Reconciler {
	return &Reconciler{ctl: ctl, every: every}
}

// Run reconciles at start and then every interval until ctx ends (nil). A
// failing round (PostgreSQL or Redis down) is retried with backoff rather
// than a tick later, so the tasks of a flushed Redis are restored as soon
// as both answer; the log says so once when the rounds start failing and
// once when they work again. When they have failed for longer than
// Config.OutageLimit, Run returns the last error (the scheduler exits
// non-zero with it).
func (r *Reconciler) Run(ctx context.Context) error {
	if r.every <= 0 {
		return errors.New("crawler: the reconcile interval must be positive")
	}
	c := r.ctl
	tr := &outage.Tracker{Name: "postgres or redis", Limit: c.cfg.OutageLimit, Log: c.log}
	return runReconciler(ctx, r.every, tr, r.backoff, func(ctx context.Context) error {
		start := time.Now()
		n, err := c.Reconcile(ctx)
		if err == nil {
			c.log.Debug("reconciled", "restored", n, "took", time.Since(start))
		}
		return err
	})
}

// runReconciler runs round at start and every `every`, each round retried
// through tr until it works (see Reconciler.Run).
func runReconciler(ctx context.Context, every time.Duration, tr *outage.Tracker, bo outage.Backoff, round func(context.Context) error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := outage.Retry(ctx, tr, bo, round); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reconcile: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
