package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/ops"
)

func newServer(t *testing.T, checks ...ops.Check) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Config{Checker: &ops.Checker{Checks: checks}, Registerer: reg, Gatherer: reg},
		ops.NewLogger(io.Discard, "info", "text"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Echo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthz(t *testing.T) {
	code, body := get(t, newServer(t), "/healthz")
	if code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("%d %s", code, body)
	}
}

// A failing optional check (Cassandra) is detail; a failing required one
// makes the api unready. The answer names the failing check, not its
// error (a host and a user), which goes to the api's log.
func TestReadyz(t *testing.T) {
	const secret = "dial tcp 10.9.8.7:9042: user topk_reader: connection refused"
	down := func(context.Context) error { return errors.New(secret) }
	up := func(context.Context) error { return nil }
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	log := ops.NewLogger(&logs, "info", "text")
	s, err := New(Config{Registerer: reg, Gatherer: reg, Checker: &ops.Checker{Log: log,
		Checks: []ops.Check{{Name: "cassandra", Fn: down}, {Name: "view", Required: true, Fn: up}}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s, "/readyz")
	var st ops.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if code != 200 || !st.Ready || st.Checks["cassandra"] != ops.CheckFailed || st.Checks["view"] != ops.CheckOK {
		t.Fatalf("%d %s", code, body)
	}
	for _, leak := range []string{"10.9.8.7", "9042", "topk_reader", "refused"} {
		if strings.Contains(body, leak) {
			t.Errorf("/readyz shows %q: %s", leak, body)
		}
	}
	if !strings.Contains(logs.String(), `level=WARN msg="readiness check failing" check=cassandra required=false for=0s err="`+secret+`"`) {
		t.Errorf("the error is not in the log:\n%s", logs.String())
	}
	code, _ = get(t, newServer(t, ops.Check{Name: "view", Required: true, Fn: down}), "/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("required check down: %d, want 503", code)
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	code, body := get(t, newServer(t), "/nope")
	var e map[string]Error
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if code != 404 || e["error"].Code != CodeNotFound {
		t.Fatalf("%d %s", code, body)
	}
}

func TestStatusOf(t *testing.T) {
	for err, want := range map[error]int{
		Errorf(CodeInvalid, "k", "k must be 1–1000"): 400,
		Errorf(CodeUnauthorized, "", "no token"):     401,
		Errorf(CodeNotFound, "", "no such user"):     404,
		Errorf(CodeUnavailable, "", "store down"):    503,
		errors.New("boom"):                           500,
	} {
		if got, _ := StatusOf(err); got != want {
			t.Errorf("%v: %d, want %d", err, got, want)
		}
	}
	if _, e := StatusOf(errors.New("secret detail")); strings.Contains(e.Message, "secret") {
		t.Error("an internal error leaks its message")
	}
}

func TestMetricsCountRequests(t *testing.T) {
	s := newServer(t)
	get(t, s, "/healthz")
	_, body := get(t, s, "/metrics")
	if !strings.Contains(body, `topk_http_requests_total{code="200",method="GET",route="/healthz",source="none"} 1`) ||
		!strings.Contains(body, "topk_http_request_duration_seconds_bucket") {
		t.Fatalf("metrics missing:\n%s", body)
	}
}

func TestChartsPageServed(t *testing.T) {
	code, body := get(t, newServer(t), "/")
	if code != 200 || !strings.Contains(body, "<title>topk") || !strings.Contains(body, "/v1/users/") {
		t.Fatalf("%d %.200s", code, body)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Fatal("the charts page loads something from another host (no CDN: these machines have no internet)")
	}
}
