package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve sends one request with the given headers ("Basic" sets the UIs'
// password, "Bearer" the admin token) to the fully mounted server.
func serve(f *fixture, method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		switch header[i] {
		case "Basic":
			req.SetBasicAuth(AdminUser, header[i+1])
		case "Bearer":
			req.Header.Set("Authorization", "Bearer "+header[i+1])
		default:
			req.Header.Set(header[i], header[i+1])
		}
	}
	rec := httptest.NewRecorder()
	f.srv.Echo().ServeHTTP(rec, req)
	return rec
}

// jsonError is the {"error": …} body of rec, or a failed test.
func jsonError(t *testing.T, rec *httptest.ResponseRecorder) Error {
	t.Helper()
	var e map[string]Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q (%s) is not a JSON error: %v", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"), err)
	}
	return e["error"]
}

// With the admin routes mounted (the server `topk api` runs), an unknown
// path is a JSON 404 naming it, not the admin routes' 401; a known path
// with another method is a JSON 405 with Allow; the admin routes and UIs
// still want their credentials. cmd/topk's
// TestIntegrationRoutesOfTheWiredAPI walks every route of openapi.yaml on
// the real wiring.
func TestRoutingWithAdminMounted(t *testing.T) {
	f := fullServer(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/nope"}, {"GET", "/v1/nope"}, {"PUT", "/v1/nope"}, {"POST", "/v1/admin/nope"},
		{"GET", "/v1/admin/users/alice/runs"}, {"GET", "/v1/users/alice/nope"}, {"GET", "/asynqx"},
		{"DELETE", "/gokaa/x"}, {"GET", "/v2/users"}, {"GET", "/healthz/x"},
		// A route's last parameter does not take the rest of the path.
		{"DELETE", "/v1/users/alice/x"}, {"GET", "/v1/users/alice/x"}, {"GET", "/v1/users/alice/top/tracks/x"},
	} {
		rec := serve(f, c.method, c.path)
		if e := jsonError(t, rec); rec.Code != 404 || e.Code != CodeNotFound || e.Message != "no such path: "+c.path {
			t.Errorf("%s %s: %d %+v, want a 404 naming the path", c.method, c.path, rec.Code, e)
		}
	}
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/healthz", "OPTIONS, GET"},
		{"POST", "/readyz", "OPTIONS, GET"},
		{"GET", "/v1/users/alice", "OPTIONS, DELETE"},
		{"PUT", "/v1/users", "OPTIONS, GET, POST"},
		{"GET", "/v1/users/alice/crawl", "OPTIONS, POST"},
		{"DELETE", "/v1/admin/users/alice", "OPTIONS, GET"},
		{"POST", "/", "OPTIONS, GET"},
	} {
		rec := serve(f, c.method, c.path)
		e := jsonError(t, rec)
		if rec.Code != 405 || rec.Header().Get("Allow") != c.allow || e.Code != CodeMethod ||
			!strings.Contains(e.Message, c.method) || !strings.Contains(e.Message, c.path) {
			t.Errorf("%s %s: %d Allow %q %+v, want 405 Allow %q", c.method, c.path, rec.Code, rec.Header().Get("Allow"), e, c.allow)
		}
	}
	if rec := serve(f, "OPTIONS", "/v1/users"); rec.Code != 204 || rec.Header().Get("Allow") != "OPTIONS, GET, POST" {
		t.Errorf("OPTIONS /v1/users: %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	for _, c := range []struct{ method, path, scheme string }{
		{"POST", "/v1/users", "Bearer"}, {"GET", "/v1/admin/users", "Bearer"}, {"GET", "/v1/admin/users/alice", "Bearer"},
		{"DELETE", "/v1/users/alice", "Bearer"}, {"POST", "/v1/users/alice/crawl", "Bearer"},
		{"GET", "/asynq/", "Basic"}, {"POST", "/goka/x", "Basic"},
	} {
		rec := serve(f, c.method, c.path)
		if e := jsonError(t, rec); rec.Code != 401 || e.Code != CodeUnauthorized {
			t.Errorf("%s %s without credentials: %d %+v, want 401", c.method, c.path, rec.Code, e)
		}
		rec = serve(f, c.method, c.path, c.scheme, "s3cret", "Origin", "http://example.com")
		if rec.Code == 401 || rec.Code == 405 || (rec.Code == 404 && strings.Contains(rec.Body.String(), "no such path")) {
			t.Errorf("%s %s with credentials: %d %s", c.method, c.path, rec.Code, rec.Body.String())
		}
	}
}

