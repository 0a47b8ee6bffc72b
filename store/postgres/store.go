package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/crawler/tokens"
)

// Store is the control plane's tables: users, provider accounts with their
// sealed tokens, schedules, crawl runs and users' API tokens
// (schemas/postgres). It holds every SQL statement topk runs on them, each
// with bind parameters, and implements the crawler's ports and the api's
// token store:
//
//	crawler.UserStore      users.go, schedules.go, runs.go   (admin api, topk enqueue)
//	crawler.ScheduleStore  schedules.go                      (crawl now, the reconciler)
//	crawler.RunStore       runs.go, accounts.go              (the crawl worker)
//	api.Tokens             tokens.go                         (admin api, topk token)
//
// Provider tokens are sealed (crawler/tokens) before they are written and
// opened after they are read, in accounts.go: the tables never hold them
// in plaintext.
type Store struct {
	pool   *pgxpool.Pool
	cipher *tokens.Cipher
}

// The ports Store implements.
var (
	_ crawler.ControlStore = (*Store)(nil)
	_ crawler.RunStore     = (*Store)(nil)
)

// NewStore returns the store on pool; cipher seals and opens the provider
// tokens (nil: a store for everything but provider accounts, whose
// methods then must not be called; `topk token` needs no token key). It
// does no I/O.
func NewStore(pool *pgxpool.Pool, cipher *tokens.Cipher) *Store {
	return &Store{pool: pool, cipher: cipher}
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

// relaxedTx runs fn in a transaction with relaxed commits.
func (s *Store) relaxedTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := relaxed(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// uniqueViolation reports PostgreSQL's unique_violation (23505).
func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
