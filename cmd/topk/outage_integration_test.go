//go:build integration

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/store/cassandra"
)

// tcpProxy forwards a loopback port to a server while it is open; closed,
// the port refuses connections, and cut also drops the open ones: a server
// that goes away and comes back, without touching the shared stack.
type tcpProxy struct {
	t      *testing.T
	target string
	port   int

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, port: testenv.FreePort(t), conns: map[net.Conn]struct{}{}}
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// open starts forwarding.
func (p *tcpProxy) open() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", p.addr())
	if err != nil {
		p.t.Fatalf("proxy %s: %v", p.addr(), err)
	}
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	p.t.Logf("proxy %s → %s open", p.addr(), p.target)
}

func (p *tcpProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close(); c.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
	s.Close()
}

// cut closes the port and every connection through it.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
		p.t.Logf("proxy %s → %s cut", p.addr(), p.target)
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func httpGet(url string) (int, string) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHTTP polls url until it answers want (and, if set, a body containing
// contains), failing the test after d or when p exits.
func waitHTTP(t *testing.T, p *testenv.Process, url string, want int, contains string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, body := httpGet(url)
		if code == want && strings.Contains(body, contains) {
			return body
		}
		p.RequireRunning(t)
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %s after %v, want %d with %q", url, code, body, d, want, contains)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLogged probes readyz (so the readiness checks run and log) until
// p's output has a line matching re, failing the test after d or when p
// exits.
func waitLogged(t *testing.T, p *testenv.Process, readyz, re string, d time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for {
		httpGet(readyz)
		if rx.MatchString(p.Output()) {
			return
		}
		p.RequireRunning(t)
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %q after %v:\n%s", re, d, p.Tail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitExit waits for p to exit by itself within d and returns its output;
// the exit must be non-zero.
func waitExit(t *testing.T, p *testenv.Process, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		exited, err := p.Exited()
		if exited {
			if err == nil {
				t.Fatalf("topk %s exited with status 0:\n%s", p.Name(), p.Tail(30))
			}
			return p.Output()
		}
		if time.Now().After(deadline) {
			t.Fatalf("topk %s still running after %v:\n%s", p.Name(), d, p.Tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func requireAll(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func countLines(out, s string) int { return strings.Count(out, s) }

// apiViews are the api's two Goka views, as their log lines name them
// (the per-user charts' and the sitewide charts'): each says once that
// Kafka is down and once that it is back.
var apiViews = []string{"component=view ", "component=sitewide-view "}

// countOf counts the lines of out holding both s and component.
func countOf(out, s, component string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) && strings.Contains(line, component) {
			n++
		}
	}
	return n
}

// apiConfig is cfg for a `topk api` of its own: a free address, a dev
// token key in a directory of the test's.
func apiConfig(t *testing.T, cfg config.Config) config.Config {
	cfg.API.Addr = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cfg.Crawler.DevMode = true
	cfg.RuntimeDir = t.TempDir()
	cfg.LogLevel = "info"
	return cfg
}

// `topk api` while Kafka is away: it starts and serves /healthz (200) and
// /readyz (503, the view reconnecting) instead of exiting; when Kafka
// answers within the outage limit its view recovers and it becomes ready,
// having said so once each way in the log; when Kafka stays away past the
// limit it exits non-zero with the reason.
func TestIntegrationOutageAPI(t *testing.T) {
	base := testenv.Config(t)
	testenv.Topics(t, base) // on the shared broker; the proxy leads to it

	t.Run("kafka back within the limit", func(t *testing.T) {
		px := newProxy(t, base.Kafka.Brokers[0])
		cfg := apiConfig(t, base)
		cfg.Kafka.Brokers = []string{px.addr()} // closed until px.open
		cfg.Pipeline.OutageLimit = 60_000 * time.Millisecond
		p := testenv.Start(t, cfg, "api")
		url := "http://" + cfg.API.Addr
		waitHTTP(t, p, url+"/healthz", 200, "", 30*time.Second)
		// /readyz names the failing check; why it fails (and the broker's
		// address) is in the log.
		if body := waitHTTP(t, p, url+"/readyz", 503, `"view":"error"`, 15*time.Second); strings.Contains(body, px.addr()) {
			t.Errorf("/readyz shows the broker's address: %s", body)
		}
		waitLogged(t, p, url+"/readyz", `level=WARN msg="readiness check failing[^"]*" component=api check=view required=true .*err="reconnecting: kafka down for`, 15*time.Second)
		time.Sleep(3 * time.Second) // a few rebuilds
		p.RequireRunning(t)
		if code, _ := httpGet(url + "/readyz"); code != 503 {
			t.Fatalf("/readyz %d while Kafka is away", code)
		}
		px.open()
		start := time.Now()
		waitHTTP(t, p, url+"/readyz", 200, "", 40*time.Second)
		t.Logf("ready %v after Kafka answered", time.Since(start).Round(100*time.Millisecond))
		_, metrics := httpGet(url + "/metrics")
		m := regexp.MustCompile(`(?m)^topk_view_restarts_total (\d+)`).FindStringSubmatch(metrics)
		if m == nil || m[1] == "0" {
			t.Errorf("topk_view_restarts_total %v, want at least one rebuild", m)
		}
		out := p.Output()
		for _, view := range apiViews {
			if n := countOf(out, "kafka down: retrying", view); n != 1 {
				t.Errorf("%d lines of %s saying Kafka is down, want 1:\n%s", n, view, out)
			}
			if n := countOf(out, "kafka back", view); n != 1 {
				t.Errorf("%d lines of %s saying Kafka is back, want 1:\n%s", n, view, out)
			}
		}
		p.RequireRunning(t)
	})

	t.Run("kafka away past the limit", func(t *testing.T) {
		cfg := apiConfig(t, base)
		cfg.Kafka.Brokers = []string{"127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}
		cfg.Pipeline.OutageLimit = 8000 * time.Millisecond
		start := time.Now()
		p := testenv.Start(t, cfg, "api")
		url := "http://" + cfg.API.Addr
		waitHTTP(t, p, url+"/healthz", 200, "", 30*time.Second)
		waitHTTP(t, p, url+"/readyz", 503, `"view":"error"`, 15*time.Second)
		waitLogged(t, p, url+"/readyz", `check=view .*err="reconnecting: kafka down for`, 15*time.Second)
		out := waitExit(t, p, 60*time.Second)
		if took := time.Since(start); took < 8*time.Second {
			t.Errorf("exited after %v, before the 8 s limit", took)
		}
		// Both views wait out the same limit; whichever gives up first
		// ends the process, and names itself.
		requireAll(t, out, "topk api failed", "longer than the outage limit of 8s", "connection refused")
		if !strings.Contains(out, "api-view: views: kafka down for") && !strings.Contains(out, "api-sitewide-view: sitewide view: kafka down for") {
			t.Errorf("output names neither view as giving up:\n%s", out)
		}
	})
}

// `topk api` whose broker is killed with -9 and started again: it stays up,
// /readyz is 503 while Kafka is away and 200 again once the view has
// recovered, and the recent day it held is served from the view before
// and after (the rebuilt view keeps its days and resumes from its offsets).
// The broker is the test's own (testenv.StartKafka).
func TestIntegrationOutageAPIBrokerRestart(t *testing.T) {
	k := testenv.StartKafka(t)
	cfg := testenv.Config(t)
	k.Configure(&cfg)
	testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)
	cfg = apiConfig(t, cfg)
	cfg.Pipeline.OutageLimit = 180_000 * time.Millisecond
	p := testenv.Start(t, cfg, "api")
	url := "http://" + cfg.API.Addr
	waitHTTP(t, p, url+"/readyz", 200, "", 60*time.Second)

	// One user-day straight into the recent topic (what the view reads), as
	// the aggregator writes it.
	// The chart asks for that date, not range=today: a run crossing
	// midnight UTC would otherwise ask for the next day (a stop-19 failure).
	today := time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour)
	d := &aggregator.Day{}
	for i, track := range []string{"Reckoner", "Nude", "Reckoner"} {
		d.Add(aggregator.PlayOf(listen.Listen{UserID: "alice", PlayedAt: today.Add(-time.Duration(i) * time.Minute),
			ArtistName: "Radiohead", TrackName: track, AlbumName: "In Rainbows"}))
	}
	sinktest.Send(t, sinktest.Producer(t, cfg, false), []*sarama.ProducerMessage{{
		Topic: string(listen.NewTopics(cfg.Namespace).Recent), Key: sarama.StringEncoder(listen.DayKey("alice", today)), Value: sarama.ByteEncoder(d.Encode()),
	}})
	day := today.Format(listen.DayLayout)
	chart := url + "/v1/users/alice/top/tracks?from=" + day + "&to=" + day
	waitHTTP(t, p, chart, 200, `"plays":2`, 30*time.Second)

	k.Kill9()
	waitHTTP(t, p, url+"/readyz", 503, `"view":"error"`, 60*time.Second)
	waitLogged(t, p, url+"/readyz", `check=view .*err="reconnecting: kafka down for`, 60*time.Second)
	time.Sleep(5 * time.Second)
	p.RequireRunning(t)
	k.Start()
	start := time.Now()
	waitHTTP(t, p, url+"/readyz", 200, "", 90*time.Second)
	t.Logf("ready %v after the broker answered", time.Since(start).Round(100*time.Millisecond))
	body := waitHTTP(t, p, chart, 200, `"plays":2`, 10*time.Second)
	if !strings.Contains(body, `"source":"view"`) {
		t.Errorf("chart after the restart not from the view: %s", body)
	}
	out := p.Output()
	for _, view := range apiViews {
		if n := countOf(out, "kafka down: retrying", view); n != 1 {
			t.Errorf("%d lines of %s saying Kafka is down, want 1 (one outage)", n, view)
		}
	}
	p.RequireRunning(t)
}

// `topk raw-writer` and Cassandra: started while Cassandra is away it waits
// (/healthz 200, /readyz 503) and starts writing once it answers; a
// Cassandra outage while running stalls the writes (/readyz 503), which
// all land once it is back, the process never exiting; an outage past the
// limit ends it non-zero with the reason. Cassandra is reached through a
// proxy the test opens and cuts; a second writer is given a port nothing
// listens on.
func TestIntegrationOutageRawWriter(t *testing.T) {
	base := testenv.Config(t)
	topics := testenv.Topics(t, base)
	testenv.Keyspace(t, base)
	direct, err := cassandra.Connect(t.Context(), wiring.Cassandra(base.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	producer := sinktest.Producer(t, base, false)
	day := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	sent := 0
	send := func(n int) {
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			l := listen.Listen{UserID: "outage", PlayedAt: day.Add(time.Duration(sent) * time.Second), ArtistName: "A", TrackName: fmt.Sprintf("T%d", sent)}
			b, err := listen.Codec{}.Encode(l)
			if err != nil {
				t.Fatal(err)
			}
			msgs[i] = &sarama.ProducerMessage{Topic: string(topics.Valid), Key: sarama.StringEncoder(l.Key()), Value: sarama.ByteEncoder(b)}
			sent++
		}
		sinktest.Send(t, producer, msgs)
	}
	waitRows := func(p *testenv.Process, want int, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			var n int
			err := direct.Query(`SELECT count(*) FROM raw_listens WHERE user_id = ? AND day = ?`, "outage", day).Scan(&n)
			if err == nil && n == want {
				return
			}
			p.RequireRunning(t)
			if time.Now().After(deadline) {
				t.Fatalf("%d rows (%v) after %v, want %d", n, err, d, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	t.Run("cassandra away, back, away past the limit", func(t *testing.T) {
		px := newProxy(t, fmt.Sprintf("%s:%d", base.Cassandra.Hosts[0], base.Cassandra.Port))
		cfg := base
		cfg.Cassandra.Hosts, cfg.Cassandra.Port = []string{"127.0.0.1"}, px.port
		cfg.Ops.RawWriter = testenv.FreePort(t)
		cfg.Pipeline.OutageLimit = 30_000 * time.Millisecond
		cfg.LogLevel = "info"
		ops := "http://127.0.0.1:" + strconv.Itoa(cfg.Ops.RawWriter)
		p := testenv.Start(t, cfg, "raw-writer")

		// Away at start.
		waitHTTP(t, p, ops+"/healthz", 200, "", 30*time.Second)
		waitHTTP(t, p, ops+"/readyz", 503, `"raw-writer":"error"`, 20*time.Second)
		waitLogged(t, p, ops+"/readyz", `check=raw-writer .*err="waiting for a session: cassandra down for`, 20*time.Second)
		send(300)
		time.Sleep(2 * time.Second)
		px.open()
		waitRows(p, 300, 60*time.Second)
		waitHTTP(t, p, ops+"/readyz", 200, "", 30*time.Second)

		// Away while running, back within the limit: nothing lost.
		px.cut()
		send(300)
		waitHTTP(t, p, ops+"/readyz", 503, `"raw-writer":"error"`, 30*time.Second)
		waitLogged(t, p, ops+"/readyz", `check=raw-writer .*batch failed`, 30*time.Second)
		time.Sleep(5 * time.Second)
		p.RequireRunning(t)
		px.open()
		start := time.Now()
		waitRows(p, 600, 90*time.Second)
		t.Logf("writes resumed %v after Cassandra answered", time.Since(start).Round(100*time.Millisecond))
		waitHTTP(t, p, ops+"/readyz", 200, "", 30*time.Second)
		out := p.Output()
		if n := countLines(out, "writes down: retrying"); n < 1 {
			t.Errorf("no line saying the writes are failing:\n%s", out)
		}
		if n := countLines(out, "writes back"); n < 1 {
			t.Errorf("no line saying the writes work again:\n%s", out)
		}

		// Away past the limit: exit non-zero naming the partition's writes.
		px.cut()
		send(50)
		cut := time.Now()
		out = waitExit(t, p, 3*time.Minute)
		if took := time.Since(cut); took < 30*time.Second {
			t.Errorf("exited %v after Cassandra went away, before the 30 s limit", took)
		}
		requireAll(t, out, "topk raw-writer failed", "sink raw_writer: partition", "left unmarked", "writes down for", "longer than the outage limit of 30s")
	})

	t.Run("cassandra never there", func(t *testing.T) {
		cfg := base
		cfg.Cassandra.Port = testenv.FreePort(t)
		cfg.Ops.RawWriter = testenv.FreePort(t)
		cfg.Pipeline.OutageLimit = 8000 * time.Millisecond
		cfg.LogLevel = "info"
		ops := "http://127.0.0.1:" + strconv.Itoa(cfg.Ops.RawWriter)
		start := time.Now()
		p := testenv.Start(t, cfg, "raw-writer")
		waitHTTP(t, p, ops+"/healthz", 200, "", 30*time.Second)
		waitHTTP(t, p, ops+"/readyz", 503, `"raw-writer":"error"`, 15*time.Second)
		out := waitExit(t, p, 60*time.Second)
		if took := time.Since(start); took < 8*time.Second {
			t.Errorf("exited after %v, before the 8 s limit", took)
		}
		requireAll(t, out, "topk raw-writer failed", "raw-writer: cassandra down for", "longer than the outage limit of 8s")
		if n := countLines(out, "cassandra down: retrying"); n != 1 {
			t.Errorf("%d lines saying Cassandra is down, want 1:\n%s", n, out)
		}
	})
}
