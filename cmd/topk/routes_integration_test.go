//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/ops"
)

const routesToken = "routes-token-0123456789"

// wiredAPI serves over HTTP what `topk api` serves (newFullAPI: the
// charts, readiness, the Goka monitor, the admin endpoints and the real
// asynqmon) on the test's namespace and database, with admin token
// routesToken and its log in logs; setenv are more variables, set before
// the configuration is read. The view is not run.
func wiredAPI(t *testing.T, logs io.Writer, setenv ...string) (base, ns string) {
	t.Helper()
	ns, _ = crawlerEnv(t)
	t.Setenv("TOPK_ADMIN_TOKEN", routesToken)
	for i := 0; i+1 < len(setenv); i += 2 {
		t.Setenv(setenv[i], setenv[i+1])
	}
	env, err := LoadEnv(io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env.Log = ops.NewLogger(logs, "info", "text")
	p, err := newFullAPI(context.Background(), env, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	hs := httptest.NewServer(p.srv.Echo())
	t.Cleanup(hs.Close)
	return hs.URL, ns
}

// answer is one HTTP answer.
type answer struct {
	code   int
	header http.Header
	body   string
}

// jsonErr is the {"error": …} of the answer, code "" when it is none.
func (a answer) jsonErr() api.Error {
	var e map[string]api.Error
	if a.header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(a.body), &e) != nil {
		return api.Error{}
	}
	return e["error"]
}

// lbErr is the ListenBrainz error body {"code": N, "error": msg} of the
// answer (the shape of every error under /1/); ok false when it is none:
// not JSON, or without an integer code or a string error.
func (a answer) lbErr() (code int, msg string, ok bool) {
	var e struct {
		Code  *int    `json:"code"`
		Error *string `json:"error"`
	}
	if a.header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(a.body), &e) != nil || e.Code == nil || e.Error == nil {
		return 0, "", false
	}
	return *e.Code, *e.Error, true
}

// isLB says whether path is one of the ListenBrainz routes, which answer
// errors in ListenBrainz's shape and CORS preflights themselves.
func isLB(path string) bool { return strings.HasPrefix(path, "/1/") }

// errorOf says whether the answer is a JSON error with status code in the
// shape of path's routes: under /1/ ListenBrainz's, with that code in the
// body and a non-empty message; elsewhere topk's with apiCode.
func (a answer) errorOf(path string, code int, apiCode api.Code) bool {
	if isLB(path) {
		c, msg, ok := a.lbErr()
		return ok && a.code == code && c == code && msg != ""
	}
	return a.code == code && a.jsonErr().Code == apiCode
}

// noRoute says whether the answer is the router's 404 for path (in
// ListenBrainz's shape under /1/).
func (a answer) noRoute(path string) bool {
	if isLB(path) {
		c, msg, ok := a.lbErr()
		return ok && a.code == 404 && c == 404 && msg == "no such path: "+path
	}
	e := a.jsonErr()
	return a.code == 404 && e.Code == api.CodeNotFound && e.Message == "no such path: "+path
}

