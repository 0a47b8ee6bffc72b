package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// runRekey: `topk rekey` re-seals every stored provider token with
// TOPK_TOKEN_KEY; the keys it replaces are in TOPK_TOKEN_KEY_PREVIOUS.
// It is the second step of a key rotation (docs/SECURITY.md) and safe to
// run again or beside running crawlers. It prints the counts as JSON and
// fails if a token opens with no configured key.
func runRekey(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "rekey")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logWith(env.Log, "rekey")
	cp, err := openControlPlane(ctx, env, nil, log)
	if err != nil {
		return err
	}
	defer cp.Close()
	last := time.Now()
	r, err := cp.store.Rekey(ctx, func(done, total int) {
		if time.Since(last) >= time.Second || done == total {
			last = time.Now()
			log.Info("re-sealing provider tokens", "done", done, "total", total)
		}
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	if len(r.Unreadable) > 0 {
		return fmt.Errorf("%d provider accounts have tokens no configured key opens (left as they are): %v", len(r.Unreadable), r.Unreadable)
	}
	return nil
}
