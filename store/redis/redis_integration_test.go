//go:build integration

package redis_test

import (
	"testing"
	"time"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/redis"
)

func TestIntegrationRoundTrip(t *testing.T) {
	cfg := testenv.Config(t)
	ctx := testenv.Context(t, 30*time.Second)
	v, err := redis.Ping(ctx, wiring.Redis(cfg.Redis))
	if err != nil {
		t.Fatal(err)
	}
	if v == "" || v == "unknown" {
		t.Fatalf("server version %q", v)
	}
	c := redis.New(wiring.Redis(cfg.Redis))
	defer c.Close()
	key := cfg.Namespace + ":roundtrip"
	t.Cleanup(func() { c.Del(ctx, key) })
	if err := c.Set(ctx, key, "reckoner", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got != "reckoner" {
		t.Fatalf("got %q", got)
	}
	ttl, err := c.TTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("ttl %v, %v", ttl, err)
	}
}
