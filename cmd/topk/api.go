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
	s := &service{name: "api", opsPort: 0}
	if err := addAPI(ctx, env, s); err != nil {
		s.close()
		return err
	}
	return s.run(ctx, env)
}

// addAPI adds the HTTP api (its own listener, TOPK_API_ADDR) with the admin
// endpoints and the Asynq dashboard.
func addAPI(ctx context.Context, env *Env, s *service) error {
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
	closeAdmin, err := mountAdmin(ctx, env, srv)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, closeAdmin)
	if err := srv.Listen(); err != nil {
		return err
	}
	s.comps = append(s.comps, component{"api", srv.Run})
	return nil
}
