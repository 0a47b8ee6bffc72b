package cassandra

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/schemas"
)

// gocqlLog receives gocql's own log lines once UseLogger was called.
var gocqlLog atomic.Pointer[slog.Logger]

// UseLogger sends gocql's own log lines (while Cassandra is down, a few
// control-connection retries a second) to log at debug level instead of
// the standard logger: the services say once that Cassandra is down
// (internal/outage). It applies to the clusters NewCluster makes after it.
func UseLogger(log *slog.Logger) { gocqlLog.Store(log) }

type gocqlLogger struct{ log *slog.Logger }

func (l gocqlLogger) Print(v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprint(v...)), "component", "gocql")
}
func (l gocqlLogger) Printf(format string, v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "gocql")
}
func (l gocqlLogger) Println(v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintln(v...)), "component", "gocql")
}

// Config is what the client needs: contact points and CQL port, the
// keyspace and the replication factor the schema creates it with, and the
// credentials (empty Username: no authentication). The local stack's
// server settings (heap, storage and JMX ports) are not the client's: they
// stay in package config. cmd/ fills it from config.Cassandra
// (internal/wiring).
type Config struct {
	Hosts             []string
	Port              int
	Keyspace          string
	ReplicationFactor int
	Username          string
	Password          string
}

// NewCluster returns the gocql cluster settings of topk, without a keyspace.
func NewCluster(c Config) *gocql.ClusterConfig {
	cl := gocql.NewCluster(c.Hosts...)
	if log := gocqlLog.Load(); log != nil {
		cl.Logger = gocqlLogger{log}
	}
	cl.Port = c.Port
	cl.Consistency = gocql.LocalQuorum
	cl.Timeout = 5 * time.Second
	cl.ConnectTimeout = 5 * time.Second
	cl.ProtoVersion = 4
	cl.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 100 * time.Millisecond, Max: 2 * time.Second}
	if c.Username != "" {
		cl.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: c.Password}
	}
	return cl
}

// Connect opens a session on the configured keyspace. gocql's session
// creation takes no context: Connect returns when ctx ends, and a session
// that opens after that is closed.
func Connect(ctx context.Context, c Config) (*gocql.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cassandra %v keyspace %s: %w", c.Hosts, c.Keyspace, err)
	}
	cl := NewCluster(c)
	cl.Keyspace = c.Keyspace
	type opened struct {
		s   *gocql.Session
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := cl.CreateSession()
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, fmt.Errorf("cassandra %v keyspace %s: %w", c.Hosts, c.Keyspace, o.err)
		}
		return o.s, nil
	case <-ctx.Done():
		go func() {
			if o := <-done; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, fmt.Errorf("cassandra %v keyspace %s: %w", c.Hosts, c.Keyspace, ctx.Err())
	}
}

// Ping runs a real CQL query and returns the server's release version.
func Ping(ctx context.Context, c Config) (string, error) {
	cl := NewCluster(c)
	cl.DisableInitialHostLookup = true
	cl.NumConns = 1
	s, err := cl.CreateSession()
	if err != nil {
		return "", fmt.Errorf("cassandra %v: %w", c.Hosts, err)
	}
	defer s.Close()
	var v string
	if err := s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Scan(&v); err != nil {
		return "", fmt.Errorf("cassandra %v: %w", c.Hosts, err)
	}
	return v, nil
}

// keyspaceFile is applied on every run, before the ledger that lives in it.
const keyspaceFile = "cassandra/000_keyspace.cql"

// Migrate applies schemas/cassandra/*.cql in name order. The keyspace file
// runs every time (IF NOT EXISTS); every other file runs once and is
// recorded with its checksum in <keyspace>.schema_migrations. A recorded
// file whose content changed is an error: write a new file instead.
func Migrate(ctx context.Context, c Config, log *slog.Logger) error {
	cl := NewCluster(c)
	cl.Timeout = 30 * time.Second // schema changes wait for agreement
	s, err := cl.CreateSession()
	if err != nil {
		return fmt.Errorf("cassandra %v: %w", c.Hosts, err)
	}
	defer s.Close()

	files, err := fs.Glob(schemas.Cassandra, "cassandra/*.cql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	exec := func(name string) (string, error) {
		stmts, sum, err := render(name, c)
		if err != nil {
			return "", err
		}
		for _, st := range stmts {
			if err := s.Query(st).WithContext(ctx).Exec(); err != nil {
				return "", fmt.Errorf("%s: %w\n%s", name, err, st)
			}
		}
		return sum, nil
	}
	if _, err := exec(keyspaceFile); err != nil {
		return err
	}
	ledger := c.Keyspace + ".schema_migrations"
	if err := s.Query(`CREATE TABLE IF NOT EXISTS ` + ledger +
		` (name text PRIMARY KEY, checksum text, applied_at timestamp)`).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("create %s: %w", ledger, err)
	}
	for _, f := range files {
		if f == keyspaceFile {
			continue
		}
		var applied string
		err := s.Query(`SELECT checksum FROM `+ledger+` WHERE name = ?`, f).WithContext(ctx).Scan(&applied)
		switch {
		case err == nil:
			_, sum, rerr := render(f, c)
			if rerr != nil {
				return rerr
			}
			if sum != applied {
				return fmt.Errorf("%s was applied with checksum %s and has changed since (%s): add a new migration file instead", f, applied, sum)
			}
			continue
		case err != gocql.ErrNotFound:
			return fmt.Errorf("read %s: %w", ledger, err)
		}
		sum, err := exec(f)
		if err != nil {
			return err
		}
		if err := s.Query(`INSERT INTO `+ledger+` (name, checksum, applied_at) VALUES (?, ?, ?)`,
			f, sum, time.Now().UTC()).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("record %s: %w", f, err)
		}
		log.Info("cassandra migration applied", "file", f, "keyspace", c.Keyspace)
	}
	return s.AwaitSchemaAgreement(ctx)
}

// DropKeyspace removes a keyspace (tests drop their own).
func DropKeyspace(ctx context.Context, c Config, keyspace string) error {
	cl := NewCluster(c)
	cl.Timeout = 30 * time.Second
	s, err := cl.CreateSession()
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Query(`DROP KEYSPACE IF EXISTS ` + keyspace).WithContext(ctx).Exec()
}

// render fills a schema file's template (keyspace, replication factor: both
// validated by package config) and splits it into statements.
func render(name string, c Config) ([]string, string, error) {
	raw, err := fs.ReadFile(schemas.Cassandra, name)
	if err != nil {
		return nil, "", err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(raw))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, c); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	sum := sha256.Sum256(raw)
	return splitStatements(b.String()), hex.EncodeToString(sum[:8]), nil
}

// splitStatements drops `--` comment lines and splits on semicolons that end
// a line. The schema files keep one statement per such semicolon.
func splitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