// call sends one request; auth is "" (none), "bearer" or "basic";
// header are more headers, as name-value pairs.
func call(t *testing.T, base, method, path, auth string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch auth {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+routesToken)
	case "basic":
		req.SetBasicAuth(api.AdminUser, routesToken)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	cl := http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// documented is openapi.yaml's operations: path → method → its security
// scheme ("" for none), and the paths that take any method.
func documented(t *testing.T) (map[string]map[string]string, map[string]bool) {
	t.Helper()
	var spec struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI, &spec); err != nil {
		t.Fatal(err)
	}
	doc, anyMethod := map[string]map[string]string{}, map[string]bool{}
	for path, item := range spec.Paths {
		doc[path] = map[string]string{}
		for key, node := range item {
			if key == "x-topk-any-method" {
				anyMethod[path] = true
				continue
			}
			var op struct {
				Security []map[string][]string `yaml:"security"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			scheme := ""
			for _, s := range op.Security {
				for name := range s {
					scheme = name
				}
			}
			doc[path][strings.ToUpper(key)] = scheme
		}
	}
	if len(doc) < 10 || len(anyMethod) != 2 {
		t.Fatalf("openapi.yaml: %d paths, %d taking any method", len(doc), len(anyMethod))
	}
	return doc, anyMethod
}

// concrete fills a path's parameters.
func concrete(path string) string {
	entity := "tracks"
	if isLB(path) {
		entity = "artists" // ListenBrainz's name of a chart
	}
	return strings.NewReplacer("{user}", "alice", "{entity}", entity, "{id}", "1").Replace(path)
}

var allMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// Issue 12, point 1, on the server `topk api` runs (newFullAPI), for every
// path and method of openapi.yaml: each documented operation reaches its
// handler (no 404 of the router, no 405; the admin ones and the UIs a 401
// without credentials, their handler with them); every other method on a
// documented path is a JSON 405 whose Allow lists the documented ones
// (OPTIONS answers 204 with it); unknown paths, also under /v1/admin/ and
// beside /asynq and /goka, are JSON 404s naming the path, with or without
// a token. The ListenBrainz routes (/1/, issue 13) answer these errors in
// ListenBrainz's shape ({"code": N, "error": msg}: the status as code and
// a message), /1/submit-listens a 401 without a user's token and its
// handler with one, and their OPTIONS is a CORS preflight: 200 with the
// documented methods in Access-Control-Allow-Methods.
func TestIntegrationRoutesOfTheWiredAPI(t *testing.T) {
	base, _ := wiredAPI(t, io.Discard)
	doc, anyMethod := documented(t)
	// A user's API token for the ListenBrainz routes, of a user the admin
	// routes walked below do not delete.
	created := call(t, base, "POST", "/v1/admin/users/routes-scrobbler/tokens", "bearer")
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(created.body), &tok); created.code != 201 || err != nil || tok.Token == "" {
		t.Fatalf("creating a user's API token: %d %s", created.code, created.body)
	}
	checked := 0
	for path, methods := range doc {
		p := concrete(path)
		for method, scheme := range methods {
			a := call(t, base, method, p, "")
			switch {
			case scheme != "" && isLB(p):
				if !a.errorOf(p, 401, api.CodeUnauthorized) {
					t.Errorf("%s %s without a token: %d %s, want a ListenBrainz 401", method, p, a.code, a.body)
				}
				a = call(t, base, method, p, "", "Authorization", "Token "+tok.Token)
			case scheme != "":
				e := a.jsonErr()
				if a.code != 401 || e.Code != api.CodeUnauthorized || !strings.Contains(strings.ToLower(a.header.Get("WWW-Authenticate")), scheme) {
					t.Errorf("%s %s without credentials: %d %q %s, want a 401 %s challenge", method, p, a.code, a.header.Get("WWW-Authenticate"), a.body, scheme)
				}
				a = call(t, base, method, p, scheme, "Origin", base)
			}
			if a.code == 405 || a.code == 401 || a.noRoute(p) || a.code >= 500 && a.code != 503 {
				t.Errorf("%s %s (documented, credentials %q): %d %.300s", method, p, scheme, a.code, a.body)
			}
			checked++
		}
		if anyMethod[path] {
			// Every method reaches the UI's route: its basic challenge.
			for _, method := range allMethods {
				if a := call(t, base, method, p+"x/y", ""); a.code != 401 || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("%s %sx/y without credentials: %d %.200s, want 401", method, p, a.code, a.body)
				}
			}
			continue
		}
		allow := []string{"OPTIONS"}
		for m := range methods {
			if m != "OPTIONS" { // documented on the ListenBrainz routes
				allow = append(allow, m)
			}
		}
		slices.Sort(allow)
		if _, ok := methods["OPTIONS"]; ok != isLB(p) {
			t.Errorf("%s: OPTIONS documented %v; only the ListenBrainz routes answer it themselves", path, ok)
		}
		for _, method := range allMethods {
			if _, ok := methods[method]; ok {
				continue
			}
			a := call(t, base, method, p, "bearer")
			got := strings.Split(a.header.Get("Allow"), ", ")
			slices.Sort(got)
			if a.code != 405 || !slices.Equal(got, allow) || (method != "HEAD" && !a.errorOf(p, 405, api.CodeMethod)) {
				t.Errorf("%s %s: %d Allow %q %.200s, want a JSON 405 with Allow %v", method, p, a.code, a.header.Get("Allow"), a.body, allow)
			}
			checked++
		}
		if isLB(p) {
			a := call(t, base, "OPTIONS", p, "", "Origin", "https://scrobbler.example", "Access-Control-Request-Method", allow[0])
			got := strings.Split(a.header.Get("Access-Control-Allow-Methods"), ", ")
			slices.Sort(got)
			if a.code != 200 || !slices.Equal(got, allow) || a.header.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("OPTIONS %s: %d %v, want a 200 preflight allowing %v from any origin with Authorization", p, a.code, a.header, allow)
			}
			continue
		}
		a := call(t, base, "OPTIONS", p, "")
		got := strings.Split(a.header.Get("Allow"), ", ")
		slices.Sort(got)
		if a.code != 204 || !slices.Equal(got, allow) {
			t.Errorf("OPTIONS %s: %d Allow %q, want 204 with %v", p, a.code, a.header.Get("Allow"), allow)
		}
	}
	unknown := []string{"/nope", "/v1/nope", "/v1", "/v1/admin", "/v1/admin/nope", "/v1/admin/users/alice/runs",
		"/v1/users/alice/nope", "/v1/users/alice/top/tracks/more", "/v2/users", "/asynqx", "/asynq-x/api/queues",
		"/gokax", "/goka.old/", "/healthz/x", "/openapi.json", "/debug/pprof/", "/metrics/x",
		"/1/nope", "/1/user/alice", "/1/user/alice/listens/more", "/1/stats/user/alice/artists/more", "/1/stats/sitewide/artists/more",
		"/1/feedback/recording-feedback"}
	for _, p := range unknown {
		for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
			for _, auth := range []string{"", "bearer"} {
				if a := call(t, base, method, p, auth); !a.noRoute(p) {
					t.Errorf("%s %s (credentials %q): %d %.200s, want the JSON 404 naming the path", method, p, auth, a.code, a.body)
				}
				checked++
			}
		}
	}
	t.Logf("%d paths in openapi.yaml, %d requests checked", len(doc), checked)
}

// Issue 12, point 5, on the wired api: the charts page and both UIs are
// not to be framed; asynqmon's state-changing API answers only requests
// from the api's own origin: a cross-origin pause of the real queue is a
// JSON 403 and leaves it running, a same-origin one pauses it (asynqmon on
// the running Redis).
func TestIntegrationBrowserUIsOfTheWiredAPI(t *testing.T) {
	base, ns := wiredAPI(t, io.Discard)
	for _, c := range []struct {
		path, auth string
		want       int
	}{{"/", "", 200}, {"/goka/", "basic", 200}, {"/asynq/", "basic", 200}, {"/asynq/", "", 401}} {
		a := call(t, base, "GET", c.path, c.auth)
		if a.code != c.want || a.header.Get("X-Frame-Options") != "DENY" || a.header.Get("Content-Security-Policy") != "frame-ancestors 'none'" {
			t.Errorf("%s: %d, X-Frame-Options %q, CSP %q", c.path, a.code, a.header.Get("X-Frame-Options"), a.header.Get("Content-Security-Policy"))
		}
	}
	// A user's crawl task makes the queue exist.
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"enqueue", "--user", "judy", "--provider", "simulated"}, &out, &errb); code != 0 {
		t.Fatalf("topk enqueue: %s", errb.String())
	}
	queue := "/asynq/api/queues/" + url.PathEscape(crawler.Queue(ns))
	paused := func() bool {
		t.Helper()
		a := call(t, base, "GET", queue, "basic")
		var q struct {
			Current struct {
				Queue  string `json:"queue"`
				Paused bool   `json:"paused"`
			} `json:"current"`
		}
		if err := json.Unmarshal([]byte(a.body), &q); a.code != 200 || err != nil || q.Current.Queue != crawler.Queue(ns) {
			t.Fatalf("GET %s: %d %.300s", queue, a.code, a.body)
		}
		return q.Current.Paused
	}
	post := func(path string, header ...string) answer { return call(t, base, "POST", path, "basic", header...) }
	host := strings.TrimPrefix(base, "http://")
	for _, c := range []struct {
		name   string
		header []string
		reason string
	}{
		{"another site's page", []string{"Origin", "http://evil.test", "Sec-Fetch-Site", "cross-site"}, "Sec-Fetch-Site is \"cross-site\""},
		{"another origin", []string{"Origin", "http://localhost:" + strconv.Itoa(testenv.FreePort(t))}, "is not this host (" + host + ")"},
		{"another site's Referer", []string{"Referer", "http://evil.test/asynq/"}, "Referer \"http://evil.test/asynq/\" is not this host"},
		{"no Origin or Referer", nil, "needs an Origin or Referer header"},
	} {
		a := post(queue+":pause", c.header...)
		if e := a.jsonErr(); a.code != 403 || e.Code != api.CodeForbidden || !strings.Contains(e.Message, c.reason) {
			t.Errorf("%s: %d %.300s, want a 403 saying %q", c.name, a.code, a.body, c.reason)
		}
		if paused() {
			t.Fatalf("%s: the queue was paused", c.name)
		}
	}
	if a := post(queue+":pause", "Origin", base, "Sec-Fetch-Site", "same-origin"); a.code != 204 || !paused() {
		t.Fatalf("same-origin pause: %d %s", a.code, a.body)
	}
	if a := post(queue+":resume", "Referer", base+"/asynq/queues/"+crawler.Queue(ns)); a.code != 204 || paused() {
		t.Fatalf("same-origin resume (by Referer): %d %s", a.code, a.body)
	}
}

// Issue 12, point 5: the wired api's /readyz with PostgreSQL on a closed
// port under a user of the test's: the body says the postgres check
// fails, not the user, host or port; the api's log has them, once.
func TestIntegrationReadyzHidesStoreErrors(t *testing.T) {
	port := strconv.Itoa(closedPort(t))
	var logs lockedBuffer
	base, _ := wiredAPI(t, &logs, "TOPK_POSTGRES_PORT", port, "TOPK_POSTGRES_USER", "readyz_probe_user")
	var a answer
	for i := range 3 { // the checks run at most every 2 s
		if i > 0 {
			time.Sleep(2100 * time.Millisecond)
		}
		a = call(t, base, "GET", "/readyz", "")
	}
	var st ops.Status
	if err := json.Unmarshal([]byte(a.body), &st); err != nil || a.code != 503 || st.Checks["postgres"] != ops.CheckFailed ||
		st.Checks["redis"] != ops.CheckOK || st.Checks["kafka"] != ops.CheckOK || st.Checks["view"] != ops.CheckFailed {
		t.Fatalf("/readyz: %d %s (%v), want 503 with postgres and view failing, redis and kafka ok", a.code, a.body, err)
	}
	for _, leak := range []string{"readyz_probe_user", port, "127.0.0.1", "refused", "starting"} {
		if strings.Contains(a.body, leak) {
			t.Errorf("/readyz shows %q: %s", leak, a.body)
		}
	}
	out := logs.String()
	for _, want := range []string{`level=WARN msg="readiness check failing" component=api check=postgres required=false`, "readyz_probe_user", "127.0.0.1:" + port,
		`level=WARN msg="readiness check failing" component=api check=view required=true for=0s err=starting`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "check=postgres"); n != 1 {
		t.Errorf("%d lines about the postgres check after 3 probes, want 1:\n%s", n, out)
	}
}
