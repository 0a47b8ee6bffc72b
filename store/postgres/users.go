package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk/crawler"
)

// users: the control plane's root table; provider_accounts, schedules and
// crawl_runs reference it and go with it (ON DELETE CASCADE).

// CreateUser creates the user, their provider account (tokens sealed) and
// their schedule in one transaction; crawler.ErrExists if the id is taken.
func (s *Store) CreateUser(ctx context.Context, u crawler.NewUser) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, $2)`, u.ID, u.DisplayName); err != nil {
			if uniqueViolation(err) {
				return crawler.ErrExists
			}
			return fmt.Errorf("insert user: %w", err)
		}
		if err := s.insertAccount(ctx, tx, u.ID, u.Provider, u.ExternalID, u.Tokens); err != nil {
			return err
		}
		return insertSchedule(ctx, tx, u)
	})
}

// DeleteUser removes the user and, by cascade, everything of theirs, and
// returns the schedule they had; crawler.ErrNotFound if there is no such
// user.
func (s *Store) DeleteUser(ctx context.Context, user string) (crawler.Schedule, error) {
	sc, err := s.Schedule(ctx, user)
	if err != nil {
		return sc, err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, user)
	if err != nil {
		return sc, err
	}
	if tag.RowsAffected() == 0 {
		return sc, crawler.ErrNotFound
	}
	return sc, nil
}
