//go:build integration

package postgres_test

import (
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/providertest"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/schemas"
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

// 0003_redact_errors.sql scrubs the errors stored before the crawler
// redacted them: each leaking text in schedules.last_error and
// crawl_runs.error becomes exactly what provider.RedactText makes of it
// (the same rules in SQL and Go); running it again changes nothing.
func TestIntegrationRedactMigration(t *testing.T) {
	pool := postgrestest.Migrated(t, wiring.Postgres(testenv.Config(t).Postgres))
	ctx := testenv.Context(t, time.Minute)
	body, err := fs.ReadFile(schemas.Postgres, "postgres/0003_redact_errors.sql")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range providertest.Leaks {
		user := fmt.Sprintf("u%d", i)
		if _, err := pool.Exec(ctx, `INSERT INTO users (id) VALUES ($1)`, user); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`INSERT INTO schedules (user_id, interval_seconds, next_run_at, last_status, last_error) VALUES ($1, 60, now(), 'failed', $2)`,
			`INSERT INTO crawl_runs (user_id, task_id, outcome, error) VALUES ($1, 'crawl:' || $1 || ':1', 'failed', $2)`,
		} {
			if _, err := pool.Exec(ctx, q, user, l.In); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 2 {
		if _, err := pool.Exec(ctx, string(body)); err != nil {
			t.Fatal(err)
		}
		for i, l := range providertest.Leaks {
			var last, runErr string
			if err := pool.QueryRow(ctx, `SELECT s.last_error, r.error FROM schedules s JOIN crawl_runs r USING (user_id) WHERE user_id = $1`,
				fmt.Sprintf("u%d", i)).Scan(&last, &runErr); err != nil {
				t.Fatal(err)
			}
			if goText := provider.RedactText(l.In); last != goText || runErr != goText || goText != l.Want {
				t.Errorf("%s:\n  stored %q\n  runs   %q\n  Go     %q\n  want   %q", l.Name, last, runErr, goText, l.Want)
			}
		}
	}
}
