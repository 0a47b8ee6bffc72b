package crawler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// ServerConfig configures the Asynq server that runs the worker.
type ServerConfig struct {
	// Concurrency is the number of crawls run at once; default 10.
	Concurrency int
	// DelayedTaskCheck is how often scheduled and retry tasks are moved to
	// pending; default 5s (Asynq's). Tests use less.
	DelayedTaskCheck time.Duration
	// TaskCheck is how often an empty queue is polled; default 1s.
	TaskCheck time.Duration
	// ShutdownTimeout lets running crawls finish on shutdown; default 20s.
	// A crawl still running then is re-queued by Asynq and resumes from its
	// cursor.
	ShutdownTimeout time.Duration
}

// RunServer processes crawl tasks of w's queue until ctx ends, then shuts
// down gracefully.
func RunServer(ctx context.Context, redis asynq.RedisConnOpt, sc ServerConfig, w *Worker, log *slog.Logger) error {
	if sc.Concurrency <= 0 {
		sc.Concurrency = 10
	}
	if sc.ShutdownTimeout <= 0 {
		sc.ShutdownTimeout = 20 * time.Second
	}
	srv := asynq.NewServer(redis, asynq.Config{
		Concurrency:              sc.Concurrency,
		Queues:                   map[string]int{w.cfg.Queue: 1},
		RetryDelayFunc:           RetryDelay(w.cfg.RetryBase, w.cfg.RetryMax),
		DelayedTaskCheckInterval: sc.DelayedTaskCheck,
		TaskCheckInterval:        sc.TaskCheck,
		ShutdownTimeout:          sc.ShutdownTimeout,
		Logger:                   AsynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
		HealthCheckFunc: func(err error) {
			if err != nil {
				log.Warn("redis health check failed", "err", err)
			}
		},
	})
	mux := asynq.NewServeMux()
	mux.Handle(TaskType, w)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("asynq server: %w", err)
	}
	log.Info("crawler running", "queue", w.cfg.Queue, "concurrency", sc.Concurrency)
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// AsynqLogger sends Asynq's log lines to slog.
type AsynqLogger struct{ Log *slog.Logger }

func (l AsynqLogger) Debug(args ...any) { l.Log.Debug(fmt.Sprint(args...)) }
func (l AsynqLogger) Info(args ...any)  { l.Log.Info(fmt.Sprint(args...)) }
func (l AsynqLogger) Warn(args ...any)  { l.Log.Warn(fmt.Sprint(args...)) }
func (l AsynqLogger) Error(args ...any) { l.Log.Error(fmt.Sprint(args...)) }

// Fatal logs at error level; unlike Asynq's default it does not exit the
// process: main decides.
func (l AsynqLogger) Fatal(args ...any) { l.Log.Error(fmt.Sprint(args...)) }
