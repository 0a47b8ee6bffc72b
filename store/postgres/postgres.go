package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/topk-charts/topk/schemas"
)

// Config is what the client needs: server, role, password, database and
// sslmode. cmd/ fills it from config.Postgres (internal/wiring).
type Config struct {
	Host     string
	Port     int
	User     string
	Password string
	Database string
	SSLMode  string
}

// URL is the connection string pgx takes.
func (c Config) URL() string {
	return c.URLFor(c.Database)
}

// URLFor is the connection string to another database on the same server.
func (c Config) URLFor(database string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=%s",
		urlEscape(c.User), urlEscape(c.Password), net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), database, c.SSLMode)
}

func urlEscape(s string) string {
	return strings.NewReplacer("%", "%25", "@", "%40", ":", "%3A", "/", "%2F", "?", "%3F", "#", "%23").Replace(s)
}

// Open opens a pool on the configured database without connecting: its
// connections are made on first use, so a service can start while
// PostgreSQL is down (and wait for it, see Connect for one that must
// answer now).
func Open(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, c.URL())
	if err != nil {
		return nil, fmt.Errorf("postgres %s:%d/%s: %w", c.Host, c.Port, c.Database, err)
	}
	return pool, nil
}

// Connect opens a pool on the configured database and checks it answers.
func Connect(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	pool, err := Open(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s:%d/%s: %w", c.Host, c.Port, c.Database, err)
	}
	return pool, nil
}

// Ping runs a query and returns the server version.
func Ping(ctx context.Context, c Config) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return "", fmt.Errorf("postgres %s:%d/%s: %w", c.Host, c.Port, c.Database, err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "", fmt.Errorf("postgres %s:%d: %w", c.Host, c.Port, err)
	}
	return v, nil
}

// CreateDatabase creates database name owned by the configured role if it
// does not exist (the role needs CREATEDB, which the local stack grants).
// The name must be a validated identifier: it cannot be a bind parameter.
func CreateDatabase(ctx context.Context, c Config, name string) error {
	conn, err := pgx.Connect(ctx, c.URLFor("postgres"))
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	return err
}

// DropDatabase drops database name (tests drop their own).
func DropDatabase(ctx context.Context, c Config, name string) error {
	conn, err := pgx.Connect(ctx, c.URLFor("postgres"))
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	return err
}

// migrationLock is the advisory lock id that serialises concurrent migrators.
const migrationLock = 7_001_100

// Migrate applies schemas/postgres/*.sql in name order, each file once and
// in its own transaction, recorded with its checksum in schema_migrations.
// Concurrent callers wait on an advisory lock. A recorded file whose content
// changed is an error: write a new file instead.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock) //nolint:errcheck // released with the session anyway

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	files, err := fs.Glob(schemas.Postgres, "postgres/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		body, err := fs.ReadFile(schemas.Postgres, f)
		if err != nil {
			return err
		}
		h := sha256.Sum256(body)
		sum := hex.EncodeToString(h[:8])
		var applied string
		err = conn.QueryRow(ctx, `SELECT checksum FROM schema_migrations WHERE name = $1`, f).Scan(&applied)
		switch {
		case err == nil:
			if applied != sum {
				return fmt.Errorf("%s was applied with checksum %s and has changed since (%s): add a new migration file instead", f, applied, sum)
			}
			continue
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)`, f, sum)
			return err
		})
		if err != nil {
			return err
		}
		log.Info("postgres migration applied", "file", f)
	}
	return nil
}
