package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
	"github.com/topk-charts/topk/ops"
)

// doFrom serves one GET from a client address, with extra headers.
func (f *fixture) doFrom(path, remote string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.Echo().ServeHTTP(rec, req)
	return rec
}

func errorCode(t *testing.T, body string) Code {
	t.Helper()
	var e map[string]Error
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return e["error"].Code
}

// Each client has a bucket: its requests to the public read routes carry
// X-RateLimit-Limit, -Remaining, -Reset-In and -Reset; past the burst
// it gets 429 with Retry-After and a JSON error, another client is not
// affected, other routes are not limited, X-Forwarded-For counts only
// from a trusted proxy, and TOPK_DEV_MODE's loopback exemption leaves
// loopback clients alone.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true, api: func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.5, Burst: 3, ReadsPerToken: -1} // every request one token: TestRateLimitChargesReads
	}})
	path := "/v1/users/alice/top/tracks?range=7d"
	start := time.Now().Unix()
	for i := range 3 {
		rec := f.doFrom(path, "192.0.2.1:4000")
		h := rec.Header()
		if rec.Code != 200 || h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) || h.Get("Retry-After") != "" {
			t.Fatalf("request %d: %d %v", i+1, rec.Code, h)
		}
		resetIn, _ := strconv.Atoi(h.Get("X-RateLimit-Reset-In"))
		reset, _ := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
		if want := 2 * (i + 1); resetIn < want-1 || resetIn > want { // a token per 2 s
			t.Fatalf("request %d: Reset-In %d, want about %d", i+1, resetIn, want)
		}
		if reset < start+int64(resetIn) || reset > time.Now().Unix()+int64(resetIn) {
			t.Fatalf("request %d: Reset %d, Reset-In %d, now %d", i+1, reset, resetIn, start)
		}
	}
	for _, p := range []string{path, "/v1/users/alice/activity", "/v1/users/alice/listens", "/v1/users?prefix=a"} {
		rec := f.doFrom(p, "192.0.2.1:4001") // another connection of the same client
		if rec.Code != http.StatusTooManyRequests || errorCode(t, rec.Body.String()) != CodeRateLimited {
			t.Fatalf("%s over the burst: %d %s", p, rec.Code, rec.Body.String())
		}
		if ra, _ := strconv.Atoi(rec.Header().Get("Retry-After")); ra < 1 || ra > 2 || rec.Header().Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("%s: 429 headers %v", p, rec.Header())
		}
	}
	if rec := f.doFrom(path, "192.0.2.1:4000", "X-Forwarded-For", "203.0.113.9"); rec.Code != 429 {
		t.Fatalf("X-Forwarded-For from an untrusted peer changed the client: %d", rec.Code)
	}
	if rec := f.doFrom(path, "192.0.2.2:4000"); rec.Code != 200 || rec.Header().Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("another client: %d %v", rec.Code, rec.Header())
	}
	if rec := f.doFrom("/healthz", "192.0.2.1:4000"); rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") != "" {
		t.Fatalf("/healthz is not rate limited: %d %v", rec.Code, rec.Header())
	}
	if rec := f.doFrom(path, "127.0.0.1:5000"); rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("loopback without the exemption: %d %v", rec.Code, rec.Header())
	}
	_, metrics := f.get(t, "/metrics")
	if !strings.Contains(metrics, `topk_http_rejected_total{reason="rate_limit"} 5`) {
		t.Errorf("metrics lack 5 rate-limit rejections:\n%s", grepLines(metrics, "rejected"))
	}
	if !strings.Contains(metrics, `topk_http_requests_total{code="429",method="GET",route="/v1/users/:user/top/:entity",source="none"} 2`) {
		t.Errorf("the 429s are not counted by route:\n%s", grepLines(metrics, `code="429"`))
	}

	// Behind a trusted proxy, X-Forwarded-For names the client; from
	// anyone else it is ignored.
	p := newFixture(t, fixtureOpts{recovered: true, api: func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.5, Burst: 1, ReadsPerToken: -1}
		c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.10"}
	}})
	for _, c := range []struct {
		remote, xff string
		want        int
	}{
		{"10.1.1.1:1", "203.0.113.1", 200}, {"10.1.1.2:1", "203.0.113.2", 200}, {"192.0.2.10:1", "203.0.113.3", 200},
		{"10.1.1.1:2", "203.0.113.1", 429},                                         // the same client through another proxy connection
		{"192.0.2.11:1", "203.0.113.4", 200}, {"192.0.2.11:2", "203.0.113.5", 429}, // an untrusted peer is the client
		{"10.1.1.1:3", "198.51.100.7, 203.0.113.6", 200}, {"10.1.1.1:4", "198.51.100.7, 203.0.113.6", 429}, // the last untrusted hop
	} {
		if rec := p.doFrom(path, c.remote, "X-Forwarded-For", c.xff); rec.Code != c.want {
			t.Errorf("peer %s, X-Forwarded-For %s: %d, want %d", c.remote, c.xff, rec.Code, c.want)
		}
	}

	// TOPK_DEV_MODE: loopback clients are not limited and get no headers.
	d := newFixture(t, fixtureOpts{recovered: true, api: func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.5, Burst: 1, ExemptLoopback: true}
	}})
	for _, remote := range []string{"127.0.0.1:1", "127.0.0.2:1", "[::1]:1"} {
		for range 5 {
			if rec := d.doFrom(path, remote); rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") != "" {
				t.Fatalf("dev mode, %s: %d %v", remote, rec.Code, rec.Header())
			}
		}
	}
	if d.doFrom(path, "192.0.2.1:1").Code != 200 || d.doFrom(path, "192.0.2.1:1").Code != 429 {
		t.Fatal("dev mode exempted a client off loopback")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// gate is a charts.Store whose Items calls wait until released or until
// their context ends, which it reports.
type gate struct {
	*chartstest.Store
	started   chan struct{}
	release   chan struct{}
	cancelled chan error
	once      sync.Once
}

func newGate(s *chartstest.Store) *gate {
	return &gate{Store: s, started: make(chan struct{}, 100), release: make(chan struct{}), cancelled: make(chan error, 100)}
}

func (g *gate) Items(ctx context.Context, p topk.Period, user string, e topk.Entity) ([]topk.Item, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
		return g.Store.Items(ctx, p, user, e)
	case <-ctx.Done():
		g.cancelled <- ctx.Err()
		return nil, ctx.Err()
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// Every Cassandra slot taken: a request needing one more is a 503 with
// Retry-After: 1 within the short wait, while ranges of the view answer
// (named by the range's spellings: the user's all-time items are
// Cassandra's); the refusals are counted.
func TestCassandraBusyIs503(t *testing.T) {
	var g *gate
	f := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute,
		store: func(s *chartstest.Store) charts.Store { g = newGate(s); return g },
		svc:   func(c *charts.Config) { c.MaxCassandra, c.BusyWait = 1, 20*time.Millisecond },
	})
	defer g.open()
	held := make(chan int, 1)
	go func() { held <- f.do("/v1/users/alice/top/tracks?from=2024-01-01&to=2024-12-31").Code }()
	<-g.started // the first request holds the only slot
	start := time.Now()
	rec := f.do("/v1/users/alice/top/artists?from=2025-01-01&to=2025-06-30")
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || errorCode(t, rec.Body.String()) != CodeUnavailable {
		t.Fatalf("a request over the bound: %d %v %s", rec.Code, rec.Header(), rec.Body.String())
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the 503 took %v", d)
	}
	if rec := f.do("/v1/users/alice/top/artists?range=7d"); rec.Code != 200 {
		t.Fatalf("a range of the view while Cassandra is busy: %d", rec.Code)
	}
	g.open()
	if code := <-held; code != 200 {
		t.Fatalf("the request holding the slot: %d", code)
	}
	f.svc.Settle() // the names' background fills it started end
	if rec := f.do("/v1/users/alice/top/artists?from=2025-01-01&to=2025-06-30"); rec.Code != 200 {
		t.Fatalf("after the slot was freed: %d", rec.Code)
	}
	_, metrics := f.get(t, "/metrics")
	for _, want := range []string{`topk_http_rejected_total{reason="cassandra_busy"} 1`, `topk_api_cassandra_busy_total{fill="request"} 1`,
		`topk_api_top_range_names_total 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s: %s", want, grepLines(metrics, "busy_total")+grepLines(metrics, "range_names"))
		}
	}
}

// A client that hangs up cancels the Cassandra reads its request started
// (no other request waits for them): over real HTTP, the store sees its
// context end.
func TestClientGoneCancelsFill(t *testing.T) {
	var g *gate
	f := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute,
		store: func(s *chartstest.Store) charts.Store { g = newGate(s); return g },
	})
	defer g.open()
	hs := httptest.NewServer(f.srv.Echo())
	defer hs.Close()
	ctx, hangUp := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/v1/users/alice/top/tracks?from=2024-01-01&to=2024-12-31", nil)
	errs := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	<-g.started
	hangUp()
	if err := <-errs; err == nil {
		t.Fatal("the request finished")
	}
	select {
	case err := <-g.cancelled:
		if err != context.Canceled {
			t.Fatalf("the store's context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the store's read went on after the client hung up")
	}
	if _, metrics := f.get(t, "/metrics"); !strings.Contains(metrics, "topk_api_cache_fills_cancelled_total 1") {
		t.Fatalf("fills cancelled:\n%s", grepLines(metrics, "cancelled"))
	}
}

// The server's timeouts: a client that never finishes its headers is
// cut after ReadHeader, an idle kept-alive connection after Idle.
func TestServerTimeouts(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{Addr: "127.0.0.1:0", Registerer: reg, Gatherer: reg,
		Timeouts: Timeouts{ReadHeader: 200 * time.Millisecond, Idle: 300 * time.Millisecond}}, ops.NewLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { stop(); <-done }()
	if s.cfg.Timeouts.Read != DefaultTimeouts.Read || s.cfg.Timeouts.Write != DefaultTimeouts.Write {
		t.Fatalf("zero timeouts not defaulted: %+v", s.cfg.Timeouts)
	}

	closedAfter := func(c net.Conn) time.Duration {
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c) // until the server closes (or the 5 s deadline)
		return time.Since(start)
	}
	slow, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_, _ = slow.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")) // headers never end
	if d := closedAfter(slow); d > 2*time.Second {
		t.Fatalf("a request whose headers never end kept its connection %v", d)
	}

	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, r)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("an idle kept-alive connection stayed open %v", d)
	}
}

// A request that reads Cassandra costs its client one more read token
// per 4 reads past the first 4 (a tally's partitions taken up front,
// other reads after the answer, when the bucket may go into debt), from
// the client's read bucket, not the bucket of its requests; a chart the
// view serves costs one request token (its names' fill runs in the
// background, for nobody's account).
func TestRateLimitChargesReads(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute, api: func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.001, Burst: 40, ReadBurst: 40}
	}})
	const client = "192.0.2.7:4000"
	if r := remaining(t, f.doFrom("/v1/users/alice/top/tracks?range=7d", client)); r != 39 {
		t.Fatalf("first request: %d remaining, want 39", r)
	}
	if r := remaining(t, f.doFrom("/v1/users/alice/top/tracks?range=7d", client)); r != 38 || charged(t, f) != 0 {
		t.Fatalf("a view-served chart: %d remaining, %v charged; want 38, 0", r, charged(t, f))
	}
	// Two years of custom range, older than the view: Cassandra only.
	if r := remaining(t, f.doFrom("/v1/users/alice/top/artists?from=2023-01-15&to=2025-11-20", client)); r != 37 {
		t.Fatalf("the Cassandra range's own answer: %d remaining, want 37", r)
	}
	extra := charged(t, f)
	t.Logf("a two-year Cassandra-only range: %v read tokens charged beside its own", extra)
	if extra < 1 {
		t.Fatalf("a two-year Cassandra range charged %v tokens, want at least 1", extra)
	}
	if r := remaining(t, f.doFrom("/v1/users/alice/top/tracks?range=7d", client)); r != 36 {
		t.Fatalf("after the charge: %d request tokens remaining, want 36 (reads are paid from the other bucket)", r)
	}
}

// A Cassandra range whose reads cost more read tokens than the client
// has left is refused with 429 before anything is read; one that costs
// more than a full read bucket is admitted with a full one and leaves it
// in debt: a burst of expensive ranges cannot all start at once, whatever
// the request bucket holds.
func TestRateLimitAdmitsReadsUpFront(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute, api: func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.001, Burst: 40, ReadBurst: 2}
	}})
	const client = "192.0.2.8:4000"
	// Costs more than the 2 read tokens of a full bucket: admitted, in debt.
	if r := remaining(t, f.doFrom("/v1/users/alice/top/artists?from=2023-01-15&to=2025-11-20", client)); r != 39 {
		t.Fatalf("the first Cassandra range: %d request tokens remaining, want 39", r)
	}
	if extra := charged(t, f); extra <= 2 {
		t.Fatalf("the first Cassandra range charged %v read tokens, want more than the bucket's 2", extra)
	}
	f.svc.Settle()
	f.store.ResetReads()
	rec := f.doFrom("/v1/users/alice/top/tracks?from=2023-01-15&to=2025-11-20", client)
	if rec.Code != http.StatusTooManyRequests || errorCode(t, rec.Body.String()) != CodeRateLimited || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a range costing more than the read tokens left: %d %v %s", rec.Code, rec.Header(), rec.Body.String())
	}
	if !strings.Contains(rec.Body.String(), "partitions") {
		t.Errorf("the 429 does not say why: %s", rec.Body.String())
	}
	if r := f.store.AllReads(); r["month_items"]+r["year_items"]+r["day_items"] != 0 {
		t.Errorf("the refused range read %v", r)
	}
	// View-served charts still answer: their request tokens are left.
	if r := remaining(t, f.doFrom("/v1/users/alice/top/tracks?range=7d", client)); r != 37 {
		t.Fatalf("a view-served chart after the refusal: %d request tokens remaining, want 37", r)
	}
	// Another client with its tokens reads it.
	if rec := f.doFrom("/v1/users/alice/top/tracks?from=2023-01-15&to=2025-11-20", "192.0.2.9:4000"); rec.Code != 200 {
		t.Fatalf("another client: %d %s", rec.Code, rec.Body.String())
	}
}

// remaining is an answer's X-RateLimit-Remaining; the answer must be a 200.
func remaining(t *testing.T, rec *httptest.ResponseRecorder) int {
	t.Helper()
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	n, err := strconv.Atoi(rec.Header().Get("X-RateLimit-Remaining"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// charged is topk_http_rate_tokens_charged_total.
func charged(t *testing.T, f *fixture) float64 {
	t.Helper()
	_, metrics := f.get(t, "/metrics")
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, "topk_http_rate_tokens_charged_total "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no topk_http_rate_tokens_charged_total in /metrics")
	return 0
}

// A client with TOPK_API_RATE_IN_FLIGHT requests in progress gets 429 for
// one more, without spending a token; another client does not.
func TestRateLimitInFlight(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	entered := make(chan topk.Entity, 64)
	f := newFixture(t, fixtureOpts{recovered: true, ttl: time.Minute, api: func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 0.001, Burst: 40, InFlight: 2}
	}, store: func(s *chartstest.Store) charts.Store {
		return blockingStore{Store: s, entered: entered, release: release}
	}})
	const client = "192.0.2.5:4000"
	done := make(chan int, 2)
	for _, e := range []string{"artists", "albums"} { // Cassandra only: their reads block
		go func() { done <- f.doFrom("/v1/users/alice/top/"+e+"?from=2023-01-15&to=2023-11-20", client).Code }()
	}
	seen := map[topk.Entity]bool{}
	for len(seen) < 2 {
		seen[<-entered] = true
	}
	rec := f.doFrom("/v1/users/alice/top/tracks?range=7d", client)
	if rec.Code != http.StatusTooManyRequests || errorCode(t, rec.Body.String()) != CodeRateLimited || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("a third request in progress: %d %v %s", rec.Code, rec.Header(), rec.Body.String())
	}
	if rec := f.doFrom("/v1/users/alice/top/tracks?range=7d", "192.0.2.6:4000"); rec.Code != 200 {
		t.Fatalf("another client: %d", rec.Code)
	}
	free()
	for range 2 {
		if code := <-done; code != 200 {
			t.Fatalf("a blocked request: %d", code)
		}
	}
	rec = f.doFrom("/v1/users/alice/top/tracks?range=7d", client)
	if rec.Code != 200 {
		t.Fatalf("after the others were answered: %d", rec.Code)
	}
	_, metrics := f.get(t, "/metrics")
	if !strings.Contains(metrics, `topk_http_rejected_total{reason="in_flight"} 1`) {
		t.Errorf("the refusal is not counted:\n%s", grepLines(metrics, "rejected"))
	}
	// Three requests allowed (the two blocked, this one); the refused
	// one took nothing (reads are paid from the other bucket).
	if r, _ := strconv.Atoi(rec.Header().Get("X-RateLimit-Remaining")); r != 40-3 {
		t.Errorf("%d tokens left, want %d (40 - 3 requests): the refused request took one?", r, 40-3)
	}
}

// blockingStore blocks every Items read until release is closed, telling
// entered its entity first.
type blockingStore struct {
	charts.Store
	entered chan topk.Entity
	release chan struct{}
}

func (s blockingStore) Items(ctx context.Context, p topk.Period, user string, e topk.Entity) ([]topk.Item, error) {
	select {
	case s.entered <- e:
	default:
	}
	<-s.release
	return s.Store.Items(ctx, p, user, e)
}
