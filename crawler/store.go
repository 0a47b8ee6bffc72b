package crawler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/tokens"
)

// Errors of the control plane; the api maps them to HTTP statuses.
var (
	ErrNotFound = errors.New("no such user")
	ErrExists   = errors.New("user already exists")
	ErrBusy     = errors.New("a crawl of this user is running")
)

// InvalidError is bad input, naming the field at fault.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

func invalidf(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Store is the control plane's PostgreSQL: users, provider accounts,
// sealed tokens, schedules and crawl runs (schemas/postgres/0002_crawler.sql).
type Store struct {
	pool   *pgxpool.Pool
	cipher *tokens.Cipher
}

// NewStore returns a store; cipher seals and opens provider tokens.
func NewStore(pool *pgxpool.Pool, cipher *tokens.Cipher) *Store {
	return &Store{pool: pool, cipher: cipher}
}

// Schedule is a user's row in schedules.
type Schedule struct {
	UserID        string     `json:"-"`
	Active        bool       `json:"active"`
	Interval      Duration   `json:"interval"`
	NextRunAt     time.Time  `json:"next_run_at"`
	Cursor        int64      `json:"cursor"`
	LastRunAt     *time.Time `json:"last_run_at,omitempty"`
	LastStatus    string     `json:"last_status"`
	LastError     string     `json:"last_error,omitempty"`
	ArchivedTask  string     `json:"archived_task_id,omitempty"`
	RunningTask   string     `json:"running_task_id,omitempty"`
	RunningSince  *time.Time `json:"running_since,omitempty"`
	PagesDone     int        `json:"pages_done"`
	PagesTotal    int        `json:"pages_total"`
	ListensTotal  int64      `json:"listens_total"`
	PossibleGaps  int        `json:"possible_gaps"`
	LastGapAt     *time.Time `json:"last_gap_at,omitempty"`
	Provider      string     `json:"-"`
	ExternalID    string     `json:"-"`
	DisplayName   string     `json:"-"`
	UserCreatedAt time.Time  `json:"-"`
	HasTokens     bool       `json:"-"`
}

// Duration is a time.Duration written as "30m0s" in JSON.
type Duration time.Duration

// MarshalText writes the Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads the Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Run is one crawl attempt.
type Run struct {
	ID          int64      `json:"id"`
	TaskID      string     `json:"task_id"`
	Attempt     int        `json:"attempt"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Listens     int        `json:"listens"`
	Outcome     string     `json:"outcome"`
	Error       string     `json:"error,omitempty"`
	PossibleGap bool       `json:"possible_gap,omitempty"`
}

// newUser is a validated registration, tokens still in plaintext.
type newUser struct {
	ID, DisplayName, Provider, ExternalID string
	Tokens                                provider.Tokens
	Interval                              time.Duration
	NextRunAt                             time.Time
}

func binding(user, kind string) string { return user + "/" + kind }

// insertUser creates the user, the account (tokens sealed) and the
// schedule in one transaction.
func (s *Store) insertUser(ctx context.Context, u newUser) error {
	var access, refresh []byte
	var expiry *time.Time
	if u.Tokens.Access != "" {
		access = s.cipher.Seal(u.Tokens.Access, binding(u.ID, "access"))
	}
	if u.Tokens.Refresh != "" {
		refresh = s.cipher.Seal(u.Tokens.Refresh, binding(u.ID, "refresh"))
	}
	if !u.Tokens.Expiry.IsZero() {
		expiry = &u.Tokens.Expiry
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, $2)`, u.ID, u.DisplayName); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" {
				return ErrExists
			}
			return fmt.Errorf("insert user: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO provider_accounts (user_id, provider, external_id, access_token, refresh_token, token_expiry)
			VALUES ($1, $2, $3, $4, $5, $6)`, u.ID, u.Provider, u.ExternalID, access, refresh, expiry); err != nil {
			return fmt.Errorf("insert provider account: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schedules (user_id, interval_seconds, next_run_at) VALUES ($1, $2, $3)`,
			u.ID, int(u.Interval/time.Second), u.NextRunAt); err != nil {
			return fmt.Errorf("insert schedule: %w", err)
		}
		return nil
	})
}

