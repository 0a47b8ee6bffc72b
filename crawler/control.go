package crawler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/listen"
)

// Registration is the body of POST /v1/users.
type Registration struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name"`
	// Provider is lastfm, spotify or simulated.
	Provider string `json:"provider"`
	// ExternalID is the user at the provider (Last.fm user name, Spotify
	// user id, simulated listener); default UserID.
	ExternalID string `json:"external_id"`
	// AccessToken and RefreshToken (Spotify) are sealed before storage.
	AccessToken  string     `json:"access_token"`
	RefreshToken string     `json:"refresh_token"`
	TokenExpiry  *time.Time `json:"token_expiry"`
	// Interval overrides the provider's crawl interval ("30m").
	Interval string `json:"interval"`
}

// UserStatus is a user, their schedule and what Asynq knows of their
// crawl. Tokens never leave the store: HasTokens only says they exist.
type UserStatus struct {
	UserID      string    `json:"user_id"`
	DisplayName string    `json:"display_name,omitempty"`
	Provider    string    `json:"provider"`
	ExternalID  string    `json:"external_id"`
	HasTokens   bool      `json:"has_tokens"`
	CreatedAt   time.Time `json:"created_at"`
	Schedule    Schedule  `json:"schedule"`
	// Task is the pending, scheduled, retrying or running crawl.
	Task *TaskStatus `json:"task,omitempty"`
	// Archived is the last crawl that failed for good, as Asynq's archive
	// (the dead-letter queue) keeps it.
	Archived *TaskStatus `json:"archived,omitempty"`
	// Runs are the latest crawl attempts (get only).
	Runs []Run `json:"runs,omitempty"`
}

// TaskStatus is an Asynq task as the status shows it.
type TaskStatus struct {
	ID            string     `json:"id"`
	State         string     `json:"state"` // pending, scheduled, active, retry, archived; missing: not in Redis
	NextProcessAt *time.Time `json:"next_process_at,omitempty"`
	Retried       int        `json:"retried"`
	MaxRetry      int        `json:"max_retry"`
	LastError     string     `json:"last_error,omitempty"`
	LastFailedAt  *time.Time `json:"last_failed_at,omitempty"`
}

// asynqQueues is the Redis set in which Asynq lists its queues.
const asynqQueues = "asynq:queues"

// UserStore is what registration, status and deletion need of the
// control-plane database (store/postgres implements it).
type UserStore interface {
	// CreateUser creates the user, their provider account (tokens sealed)
	// and their schedule in one transaction; ErrExists if the id is taken.
	CreateUser(ctx context.Context, u NewUser) error
	// Schedule reads one user's schedule; ErrNotFound if there is no such
	// user.
	Schedule(ctx context.Context, user string) (Schedule, error)
	// Schedules lists the schedules of the users whose ids start with
	// prefix and sort after `after`, in id order, at most limit.
	Schedules(ctx context.Context, prefix, after string, limit int) ([]Schedule, error)
	// Runs lists a user's latest crawl runs, newest first, at most limit.
	Runs(ctx context.Context, user string, limit int) ([]Run, error)
	// DeleteUser removes the user and everything of theirs, and returns
	// the schedule they had; ErrNotFound if there is no such user.
	DeleteUser(ctx context.Context, user string) (Schedule, error)
}

// ScheduleStore is what "crawl now" and the reconciler need of the
// control-plane database (store/postgres implements it).
type ScheduleStore interface {
	// MoveNextRun sets user's next run to at (and makes the schedule
	// active) unless a crawl holds a lease younger than leaseTTL (ErrBusy),
	// and returns the slot it replaced; ErrNotFound if there is no such
	// user.
	MoveNextRun(ctx context.Context, user string, at time.Time, leaseTTL time.Duration) (old time.Time, err error)
	// ActiveSchedules calls fn for every active schedule, in user id order,
	// and stops at fn's first error.
	ActiveSchedules(ctx context.Context, fn func(Schedule) error) error
	// MarkArchived records that Asynq archived taskID, the task of user's
	// run at slot, with lastErr, and moves the next run to next. moved is
	// false when slot is no longer the user's next run.
	MarkArchived(ctx context.Context, user string, slot time.Time, taskID, lastErr string, next time.Time) (moved bool, err error)
}

// ControlStore is what a Control needs: both of the above.
type ControlStore interface {
	UserStore
	ScheduleStore
}

// Control is the control plane: registration, status, crawl now,
// deletion and reconciling (a Reconciler runs it). The admin api and
// `topk scheduler` / `topk enqueue` use it.
type Control struct {
	cfg   Config
	store ControlStore
	rdb   goredis.UniversalClient
	insp  *asynq.Inspector
	enq   *enqueuer
	m     *Metrics
	log   *slog.Logger
}

