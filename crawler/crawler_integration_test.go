//go:build integration

package crawler_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/lastfm"
	"github.com/topk-charts/topk/crawler/provider/providertest"
	"github.com/topk-charts/topk/crawler/provider/simulated"
	"github.com/topk-charts/topk/crawler/provider/spotify"
	"github.com/topk-charts/topk/crawler/tokens"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/postgres/postgrestest"
	"github.com/topk-charts/topk/store/redis"
)

// env is one test's own database, topics, Asynq queue and crawler parts.
type env struct {
	cfg     config.Config
	pool    *pgxpool.Pool
	store   *postgres.Store
	topics  listen.Topics
	redis   asynq.RedisClientOpt
	client  *asynq.Client
	insp    *asynq.Inspector
	ccfg    crawler.Config
	control *crawler.Control
	// workerLog is the crawler's logger; default testenv.Logger.
	workerLog *slog.Logger
}

func setup(t *testing.T, providers map[string]crawler.ProviderEntry) *env {
	t.Helper()
	cfg := testenv.Config(t)
	pool := postgrestest.Migrated(t, wiring.Postgres(cfg.Postgres))
	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	topics := listen.NewTopics(cfg.Namespace)
	if err := kafka.EnsureTopics(t.Context(), admin, int16(cfg.Kafka.ReplicationFactor), kafka.ListenTopics(wiring.Kafka(cfg.Kafka), topics), testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kafka.DeleteTopics(admin, string(topics.Raw), string(topics.Valid), string(topics.DLQ)); err != nil {
			t.Errorf("delete topics: %v", err)
		}
		admin.Close()
	})
	cipher, err := tokens.New(bytes.Repeat([]byte{42}, tokens.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cfg: cfg, pool: pool, store: postgres.NewStore(pool, cipher), topics: topics}
	ro := redis.Options(wiring.Redis(cfg.Redis))
	e.redis = asynq.RedisClientOpt{Addr: ro.Addr, Password: ro.Password, DB: ro.DB}
	e.client = asynq.NewClient(e.redis)
	e.insp = asynq.NewInspector(e.redis)
	e.ccfg = crawler.Config{
		Queue: crawler.Queue(cfg.Namespace), MaxRetry: 2, RetryBase: 50 * time.Millisecond, RetryMax: time.Second,
		TaskTimeout: time.Minute, Providers: providers,
	}
	t.Cleanup(func() {
		if err := e.insp.DeleteQueue(e.ccfg.Queue, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Errorf("delete queue: %v", err)
		}
		e.insp.Close()
		e.client.Close()
	})
	rdb := redis.New(wiring.Redis(e.cfg.Redis))
	t.Cleanup(func() { rdb.Close() })
	e.control, err = crawler.NewControl(e.ccfg, e.store, rdb, e.client, e.insp, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runWorker runs the crawler until the test ends.
func (e *env) runWorker(t *testing.T) {
	t.Helper()
	pub, err := crawler.NewKafkaPublisher(testenv.Context(t, time.Minute), e.cfg.Kafka.Brokers, string(e.topics.Raw))
	if err != nil {
		t.Fatal(err)
	}
	log := e.workerLog
	if log == nil {
		log = testenv.Logger(t)
	}
	w, err := crawler.NewWorker(e.ccfg, e.store, pub, e.client, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- crawler.NewServer(e.redis, crawler.ServerConfig{
			Concurrency: 4, DelayedTaskCheck: 100 * time.Millisecond, TaskCheck: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		}, w, log).Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("crawler: %v", err)
		}
		pub.Close()
	})
}

// await polls cond until it holds or d passes.
func await(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v (last: %s)", what, d, last)
}

func (e *env) awaitStatus(t *testing.T, user, status string, runs int) crawler.UserStatus {
	t.Helper()
	var st crawler.UserStatus
	await(t, 30*time.Second, user+" "+status, func() (bool, string) {
		var err error
		st, err = e.control.Get(context.Background(), user)
		if err != nil {
			return false, err.Error()
		}
		return st.Schedule.LastStatus == status && len(st.Runs) >= runs, fmt.Sprintf("%s, %d runs, err %q", st.Schedule.LastStatus, len(st.Runs), st.Schedule.LastError)
	})
	return st
}

