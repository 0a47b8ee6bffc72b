package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/ops"
)

// fakeAdmin is an in-memory control plane with the real error values.
type fakeAdmin struct {
	mu    sync.Mutex
	users map[string]crawler.UserStatus
	busy  map[string]bool
}

func (f *fakeAdmin) Register(_ context.Context, r crawler.Registration) (crawler.UserStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Provider != "simulated" && r.Provider != "lastfm" {
		return crawler.UserStatus{}, &crawler.InvalidError{Field: "provider", Message: "unknown provider"}
	}
	if _, ok := f.users[r.UserID]; ok {
		return crawler.UserStatus{}, crawler.ErrExists
	}
	st := crawler.UserStatus{UserID: r.UserID, Provider: r.Provider, ExternalID: r.UserID}
	f.users[r.UserID] = st
	return st, nil
}

func (f *fakeAdmin) Get(_ context.Context, user string) (crawler.UserStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.users[user]
	if !ok {
		return st, crawler.ErrNotFound
	}
	return st, nil
}

func (f *fakeAdmin) List(_ context.Context, prefix, after string, limit int) ([]crawler.UserStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []crawler.UserStatus
	for _, id := range []string{"alice", "amy", "bob"} {
		if st, ok := f.users[id]; ok && id > after && strings.HasPrefix(id, prefix) && len(out) < limit {
			out = append(out, st)
		}
	}
	return out, nil
}

func (f *fakeAdmin) Delete(_ context.Context, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[user]; !ok {
		return crawler.ErrNotFound
	}
	delete(f.users, user)
	return nil
}

func (f *fakeAdmin) CrawlNow(ctx context.Context, user string) (crawler.UserStatus, error) {
	if f.busy[user] {
		return crawler.UserStatus{}, crawler.ErrBusy
	}
	return f.Get(ctx, user)
}

const token = "s3cret-admin-token"

func adminServer(t *testing.T, tok string) (*Server, *fakeAdmin) {
	t.Helper()
	s, f, _ := adminServerWithTokens(t, tok)
	return s, f
}

// adminServerWithTokens is adminServer with its fake token store.
func adminServerWithTokens(t *testing.T, tok string) (*Server, *fakeAdmin, *fakeTokens) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Config{Checker: &ops.Checker{}, Registerer: reg, Gatherer: reg}, ops.NewLogger(io.Discard, "info", "text"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{users: map[string]crawler.UserStatus{}, busy: map[string]bool{}}
	monitor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "asynqmon at "+r.URL.Path)
	})
	ft := newFakeTokens()
	s.MountAdmin(AdminConfig{Token: tok, Control: f, Tokens: ft, Monitor: monitor})
	return s, f, ft
}

type response struct {
	code int
	body string
	hdr  http.Header
}

func (r response) errorCode(t *testing.T) (Code, string) {
	t.Helper()
	var e map[string]Error
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return e["error"].Code, e["error"].Param
}

func do(s *Server, method, path, auth, body string) response {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.Echo().ServeHTTP(rec, req)
	return response{rec.Code, rec.Body.String(), rec.Header()}
}

// Every admin endpoint refuses a request without the token, with a wrong
// one, or with the token in the wrong scheme: 401 with a JSON error.
func TestAdminWithoutTokenIs401(t *testing.T) {
	s, f, ft := adminServerWithTokens(t, token)
	f.users["alice"] = crawler.UserStatus{UserID: "alice"}
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/users"}, {"GET", "/v1/admin/users"}, {"GET", "/v1/admin/users/alice"},
		{"DELETE", "/v1/users/alice"}, {"POST", "/v1/users/alice/crawl"},
		{"POST", "/v1/admin/users/alice/tokens"}, {"GET", "/v1/admin/users/alice/tokens"},
		{"DELETE", "/v1/admin/users/alice/tokens"}, {"DELETE", "/v1/admin/users/alice/tokens/1"},
	} {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, token} {
			res := do(s, r.method, r.path, auth, `{"user_id":"x","provider":"simulated"}`)
			if code, _ := res.errorCode(t); res.code != 401 || code != CodeUnauthorized {
				t.Errorf("%s %s with %q: %d %s", r.method, r.path, auth, res.code, res.body)
			}
			if auth != "" && !strings.HasPrefix(res.hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no WWW-Authenticate challenge")
			}
		}
	}
	if len(f.users) != 1 || len(ft.tokens) != 0 {
		t.Fatal("an unauthorized request changed state")
	}
}

// Without TOPK_ADMIN_TOKEN the admin endpoints are closed, never open.
func TestAdminDisabledWithoutConfiguredToken(t *testing.T) {
	s, _ := adminServer(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		res := do(s, "GET", "/v1/admin/users", auth, "")
		if res.code != 401 || !strings.Contains(res.body, "TOPK_ADMIN_TOKEN") {
			t.Fatalf("%q: %d %s", auth, res.code, res.body)
		}
	}
	req := httptest.NewRequest("GET", "/asynq/", nil)
	req.SetBasicAuth("admin", "")
	rec := httptest.NewRecorder()
	s.Echo().ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("asynqmon with an empty token: %d", rec.Code)
	}
}

