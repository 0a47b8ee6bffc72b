//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"

	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/store/redis"
)

// The api's limits on the real servers, as `topk api` wires them: the
// rate limit per client over HTTP (and its dev-mode exemption for
// loopback), and the answer cache in its own Redis database — after
// fills from Cassandra every answer key is there, each with a TTL and
// within the size cap, and none in Asynq's database.
func TestIntegrationAPILimits(t *testing.T) {
	cfg := testenv.Config(t)
	topics := testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)
	cfg.Charts.CacheTTL = 30 * time.Second
	cfg.Charts.CacheMaxEntryBytes = 1024
	cfg.API.RateLimit, cfg.API.RateBurst = 1, 40
	cfg.Crawler.DevMode = false
	if cfg.Redis.CacheDB == cfg.Redis.DB {
		t.Fatalf("the answer cache shares Asynq's database %d", cfg.Redis.DB)
	}

	now := time.Now().UTC()
	g := &apiGen{r: rand.New(rand.NewPCG(12, 3)), now: now, used: map[string]bool{}}
	user := "limits-" + cfg.Namespace
	var msgs []*sarama.ProducerMessage
	for range 200 {
		msgs = append(msgs, rawMessage(topics, g.listen(user, 400*24*time.Hour)))
	}
	produce(t, cfg, msgs)
	runPipeline(t, cfg)
	waitPipeline(t, cfg, topics)

	// The view is not run: every answer comes from Cassandra.
	a := startAPI(t, cfg, false)
	day := func(d time.Time) string { return d.Format(listen.DayLayout) }
	old := fmt.Sprintf("from=%s&to=%s", day(now.AddDate(0, 0, -390)), day(now.AddDate(0, 0, -40)))
	paths := []string{"/v1/users?prefix=" + user, "/v1/users/" + user + "/activity?" + old, "/v1/users/" + user + "/top/artists?" + old}
	a.get("/readyz") // connects the Cassandra reader, so the requests below take milliseconds
	// The charts read ~a year of partitions from Cassandra and cost a
	// read token per 4 of them from a read bucket of 10
	// (TOPK_API_RATE_READ_BURST) refilled at 1/s: after the artists, the
	// tracks of ranges ending a month earlier each time (other
	// partitions, so no cached answer) find it empty within a few
	// requests, while the bucket of 40 requests still has tokens.
	var rejected *http.Response
	for i := range 40 {
		p := "/v1/users/" + user + "/top/tracks?" + fmt.Sprintf("from=%s&to=%s", day(now.AddDate(0, 0, -390)), day(now.AddDate(0, 0, -40-30*i)))
		if i < len(paths) {
			p = paths[i]
		}
		resp := a.answer(p)
		if resp.Header.Get("X-RateLimit-Limit") != "40" || resp.Header.Get("X-RateLimit-Reset-In") == "" || resp.Header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("%s: %d without the rate-limit headers: %v", p, resp.StatusCode, resp.Header)
		}
		if i == 0 && resp.Header.Get("X-RateLimit-Remaining") != "39" {
			t.Fatalf("first request: Remaining %s, want 39", resp.Header.Get("X-RateLimit-Remaining"))
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			rejected = resp
			if i < len(paths) || i > 8 {
				t.Errorf("the read bucket ran out at request %d (%s), want after the artists and within a few charts", i+1, p)
			}
			break
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	if rejected == nil || rejected.Header.Get("Retry-After") == "" || rejected.Header.Get("X-RateLimit-Remaining") == "" {
		t.Fatalf("no 429 with Retry-After within 40 requests at 1/s, read burst 10: %v", rejected)
	}
	a.parts.charts.Settle() // the names' background fills: none in flight below
	_, metrics := a.get("/metrics")
	for _, m := range []string{`topk_http_rejected_total{reason="rate_limit"} 1`, "topk_api_cassandra_fills_in_flight 0", "topk_http_rate_tokens_charged_total "} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if m := regexp.MustCompile(`(?m)^topk_api_cache_oversize_total (\d+)`).FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Errorf("no answer over the 1 KiB cap counted: %v", m)
	}

	// The answers are in the cache's database, each with a TTL and within
	// the cap; Asynq's database holds none of them.
	ctx := testenv.Context(t, 30*time.Second)
	pattern := cfg.Cassandra.Keyspace + ":topk:*"
	cache := redis.New(wiring.RedisCache(cfg.Redis))
	defer cache.Close()
	keys, err := cache.Keys(ctx, pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Del(context.Background(), keys...) })
	kinds := map[string]int{}
	for _, k := range keys {
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, cfg.Cassandra.Keyspace+":topk:v3:"), ":")
		kinds[kind]++
		life := cfg.Charts.CacheTTL
		if kind == "alltime" { // a chart's names' part
			life = cfg.Charts.NamesTTL
		}
		ttl, err := cache.TTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > life {
			t.Errorf("%s: TTL %v %v, want within %v", k, ttl, err, life)
		}
		if n, err := cache.StrLen(ctx, k).Result(); err != nil || n > int64(cfg.Charts.CacheMaxEntryBytes)+8 {
			t.Errorf("%s: %d bytes %v, over the cap", k, n, err)
		}
	}
	for _, kind := range []string{"first", "items", "users"} { // the activity's day list is over the cap
		if kinds[kind] == 0 {
			t.Errorf("no %s answer in the cache's database %d: %v", kind, cfg.Redis.CacheDB, keys)
		}
	}
	asynqDB := redis.New(wiring.Redis(cfg.Redis))
	defer asynqDB.Close()
	if leaked, err := asynqDB.Keys(ctx, pattern).Result(); err != nil || len(leaked) > 0 {
		t.Fatalf("answers in Asynq's database %d: %v %v", cfg.Redis.DB, leaked, err)
	}

	// Dev mode: loopback clients are not limited.
	dev := cfg
	dev.Crawler.DevMode = true
	d := startAPI(t, dev, false)
	d.get("/readyz")
	deadline := time.Now().Add(10 * time.Second)
	for d.answer(paths[2]).StatusCode != 200 { // its own reader connects lazily: 503 until it has
		if time.Now().After(deadline) {
			t.Fatal("the dev-mode api never answered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 10 {
		if resp := d.answer(paths[2]); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("dev mode, loopback: %d %v", resp.StatusCode, resp.Header)
		}
	}
}