const scheduleColumns = `s.user_id, s.active, s.interval_seconds, s.next_run_at, s.cursor, s.last_run_at, s.last_status,
	s.last_error, s.archived_task_id, s.running_task_id, s.running_since, s.pages_done, s.pages_total,
	s.listens_total, s.possible_gaps, s.last_gap_at, a.provider, a.external_id, u.display_name, u.created_at,
	a.access_token IS NOT NULL OR a.refresh_token IS NOT NULL`

const scheduleFrom = ` FROM schedules s JOIN provider_accounts a ON a.user_id = s.user_id JOIN users u ON u.id = s.user_id`

func scanSchedule(row pgx.Row) (Schedule, error) {
	var sc Schedule
	var secs int
	err := row.Scan(&sc.UserID, &sc.Active, &secs, &sc.NextRunAt, &sc.Cursor, &sc.LastRunAt, &sc.LastStatus,
		&sc.LastError, &sc.ArchivedTask, &sc.RunningTask, &sc.RunningSince, &sc.PagesDone, &sc.PagesTotal,
		&sc.ListensTotal, &sc.PossibleGaps, &sc.LastGapAt, &sc.Provider, &sc.ExternalID, &sc.DisplayName,
		&sc.UserCreatedAt, &sc.HasTokens)
	sc.Interval = Duration(time.Duration(secs) * time.Second)
	sc.NextRunAt = sc.NextRunAt.UTC()
	return sc, err
}

// schedule reads one user's schedule.
func (s *Store) schedule(ctx context.Context, user string) (Schedule, error) {
	sc, err := scanSchedule(s.pool.QueryRow(ctx, `SELECT `+scheduleColumns+scheduleFrom+` WHERE s.user_id = $1`, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return sc, ErrNotFound
	}
	return sc, err
}

// schedules lists schedules with user ids after `after` starting with
// prefix, in id order.
func (s *Store) schedules(ctx context.Context, prefix, after string, limit int) ([]Schedule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+scheduleColumns+scheduleFrom+`
		WHERE s.user_id > $1 AND starts_with(s.user_id, $2) ORDER BY s.user_id LIMIT $3`, after, prefix, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Schedule
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// runs lists a user's latest crawl runs, newest first.
func (s *Store) runs(ctx context.Context, user string, limit int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, task_id, attempt, started_at, finished_at, listens, outcome, error, possible_gap
		FROM crawl_runs WHERE user_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2`, user, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) {
		var x Run
		err := r.Scan(&x.ID, &x.TaskID, &x.Attempt, &x.StartedAt, &x.FinishedAt, &x.Listens, &x.Outcome, &x.Error, &x.PossibleGap)
		return x, err
	})
}

// deleteUser removes the user and, by cascade, everything of theirs.
func (s *Store) deleteUser(ctx context.Context, user string) (Schedule, error) {
	sc, err := s.schedule(ctx, user)
	if err != nil {
		return sc, err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, user)
	if err != nil {
		return sc, err
	}
	if tag.RowsAffected() == 0 {
		return sc, ErrNotFound
	}
	return sc, nil
}

// moveNextRun sets next_run_at to at unless a crawl holds a valid lease;
// it returns the slot it replaced.
func (s *Store) moveNextRun(ctx context.Context, user string, at time.Time, leaseTTL time.Duration) (old time.Time, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var running string
		var since *time.Time
		err := tx.QueryRow(ctx, `SELECT next_run_at, running_task_id, running_since FROM schedules WHERE user_id = $1 FOR UPDATE`, user).
			Scan(&old, &running, &since)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if running != "" && since != nil && time.Since(*since) < leaseTTL {
			return ErrBusy
		}
		_, err = tx.Exec(ctx, `UPDATE schedules SET next_run_at = $2, active = true WHERE user_id = $1`, user, at)
		return err
	})
	return old.UTC(), err
}

// claim is a crawl's lease on its user: granted when the task's slot is the
// user's next run and no other crawl holds a valid lease. ok is false when
// the task is stale (the user is gone, inactive, or was rescheduled).
type claim struct {
	Schedule
	Tokens provider.Tokens
	RunID  int64
}

func (s *Store) claim(ctx context.Context, user string, slot time.Time, taskID string, attempt int, leaseTTL time.Duration) (c claim, ok bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := relaxed(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE schedules SET running_task_id = $3, running_since = now(), last_status = 'running'
			WHERE user_id = $1 AND active AND next_run_at = $2
			  AND (running_task_id = '' OR running_task_id = $3 OR running_since < now() - make_interval(secs => $4))`,
			user, slot, taskID, leaseTTL.Seconds())
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		c.Schedule, err = scanSchedule(tx.QueryRow(ctx, `SELECT `+scheduleColumns+scheduleFrom+` WHERE s.user_id = $1`, user))
		if err != nil {
			return err
		}
		var access, refresh []byte
		var expiry *time.Time
		if err := tx.QueryRow(ctx, `SELECT access_token, refresh_token, token_expiry FROM provider_accounts WHERE user_id = $1`, user).
			Scan(&access, &refresh, &expiry); err != nil {
			return err
		}
		if access != nil {
			if c.Tokens.Access, err = s.cipher.Open(access, binding(user, "access")); err != nil {
				return fmt.Errorf("access token of %s: %w", user, err)
			}
		}
		if refresh != nil {
			if c.Tokens.Refresh, err = s.cipher.Open(refresh, binding(user, "refresh")); err != nil {
				return fmt.Errorf("refresh token of %s: %w", user, err)
			}
		}
		if expiry != nil {
			c.Tokens.Expiry = *expiry
		}
		if err := tx.QueryRow(ctx, `INSERT INTO crawl_runs (user_id, task_id, attempt) VALUES ($1, $2, $3) RETURNING id`,
			user, taskID, attempt).Scan(&c.RunID); err != nil {
			return fmt.Errorf("insert crawl run: %w", err)
		}
		ok = true
		return nil
	})
	return c, ok, err
}

