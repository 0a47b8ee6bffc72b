package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/redis"
)

// Env is what every subcommand receives: the configuration, read once, a
// logger and the output streams.
type Env struct {
	Config config.Config
	Log    *slog.Logger
	Stdout io.Writer
	Stderr io.Writer

	logFile *os.File // TOPK_LOG_FILE, open while the command runs
}

// LoadEnv reads the configuration from the environment. With
// TOPK_LOG_FILE set the whole log is appended to that file (its folder
// created) and stderr shows only status lines, warnings and errors
// (ops.NewSplitLogger); Close closes it.
func LoadEnv(stdout, stderr io.Writer) (*Env, error) {
	cfg, err := config.Load(nil)
	if err != nil {
		return nil, err
	}
	env := &Env{Config: cfg, Stdout: stdout, Stderr: stderr}
	env.Log = ops.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if cfg.LogFile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.LogFile), 0o755); err != nil {
			return nil, fmt.Errorf("TOPK_LOG_FILE: %w", err)
		}
		if env.logFile, err = os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			return nil, fmt.Errorf("TOPK_LOG_FILE: %w", err)
		}
		env.Log = ops.NewSplitLogger(stderr, env.logFile, cfg.LogLevel, cfg.LogFormat)
	}
	redis.UseLogger(env.Log)
	cassandra.UseLogger(env.Log)
	return env, nil
}

// Close closes the log file, if any.
func (e *Env) Close() error {
	if e.logFile == nil {
		return nil
	}
	return e.logFile.Close()
}