// answer sends a GET and returns the answer, its body read.
func (a *apiUnderTest) answer(path string) *http.Response {
	a.t.Helper()
	resp, err := http.Get(a.url + path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp
}

// redisPolicy is the maxmemory policy the local stack (deploy/local/redis.sh)
// and compose (docker-compose.yml, the redis service's command) give
// Redis; they must agree.
func redisPolicy(t *testing.T) string {
	t.Helper()
	re := regexp.MustCompile(`--maxmemory-policy"?,?\s*"?([a-z-]+)`)
	var policies []string
	for _, f := range []string{"deploy/local/redis.sh", "docker-compose.yml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s sets no --maxmemory-policy", f)
		}
		policies = append(policies, string(m[1]))
	}
	if policies[0] != policies[1] {
		t.Fatalf("redis.sh runs %s, docker-compose.yml %s", policies[0], policies[1])
	}
	return policies[0]
}

// The stack's Redis under memory pressure: the answer cache (its own
// database, every entry with a TTL) fills a Redis far past its maxmemory
// while Asynq holds pending and scheduled tasks in database 0. With the
// stack's policy (volatile-*) every cache write succeeds, answers are
// evicted, and every Asynq task is still there; with allkeys-lru, the
// policy the docs warn against, tasks are lost. Each run has a Redis of
// its own (redis-server on a free port, 8 MB).
func TestIntegrationCacheEvictionSparesAsynq(t *testing.T) {
	policy := redisPolicy(t)
	if !strings.HasPrefix(policy, "volatile-") {
		t.Fatalf("the stack's Redis runs %s: it may evict Asynq's tasks, which carry no TTL", policy)
	}
	for _, c := range []struct {
		policy   string
		keepsAll bool
	}{{policy, true}, {"allkeys-lru", false}} {
		t.Run(c.policy, func(t *testing.T) {
			addr := startRedis(t, c.policy)
			ctx := testenv.Context(t, 2*time.Minute)
			aq := asynq.NewClient(asynq.RedisClientOpt{Addr: addr, DB: 0})
			defer aq.Close()
			payload := []byte(strings.Repeat("p", 1000))
			const tasks = 300
			for i := range tasks {
				opts := []asynq.Option{asynq.Queue("crawl"), asynq.TaskID(fmt.Sprint("t", i))}
				if i%2 == 0 {
					opts = append(opts, asynq.ProcessIn(time.Hour))
				}
				if _, err := aq.EnqueueContext(ctx, asynq.NewTask("crawl:user", payload), opts...); err != nil {
					t.Fatal(err)
				}
			}
			cache := charts.RedisCache{Client: goredis.NewClient(&goredis.Options{Addr: addr, DB: 1})}
			defer cache.Client.Close()
			answer := []byte(strings.Repeat("a", 64<<10))
			for i := range 400 { // 25 MB of answers into 8 MB
				if err := cache.Set(ctx, fmt.Sprint("topk:v3:items:tracks:", i), answer, time.Minute); err != nil {
					if c.keepsAll {
						t.Fatalf("cache write %d under %s: %v", i, c.policy, err)
					}
					break
				}
			}
			info, err := cache.Client.Info(ctx, "stats").Result()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(info, "evicted_keys:") || strings.Contains(info, "evicted_keys:0\r") {
				t.Fatalf("nothing was evicted: the test did not reach maxmemory\n%s", info)
			}
			insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: addr, DB: 0})
			defer insp.Close()
			kept := 0
			for i := range tasks {
				if _, err := insp.GetTaskInfo("crawl", fmt.Sprint("t", i)); err == nil {
					kept++
				}
			}
			if c.keepsAll && kept != tasks {
				t.Fatalf("%s: %d of %d Asynq tasks left", c.policy, kept, tasks)
			}
			if !c.keepsAll && kept == tasks {
				t.Fatalf("%s kept every task: the test does not show what the policy protects", c.policy)
			}
			t.Logf("%s: %d of %d Asynq tasks kept; %s", c.policy, kept, tasks, grepInfo(info, "evicted_keys"))
		})
	}
}

func grepInfo(info, key string) string {
	for _, l := range strings.Split(info, "\n") {
		if strings.HasPrefix(l, key+":") {
			return strings.TrimSpace(l)
		}
	}
	return key + ": ?"
}

// startRedis runs a redis-server of its own on a free port with 8 MB of
// maxmemory under policy, stopped when the test ends.
func startRedis(t *testing.T, policy string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server (the local stack's, from Debian's redis-server package): %v", err)
	}
	port := testenv.FreePort(t)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--maxmemory", "8mb", "--maxmemory-policy", policy)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
