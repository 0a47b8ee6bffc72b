package crawler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/internal/outage"
	"github.com/topk-charts/topk/listen"
)

// ProviderEntry is a provider and the crawl interval of its users.
type ProviderEntry struct {
	// Provider crawls; nil in processes that only schedule (the api).
	Provider provider.Provider
	// Interval between the end of a run and the next, unless the user has
	// an interval of their own.
	Interval time.Duration
}

// Config configures the control plane and the worker.
type Config struct {
	// Queue is the Asynq queue; default Queue("").
	Queue string
	// MaxRetry of a failing crawl before Asynq archives it; default 8.
	MaxRetry int
	// RetryBase is the first retry delay, doubling per retry; default 30s.
	RetryBase time.Duration
	// RetryMax caps the retry delay; default 6h.
	RetryMax time.Duration
	// TaskTimeout bounds one crawl attempt and is the lease that keeps a
	// second crawl of the same user out; default 1h.
	TaskTimeout time.Duration
	// Providers by name (lastfm, spotify, simulated).
	Providers map[string]ProviderEntry
	// OutageLimit is how long the reconciler keeps retrying a failing
	// round (PostgreSQL or Redis down) before Reconciler.Run returns an
	// error; default outage.DefaultLimit (5 minutes).
	OutageLimit time.Duration
	// Now default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Queue == "" {
		c.Queue = Queue("")
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = 8
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 30 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 6 * time.Hour
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = time.Hour
	}
	if c.OutageLimit <= 0 {
		c.OutageLimit = outage.DefaultLimit
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Providers) == 0 {
		return errors.New("crawler: no provider configured")
	}
	for name, p := range c.Providers {
		if p.Interval <= 0 {
			return fmt.Errorf("crawler: provider %s has no interval", name)
		}
	}
	if c.MaxRetry < 0 {
		return errors.New("crawler: MaxRetry must not be negative")
	}
	return nil
}

// enqueuer creates crawl tasks.
type enqueuer struct {
	client *asynq.Client
	cfg    *Config
}

// enqueue creates the task of user's run at slot; an existing task of the
// same run is fine (ids are unique per user and slot).
func (e *enqueuer) enqueue(ctx context.Context, user string, slot time.Time) error {
	task, opts := newTask(user, slot, e.cfg.Queue, e.cfg.MaxRetry, e.cfg.TaskTimeout)
	_, err := e.client.EnqueueContext(ctx, task, opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue %s: %w", TaskID(user, slot), err)
	}
	return nil
}

// RunStore is what a Worker needs of the control-plane database
// (store/postgres implements it): a crawl's lease on its user, its
// progress, its refreshed tokens and its outcome. Advance and Finish act
// only while the crawl's task holds the lease.
type RunStore interface {
	// Claim takes user's lease for taskID when slot is the user's next run
	// and no other crawl holds a valid lease (one younger than leaseTTL),
	// and records the attempt in crawl_runs. ok is false when the task is
	// stale (the user is gone, inactive, or was rescheduled).
	Claim(ctx context.Context, user string, slot time.Time, taskID string, attempt int, leaseTTL time.Duration) (c Claim, ok bool, err error)
	// Advance stores the cursor of a page Kafka acknowledged. held is false
	// when the lease was lost (the user deleted or rescheduled).
	Advance(ctx context.Context, user, taskID string, runID int64, p Progress) (held bool, err error)
	// SaveTokens stores refreshed tokens, sealed.
	SaveTokens(ctx context.Context, user string, t provider.Tokens) error
	// Finish ends the attempt: it releases the lease, records o and, unless
	// o.Next is zero (a retry follows), moves the next run to o.Next. held
	// is false when the lease was lost.
	Finish(ctx context.Context, user, taskID string, runID int64, o Outcome) (held bool, err error)
	// PruneRuns keeps a user's last keep crawl runs.
	PruneRuns(ctx context.Context, user string, keep int) error
}

// Worker runs crawl:user tasks.
type Worker struct {
	cfg   Config
	store RunStore
	pub   Publisher
	enq   *enqueuer
	m     *Metrics
	log   *slog.Logger
}

// NewWorker returns the task handler; client enqueues each user's next run.
func NewWorker(cfg Config, store RunStore, pub Publisher, client *asynq.Client, m *Metrics, log *slog.Logger) (*Worker, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Every provider error leaves the crawl through provider.Redacting, so
	// no key or token reaches a log line, PostgreSQL, Asynq or the api.
	// (A copy: the caller's map is shared with its Control.)
	provs := make(map[string]ProviderEntry, len(cfg.Providers))
	for name, p := range cfg.Providers {
		if p.Provider == nil {
			return nil, fmt.Errorf("crawler: provider %s has no implementation", name)
		}
		p.Provider = provider.Redacting(p.Provider)
		provs[name] = p
	}
	cfg.Providers = provs
	if m == nil {
		m, _ = NewMetrics(nil)
	}
	w := &Worker{cfg: cfg, store: store, pub: pub, m: m, log: log}
	w.enq = &enqueuer{client: client, cfg: &w.cfg}
	return w, nil
}

