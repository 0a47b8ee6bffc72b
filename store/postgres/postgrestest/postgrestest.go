// Package postgrestest gives integration tests a migrated PostgreSQL
// database of their own.
//
// Flow: integration tests → postgrestest → store/postgres → PostgreSQL.
package postgrestest

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/store/postgres"
)

// Migrated creates cfg's database for the test (dropped when it ends, see
// testenv.Database), connects and applies the migrations; the pool closes
// when the test ends.
func Migrated(t testing.TB, cfg config.Config) *pgxpool.Pool {
	t.Helper()
	testenv.Database(t, cfg)
	ctx := testenv.Context(t, time.Minute)
	pool, err := postgres.Connect(ctx, cfg.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	return pool
}