// The charts page and both operators' UIs refuse to be framed, their
// 401s and redirects too.
func TestBrowserUIsDenyFraming(t *testing.T) {
	f := fullServer(t)
	for _, c := range []struct {
		path string
		auth []string
		want int
	}{
		{"/", nil, 200},
		{"/goka/", []string{"Basic", "s3cret"}, 200},
		{"/goka/monitor/", nil, 401},
		{"/goka", []string{"Basic", "s3cret"}, 301},
		{"/asynq/", []string{"Basic", "s3cret"}, 200},
		{"/asynq/api/queues", nil, 401},
		{"/asynq", []string{"Basic", "s3cret"}, 301},
	} {
		rec := serve(f, "GET", c.path, c.auth...)
		if rec.Code != c.want || rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Content-Security-Policy") != "frame-ancestors 'none'" {
			t.Errorf("%s: %d, want %d; X-Frame-Options %q, CSP %q", c.path, rec.Code, c.want,
				rec.Header().Get("X-Frame-Options"), rec.Header().Get("Content-Security-Policy"))
		}
	}
}

// A request that changes something through /asynq/ (asynqmon's API: pause
// a queue, delete or run tasks) must come from the api's own origin; reads
// need not. Refusals are JSON 403s naming the reason and never reach
// asynqmon.
func TestAsynqChangesOnlyFromTheSameOrigin(t *testing.T) {
	f := fullServer(t)
	const host = "example.com" // httptest.NewRequest's Host
	for _, c := range []struct {
		name, method string
		header       []string
		reason       string // "": passes to asynqmon
	}{
		{"cross-origin Origin", "POST", []string{"Origin", "http://evil.test"}, `Origin "http://evil.test" is not this host`},
		{"cross-origin Origin, other port", "DELETE", []string{"Origin", "http://example.com:8081"}, "is not this host"},
		{"null Origin", "POST", []string{"Origin", "null"}, `Origin "null" is not this host`},
		{"cross-site fetch", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://" + host}, "Sec-Fetch-Site is \"cross-site\""},
		{"same-site fetch", "PUT", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://" + host}, "Sec-Fetch-Site is \"same-site\""},
		{"cross-origin Referer", "PATCH", []string{"Referer", "http://evil.test/page"}, `Referer "http://evil.test/page" is not this host`},
		{"Origin wins over Referer", "POST", []string{"Origin", "http://evil.test", "Referer", "http://" + host + "/asynq/"}, "is not this host"},
		{"neither header", "POST", nil, "needs an Origin or Referer header"},
		{"same Origin", "POST", []string{"Origin", "http://" + host, "Sec-Fetch-Site", "same-origin"}, ""},
		{"same Origin over TLS", "DELETE", []string{"Origin", "https://" + host}, ""},
		{"same-origin Referer", "POST", []string{"Referer", "http://" + host + "/asynq/queues"}, ""},
		{"a read from anywhere", "GET", []string{"Origin", "http://evil.test", "Sec-Fetch-Site", "cross-site"}, ""},
	} {
		rec := serve(f, c.method, "/asynq/api/queues/q:pause", append([]string{"Basic", "s3cret"}, c.header...)...)
		if c.reason == "" {
			if rec.Code != 200 || rec.Body.String() != "<html>asynqmon "+c.method+" /asynq/api/queues/q:pause</html>" {
				t.Errorf("%s: %d %s, want asynqmon's answer", c.name, rec.Code, rec.Body.String())
			}
			continue
		}
		if e := jsonError(t, rec); rec.Code != 403 || e.Code != CodeForbidden || !strings.Contains(e.Message, c.reason) {
			t.Errorf("%s: %d %+v, want a 403 saying %q", c.name, rec.Code, e, c.reason)
		}
	}
}
