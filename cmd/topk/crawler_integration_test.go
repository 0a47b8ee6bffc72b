//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/redis"
)

// crawlerEnv points the commands at a namespace, database and queue of
// the test's own, with dev mode's generated token key.
func crawlerEnv(t *testing.T) (ns string, db string) {
	t.Helper()
	cfg := testenv.Config(t)
	t.Setenv("TOPK_NAMESPACE", cfg.Namespace)
	t.Setenv("TOPK_POSTGRES_DB", cfg.Postgres.Database)
	t.Setenv("TOPK_RUNTIME_DIR", t.TempDir())
	t.Setenv("TOPK_DEV_MODE", "1")
	t.Setenv("TOPK_TOKEN_KEY", "")
	// Three days: a simulated listener whose six hours before the test
	// fell in their night could have no plays at all (CI saw ivan crawled
	// "ok" with 0 listens at 08:57 UTC).
	t.Setenv("TOPK_SIMULATED_HISTORY", "72h")
	t.Setenv("TOPK_SIMULATED_INTERVAL", "1h")
	testenv.Database(t, cfg)
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"migrate", "postgres"}, {"topics"}} {
		if code := Main(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("topk %v: %s", args, errb.String())
		}
	}
	t.Cleanup(func() {
		a, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
		if err == nil {
			tp := listen.NewTopics(cfg.Namespace)
			_ = kafka.DeleteTopics(a, string(tp.Raw), string(tp.Valid), string(tp.DLQ))
			a.Close()
		}
		ro := redis.Options(wiring.Redis(cfg.Redis))
		insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: ro.Addr, Password: ro.Password, DB: ro.DB})
		_ = insp.DeleteQueue(crawler.Queue(cfg.Namespace), true)
		insp.Close()
	})
	return cfg.Namespace, cfg.Postgres.Database
}

// Without TOPK_TOKEN_KEY and without dev mode the services refuse to start.
func TestIntegrationCrawlerRefusesWithoutTokenKey(t *testing.T) {
	t.Setenv("TOPK_TOKEN_KEY", "")
	t.Setenv("TOPK_DEV_MODE", "0")
	for _, cmd := range []string{"crawler", "scheduler", "enqueue"} {
		var out, errb bytes.Buffer
		args := []string{cmd}
		if cmd == "enqueue" {
			args = append(args, "--user", "alice")
		}
		if code := Main(context.Background(), args, &out, &errb); code != 1 || !strings.Contains(errb.String(), "TOPK_TOKEN_KEY") {
			t.Errorf("topk %s: exit %d: %s", cmd, code, errb.String())
		}
	}
}

