package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk/crawler"
)

// crawl_runs: one row per attempt of a crawl task; and the crawl's lease on
// its schedule (running_task_id, running_since), which every write of a
// crawl checks. A crawl's bookkeeping commits relaxed (see relaxed).

// Claim takes user's lease for taskID when slot is the user's next run and
// no other crawl holds a lease younger than leaseTTL, opens the user's
// tokens and records the attempt. ok is false when the task is stale (the
// user is gone, inactive, or was rescheduled).
func (s *Store) Claim(ctx context.Context, user string, slot time.Time, taskID string, attempt int, leaseTTL time.Duration) (c crawler.Claim, ok bool, err error) {
	err = s.relaxedTx(ctx, func(tx pgx.Tx) error {
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
		if c.Schedule, err = scanSchedule(tx.QueryRow(ctx, selectSchedule, user)); err != nil {
			return err
		}
		if c.Tokens, err = s.tokens(ctx, tx, user); err != nil {
			return err
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

// Advance stores the cursor after a page Kafka acknowledged, and counts the
// page's listens in the run. held is false when the lease was lost.
func (s *Store) Advance(ctx context.Context, user, taskID string, runID int64, p crawler.Progress) (held bool, err error) {
	err = s.relaxedTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE schedules SET cursor = GREATEST(cursor, $3), listens_total = listens_total + $4,
			pages_done = $5, pages_total = $6, running_since = now()
			WHERE user_id = $1 AND running_task_id = $2`, user, taskID, p.Cursor, p.Listens, p.Done, p.Total)
		if err != nil {
			return fmt.Errorf("advance cursor: %w", err)
		}
		if held = tag.RowsAffected() == 1; !held {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE crawl_runs SET listens = listens + $2 WHERE id = $1`, runID, p.Listens)
		return err
	})
	return held, err
}

// Finish ends the attempt: releases the lease, records the outcome and,
// unless the task will be retried (o.Next zero), moves next_run_at to
// o.Next. held is false when the lease was lost; the run is recorded as
// skipped then.
func (s *Store) Finish(ctx context.Context, user, taskID string, runID int64, o crawler.Outcome) (held bool, err error) {
	err = s.relaxedTx(ctx, func(tx pgx.Tx) error {
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
		held = tag.RowsAffected() == 1
		run := "ok"
		if o.Status != "ok" {
			run = "failed"
		}
		if !held {
			run = "skipped"
		}
		_, err = tx.Exec(ctx, `UPDATE crawl_runs SET finished_at = now(), outcome = $2, error = $3, possible_gap = $4 WHERE id = $1`,
			runID, run, o.Err, o.PossibleGap)
		return err
	})
	return held, err
}

// Runs lists a user's latest crawl runs, newest first.
func (s *Store) Runs(ctx context.Context, user string, limit int) ([]crawler.Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, task_id, attempt, started_at, finished_at, listens, outcome, error, possible_gap
		FROM crawl_runs WHERE user_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2`, user, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (crawler.Run, error) {
		var x crawler.Run
		err := r.Scan(&x.ID, &x.TaskID, &x.Attempt, &x.StartedAt, &x.FinishedAt, &x.Listens, &x.Outcome, &x.Error, &x.PossibleGap)
		return x, err
	})
}

// PruneRuns keeps a user's last keep runs.
func (s *Store) PruneRuns(ctx context.Context, user string, keep int) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM crawl_runs WHERE user_id = $1 AND id NOT IN
		(SELECT id FROM crawl_runs WHERE user_id = $1 ORDER BY id DESC LIMIT $2)`, user, keep)
	return err
}
