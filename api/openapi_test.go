package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// fullServer mounts everything `topk api` mounts, on fakes.
func fullServer(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, fixtureOpts{recovered: true})
	f.srv.MountAdmin(AdminConfig{Token: "s3cret", Control: &fakeAdmin{}, Tokens: newFakeTokens(), Monitor: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>asynqmon " + r.Method + " " + r.URL.Path + "</html>"))
	})})
	f.srv.MountMonitor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>goka monitor " + r.URL.Path + "</html>"))
	}), "s3cret")
	f.srv.MountListenBrainz(ListenBrainzConfig{Charts: f.svc, Tokens: lbTokens{aliceToken: "alice"}, Publisher: &fakePublisher{}, NowPlaying: &fakeNowPlaying{}})
	f.srv.MountImports(ImportsConfig{Tokens: lbTokens{aliceToken: "alice"}, AdminToken: "s3cret"})
	return f
}

// Every route the server serves is in api/openapi.yaml, with its method,
// and the file is valid YAML with an OpenAPI 3 header; the server serves
// it.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var spec struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.") || len(spec.Paths) == 0 {
		t.Fatalf("openapi.yaml: version %q, %d paths", spec.OpenAPI, len(spec.Paths))
	}
	f := fullServer(t)
	seen := map[string]bool{}
	for _, r := range f.srv.Echo().Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		path, anyMethod := r.Path, false
		switch {
		case strings.HasSuffix(path, "/*"):
			path, anyMethod = strings.TrimSuffix(path, "*"), true
		case path == "/goka" || path == "/asynq": // redirects to the UI
			path, anyMethod = path+"/", true
		}
		parts := strings.Split(path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[i] = "{" + p[1:] + "}"
			}
		}
		path = strings.Join(parts, "/")
		ops, ok := spec.Paths[path]
		if !ok {
			t.Errorf("route %s %s is not in openapi.yaml (as %s)", r.Method, r.Path, path)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok && !anyMethod {
			t.Errorf("route %s %s: openapi.yaml describes %s without %s", r.Method, r.Path, path, r.Method)
		}
		seen[path] = true
	}
	for p := range spec.Paths {
		if !seen[p] {
			t.Errorf("openapi.yaml describes %s, which the server does not serve", p)
		}
	}
	code, body := f.get(t, "/openapi.yaml")
	if code != 200 || body != string(OpenAPI) {
		t.Fatalf("/openapi.yaml: %d", code)
	}
}

// The Goka monitor answers with the admin password and refuses without.
func TestMonitorBehindBasicAuth(t *testing.T) {
	f := fullServer(t)
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"admin", "s3cret", 200}, {"", "", 401}, {"admin", "wrong", 401}, {"root", "s3cret", 401}} {
		req := httptest.NewRequest(http.MethodGet, "/goka/monitor/", nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		rec := httptest.NewRecorder()
		f.srv.Echo().ServeHTTP(rec, req)
		if rec.Code != c.want || (c.want == 200 && !strings.Contains(rec.Body.String(), "goka monitor /goka/monitor/")) {
			t.Errorf("%s:%s → %d %s, want %d", c.user, c.pass, rec.Code, rec.Body.String(), c.want)
		}
		if c.want == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
			t.Errorf("401 without a basic challenge")
		}
	}
	// No token configured: refused even with the right user.
	g := newFixture(t, fixtureOpts{})
	g.srv.MountMonitor(http.NotFoundHandler(), "")
	req := httptest.NewRequest(http.MethodGet, "/goka/", nil)
	req.SetBasicAuth("admin", "")
	rec := httptest.NewRecorder()
	g.srv.Echo().ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Errorf("no token: %d", rec.Code)
	}
}

// Requests are counted by route and source.
func TestMetricsBySource(t *testing.T) {
	f := newFixture(t, fixtureOpts{recovered: true})
	f.get(t, "/v1/users/alice/top/tracks?range=7d")
	f.get(t, "/v1/users/alice/top/tracks?range=365d")
	_, body := f.get(t, "/metrics")
	for _, want := range []string{
		`topk_http_requests_total{code="200",method="GET",route="/v1/users/:user/top/:entity",source="view"} 1`,
		`topk_http_requests_total{code="200",method="GET",route="/v1/users/:user/top/:entity",source="mixed"} 1`,
		`topk_http_request_duration_seconds_bucket{method="GET",route="/v1/users/:user/top/:entity",source="view",le=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
