//go:build integration

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/redis"
)

// `topk all` as `make run` starts it (a status interval, the whole log in
// a file), on a namespace, keyspace, database and queue of the test's own
// with three simulated users: the terminal shows status lines and
// nothing at info level — no line per crawl or per request — while the
// file has the whole log; the status line carries every figure, with
// numbers that agree with the metrics the api serves and settle at no lag.
func TestIntegrationStatusLine(t *testing.T) {
	cfg := apiConfig(t, testenv.Config(t))
	cfg.Ops.Ingest = testenv.FreePort(t)
	cfg.Pipeline.StateDir = filepath.Join(cfg.RuntimeDir, "state")
	cfg.Crawler.SimulatedHistory = 6 * time.Hour
	cfg.Crawler.SimulatedInterval = time.Hour
	cfg.LogFile = filepath.Join(cfg.RuntimeDir, "logs", "topk.log")
	cfg.StatusInterval = time.Second
	testenv.Keyspace(t, cfg)
	testenv.Database(t, cfg)
	testenv.Topics(t, cfg) // and, when the test ends, every topic of the namespace
	t.Cleanup(func() {
		ro := redis.Options(wiring.Redis(cfg.Redis))
		insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: ro.Addr, Password: ro.Password, DB: ro.DB})
		_ = insp.DeleteQueue(crawler.Queue(cfg.Namespace), true)
		insp.Close()
	})
	runToEnd(t, cfg, "migrate", "postgres")
	runToEnd(t, cfg, "seed", "--users", "3")

	p := testenv.Start(t, cfg, "all")
	url := "http://" + cfg.API.Addr
	waitHTTP(t, p, url+"/healthz", 200, "", 60*time.Second)

	// Requests while the history is imported, until a status line says
	// that everything is counted (no lag, nothing coming in) and saw
	// requests in its interval.
	var settled map[string]string
	var counted float64
	deadline := time.Now().Add(2 * time.Minute)
	for settled == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no settled status line with requests after 2 minutes; terminal:\n%s", p.Tail(20))
		}
		p.RequireRunning(t)
		for range 5 {
			// 404 until sim-0001's first listens are counted.
			if code, body := httpGet(url + "/v1/users/sim-0001/top/artists?range=30d&k=5"); code != 200 && code != 404 {
				t.Fatalf("top artists: %d %s", code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		lines := statusLines(p.Output())
		if len(lines) < 2 {
			continue
		}
		prev, last := lines[len(lines)-2], lines[len(lines)-1]
		_, metricsBody := httpGet(url + "/metrics")
		counted = metricValue(metricsBody, `topk_aggregator_listens_total{outcome="counted"}`)
		if last["counted"] != "0" && last["counted"] == prev["counted"] && last["counted"] == strconv.Itoa(int(counted)) &&
			last["in/s"] == "0" && last["api.req/s"] != "0" && last["api.p99_ms"] != "-" && noLag(last) {
			settled = last
		}
	}
	t.Logf("settled status line: %v", settled)
	if code, body := httpGet(url + "/v1/users/sim-0001/top/artists?range=30d&k=5"); code != 200 {
		t.Errorf("top artists once settled: %d %s", code, body)
	}

	// Every figure is there, sane.
	for _, k := range []string{"in/s", "counted", "counted/s", "dead_lettered", "lag.ingest", "lag.aggregator",
		"lag.raw_writer", "lag.flusher", "lag.view", "crawled", "crawl_errors", "api.req/s", "api.p99_ms"} {
		if _, ok := settled[k]; !ok {
			t.Errorf("the status line lacks %s: %v", k, settled)
		}
	}
	if settled["dead_lettered"] != "0" || settled["crawled"] != "3" || settled["crawl_errors"] != "0" || settled["counted/s"] != "0" {
		t.Errorf("status line %v: want no dead letter, 3 crawls, none failed, nothing counted in the last second", settled)
	}
	if rate, err := strconv.ParseFloat(settled["api.req/s"], 64); err != nil || rate <= 0 || rate > 100 {
		t.Errorf("api.req/s=%s: want a rate above 0 and below 100 (the test sends ~10/s)", settled["api.req/s"])
	}
	if p99, err := strconv.ParseFloat(settled["api.p99_ms"], 64); err != nil || p99 <= 0 || p99 > 2500 {
		t.Errorf("api.p99_ms=%s: want a latency above 0 and within the buckets (2.5 s)", settled["api.p99_ms"])
	}
	_, metricsBody := httpGet(url + "/metrics")
	published := metricValue(metricsBody, `topk_crawler_listens_published_total{provider="simulated"}`)
	if counted < 1 || counted > published {
		t.Errorf("counted %v listens, crawls published %v: want 1 to all of them", counted, published)
	}
	// While the history came in, a line said so.
	sawIn := false
	for _, l := range statusLines(p.Output()) {
		if v, _ := strconv.ParseFloat(l["in/s"], 64); v > 0 {
			sawIn = true
		}
	}
	if !sawIn {
		t.Errorf("no status line showed listens coming in:\n%s", p.Output())
	}

	// The terminal: status lines (and the note on where the log goes), no
	// info line; the file: everything, status lines included.
	terminal := p.Output()
	requireAll(t, terminal, "level=STATUS msg=\"the whole log goes to the file; here: status lines, warnings and errors\" component=all file="+cfg.LogFile)
	for _, not := range []string{"level=INFO", "level=DEBUG", "msg=crawled", "msg=http"} {
		if strings.Contains(terminal, not) {
			t.Errorf("the terminal shows %q:\n%s", not, terminal)
		}
	}
	file, err := os.ReadFile(cfg.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	requireAll(t, string(file), "level=INFO msg=crawled component=crawler user=sim-0001", "level=INFO msg=http component=api method=GET uri=\"/v1/users/sim-0001/top/artists?range=30d&k=5\"",
		"level=STATUS msg=status component=all", "level=INFO msg=starting component=all part=aggregator")
	if n, m := len(strings.Split(strings.TrimSpace(terminal), "\n")), len(strings.Split(strings.TrimSpace(string(file)), "\n")); n >= m {
		t.Errorf("the terminal has %d lines, the file %d: want fewer on the terminal", n, m)
	}
}

// runToEnd runs `topk args...` with cfg's environment and waits for it to
// exit 0.
func runToEnd(t *testing.T, cfg config.Config, args ...string) {
	t.Helper()
	p := testenv.Start(t, cfg, args...)
	deadline := time.Now().Add(time.Minute)
	for {
		if exited, err := p.Exited(); exited {
			if err != nil {
				t.Fatalf("topk %v: %v\n%s", args, err, p.Output())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topk %v still running after a minute:\n%s", args, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var statusPair = regexp.MustCompile(`(\S+)=(\S+)`)

// statusLines are the status lines of out, each as its key=value pairs.
func statusLines(out string) []map[string]string {
	var lines []map[string]string
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "level=STATUS msg=status ") {
			continue
		}
		m := map[string]string{}
		for _, kv := range statusPair.FindAllStringSubmatch(l, -1) {
			m[kv[1]] = kv[2]
		}
		lines = append(lines, m)
	}
	return lines
}

// noLag: every consumer's lag is known and 0.
func noLag(l map[string]string) bool {
	for _, k := range []string{"lag.ingest", "lag.aggregator", "lag.raw_writer", "lag.flusher", "lag.view"} {
		if l[k] != "0" {
			return false
		}
	}
	return true
}
