package ops

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
		if st := c.Status(context.Background()); st.Ready || st.Checks["x"] != "error: down" {
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
