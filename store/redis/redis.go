package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Config is what the client needs: address, password (empty: none) and
// database number. cmd/ fills it from config.Redis (internal/wiring).
type Config struct {
	Addr     string
	Password string
	DB       int
}

// Options are the go-redis options of topk; Asynq takes the same address,
// password and database.
func Options(c Config) *goredis.Options {
	return &goredis.Options{
		Addr:         c.Addr,
		Password:     c.Password,
		DB:           c.DB,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	}
}

// New returns a client; it connects lazily.
func New(c Config) *goredis.Client { return goredis.NewClient(Options(c)) }

// Ping sends PING and returns the server version from INFO.
func Ping(ctx context.Context, c Config) (string, error) {
	cl := New(c)
	defer cl.Close()
	info, err := cl.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("redis %s: %w", c.Addr, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "unknown", nil
}

// UseLogger sends go-redis's own log lines (connection pool retries) to log
// at debug level instead of the standard logger. go-redis keeps one logger
// per process.
func UseLogger(log *slog.Logger) { goredis.SetLogger(slogAdapter{log}) }

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
