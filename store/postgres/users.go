package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk/crawler"
)

// users: the control plane's root table; provider_accounts, schedules,
// crawl_runs and api_tokens reference it and go with it (ON DELETE
// CASCADE).

// CreateUser creates the user, their provider account (tokens sealed) and
// their schedule in one transaction; crawler.ErrExists if the id has a
// provider account already. A users row without one is a user who so far
// only had API tokens (CreateToken): the registration adds the account and
// schedule to it, and its display name if the row had none.
func (s *Store) CreateUser(ctx context.Context, u crawler.NewUser) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, $2)
				ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name WHERE users.display_name = ''`,
			u.ID, u.DisplayName); err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		if err := s.insertAccount(ctx, tx, u.ID, u.Provider, u.ExternalID, u.Tokens); err != nil {
			if uniqueViolation(err) {
				return crawler.ErrExists
			}
			return err
		}
		return insertSchedule(ctx, tx, u)
	})
}

// DeleteUser removes the user and, by cascade, everything of theirs (API
// tokens included), and returns the schedule they had (a zero one, but
// for UserID, for a user with API tokens only); crawler.ErrNotFound if
// there is no such user.
func (s *Store) DeleteUser(ctx context.Context, user string) (crawler.Schedule, error) {
	sc, err := s.Schedule(ctx, user)
	if errors.Is(err, crawler.ErrNotFound) {
		sc, err = crawler.Schedule{UserID: user}, nil
	}
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