// relaxed turns off the wait for the WAL flush at commit for a crawl's own
// bookkeeping (claim, cursor, outcome). A PostgreSQL crash may lose the
// last few hundred milliseconds of these commits: the cursor then lags
// what Kafka has (the next crawl publishes some listens again, which the
// pipeline dedups) and never leads it, because it is only written after
// Kafka's acknowledgement. Registrations and tokens keep durable commits.
func relaxed(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`)
	return err
}

// errLeaseLost: the user was deleted (or the lease taken over) mid-crawl.
var errLeaseLost = errors.New("crawl lease lost (user deleted or rescheduled)")

// advance stores the cursor after a page Kafka acknowledged.
func (s *Store) advance(ctx context.Context, user, taskID string, runID int64, cursor int64, listens int, done, total int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := relaxed(ctx, tx); err != nil {
			return err
		}
		return s.advanceTx(ctx, tx, user, taskID, runID, cursor, listens, done, total)
	})
}

func (s *Store) advanceTx(ctx context.Context, tx pgx.Tx, user, taskID string, runID int64, cursor int64, listens int, done, total int) error {
	tag, err := tx.Exec(ctx, `UPDATE schedules SET cursor = GREATEST(cursor, $3), listens_total = listens_total + $4,
		pages_done = $5, pages_total = $6, running_since = now()
		WHERE user_id = $1 AND running_task_id = $2`, user, taskID, cursor, listens, done, total)
	if err != nil {
		return fmt.Errorf("advance cursor: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errLeaseLost
	}
	_, err = tx.Exec(ctx, `UPDATE crawl_runs SET listens = listens + $2 WHERE id = $1`, runID, listens)
	return err
}

// saveTokens seals and stores refreshed tokens.
func (s *Store) saveTokens(ctx context.Context, user string, t provider.Tokens) error {
	var expiry *time.Time
	if !t.Expiry.IsZero() {
		expiry = &t.Expiry
	}
	_, err := s.pool.Exec(ctx, `UPDATE provider_accounts SET access_token = $2, refresh_token = $3, token_expiry = $4, updated_at = now()
		WHERE user_id = $1`, user, s.cipher.Seal(t.Access, binding(user, "access")), s.cipher.Seal(t.Refresh, binding(user, "refresh")), expiry)
	return err
}

// outcome is how a crawl attempt ended.
type outcome struct {
	Status      string // ok, retrying, failed
	Err         string
	PossibleGap bool
	// Next is the next run's slot when the schedule moves on (ok, failed).
	Next time.Time
	// Archived is the id of the task Asynq archives (failed).
	Archived string
}

// finish ends the attempt: releases the lease, records the outcome and,
// unless the task will be retried, moves next_run_at to o.Next. It reports
// false when the lease was lost.
func (s *Store) finish(ctx context.Context, user, taskID string, runID int64, o outcome) (bool, error) {
	var ok bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := relaxed(ctx, tx); err != nil {
			return err
		}
		gap := 0
		if o.PossibleGap {
			gap = 1
		}
		q := `UPDATE schedules SET running_task_id = '', running_since = NULL, last_status = $3, last_error = $4,
				last_run_at = now(), possible_gaps = possible_gaps + $5,
				last_gap_at = CASE WHEN $5 > 0 THEN now() ELSE last_gap_at END`
		args := []any{user, taskID, o.Status, o.Err, gap}
		if !o.Next.IsZero() {
			q += `, next_run_at = $6, archived_task_id = CASE WHEN $7 <> '' THEN $7 ELSE archived_task_id END`
			args = append(args, o.Next, o.Archived)
		}
		tag, err := tx.Exec(ctx, q+` WHERE user_id = $1 AND running_task_id = $2`, args...)
		if err != nil {
			return fmt.Errorf("finish crawl: %w", err)
		}
		ok = tag.RowsAffected() == 1
		run := "ok"
		if o.Status != "ok" {
			run = "failed"
		}
		if !ok {
			run = "skipped"
		}
		_, err = tx.Exec(ctx, `UPDATE crawl_runs SET finished_at = now(), outcome = $2, error = $3, possible_gap = $4 WHERE id = $1`,
			runID, run, o.Err, o.PossibleGap)
		return err
	})
	return ok, err
}

// archived records that Asynq archived the task of slot without the worker
// saying so (a crash on the last retry), and moves the schedule to next.
func (s *Store) archived(ctx context.Context, user string, slot time.Time, taskID, lastErr string, next time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE schedules SET last_status = 'failed', last_error = $4, archived_task_id = $3,
		next_run_at = $5, running_task_id = '', running_since = NULL
		WHERE user_id = $1 AND next_run_at = $2`, user, slot, taskID, lastErr, next)
	return tag.RowsAffected() == 1, err
}

// pruneRuns keeps a user's last keep runs.
func (s *Store) pruneRuns(ctx context.Context, user string, keep int) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM crawl_runs WHERE user_id = $1 AND id NOT IN
		(SELECT id FROM crawl_runs WHERE user_id = $1 ORDER BY id DESC LIMIT $2)`, user, keep)
	return err
}

// activeSchedules calls fn for every active schedule, in batches.
func (s *Store) activeSchedules(ctx context.Context, fn func(Schedule) error) error {
	after := ""
	for {
		rows, err := s.pool.Query(ctx, `SELECT `+scheduleColumns+scheduleFrom+`
			WHERE s.active AND s.user_id > $1 ORDER BY s.user_id LIMIT 1000`, after)
		if err != nil {
			return err
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schedule, error) { return scanSchedule(r) })
		if err != nil {
			return err
		}
		for _, sc := range batch {
			if err := fn(sc); err != nil {
				return err
			}
		}
		if len(batch) < 1000 {
			return nil
		}
		after = batch[len(batch)-1].UserID
	}
}
