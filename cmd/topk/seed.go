package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/topk-charts/topk/crawler"
)

// runSeed registers users sim-0001 … sim-N with the simulated provider;
// users already registered are left as they are, so running it again is
// harmless. Their first crawls import their history; the scheduler keeps
// them listening at TOPK_SIMULATED_INTERVAL.
func runSeed(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "seed")
	users := fs.Int("users", 200, "simulated users to register")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *users < 1 || *users > 100_000 {
		return fmt.Errorf("--users must be 1–100000")
	}
	log := logWith(env.Log, "seed")
	cp, err := openControlPlane(ctx, env, nil, log)
	if err != nil {
		return err
	}
	defer cp.Close()
	ctl, err := cp.control(log)
	if err != nil {
		return err
	}
	added := 0
	for i := 1; i <= *users; i++ {
		id := fmt.Sprintf("sim-%04d", i)
		_, err := ctl.Register(ctx, crawler.Registration{UserID: id, Provider: "simulated"})
		switch {
		case err == nil:
			added++
		case errors.Is(err, crawler.ErrExists):
		default:
			return fmt.Errorf("register %s: %w", id, err)
		}
		if i%50 == 0 || i == *users {
			fmt.Fprintf(env.Stderr, "\rsimulated users: %d of %d registered (%d new)", i, *users, added)
		}
	}
	fmt.Fprintln(env.Stderr)
	return nil
}
