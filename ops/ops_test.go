package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
)

func TestCheckerCachesWithinTTL(t *testing.T) {
	var calls atomic.Int32
	c := &Checker{TTL: time.Hour, Checks: []Check{{Name: "x", Required: true, Fn: func(context.Context) error {
		calls.Add(1)
		return errors.New("down")
	}}}}
	for range 3 {
		if st := c.Status(context.Background()); st.Ready || st.Checks["x"] != CheckFailed {
			t.Fatalf("%+v", st)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("check ran %d times within its TTL, want 1", calls.Load())
	}
}

func TestCheckTimesOut(t *testing.T) {
	c := &Checker{Timeout: 20 * time.Millisecond, Checks: []Check{{Name: "slow", Required: true, Fn: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}}}}
	if st := c.Status(context.Background()); st.Ready {
		t.Fatalf("a hung check counted as ready: %+v", st)
	}
}

func TestServerRoutes(t *testing.T) {
	s := &Server{Mounts: map[string]http.Handler{"/goka/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })}}
	h := s.Handler()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/goka/x": 299, "/nope": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
}

func TestServeShutsDownOnCancel(t *testing.T) {
	s := &Server{Addr: "127.0.0.1:0"}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	resp, err := http.Get("http://" + s.BoundAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}
}

// The live monitor leaves out processors and views that are not built yet
// (nil): the api's view before Kafka answered.
func TestLiveGokaMonitorWithoutViewsYet(t *testing.T) {
	h := LiveGokaMonitor(nil, func() []*goka.View { return []*goka.View{nil} })
	for _, path := range []string{GokaPrefix + "/", GokaPrefix + "/monitor/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
}

func serve(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// /readyz names the failing check but not its error, which names a host,
// a port and a database user; the error goes to the log: once when the
// check starts failing however many probes (its numbers changing), once
// when it fails for another reason, again after LogEvery, and the
// recovery once.
func TestReadyzKeepsErrorsInTheLog(t *testing.T) {
	const secret = "postgres 10.1.2.3:5432/topk: failed to connect to `user=topk_owner database=topk`"
	var (
		failing atomic.Bool
		probes  atomic.Int32
		reason  atomic.Value
	)
	failing.Store(true)
	reason.Store("connection refused")
	var logs bytes.Buffer // Status logs in the caller's goroutine
	c := &Checker{TTL: time.Nanosecond, LogEvery: 300 * time.Millisecond, Log: NewLogger(&logs, "info", "text"), Checks: []Check{
		{Name: "postgres", Required: true, Fn: func(context.Context) error {
			if failing.Load() {
				return fmt.Errorf("down for %ds: %s: %s", probes.Add(1), secret, reason.Load())
			}
			return nil
		}},
		{Name: "redis", Fn: func(context.Context) error { return nil }},
	}}
	h := (&Server{Checker: c}).Handler()
	for range 5 {
		rec := serve(t, h, "/readyz")
		body := rec.Body.String()
		if rec.Code != http.StatusServiceUnavailable || body != `{"ready":false,"checks":{"postgres":"error","redis":"ok"}}`+"\n" {
			t.Fatalf("%d %s", rec.Code, body)
		}
		for _, leak := range []string{"10.1.2.3", "5432", "topk_owner", "refused", "down for"} {
			if strings.Contains(body, leak) {
				t.Fatalf("/readyz shows %q: %s", leak, body)
			}
		}
	}
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 || !strings.Contains(out, `msg="readiness check failing" check=postgres required=true for=0s err="down for 1s: postgres 10.1.2.3:5432/topk`) ||
		!strings.Contains(out, "user=topk_owner") {
		t.Fatalf("after 5 probes, want one warning with the error:\n%s", out)
	}
	reason.Store("password authentication failed")
	serve(t, h, "/readyz")
	serve(t, h, "/readyz")
	out = logs.String()
	if n := strings.Count(out, `msg="readiness check failing for another reason" check=postgres`); n != 1 || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("a new reason, want one more warning with it:\n%s", out)
	}
	time.Sleep(350 * time.Millisecond)
	serve(t, h, "/readyz")
	serve(t, h, "/readyz")
	out = logs.String()
	if n := strings.Count(out, `msg="readiness check still failing" check=postgres`); n != 1 || strings.Count(out, "topk_owner") != 3 {
		t.Fatalf("after LogEvery, want one more warning with the error:\n%s", out)
	}
	failing.Store(false)
	for range 3 {
		if rec := serve(t, h, "/readyz"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"postgres":"ok"`) {
			t.Fatalf("recovered: %d %s", rec.Code, rec.Body.String())
		}
	}
	failing.Store(true)
	serve(t, h, "/readyz")
	out = logs.String()
	if strings.Count(out, `msg="readiness check passes again" check=postgres`) != 1 || strings.Count(out, `msg="readiness check failing" `) != 2 ||
		strings.Count(out, "level=WARN") != 4 || strings.Contains(out, "check=redis") {
		t.Fatalf("want one recovery line and a second failure:\n%s", out)
	}
}

// pprof is served only when asked for (TOPK_OPS_PPROF).
func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := (&Server{Pprof: on}).Handler()
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
			rec := serve(t, h, path)
			want := http.StatusNotFound
			if on {
				want = http.StatusOK
			}
			if rec.Code != want {
				t.Errorf("Pprof %v, %s: %d, want %d", on, path, rec.Code, want)
			}
		}
	}
	rec := serve(t, (&Server{Pprof: true}).Handler(), "/debug/pprof/goroutine?debug=1")
	if !strings.Contains(rec.Body.String(), "goroutine profile:") {
		t.Errorf("not a goroutine profile: %.200s", rec.Body.String())
	}
}

// The mounted browser UIs (the Goka monitor) are not to be framed.
func TestMountsDenyFraming(t *testing.T) {
	h := (&Server{Mounts: map[string]http.Handler{GokaPrefix + "/": LiveGokaMonitor(nil, nil)}}).Handler()
	for _, path := range []string{GokaPrefix + "/", GokaPrefix + "/monitor/"} {
		rec := serve(t, h, path)
		if rec.Code != http.StatusOK || rec.Header().Get("X-Frame-Options") != "DENY" ||
			rec.Header().Get("Content-Security-Policy") != "frame-ancestors 'none'" {
			t.Errorf("%s: %d %v", path, rec.Code, rec.Header())
		}
	}
	if rec := serve(t, h, "/metrics"); rec.Header().Get("X-Frame-Options") != "" {
		t.Errorf("/metrics is not a UI: %v", rec.Header())
	}
}
