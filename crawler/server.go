package crawler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/topk-charts/topk/internal/outage"
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
	// HealthCheck is how often Asynq pings Redis; default 5s.
	HealthCheck time.Duration
	// OutageLimit is how long Redis may stay unreachable before Server.Run
	// gives up with an error; default outage.DefaultLimit (5 minutes).
	// Asynq itself retries Redis meanwhile.
	OutageLimit time.Duration
}

// Server is the crawler's component: the Asynq server that runs a Worker
// on the tasks of its queue.
type Server struct {
	redis asynq.RedisConnOpt
	sc    ServerConfig
	w     *Worker
	log   *slog.Logger
}

// NewServer returns the server of w's queue on redis, with sc's defaults
// filled in; it does no I/O (Run connects).
func NewServer(redis asynq.RedisConnOpt, sc ServerConfig, w *Worker, log *slog.Logger) *Server {
	if sc.Concurrency <= 0 {
		sc.Concurrency = 10
	}
	if sc.ShutdownTimeout <= 0 {
		sc.ShutdownTimeout = 20 * time.Second
	}
	if sc.HealthCheck <= 0 {
		sc.HealthCheck = 5 * time.Second
	}
	return &Server{redis: redis, sc: sc, w: w, log: log}
}

// Run processes crawl tasks until ctx ends, then shuts down gracefully
// (nil). Redis being away is retried by Asynq; the log says so once when
// Asynq's health check starts failing and once when it works again
// (Asynq's own error lines are debug lines meanwhile). When Redis has been
// away for longer than ServerConfig.OutageLimit, Run shuts the server
// down and returns an *outage.LimitError naming Redis.
func (s *Server) Run(ctx context.Context) error {
	sc, w, log := s.sc, s.w, s.log
	rd := &outage.Tracker{Name: "redis", Limit: sc.OutageLimit, Log: log}
	giveUp := make(chan error, 1)
	srv := asynq.NewServer(s.redis, asynq.Config{
		Concurrency:              sc.Concurrency,
		Queues:                   map[string]int{w.cfg.Queue: 1},
		RetryDelayFunc:           RetryDelay(w.cfg.RetryBase, w.cfg.RetryMax),
		DelayedTaskCheckInterval: sc.DelayedTaskCheck,
		TaskCheckInterval:        sc.TaskCheck,
		ShutdownTimeout:          sc.ShutdownTimeout,
		Logger:                   AsynqLogger{Log: log.With("component", "asynq"), Quiet: func() bool { return rd.Err() != nil }},
		LogLevel:                 asynq.WarnLevel,
		HealthCheckInterval:      sc.HealthCheck,
		HealthCheckFunc: func(err error) {
			if err == nil {
				rd.OK()
				return
			}
			if lerr := rd.Fail(err); lerr != nil {
				select {
				case giveUp <- lerr:
				default:
				}
			}
		},
	})
	mux := asynq.NewServeMux()
	mux.Handle(TaskType, w)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("asynq server: %w", err)
	}
	log.Info("crawler running", "queue", w.cfg.Queue, "concurrency", sc.Concurrency)
	select {
	case <-ctx.Done():
		srv.Shutdown()
		return nil
	case err := <-giveUp:
		srv.Shutdown()
		return fmt.Errorf("crawler: %w", err)
	}
}

// AsynqLogger sends Asynq's log lines to slog.
type AsynqLogger struct {
	Log *slog.Logger
	// Quiet, when set and true, turns warnings and errors into debug
	// lines: while Redis is known to be down, Asynq's components would
	// each log every few seconds what the outage tracker said once.
	Quiet func() bool
}

func (l AsynqLogger) quiet() bool { return l.Quiet != nil && l.Quiet() }

func (l AsynqLogger) Debug(args ...any) { l.Log.Debug(fmt.Sprint(args...)) }
func (l AsynqLogger) Info(args ...any)  { l.Log.Info(fmt.Sprint(args...)) }
func (l AsynqLogger) Warn(args ...any) {
	if l.quiet() {
		l.Log.Debug(fmt.Sprint(args...))
		return
	}
	l.Log.Warn(fmt.Sprint(args...))
}
func (l AsynqLogger) Error(args ...any) {
	if l.quiet() {
		l.Log.Debug(fmt.Sprint(args...))
		return
	}
	l.Log.Error(fmt.Sprint(args...))
}

// Fatal logs at error level; unlike Asynq's default it does not exit the
// process: main decides.
func (l AsynqLogger) Fatal(args ...any) { l.Log.Error(fmt.Sprint(args...)) }
