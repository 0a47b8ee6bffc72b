package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk/crawler"
)

// schedules: one row per user; next_run_at names the Asynq task of the
// pending run, so the scheduler can always rebuild Redis from this table.
// The crawl lease (running_task_id, running_since) is taken and released in
// runs.go.

const scheduleColumns = `s.user_id, s.active, s.interval_seconds, s.next_run_at, s.cursor, s.last_run_at, s.last_status,
	s.last_error, s.archived_task_id, s.running_task_id, s.running_since, s.pages_done, s.pages_total,
	s.listens_total, s.possible_gaps, s.last_gap_at, a.provider, a.external_id, u.display_name, u.created_at,
	a.access_token IS NOT NULL OR a.refresh_token IS NOT NULL`

const scheduleFrom = ` FROM schedules s JOIN provider_accounts a ON a.user_id = s.user_id JOIN users u ON u.id = s.user_id`

// selectSchedule reads one user's schedule.
const selectSchedule = `SELECT ` + scheduleColumns + scheduleFrom + ` WHERE s.user_id = $1`

func scanSchedule(row pgx.Row) (crawler.Schedule, error) {
	var sc crawler.Schedule
	var secs int
	err := row.Scan(&sc.UserID, &sc.Active, &secs, &sc.NextRunAt, &sc.Cursor, &sc.LastRunAt, &sc.LastStatus,
		&sc.LastError, &sc.ArchivedTask, &sc.RunningTask, &sc.RunningSince, &sc.PagesDone, &sc.PagesTotal,
		&sc.ListensTotal, &sc.PossibleGaps, &sc.LastGapAt, &sc.Provider, &sc.ExternalID, &sc.DisplayName,
		&sc.UserCreatedAt, &sc.HasTokens)
	sc.Interval = crawler.Duration(time.Duration(secs) * time.Second)
	sc.NextRunAt = sc.NextRunAt.UTC()
	return sc, err
}

func collectSchedules(rows pgx.Rows) ([]crawler.Schedule, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (crawler.Schedule, error) { return scanSchedule(r) })
}

// insertSchedule creates the schedule of a new user.
func insertSchedule(ctx context.Context, tx pgx.Tx, u crawler.NewUser) error {
	if _, err := tx.Exec(ctx, `INSERT INTO schedules (user_id, interval_seconds, next_run_at) VALUES ($1, $2, $3)`,
		u.ID, int(u.Interval/time.Second), u.NextRunAt); err != nil {
		return fmt.Errorf("insert schedule: %w", err)
	}
	return nil
}

// Schedule reads one user's schedule; crawler.ErrNotFound if there is no
// such user.
func (s *Store) Schedule(ctx context.Context, user string) (crawler.Schedule, error) {
	sc, err := scanSchedule(s.pool.QueryRow(ctx, selectSchedule, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return sc, crawler.ErrNotFound
	}
	return sc, err
}

// Schedules lists the schedules of users whose ids start with prefix and
// sort after `after`, in id order, at most limit.
func (s *Store) Schedules(ctx context.Context, prefix, after string, limit int) ([]crawler.Schedule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+scheduleColumns+scheduleFrom+`
		WHERE s.user_id > $1 AND starts_with(s.user_id, $2) ORDER BY s.user_id LIMIT $3`, after, prefix, limit)
	if err != nil {
		return nil, err
	}
	return collectSchedules(rows)
}

// activeBatch is how many schedules ActiveSchedules reads at a time.
const activeBatch = 1000

// ActiveSchedules calls fn for every active schedule, in batches, in user
// id order, and stops at fn's first error.
func (s *Store) ActiveSchedules(ctx context.Context, fn func(crawler.Schedule) error) error {
	after := ""
	for {
		rows, err := s.pool.Query(ctx, `SELECT `+scheduleColumns+scheduleFrom+`
			WHERE s.active AND s.user_id > $1 ORDER BY s.user_id LIMIT $2`, after, activeBatch)
		if err != nil {
			return err
		}
		batch, err := collectSchedules(rows)
		if err != nil {
			return err
		}
		for _, sc := range batch {
			if err := fn(sc); err != nil {
				return err
			}
		}
		if len(batch) < activeBatch {
			return nil
		}
		after = batch[len(batch)-1].UserID
	}
}

// MoveNextRun sets next_run_at to at (and the schedule active) unless a
// crawl holds a lease younger than leaseTTL (crawler.ErrBusy); it returns
// the slot it replaced, or crawler.ErrNotFound.
func (s *Store) MoveNextRun(ctx context.Context, user string, at time.Time, leaseTTL time.Duration) (old time.Time, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var running string
		var since *time.Time
		err := tx.QueryRow(ctx, `SELECT next_run_at, running_task_id, running_since FROM schedules WHERE user_id = $1 FOR UPDATE`, user).
			Scan(&old, &running, &since)
		if errors.Is(err, pgx.ErrNoRows) {
			return crawler.ErrNotFound
		}
		if err != nil {
			return err
		}
		if running != "" && since != nil && time.Since(*since) < leaseTTL {
			return crawler.ErrBusy
		}
		_, err = tx.Exec(ctx, `UPDATE schedules SET next_run_at = $2, active = true WHERE user_id = $1`, user, at)
		return err
	})
	return old.UTC(), err
}

// MarkArchived records that Asynq archived the task of slot without the
// worker saying so (a crash on the last retry), and moves the schedule to
// next. moved is false when slot is no longer the user's next run.
func (s *Store) MarkArchived(ctx context.Context, user string, slot time.Time, taskID, lastErr string, next time.Time) (moved bool, err error) {
	tag, err := s.pool.Exec(ctx, `UPDATE schedules SET last_status = 'failed', last_error = $4, archived_task_id = $3,
		next_run_at = $5, running_task_id = '', running_since = NULL
		WHERE user_id = $1 AND next_run_at = $2`, user, slot, taskID, lastErr, next)
	return tag.RowsAffected() == 1, err
}
