//go:build integration

package cassandra_test

import (
	"io/fs"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/schemas"
	"github.com/topk-charts/topk/store/cassandra"
)

// Migrating twice is harmless, and the created schema takes writes and
// reads through gocql.
func TestIntegrationMigrateWriteRead(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	ctx := testenv.Context(t, time.Minute)
	if err := cassandra.Migrate(ctx, wiring.Cassandra(cfg.Cassandra), testenv.Logger(t)); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	s, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var applied int
	if err := s.Query(`SELECT count(*) FROM schema_migrations`).WithContext(ctx).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(schemas.Cassandra, "cassandra/*.cql")
	if want := len(files) - 1; applied != want { // all but the keyspace file, each once
		t.Fatalf("ledger holds %d migrations, want %d (each applied once)", applied, want)
	}
	// 005 again (a run that failed between its statements is re-run whole):
	// ADD IF NOT EXISTS of columns already there is no error
	for _, table := range []string{"day_items", "month_items", "year_items"} {
		if err := s.Query(`ALTER TABLE ` + table + ` ADD IF NOT EXISTS (first bigint, spellings blob)`).WithContext(ctx).Exec(); err != nil {
			t.Fatalf("005 on %s again: %v", table, err)
		}
	}

	day := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	played := day.Add(9*time.Hour + 15*time.Minute)
	id := []byte{1, 2, 3, 4}
	for range 2 { // the same listen twice is one row
		if err := s.Query(`INSERT INTO raw_listens (user_id, day, played_at, identity, artist_name, track_name, album_name)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, "alice", day, played, id, "Radiohead", "Reckoner", "In Rainbows").WithContext(ctx).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	var artist, track string
	var at time.Time
	if err := s.Query(`SELECT count(*) FROM raw_listens WHERE user_id = ? AND day = ?`, "alice", day).WithContext(ctx).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows for one listen written twice, want 1", n)
	}
	if err := s.Query(`SELECT played_at, artist_name, track_name FROM raw_listens WHERE user_id = ? AND day = ?`, "alice", day).
		WithContext(ctx).Scan(&at, &artist, &track); err != nil {
		t.Fatal(err)
	}
	if !at.Equal(played) || artist != "Radiohead" || track != "Reckoner" {
		t.Fatalf("read %v %q %q", at, artist, track)
	}

	// Day values with USING TIMESTAMP = total: an older state written later loses.
	write := func(plays int64) {
		b := s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		b.Query(`INSERT INTO day_items (user_id, day, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
			"alice", day, "track", int64(42), "Reckoner", "Radiohead", plays, plays)
		b.Query(`INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?) USING TIMESTAMP ?`, "alice", day, plays, plays)
		if err := s.ExecuteBatch(b); err != nil {
			t.Fatal(err)
		}
	}
	write(3)
	write(2) // a replayed older state
	var plays int64
	if err := s.Query(`SELECT plays FROM day_items WHERE user_id = ? AND day = ? AND entity = ? AND item = ?`,
		"alice", day, "track", int64(42)).WithContext(ctx).Scan(&plays); err != nil {
		t.Fatal(err)
	}
	if plays != 3 {
		t.Fatalf("plays = %d after writing 3 then the older 2, want 3", plays)
	}
}