// topk enqueue registers and enqueues a simulated user; topk crawler
// crawls it into Kafka and serves /metrics; topk scheduler restores the
// task after the queue is flushed; both stop gracefully.
func TestIntegrationCrawlerSchedulerEnqueueCommands(t *testing.T) {
	ns, _ := crawlerEnv(t)
	crawlerPort, schedPort := testenv.FreePort(t), testenv.FreePort(t)
	t.Setenv("TOPK_OPS_PORT_CRAWLER", strconv.Itoa(crawlerPort))
	t.Setenv("TOPK_OPS_PORT_SCHEDULER", strconv.Itoa(schedPort))
	t.Setenv("TOPK_SCHEDULER_RECONCILE", "200ms")

	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"enqueue", "--user", "ivan", "--provider", "simulated"}, &out, &errb); code != 0 {
		t.Fatalf("enqueue: %d %s", code, errb.String())
	}
	var st crawler.UserStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.UserID != "ivan" || st.Task == nil || st.Task.State != "pending" {
		t.Fatalf("enqueue printed %s (%v)", out.String(), err)
	}
	if !strings.Contains(errb.String(), "generated a development token key") {
		t.Fatalf("dev mode did not say it generated a key: %s", errb.String())
	}

	start := func(cmd string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		var errb bytes.Buffer
		go func() { done <- Main(ctx, []string{cmd}, io.Discard, &errb) }()
		var once sync.Once
		return func() {
			once.Do(func() {
				cancel()
				select {
				case code := <-done:
					if code != 0 {
						t.Errorf("topk %s exit %d: %s", cmd, code, errb.String())
					}
				case <-time.After(30 * time.Second):
					t.Errorf("topk %s did not stop", cmd)
				}
			})
		}
	}
	publishedBefore := metricValue(gather(t), `topk_crawler_listens_published_total{provider="simulated"}`)
	restoredBefore := metricValue(gather(t), "topk_scheduler_restored_tasks_total")
	stopCrawler := start("crawler")
	defer stopCrawler()

	cfg := testenv.Config(t)
	cfg.Postgres.Database = "topk_" + ns
	pool, err := postgres.Connect(context.Background(), wiring.Postgres(cfg.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	status := func() (string, int64) {
		var s string
		var n int64
		_ = pool.QueryRow(context.Background(), `SELECT last_status, listens_total FROM schedules WHERE user_id = 'ivan'`).Scan(&s, &n)
		return s, n
	}
	deadline := time.Now().Add(30 * time.Second)
	for s, _ := status(); s != "ok"; s, _ = status() {
		if time.Now().After(deadline) {
			t.Fatalf("ivan not crawled: %s", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, listens := status()
	if listens == 0 {
		t.Fatal("no listens published")
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(crawlerPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The default registry lives as long as the test binary (-count=n):
	// compare the increase.
	if got := metricValue(string(body), `topk_crawler_listens_published_total{provider="simulated"}`) - publishedBefore; got != float64(listens) {
		t.Fatalf("topk_crawler_listens_published_total grew by %v, want %d", got, listens)
	}

	// Flush the queue; the scheduler restores ivan's next run.
	ro := redis.Options(wiring.Redis(cfg.Redis))
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: ro.Addr, Password: ro.Password, DB: ro.DB})
	defer insp.Close()
	stopCrawler()
	if err := insp.DeleteQueue(crawler.Queue(ns), true); err != nil {
		t.Fatal(err)
	}
	stopScheduler := start("scheduler")
	defer stopScheduler()
	deadline = time.Now().Add(20 * time.Second)
	for {
		tasks, err := insp.ListScheduledTasks(crawler.Queue(ns))
		if err == nil && len(tasks) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not restored: %v %v", tasks, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err = http.Get("http://127.0.0.1:" + strconv.Itoa(schedPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := metricValue(string(body), "topk_scheduler_restored_tasks_total") - restoredBefore; got != 1 {
		t.Fatalf("topk_scheduler_restored_tasks_total grew by %v, want 1", got)
	}
}

// The api with the admin endpoints and the real asynqmon.
func TestIntegrationAdminAPIAndAsynqmon(t *testing.T) {
	ns, _ := crawlerEnv(t)
	t.Setenv("TOPK_ADMIN_TOKEN", "tok-123")
	base, req := adminAPI(t)
	if code, body := req("POST", "/v1/users", "", `{"user_id":"judy","provider":"simulated"}`); code != 401 {
		t.Fatalf("without token: %d %s", code, body)
	}
	code, body := req("POST", "/v1/users", "Bearer tok-123", `{"user_id":"judy","provider":"simulated"}`)
	if code != 201 || !strings.Contains(body, `"state":"pending"`) {
		t.Fatalf("register: %d %s", code, body)
	}
	if code, body := req("GET", "/v1/admin/users/judy", "Bearer tok-123", ""); code != 200 || !strings.Contains(body, `"next_run_at"`) {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, body := req("POST", "/v1/users", "Bearer tok-123", `{"user_id":"k|x","provider":"simulated"}`); code != 400 || !strings.Contains(body, `"param":"user_id"`) {
		t.Fatalf("bad id: %d %s", code, body)
	}
	// asynqmon: the UI and its API, behind basic auth.
	r, _ := http.NewRequest("GET", base+"/asynq/api/queues", nil)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("asynqmon without auth: %d", resp.StatusCode)
	}
	r.SetBasicAuth("admin", "tok-123")
	resp, err = http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), crawler.Queue(ns)) {
		t.Fatalf("asynqmon queues: %d %s", resp.StatusCode, b)
	}
	r, _ = http.NewRequest("GET", base+"/asynq/", nil)
	r.SetBasicAuth("admin", "tok-123")
	resp, err = http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(b)), "<html") {
		t.Fatalf("asynqmon ui: %d %.200s", resp.StatusCode, b)
	}
}