// ProcessTask crawls one user: claim the run in PostgreSQL, crawl page by
// page (publish, wait for Kafka, move the cursor), then schedule the next
// run. A stale task (the user is gone or was rescheduled) ends quietly.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := parsePayload(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	slot := time.Unix(p.Slot, 0).UTC()
	taskID, ok := asynq.GetTaskID(ctx)
	if !ok {
		taskID = TaskID(p.User, slot)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		maxRetry = w.cfg.MaxRetry
	}
	log := w.log.With("user", p.User, "task", taskID, "attempt", retried)

	c, ok, err := w.store.Claim(ctx, p.User, slot, taskID, retried, w.cfg.TaskTimeout)
	if err != nil {
		return err
	}
	if !ok {
		w.m.Crawls.WithLabelValues("", "skipped").Inc()
		log.Debug("stale crawl task skipped (user gone, paused, rescheduled or already crawling)")
		return nil
	}
	start := w.cfg.Now()
	entry, found := w.cfg.Providers[c.Provider]
	interval := time.Duration(c.Interval)
	if interval <= 0 {
		interval = entry.Interval
	}
	var res provider.Result
	published := 0
	if !found {
		err = provider.Permanent(fmt.Errorf("provider %q is not configured in this crawler", c.Provider))
	} else {
		acct := provider.Account{
			UserID: p.User, ExternalID: c.ExternalID, Tokens: c.Tokens,
			SaveTokens: func(ctx context.Context, t provider.Tokens) error { return w.store.SaveTokens(ctx, p.User, t) },
		}
		res, err = entry.Provider.Crawl(ctx, acct, c.Cursor, func(ctx context.Context, pg provider.Page) error {
			batch := w.listens(p.User, c.Provider, pg.Plays)
			if err := w.pub.Publish(ctx, batch); err != nil {
				return err
			}
			published += len(batch)
			w.m.Listens.WithLabelValues(c.Provider).Add(float64(len(batch)))
			// Only now, with every listen of the page acknowledged, the cursor moves.
			held, err := w.store.Advance(ctx, p.User, taskID, c.RunID, Progress{Cursor: pg.Cursor, Listens: len(batch), Done: pg.Done, Total: pg.Total})
			if err == nil && !held {
				err = errLeaseLost
			}
			return err
		})
	}
	w.m.Duration.WithLabelValues(c.Provider).Observe(w.cfg.Now().Sub(start).Seconds())
	// Bookkeeping survives a cancelled crawl (shutdown, timeout).
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()

	if errors.Is(err, errLeaseLost) {
		w.m.Crawls.WithLabelValues(c.Provider, "skipped").Inc()
		log.Info("crawl stopped: the user was deleted or rescheduled", "listens", published)
		return nil
	}
	if err == nil {
		next := slotOf(w.cfg.Now().Add(interval))
		held, ferr := w.store.Finish(bctx, p.User, taskID, c.RunID, Outcome{Status: "ok", PossibleGap: res.PossibleGap, Next: next})
		if ferr != nil {
			return ferr
		}
		if res.PossibleGap {
			w.m.PossibleGaps.WithLabelValues(c.Provider).Inc()
			log.Warn("possible gap: the provider returned as many new plays as it keeps")
		}
		w.m.Crawls.WithLabelValues(c.Provider, "ok").Inc()
		log.Info("crawled", "provider", c.Provider, "listens", published, "cursor_next_run", next, "took", w.cfg.Now().Sub(start))
		if held {
			w.schedule(bctx, log, p.User, next, c.RunID)
		}
		return nil
	}

	final := provider.IsPermanent(err) || retried >= maxRetry
	if !final {
		if _, ferr := w.store.Finish(bctx, p.User, taskID, c.RunID, Outcome{Status: "retrying", Err: err.Error()}); ferr != nil {
			log.Error("record crawl failure", "err", ferr)
		}
		w.m.Crawls.WithLabelValues(c.Provider, "retrying").Inc()
		log.Warn("crawl failed, will retry", "err", err, "listens", published)
		return err
	}
	// The task is archived (Asynq's dead-letter queue) with err; the user
	// keeps their schedule and is tried again at the next interval.
	next := slotOf(w.cfg.Now().Add(interval))
	held, ferr := w.store.Finish(bctx, p.User, taskID, c.RunID, Outcome{Status: "failed", Err: err.Error(), Next: next, Archived: taskID})
	if ferr != nil {
		log.Error("record crawl failure", "err", ferr)
	}
	w.m.Crawls.WithLabelValues(c.Provider, "failed").Inc()
	log.Error("crawl failed for good: task archived", "err", err, "permanent", provider.IsPermanent(err), "next_run", next)
	if held {
		w.schedule(bctx, log, p.User, next, c.RunID)
	}
	if provider.IsPermanent(err) {
		return fmt.Errorf("%w (%w)", err, asynq.SkipRetry)
	}
	return err
}

func (w *Worker) schedule(ctx context.Context, log *slog.Logger, user string, next time.Time, runID int64) {
	if err := w.enq.enqueue(ctx, user, next); err != nil {
		// The reconciler restores it from PostgreSQL.
		log.Warn("next run not enqueued; the scheduler's reconciler will", "err", err)
	}
	if runID%16 == 0 { // now and then: keep each user's last 100 runs
		if err := w.store.PruneRuns(ctx, user, 100); err != nil {
			log.Warn("prune crawl runs", "err", err)
		}
	}
}

// listens turns plays into the event contract's listens.
func (w *Worker) listens(user, source string, plays []provider.Play) []listen.Listen {
	now := w.cfg.Now()
	out := make([]listen.Listen, len(plays))
	for i, p := range plays {
		l := listen.Listen{
			UserID: user, PlayedAt: p.PlayedAt.UTC(), ArtistName: p.Artist, TrackName: p.Track, AlbumName: p.Album,
			TrackID: p.TrackID, ArtistID: p.ArtistID, AlbumID: p.AlbumID, DurationMS: p.DurationMS, Source: source,
		}
		if err := l.Validate(now); err != nil {
			// Published all the same: ingest, the single gate, dead-letters it
			// with the original bytes, so nothing is lost silently.
			w.m.Invalid.WithLabelValues(source).Inc()
			w.log.Warn("provider play breaks the event contract", "user", user, "provider", source, "err", err)
		}
		out[i] = l
	}
	return out
}
