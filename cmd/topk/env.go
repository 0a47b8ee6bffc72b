package main

import (
	"io"
	"log/slog"

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
}

// LoadEnv reads the configuration from the environment.
func LoadEnv(stdout, stderr io.Writer) (*Env, error) {
	cfg, err := config.Load(nil)
	if err != nil {
		return nil, err
	}
	log := ops.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	redis.UseLogger(log)
	cassandra.UseLogger(log)
	return &Env{Config: cfg, Log: log, Stdout: stdout, Stderr: stderr}, nil
}