// The Last.fm key never leaves the crawler: `topk crawler` crawls a
// Last.fm user against a closed port with a recognisable TOPK_LASTFM_API_KEY;
// after the first failed attempt, the admin api's answers for that user
// (get and list), asynqmon's view of the retrying task and the crawler's
// own log hold the host, the failure and api_key=REDACTED, never the key.
func TestIntegrationAdminAPIShowsNoProviderKey(t *testing.T) {
	ns, _ := crawlerEnv(t)
	key := "lastfm-key-" + strings.Repeat("c0ffee", 5)
	addr := "127.0.0.1:" + strconv.Itoa(closedPort(t))
	token := "admin-token-0123456789"
	t.Setenv("TOPK_ADMIN_TOKEN", token)
	t.Setenv("TOPK_LASTFM_URL", "http://"+addr+"/2.0/")
	t.Setenv("TOPK_LASTFM_API_KEY", key)
	t.Setenv("TOPK_LASTFM_RATE", "-1")
	t.Setenv("TOPK_CRAWLER_RETRY_BASE", "1h") // one attempt while the test looks
	t.Setenv("TOPK_OPS_PORT_CRAWLER", strconv.Itoa(testenv.FreePort(t)))
	_, req := adminAPI(t)
	bearer := "Bearer " + token
	if code, body := req("POST", "/v1/users", bearer, `{"user_id":"kim","provider":"lastfm","external_id":"kim-lastfm"}`); code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"crawler"}, io.Discard, logs) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("topk crawler exit %d: %s", code, logs.String())
		}
	}()
	// Last.fm's client tries each page 4 times over 14 s before the attempt fails.
	var body string
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(body, `"last_status":"retrying"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt: %s\n%s", body, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
		_, body = req("GET", "/v1/admin/users/kim", bearer, "")
	}
	_, list := req("GET", "/v1/admin/users?prefix=kim", bearer, "")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(api.AdminUser+":"+token))
	code, mon := req("GET", "/asynq/api/queues/"+crawler.Queue(ns)+"/retry_tasks", basic, "")
	if code != 200 || !strings.Contains(mon, "crawl:kim:") {
		t.Fatalf("asynqmon retry tasks: %d %s", code, mon)
	}
	for what, text := range map[string]string{
		"GET /v1/admin/users/kim": body, "GET /v1/admin/users": list, "asynqmon": mon, "the crawler's log": logs.String(),
	} {
		if strings.Contains(text, key) {
			t.Errorf("%s shows the Last.fm key: %s", what, text)
		}
		for _, want := range []string{"api_key=REDACTED", addr, "connection refused"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q: %s", what, want, text)
			}
		}
	}
}

// adminAPI serves what `topk api` mounts with mountAdmin (the admin
// endpoints and asynqmon, on the real control plane the environment's
// variables name) until the test ends: its base URL and a client that
// sends auth as the Authorization header.
func adminAPI(t *testing.T) (base string, req func(method, path, auth, body string) (int, string)) {
	t.Helper()
	env, err := LoadEnv(io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env.Log = testenv.Logger(t)
	reg := prometheus.NewRegistry()
	srv, err := api.New(api.Config{Checker: &ops.Checker{}, Registerer: reg, Gatherer: reg}, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	closeAdmin, err := mountAdmin(context.Background(), env, srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAdmin)
	hs := httptest.NewServer(srv.Echo())
	t.Cleanup(hs.Close)
	return hs.URL, func(method, path, auth, body string) (int, string) {
		r, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

// metricValue is the value of the sample named exactly name in a
// Prometheus text exposition (0 when absent).
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// gather renders the default registry, which the ops listeners serve.
func gather(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// mountAdmin adds the admin endpoints (users' API tokens included) and
// asynqmon (under /asynq/) to the api on a control plane of their own;
// the returned func releases its connections (tests; `topk api` mounts them
// on the control plane it shares with the ListenBrainz routes: newFullAPI).
func mountAdmin(ctx context.Context, env *Env, srv *api.Server) (func(), error) {
	cp, err := openControlPlane(ctx, env, nil, logWith(env.Log, "admin"))
	if err != nil {
		return nil, err
	}
	closeAdmin, err := mountAdminOn(cp, env, srv)
	if err != nil {
		cp.Close()
		return nil, err
	}
	return func() { closeAdmin(); cp.Close() }, nil
}