// Simulated users' whole history, and a Last.fm user's through the real
// Last.fm client from a local server in Last.fm's JSON shape, go to Kafka
// keyed by user id; the cursor lands on the newest listen, the progress is
// complete and the next run waits in Redis at the interval.
func TestIntegrationCrawlEndToEnd(t *testing.T) {
	now := time.Now().UTC()
	pop := simulated.New(simulated.Config{History: 10 * 24 * time.Hour})
	sim := &simulated.Provider{Population: pop, PageSize: 40, Now: func() time.Time { return now }}
	lfSrv := httptest.NewServer(simulated.LastfmHandler(pop, func() time.Time { return now }))
	defer lfSrv.Close()
	lf, err := lastfm.New(lastfm.Config{BaseURL: lfSrv.URL + "/2.0/", APIKey: "k", RequestsPerSecond: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, map[string]crawler.ProviderEntry{
		"simulated": {Provider: sim, Interval: time.Hour},
		"lastfm":    {Provider: lf, Interval: time.Hour},
	})
	ctx := testenv.Context(t, 2*time.Minute)
	for _, u := range []string{"alice", "bob"} {
		if _, err := e.control.Register(ctx, crawler.Registration{UserID: u, Provider: "simulated"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.control.Register(ctx, crawler.Registration{UserID: "carol", Provider: "lastfm", ExternalID: "carol-lastfm"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.control.Register(ctx, crawler.Registration{UserID: "alice", Provider: "simulated"}); !errors.Is(err, crawler.ErrExists) {
		t.Fatalf("second registration: %v", err)
	}
	e.runWorker(t)
	want := map[string][]provider.Play{}
	total := 0
	for _, u := range []string{"alice", "bob", "carol"} {
		ext, pageSize := u, 40
		if u == "carol" {
			ext, pageSize = "carol-lastfm", lastfm.PageSize
		}
		want[u] = pop.Plays(ext, time.Unix(1, 0), now, now)
		total += len(want[u])
		st := e.awaitStatus(t, u, "ok", 1)
		last := want[u][len(want[u])-1]
		if st.Schedule.Cursor != last.PlayedAt.Unix() || st.Schedule.ListensTotal != int64(len(want[u])) {
			t.Errorf("%s: cursor %d listens %d, want %d and %d", u, st.Schedule.Cursor, st.Schedule.ListensTotal, last.PlayedAt.Unix(), len(want[u]))
		}
		if st.Schedule.PagesTotal != (len(want[u])+pageSize-1)/pageSize || st.Schedule.PagesDone != st.Schedule.PagesTotal || st.Schedule.PagesTotal < 2 {
			// < 2: every user's import here walks several pages
			t.Errorf("%s: progress %d/%d", u, st.Schedule.PagesDone, st.Schedule.PagesTotal)
		}
		if st.Runs[0].Outcome != "ok" || st.Runs[0].Listens != len(want[u]) {
			t.Errorf("%s: run %+v", u, st.Runs[0])
		}
		if st.Task == nil || st.Task.State != "scheduled" || st.Task.NextProcessAt == nil ||
			st.Task.NextProcessAt.Sub(now) < 59*time.Minute || !st.Schedule.NextRunAt.Equal(*st.Task.NextProcessAt) {
			t.Errorf("%s: next task %+v, schedule %v", u, st.Task, st.Schedule.NextRunAt)
		}
	}
	msgs := testenv.Records(t, e.cfg, string(e.topics.Raw))
	if len(msgs) != total {
		t.Fatalf("%d records in %s, want %d", len(msgs), e.topics.Raw, total)
	}
	got := map[string]int{}
	for _, m := range msgs {
		var l listen.Listen
		if err := json.Unmarshal(m.Value, &l); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != l.UserID || (l.Source != "simulated" && l.Source != "lastfm") {
			t.Fatalf("key %q, listen %+v", m.Key, l)
		}
		if _, err := listen.Parse(m.Value, time.Now()); err != nil {
			t.Fatalf("record breaks the event contract: %v: %s", err, m.Value)
		}
		got[l.UserID]++
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if got[u] != len(want[u]) {
			t.Fatalf("%s: %d records, want %d", u, got[u], len(want[u]))
		}
	}

	// Crawl now: the scheduled run is replaced by one now, which finds
	// nothing new after the cursor.
	st, err := e.control.CrawlNow(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if st.Task == nil || st.Task.ID == "" {
		t.Fatalf("crawl now: %+v", st)
	}
	st = e.awaitStatus(t, "alice", "ok", 2)
	if st.Runs[0].Listens != 0 || st.Schedule.ListensTotal != int64(len(want["alice"])) {
		t.Fatalf("second crawl: %+v", st.Runs[0])
	}
	if n := len(testenv.Records(t, e.cfg, string(e.topics.Raw))); n != total {
		t.Fatalf("second crawl republished: %d records", n)
	}
	scheduled, err := e.insp.ListScheduledTasks(e.ccfg.Queue)
	if err != nil {
		t.Fatal(err)
	}
	perUser := map[string]int{}
	for _, ti := range scheduled {
		var p struct{ User string }
		_ = json.Unmarshal(ti.Payload, &p)
		perUser[p.User]++
	}
	if perUser["alice"] != 1 || perUser["bob"] != 1 || perUser["carol"] != 1 {
		t.Fatalf("scheduled tasks per user %v, want one each", perUser)
	}

	// Delete: the user, the schedule and the task go.
	if err := e.control.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.control.Get(ctx, "bob"); !errors.Is(err, crawler.ErrNotFound) {
		t.Fatalf("get deleted user: %v", err)
	}
	if err := e.control.Delete(ctx, "bob"); !errors.Is(err, crawler.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

// failing is a provider that always fails.
type failing struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *failing) Crawl(context.Context, provider.Account, int64, func(context.Context, provider.Page) error) (provider.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return provider.Result{}, f.err
}

func (f *failing) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// A provider that keeps failing: retries with backoff, then the task is
// archived with its error, visible in the user's status, and the user is
// scheduled again at the interval. A permanent error is not retried.
func TestIntegrationFailingProviderRetriedThenArchived(t *testing.T) {
	flaky := &failing{err: errors.New("provider answered HTTP 503")}
	private := &failing{err: provider.Permanent(errors.New("last.fm error 17: Login: User required to be logged in"))}
	e := setup(t, map[string]crawler.ProviderEntry{
		"lastfm":  {Provider: flaky, Interval: time.Hour},
		"spotify": {Provider: private, Interval: time.Hour},
	})
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := e.control.Register(ctx, crawler.Registration{UserID: "carol", Provider: "lastfm"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.control.Register(ctx, crawler.Registration{UserID: "dave", Provider: "spotify", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	e.runWorker(t)
	st := e.awaitStatus(t, "carol", "failed", 3)
	if flaky.count() != 3 { // the first attempt and MaxRetry = 2 retries
		t.Errorf("%d attempts, want 3", flaky.count())
	}
	for _, r := range st.Runs[:3] {
		if r.Outcome != "failed" || !strings.Contains(r.Error, "HTTP 503") {
			t.Errorf("run %+v", r)
		}
	}
	if st.Archived == nil || st.Archived.State != "archived" || !strings.Contains(st.Archived.LastError, "HTTP 503") || st.Archived.Retried != 2 {
		t.Fatalf("archived task in status: %+v", st.Archived)
	}
	if !strings.Contains(st.Schedule.LastError, "HTTP 503") || st.Schedule.NextRunAt.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("schedule %+v", st.Schedule)
	}
	if st.Task == nil || st.Task.State != "scheduled" {
		t.Fatalf("no next run after the archived one: %+v", st.Task)
	}
	st2 := e.awaitStatus(t, "dave", "failed", 1)
	if private.count() != 1 || st2.Archived == nil || st2.Archived.State != "archived" || !strings.Contains(st2.Archived.LastError, "error 17") {
		t.Fatalf("permanent error: %d attempts, archived %+v", private.count(), st2.Archived)
	}
	archived, err := e.insp.ListArchivedTasks(e.ccfg.Queue)
	if err != nil || len(archived) != 2 {
		t.Fatalf("archive holds %d tasks (%v), want 2", len(archived), err)
	}
}

// Redis loses everything: the reconciler restores each active user's
// pending task from PostgreSQL, once, and the restored tasks run.
func TestIntegrationRedisFlushRestoresSchedules(t *testing.T) {
	sim := &simulated.Provider{Population: simulated.New(simulated.Config{History: time.Hour})}
	e := setup(t, map[string]crawler.ProviderEntry{"simulated": {Provider: sim, Interval: time.Hour}})
	ctx := testenv.Context(t, time.Minute)
	users := []string{"erin", "frank", "grace"}
	for _, u := range users {
		if _, err := e.control.Register(ctx, crawler.Registration{UserID: u, Provider: "simulated", Interval: "2h"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.control.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("nothing to restore yet: %d %v", n, err)
	}
	// The flush: every key of this test's queue goes (DeleteQueue drops the
	// queue's keys and its entry in Asynq's queue set, as FLUSHALL would;
	// the Redis that other tests share is left alone).
	if err := e.insp.DeleteQueue(e.ccfg.Queue, true); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		st, err := e.control.Get(ctx, u)
		if err != nil || st.Task.State != "missing" {
			t.Fatalf("%s after the flush: %+v %v", u, st.Task, err)
		}
	}
	n, err := e.control.Reconcile(ctx)
	if err != nil || n != len(users) {
		t.Fatalf("restored %d (%v), want %d", n, err, len(users))
	}
	for _, u := range users {
		st, err := e.control.Get(ctx, u)
		if err != nil || st.Task.State != "pending" {
			t.Fatalf("%s after reconcile: %+v %v", u, st.Task, err)
		}
	}
	if n, err := e.control.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("second reconcile restored %d (%v)", n, err)
	}
	e.runWorker(t)
	for _, u := range users {
		e.awaitStatus(t, u, "ok", 1)
	}
}

// Tokens are sealed in PostgreSQL: neither the columns nor any text
// rendering of the table holds them; the crawler opens them, and a
// refreshed token is sealed again.
func TestIntegrationTokensNeverPlaintext(t *testing.T) {
	access, refresh := "BQ-access-plaintext-4711", "AQ-refresh-plaintext-0815"
	fake := httptest.NewServer(&spotifyFake{refresh: refresh})
	defer fake.Close()
	sp, err := spotify.New(spotify.Config{APIURL: fake.URL + "/v1", TokenURL: fake.URL + "/api/token", ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, map[string]crawler.ProviderEntry{"spotify": {Provider: sp, Interval: time.Hour}})
	ctx := testenv.Context(t, time.Minute)
	st, err := e.control.Register(ctx, crawler.Registration{UserID: "heidi", Provider: "spotify", AccessToken: access, RefreshToken: refresh})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(st); bytes.Contains(b, []byte(access)) || bytes.Contains(b, []byte(refresh)) || !st.HasTokens {
		t.Fatalf("status shows a token: %s", b)
	}
	checkSealed := func(secrets ...string) {
		t.Helper()
		var dump string
		if err := e.pool.QueryRow(ctx, `SELECT string_agg(row_to_json(a)::text, ' ') FROM provider_accounts a`).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		var a, r []byte
		if err := e.pool.QueryRow(ctx, `SELECT access_token, refresh_token FROM provider_accounts WHERE user_id = 'heidi'`).Scan(&a, &r); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(dump, s) || bytes.Contains(a, []byte(s)) || bytes.Contains(r, []byte(s)) {
				t.Fatalf("token %q in plaintext in provider_accounts", s)
			}
		}
		if len(a) < 28 || len(r) < 28 {
			t.Fatalf("sealed tokens too short: %d %d", len(a), len(r))
		}
	}
	checkSealed(access, refresh)
	// The crawl refreshes the (rejected) access token and stores the new one sealed.
	e.runWorker(t)
	st = e.awaitStatus(t, "heidi", "ok", 1)
	if st.Schedule.ListensTotal != 2 {
		t.Fatalf("listens %d, want 2", st.Schedule.ListensTotal)
	}
	checkSealed(access, refresh, "fresh-access-token")
}

// spotifyFake accepts only "fresh-access-token", which a refresh with the
// right refresh token yields.
type spotifyFake struct{ refresh string }

func (m *spotifyFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/token":
		_ = r.ParseForm()
		if r.Form.Get("refresh_token") != m.refresh {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		fmt.Fprint(w, `{"access_token":"fresh-access-token","token_type":"Bearer","expires_in":3600}`)
	case "/v1/me/player/recently-played":
		if r.Header.Get("Authorization") != "Bearer fresh-access-token" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"status":401,"message":"The access token expired"}}`)
			return
		}
		at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		fmt.Fprintf(w, `{"items":[
			{"track":{"id":"t2","name":"Nude","duration_ms":255000,"artists":[{"id":"a","name":"Radiohead"}],"album":{"id":"b","name":"In Rainbows"}},"played_at":%q},
			{"track":{"id":"t1","name":"Reckoner","duration_ms":290000,"artists":[{"id":"a","name":"Radiohead"}],"album":{"id":"b","name":"In Rainbows"}},"played_at":%q}],
			"next":null,"cursors":{"after":"1","before":"0"},"limit":50}`,
			at.Add(5*time.Minute).Format("2006-01-02T15:04:05.000Z"), at.Format("2006-01-02T15:04:05.000Z"))
	default:
		w.WriteHeader(404)
	}
}

// blocking is a provider that publishes one page, then waits to be
// released before two more.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func (b *blocking) Crawl(ctx context.Context, acct provider.Account, cursor int64, emit func(context.Context, provider.Page) error) (provider.Result, error) {
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	play := func(d time.Duration) provider.Play {
		return provider.Play{PlayedAt: at.Add(d), Artist: "Radiohead", Track: "Reckoner"}
	}
	if err := emit(ctx, provider.Page{Plays: []provider.Play{play(0)}, Cursor: at.Unix()}); err != nil {
		return provider.Result{}, err
	}
	close(b.started)
	select {
	case <-b.release:
	case <-ctx.Done():
		return provider.Result{}, ctx.Err()
	}
	for i := 1; i <= 2; i++ {
		d := time.Duration(i) * time.Minute
		if err := emit(ctx, provider.Page{Plays: []provider.Play{play(d)}, Cursor: at.Add(d).Unix()}); err != nil {
			return provider.Result{}, err
		}
	}
	return provider.Result{}, nil
}

// One crawl per user: "crawl now" during a crawl is refused; deleting the
// user mid-crawl stops the crawl at its next page and schedules nothing.
func TestIntegrationOneCrawlPerUserAndDeleteMidCrawl(t *testing.T) {
	b := &blocking{started: make(chan struct{}), release: make(chan struct{})}
	e := setup(t, map[string]crawler.ProviderEntry{"simulated": {Provider: b, Interval: time.Hour}})
	ctx := testenv.Context(t, time.Minute)
	if _, err := e.control.Register(ctx, crawler.Registration{UserID: "ivy", Provider: "simulated"}); err != nil {
		t.Fatal(err)
	}
	e.runWorker(t)
	select {
	case <-b.started:
	case <-ctx.Done():
		t.Fatal("crawl did not start")
	}
	st, err := e.control.Get(ctx, "ivy")
	if err != nil || st.Schedule.LastStatus != "running" || st.Schedule.RunningTask == "" || st.Schedule.ListensTotal != 1 {
		t.Fatalf("during the crawl: %+v %v", st.Schedule, err)
	}
	if _, err := e.control.CrawlNow(ctx, "ivy"); !errors.Is(err, crawler.ErrBusy) {
		t.Fatalf("crawl now while crawling: %v, want ErrBusy", err)
	}
	if err := e.control.Delete(ctx, "ivy"); err != nil {
		t.Fatal(err)
	}
	close(b.release)
	await(t, 10*time.Second, "crawl of the deleted user ends", func() (bool, string) {
		active, err := e.insp.ListActiveTasks(e.ccfg.Queue)
		return err == nil && len(active) == 0, fmt.Sprintf("%d active, %v", len(active), err)
	})
	scheduled, err := e.insp.ListScheduledTasks(e.ccfg.Queue)
	if err != nil || len(scheduled) != 0 {
		t.Fatalf("a deleted user got a next run: %d %v", len(scheduled), err)
	}
	// The page in flight when the lease was found lost is in Kafka (it was
	// published before the cursor update that failed); the third never is.
	if msgs := testenv.Records(t, e.cfg, string(e.topics.Raw)); len(msgs) != 2 {
		t.Fatalf("%d records, want 2: the crawl did not stop at the deletion", len(msgs))
	}
}

// Secrets never leave the crawl. Carol's Last.fm client, with a
// recognisable API key, points at a closed port: its transport error
// repeats the whole URL, key included. Dave's and Erin's Spotify API
// answers 503 echoing the Bearer token bare (Erin's is one the crawl
// refreshed); Frank's token endpoint answers 500 echoing his refresh token
// and the client's basic credentials. After three attempts each: the
// errors Asynq keeps (and every key of the queue in Redis), the log
// lines, schedules and crawl_runs in PostgreSQL and the control plane's
// status hold none of those secrets, and do hold REDACTED with the host
// and the kind of failure.
func TestIntegrationSecretsNeverLeaveTheCrawl(t *testing.T) {
	addr := providertest.ClosedAddr(t)
	key := "lastfm-key-" + strings.Repeat("4f", 16)
	lf, err := lastfm.New(lastfm.Config{BaseURL: "http://" + addr + "/2.0/", APIKey: key, RequestsPerSecond: -1, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	clientID, clientSecret := "topk-client-id", "spotify-client-secret-0815"
	basic := base64.StdEncoding.EncodeToString([]byte(clientID + ":" + clientSecret))
	echo := &echoingSpotify{fresh: "BQ-fresh-access-for-erin-4711", failRefresh: "AQ-refresh-frank-0042"}
	srv := httptest.NewServer(echo)
	defer srv.Close()
	sp, err := spotify.New(spotify.Config{APIURL: srv.URL + "/v1", TokenURL: srv.URL + "/api/token",
		ClientID: clientID, ClientSecret: clientSecret, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, map[string]crawler.ProviderEntry{"lastfm": {Provider: lf, Interval: time.Hour}, "spotify": {Provider: sp, Interval: time.Hour}})
	logs := &crawler.SyncBuffer{}
	e.workerLog = slog.New(slog.NewJSONHandler(io.MultiWriter(logs, testenvWriter()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := testenv.Context(t, 2*time.Minute)
	regs := []crawler.Registration{
		{UserID: "carol", Provider: "lastfm", ExternalID: "carol-lastfm"},
		{UserID: "dave", Provider: "spotify", AccessToken: "BQ-access-dave-0123456789", RefreshToken: "AQ-refresh-dave-0123456789"},
		{UserID: "erin", Provider: "spotify", RefreshToken: "AQ-refresh-erin-0123456789"},
		{UserID: "frank", Provider: "spotify", RefreshToken: echo.failRefresh},
	}
	secrets := []string{key, clientSecret, basic, echo.fresh}
	for _, r := range regs {
		if _, err := e.control.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, r.AccessToken, r.RefreshToken)
	}
	secrets = slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
	e.runWorker(t)

	// What each user's failure must still say.
	want := map[string][]string{
		"carol": {"api_key=REDACTED", addr, "/2.0/", "user=carol-lastfm", "connection refused"},
		"dave":  {"spotify: HTTP 503", "token REDACTED rejected"},
		"erin":  {"spotify: HTTP 503", "token REDACTED rejected"},
		"frank": {"spotify token refresh: HTTP 500", `"refresh_token":"REDACTED"`, "Basic REDACTED"},
	}
	leaks := func(where, text string, diag ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q: %s", where, s, text)
			}
		}
		for _, d := range diag {
			if !strings.Contains(text, d) {
				t.Errorf("%s lacks %q: %s", where, d, text)
			}
		}
	}
	for user, diag := range want {
		st := e.awaitStatus(t, user, "failed", 3)
		if st.Archived == nil || st.Archived.State != "archived" {
			t.Fatalf("%s: archived task %+v", user, st.Archived)
		}
		// Asynq's copy of the error, as the inspector (and asynqmon) reads it.
		info, err := e.insp.GetTaskInfo(e.ccfg.Queue, st.Archived.ID)
		if err != nil {
			t.Fatal(err)
		}
		leaks(user+": Asynq's last error", info.LastErr, diag...)
		leaks(user+": Asynq's payload", string(info.Payload))
		// PostgreSQL, read with SQL.
		var last, runs string
		if err := e.pool.QueryRow(ctx, `SELECT s.last_error, string_agg(r.error, ' | ') FROM schedules s JOIN crawl_runs r USING (user_id)
			WHERE user_id = $1 GROUP BY s.last_error`, user).Scan(&last, &runs); err != nil {
			t.Fatal(err)
		}
		leaks(user+": schedules.last_error", last, diag...)
		leaks(user+": crawl_runs.error", runs, diag...)
		// The status the admin api returns.
		st, err = e.control.Get(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(st)
		leaks(user+": status", strings.ReplaceAll(string(b), `\"`, `"`), append(diag[:len(diag):len(diag)], `"last_error"`)...)
	}
	if echo.refreshed() == 0 {
		t.Fatal("erin's token was never refreshed: the refreshed-token path was not exercised")
	}
	leaks("the crawler's log", logs.String(), "api_key=REDACTED", "token REDACTED rejected", `\"refresh_token\":\"REDACTED\"`, "crawl failed for good")
	// Every key of the queue in Redis: pending, scheduled, archived tasks
	// with their messages and errors.
	rdb := redis.New(wiring.Redis(e.cfg.Redis))
	defer rdb.Close()
	var dump strings.Builder
	iter := rdb.Scan(ctx, 0, "asynq:{"+e.ccfg.Queue+"}:*", 100).Iterator()
	keys := 0
	for iter.Next(ctx) {
		keys++
		k := iter.Val()
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "hash":
			fmt.Fprint(&dump, rdb.HGetAll(ctx, k).Val())
		case "zset":
			fmt.Fprint(&dump, rdb.ZRange(ctx, k, 0, -1).Val())
		case "list":
			fmt.Fprint(&dump, rdb.LRange(ctx, k, 0, -1).Val())
		case "set":
			fmt.Fprint(&dump, rdb.SMembers(ctx, k).Val())
		case "string":
			fmt.Fprint(&dump, rdb.Get(ctx, k).Val())
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
	}
	if err := iter.Err(); err != nil || keys == 0 {
		t.Fatalf("scanned %d keys: %v", keys, err)
	}
	leaks("the queue's keys in Redis", dump.String(), "api_key=REDACTED")
}

// testenvWriter is where testenv.Logger writes: stderr with -v.
func testenvWriter() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// echoingSpotify is a careless Spotify: the API answers 503 with the
// Bearer token in the message; the token endpoint refreshes every token
// to fresh, except failRefresh, for which it answers 500 echoing the form
// and the Authorization header.
type echoingSpotify struct {
	fresh, failRefresh string
	mu                 sync.Mutex
	refreshes          int
}

func (s *echoingSpotify) refreshed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

func (s *echoingSpotify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/token":
		_ = r.ParseForm()
		if rt := r.Form.Get("refresh_token"); rt == s.failRefresh {
			w.WriteHeader(500)
			fmt.Fprintf(w, `{"error":"server_error","refresh_token":%q,"seen":%q}`, rt, r.Header.Get("Authorization"))
			return
		}
		s.mu.Lock()
		s.refreshes++
		s.mu.Unlock()
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, s.fresh)
	case "/v1/me/player/recently-played":
		w.WriteHeader(503)
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		fmt.Fprintf(w, `{"error":{"status":503,"message":"token %s rejected"}}`, token)
	default:
		w.WriteHeader(404)
	}
}
