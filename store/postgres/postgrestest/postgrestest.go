package postgrestest

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/store/postgres"
)

// Migrated creates c's database for the test (dropped when it ends,
// testenv.PostgresDatabase), connects and applies the migrations; the pool
// closes when the test ends. Tests pass wiring.Postgres(cfg.Postgres) of a
// testenv.Config, whose database name is the test's own.
func Migrated(t testing.TB, c postgres.Config) *pgxpool.Pool {
	t.Helper()
	testenv.PostgresDatabase(t, c)
	ctx := testenv.Context(t, time.Minute)
	pool, err := postgres.Connect(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	return pool
}