// NewControl returns the control plane; it does no I/O. rdb is the Redis
// that Asynq uses (the reconciler re-registers the queue there after a
// flush).
func NewControl(cfg Config, store ControlStore, rdb goredis.UniversalClient, client *asynq.Client, insp *asynq.Inspector, m *Metrics, log *slog.Logger) (*Control, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m, _ = NewMetrics(nil)
	}
	c := &Control{cfg: cfg, store: store, rdb: rdb, insp: insp, m: m, log: log}
	c.enq = &enqueuer{client: client, cfg: &c.cfg}
	return c, nil
}

// Providers lists the configured provider names.
func (c *Control) Providers() []string {
	out := make([]string, 0, len(c.cfg.Providers))
	for n := range c.cfg.Providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c *Control) validate(r Registration) (NewUser, error) {
	u := NewUser{ID: r.UserID, DisplayName: strings.TrimSpace(r.DisplayName), Provider: r.Provider, ExternalID: r.ExternalID}
	now := c.cfg.Now()
	// The user id follows the event contract: it is every listen's key.
	probe := listen.Listen{UserID: r.UserID, PlayedAt: now, ArtistName: "a", TrackName: "t"}
	if err := probe.Validate(now); err != nil {
		return u, invalidf("user_id", "%v", err)
	}
	if strings.Contains(r.UserID, "/") {
		return u, invalidf("user_id", "must not contain '/' (it is part of api paths)")
	}
	entry, ok := c.cfg.Providers[r.Provider]
	if !ok {
		return u, invalidf("provider", "%q is not one of %s", r.Provider, strings.Join(c.Providers(), ", "))
	}
	if u.ExternalID == "" {
		u.ExternalID = r.UserID
	}
	if len(u.ExternalID) > 256 || !utf8.ValidString(u.ExternalID) {
		return u, invalidf("external_id", "must be valid UTF-8 of at most 256 bytes")
	}
	if utf8.RuneCountInString(u.DisplayName) > 200 {
		return u, invalidf("display_name", "at most 200 characters")
	}
	if r.Provider == "spotify" && r.RefreshToken == "" {
		return u, invalidf("refresh_token", "a Spotify account needs its refresh token (scope user-read-recently-played)")
	}
	if r.Provider != "spotify" && (r.AccessToken != "" || r.RefreshToken != "") {
		return u, invalidf("access_token", "provider %s takes no tokens", r.Provider)
	}
	u.Tokens = provider.Tokens{Access: r.AccessToken, Refresh: r.RefreshToken}
	if r.TokenExpiry != nil {
		u.Tokens.Expiry = *r.TokenExpiry
	}
	u.Interval = entry.Interval
	if r.Interval != "" {
		d, err := time.ParseDuration(r.Interval)
		if err != nil || d < time.Second || d > 30*24*time.Hour {
			return u, invalidf("interval", "%q is not a duration between 1s and 720h", r.Interval)
		}
		u.Interval = d
	}
	u.NextRunAt = slotOf(now)
	return u, nil
}

// Register creates a user with their provider account and schedules the
// first crawl now (it imports the whole history the provider keeps).
func (c *Control) Register(ctx context.Context, r Registration) (UserStatus, error) {
	u, err := c.validate(r)
	if err != nil {
		return UserStatus{}, err
	}
	if err := c.store.CreateUser(ctx, u); err != nil {
		return UserStatus{}, err
	}
	if err := c.enq.enqueue(ctx, u.ID, u.NextRunAt); err != nil {
		c.log.Warn("first crawl not enqueued; the scheduler's reconciler will", "user", u.ID, "err", err)
	}
	return c.Get(ctx, u.ID)
}

// Get is a user's status with their latest runs.
func (c *Control) Get(ctx context.Context, user string) (UserStatus, error) {
	sc, err := c.store.Schedule(ctx, user)
	if err != nil {
		return UserStatus{}, err
	}
	st := c.status(ctx, sc)
	if st.Runs, err = c.store.Runs(ctx, user, 20); err != nil {
		return st, err
	}
	for i := range st.Runs {
		st.Runs[i].Error = provider.RedactText(st.Runs[i].Error)
	}
	return st, nil
}

// List lists users (ids after `after`, starting with prefix) with their status.
func (c *Control) List(ctx context.Context, prefix, after string, limit int) ([]UserStatus, error) {
	scs, err := c.store.Schedules(ctx, prefix, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]UserStatus, len(scs))
	for i, sc := range scs {
		out[i] = c.status(ctx, sc)
	}
	return out, nil
}

func (c *Control) status(ctx context.Context, sc Schedule) UserStatus {
	// Errors are redacted when written; again here for those a crawler
	// older than the redaction wrote after the migration that scrubbed
	// the rows (0003).
	sc.LastError = provider.RedactText(sc.LastError)
	st := UserStatus{
		UserID: sc.UserID, DisplayName: sc.DisplayName, Provider: sc.Provider, ExternalID: sc.ExternalID,
		HasTokens: sc.HasTokens, CreatedAt: sc.UserCreatedAt, Schedule: sc,
	}
	st.Task = c.task(ctx, TaskID(sc.UserID, sc.NextRunAt))
	if sc.ArchivedTask != "" {
		st.Archived = c.task(ctx, sc.ArchivedTask)
	}
	return st
}

