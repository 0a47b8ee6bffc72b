package main

import (
	"context"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/ops"
)

func runAPI(ctx context.Context, env *Env, args []string) error {
	if err := flags(env, "api").Parse(args); err != nil {
		return err
	}
	c := env.Config
	var checks []ops.Check
	for _, name := range []string{"kafka", "cassandra", "redis", "postgres"} {
		p := pingers[name]
		checks = append(checks, ops.Check{Name: name, Fn: func(ctx context.Context) error {
			_, err := p(ctx, c)
			return err
		}})
	}
	srv, err := api.New(api.Config{Addr: c.API.Addr, Checker: &ops.Checker{Checks: checks}}, logWith(env.Log, "api"))
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
