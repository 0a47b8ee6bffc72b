package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/redis"
)

func runConfig(_ context.Context, env *Env, args []string) error {
	fs := flags(env, "config")
	shell := fs.Bool("shell", false, "print `export NAME='value'` lines (the local-stack scripts eval them)")
	markdown := fs.Bool("markdown", false, "print the variable table of the README")
	names := fs.Bool("names", false, "print the variable names, one per line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *markdown:
		fmt.Fprint(env.Stdout, config.Markdown())
	case *names:
		fmt.Fprintln(env.Stdout, strings.Join(config.Names(), "\n"))
	default:
		_ = shell // --shell is the default format
		fmt.Fprint(env.Stdout, env.Config.Shell())
	}
	return nil
}

// pingers are the real round trips that tell a server is up.
var pingers = map[string]func(ctx context.Context, c config.Config) (string, error){
	"kafka": func(ctx context.Context, c config.Config) (string, error) {
		n, err := kafka.Ping(ctx, c.Kafka.Brokers)
		return fmt.Sprintf("%d broker(s) at %s", n, strings.Join(c.Kafka.Brokers, ",")), err
	},
	"cassandra": func(ctx context.Context, c config.Config) (string, error) {
		v, err := cassandra.Ping(ctx, wiring.Cassandra(c.Cassandra))
		return fmt.Sprintf("Cassandra %s at %s:%d", v, strings.Join(c.Cassandra.Hosts, ","), c.Cassandra.Port), err
	},
	"redis": func(ctx context.Context, c config.Config) (string, error) {
		v, err := redis.Ping(ctx, wiring.Redis(c.Redis))
		return fmt.Sprintf("Redis %s at %s", v, c.Redis.Addr), err
	},
	"postgres": func(ctx context.Context, c config.Config) (string, error) {
		v, err := postgres.Ping(ctx, wiring.Postgres(c.Postgres))
		return fmt.Sprintf("PostgreSQL %s at %s:%d/%s", v, c.Postgres.Host, c.Postgres.Port, c.Postgres.Database), err
	},
}

// runPing checks each named server with a real request (a Kafka metadata
// request, a CQL query, INFO, a SQL query); with --wait it retries until
// the deadline and then reports the last error.
func runPing(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "ping")
	wait := fs.Duration("wait", 0, "retry until each server answers or this much time has passed")
	quiet := fs.Bool("q", false, "print nothing on success")
	if err := fs.Parse(args); err != nil {
		return err
	}
	targets := fs.Args()
	if len(targets) == 0 {
		targets = []string{"kafka", "cassandra", "redis", "postgres"}
	}
	var errs []error
	for _, t := range targets {
		p, ok := pingers[t]
		if !ok {
			return fmt.Errorf("unknown server %q (kafka, cassandra, redis, postgres)", t)
		}
		deadline := time.Now().Add(*wait)
		for {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			what, err := p(cctx, env.Config)
			cancel()
			if err == nil {
				if !*quiet {
					fmt.Fprintf(env.Stdout, "%-9s ok   %s\n", t, what)
				}
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				fmt.Fprintf(env.Stdout, "%-9s FAIL %v\n", t, err)
				errs = append(errs, fmt.Errorf("%s: %w", t, err))
				break
			}
			time.Sleep(time.Second)
		}
	}
	return errors.Join(errs...)
}

func runTopics(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "topics").Parse(args); err != nil {
		return err
	}
	return ensureTopics(ctx, env)
}

func runMigrate(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "migrate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	targets := fs.Args()
	if len(targets) == 0 {
		targets = []string{"cassandra", "postgres"}
	}
	log := logWith(env.Log, "migrate")
	for _, t := range targets {
		switch t {
		case "cassandra":
			if err := cassandra.Migrate(ctx, wiring.Cassandra(env.Config.Cassandra), log); err != nil {
				return fmt.Errorf("cassandra: %w", err)
			}
			log.Info("cassandra schema up to date", "keyspace", env.Config.Cassandra.Keyspace)
		case "postgres":
			pool, err := postgres.Connect(ctx, wiring.Postgres(env.Config.Postgres))
			if err != nil {
				return err
			}
			err = postgres.Migrate(ctx, pool, log)
			pool.Close()
			if err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			log.Info("postgres schema up to date", "database", env.Config.Postgres.Database)
		default:
			return fmt.Errorf("unknown store %q (cassandra, postgres)", t)
		}
	}
	return nil
}