func TestAdminEndpoints(t *testing.T) {
	s, f := adminServer(t, token)
	auth := "Bearer " + token
	res := do(s, "POST", "/v1/users", auth, `{"user_id":"alice","provider":"simulated"}`)
	if res.code != 201 || !strings.Contains(res.body, `"user_id":"alice"`) {
		t.Fatalf("register: %d %s", res.code, res.body)
	}
	res = do(s, "POST", "/v1/users", auth, `{"user_id":"alice","provider":"simulated"}`)
	if code, _ := res.errorCode(t); res.code != 409 || code != CodeConflict {
		t.Fatalf("register twice: %d %s", res.code, res.body)
	}
	res = do(s, "POST", "/v1/users", auth, `{"user_id":"amy","provider":"myspace"}`)
	if code, param := res.errorCode(t); res.code != 400 || code != CodeInvalid || param != "provider" {
		t.Fatalf("bad provider: %d %s", res.code, res.body)
	}
	for _, body := range []string{`not json`, `{"user_id":"x","provider":"simulated","password":"x"}`, `[]`} {
		res = do(s, "POST", "/v1/users", auth, body)
		if code, param := res.errorCode(t); res.code != 400 || code != CodeInvalid || param != "body" {
			t.Fatalf("body %s: %d %s", body, res.code, res.body)
		}
	}
	do(s, "POST", "/v1/users", auth, `{"user_id":"amy","provider":"lastfm"}`)
	do(s, "POST", "/v1/users", auth, `{"user_id":"bob","provider":"lastfm"}`)

	res = do(s, "GET", "/v1/admin/users?prefix=a&limit=1", auth, "")
	var page struct {
		Users []crawler.UserStatus `json:"users"`
		Next  string               `json:"next"`
	}
	if err := json.Unmarshal([]byte(res.body), &page); err != nil || res.code != 200 || len(page.Users) != 1 || page.Next != "alice" {
		t.Fatalf("list: %d %s", res.code, res.body)
	}
	res = do(s, "GET", "/v1/admin/users?prefix=a&after=alice", auth, "")
	if !strings.Contains(res.body, `"amy"`) || strings.Contains(res.body, `"alice"`) || strings.Contains(res.body, `"next"`) {
		t.Fatalf("second page: %s", res.body)
	}
	if res = do(s, "GET", "/v1/admin/users?limit=0", auth, ""); res.code != 400 {
		t.Fatalf("limit 0: %d", res.code)
	}
	if res = do(s, "GET", "/v1/admin/users/alice", auth, ""); res.code != 200 || !strings.Contains(res.body, `"provider":"simulated"`) {
		t.Fatalf("get: %d %s", res.code, res.body)
	}
	if res = do(s, "GET", "/v1/admin/users/nobody", auth, ""); res.code != 404 {
		t.Fatalf("get unknown: %d %s", res.code, res.body)
	}
	if res = do(s, "POST", "/v1/users/alice/crawl", auth, ""); res.code != 202 {
		t.Fatalf("crawl now: %d %s", res.code, res.body)
	}
	f.busy["alice"] = true
	if res = do(s, "POST", "/v1/users/alice/crawl", auth, ""); res.code != 409 {
		t.Fatalf("crawl now while running: %d %s", res.code, res.body)
	}
	if res = do(s, "DELETE", "/v1/users/bob", auth, ""); res.code != 204 {
		t.Fatalf("delete: %d %s", res.code, res.body)
	}
	if res = do(s, "DELETE", "/v1/users/bob", auth, ""); res.code != 404 {
		t.Fatalf("delete twice: %d %s", res.code, res.body)
	}
}

// asynqmon sits behind basic auth: user admin, password = the admin token.
func TestAsynqmonBehindBasicAuth(t *testing.T) {
	s, _ := adminServer(t, token)
	get := func(path, user, pass string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		if user != "" || pass != "" {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		s.Echo().ServeHTTP(rec, req)
		return rec
	}
	for _, c := range []struct{ user, pass string }{{"", ""}, {"admin", "wrong"}, {"root", token}} {
		rec := get("/asynq/", c.user, c.pass)
		if rec.Code != 401 || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("%s/%s: %d", c.user, c.pass, rec.Code)
		}
	}
	rec := get("/asynq/queues/crawl", "admin", token)
	if rec.Code != 200 || rec.Body.String() != "asynqmon at /asynq/queues/crawl" {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	if rec := get("/asynq", "admin", token); rec.Code != http.StatusMovedPermanently {
		t.Fatalf("/asynq: %d", rec.Code)
	}
}
