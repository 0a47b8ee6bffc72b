//go:build integration

package postgres_test

import (
	"testing"
	"time"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/postgres/postgrestest"
)

func TestIntegrationMigrateRoundTrip(t *testing.T) {
	pool := postgrestest.Migrated(t, wiring.Postgres(testenv.Config(t).Postgres))
	ctx := testenv.Context(t, time.Minute)
	for range 2 { // re-running is harmless
		if err := postgres.Migrate(ctx, pool, testenv.Logger(t)); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	var applied int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied == 0 {
		t.Fatal("no migration recorded")
	}
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, display_name) VALUES ($1, $2)`, "alice", "Alice"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := pool.QueryRow(ctx, `SELECT display_name FROM users WHERE id = $1`, "alice").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "Alice" {
		t.Fatalf("display_name %q, want Alice", name)
	}
	// The schema enforces the event contract's user id rule.
	if _, err := pool.Exec(ctx, `INSERT INTO users (id) VALUES ($1)`, "a|b"); err == nil {
		t.Fatal("a user id with '|' was accepted")
	}
}