// task reads a task from Asynq; a task Redis does not know is "missing".
// Asynq's inspector takes no context: ctx is checked before the call.
func (c *Control) task(ctx context.Context, id string) *TaskStatus {
	if err := ctx.Err(); err != nil {
		return &TaskStatus{ID: id, State: "unknown: " + err.Error()}
	}
	info, err := c.insp.GetTaskInfo(c.cfg.Queue, id)
	if err != nil {
		state := "missing"
		if !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			state = "unknown: " + err.Error()
		}
		return &TaskStatus{ID: id, State: state}
	}
	// Asynq keeps the error the worker returned (redacted), or one an
	// older crawler returned: redacted again by name.
	ts := &TaskStatus{ID: id, State: info.State.String(), Retried: info.Retried, MaxRetry: info.MaxRetry, LastError: provider.RedactText(info.LastErr)}
	if !info.NextProcessAt.IsZero() {
		t := info.NextProcessAt.UTC()
		ts.NextProcessAt = &t
	}
	if !info.LastFailedAt.IsZero() {
		t := info.LastFailedAt.UTC()
		ts.LastFailedAt = &t
	}
	return ts
}

// Delete removes the user, their account, schedule and runs, and their
// pending task. A crawl in progress stops at its next page.
func (c *Control) Delete(ctx context.Context, user string) error {
	sc, err := c.store.DeleteUser(ctx, user)
	if err != nil {
		return err
	}
	if err := c.insp.DeleteTask(c.cfg.Queue, TaskID(user, sc.NextRunAt)); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		c.log.Info("pending task of deleted user left to expire as stale", "user", user, "err", err)
	}
	return nil
}

// CrawlNow moves the user's next run to now. ErrBusy: a crawl is running.
func (c *Control) CrawlNow(ctx context.Context, user string) (UserStatus, error) {
	now := slotOf(c.cfg.Now())
	old, err := c.store.MoveNextRun(ctx, user, now, c.cfg.TaskTimeout)
	if err != nil {
		return UserStatus{}, err
	}
	if !old.Equal(now) {
		// The old slot's task is stale now (the worker would skip it); drop it.
		if err := c.insp.DeleteTask(c.cfg.Queue, TaskID(user, old)); err != nil &&
			!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			c.log.Debug("old task not deleted", "user", user, "err", err)
		}
	}
	if err := c.enq.enqueue(ctx, user, now); err != nil {
		return UserStatus{}, err
	}
	return c.Get(ctx, user)
}

// Reconcile makes sure every active user has the task of their next run in
// Redis (after a Redis restart or flush), and closes runs Asynq archived
// without the worker recording it (a crash on the last retry). It returns
// how many tasks it created.
func (c *Control) Reconcile(ctx context.Context) (int, error) {
	// An Asynq client registers a queue in the set of queues once per
	// process; after a flush the set is empty, the inspector (and asynqmon)
	// would not see the queue, and its tasks would look missing forever.
	if err := c.rdb.SAdd(ctx, asynqQueues, c.cfg.Queue).Err(); err != nil {
		return 0, fmt.Errorf("register queue %s: %w", c.cfg.Queue, err)
	}
	restored := 0
	err := c.store.ActiveSchedules(ctx, func(sc Schedule) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if sc.RunningTask != "" && sc.RunningSince != nil && c.cfg.Now().Sub(*sc.RunningSince) < c.cfg.TaskTimeout {
			return nil // crawling now: the worker schedules the next run
		}
		id := TaskID(sc.UserID, sc.NextRunAt)
		info, err := c.insp.GetTaskInfo(c.cfg.Queue, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			if err := c.enq.enqueue(ctx, sc.UserID, sc.NextRunAt); err != nil {
				return err
			}
			restored++
			c.m.Restored.Inc()
			c.log.Info("crawl task restored from PostgreSQL", "user", sc.UserID, "task", id, "process_at", sc.NextRunAt)
		case err != nil:
			return fmt.Errorf("task %s: %w", id, err)
		case info.State == asynq.TaskStateArchived:
			interval := time.Duration(sc.Interval)
			next := slotOf(c.cfg.Now().Add(interval))
			moved, err := c.store.MarkArchived(ctx, sc.UserID, sc.NextRunAt, id, provider.RedactText(info.LastErr), next)
			if err != nil {
				return err
			}
			if moved {
				if err := c.enq.enqueue(ctx, sc.UserID, next); err != nil {
					return err
				}
				restored++
				c.m.Restored.Inc()
			}
		}
		return nil
	})
	c.m.Reconciles.Inc()
	return restored, err
}
