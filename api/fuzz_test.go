package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// fuzzPaths follow /v1/users/{user}; "" is /v1/users, "sitewide"
// /v1/charts/top/{user as the entity}.
var fuzzPaths = []string{"/top/tracks", "/top/artists", "/top/albums", "/top/", "/activity", "/listens", "", "sitewide"}

// FuzzQuery sends any user and query string to every read endpoint (stores
// faked, view recovered or not): the answer is never a 5xx, always JSON,
// and a 400 names its parameter. Seeds run with `go test`; `make
// fuzz-api` fuzzes for a bounded time.
func FuzzQuery(f *testing.F) {
	for _, s := range []struct {
		ep    uint8
		user  string
		query string
	}{
		{0, "alice", "range=7d&k=10&offset=0"},
		{1, "alice", "range=all&k=1000"},
		{2, "alice", "from=2025-01-01&to=2026-03-11"},
		{0, "alice", "range=7d&from=2026-01-01&to=2026-01-02"},
		{0, "alice", "from=0000-01-01&to=9999-12-31&k=1000&offset=1000000"},
		{0, "tie", "range=this_week"},
		{3, "alice", "entity"},
		{4, "alice", "range=365d"},
		{4, "bob", "range=all"},
		{5, "alice", "limit=3&cursor=1AAA"},
		{5, "alice", "from=2026-03-01&to=2026-03-11&limit=1000"},
		{6, "", "prefix=al&limit=5"},
		{6, "", "prefix=%FF"},
		{0, "nobody", "k=%00"},
		{0, "a|b", "range=today"},
		{1, "alice", "range=today&range=7d&k=1&k=2"},
		{0, "alice", "k=1e3&offset=0x10"},
		{0, "alice", "from=2026-03-11&to=2026-03-12"},
		{14, "tracks", "range=30d&k=1000&offset=3"},
		{15, "albums", "from=2002-01-01&to=2026-03-11"},
		{14, "artist", "range=all"},
		{15, "tracks", "k=0&offset=-1"},
	} {
		f.Add(s.ep, s.user, s.query)
	}
	fixtures := []*fixture{
		newFixture(f, fixtureOpts{recovered: true, ttl: time.Minute, api: func(c *Config) { c.Sitewide = newFakeSitewide() }}),
		newFixture(f, fixtureOpts{}), // no sitewide service: its route's 503s are the one 5xx allowed
	}
	f.Fuzz(func(t *testing.T, ep uint8, user, query string) {
		fx := fixtures[int(ep)&1]
		p := fuzzPaths[int(ep>>1)%len(fuzzPaths)]
		path := "/v1/users"
		switch {
		case p == "sitewide":
			path = "/v1/charts/top/" + url.PathEscape(user)
		case p != "":
			if user == "" {
				return // another route
			}
			path += "/" + url.PathEscape(user) + p
			if p == "/top/" {
				path += url.PathEscape(query)
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = &url.URL{Path: path, RawQuery: query}
		req.URL.RawPath = req.URL.EscapedPath()
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		fx.srv.Echo().ServeHTTP(rec, req)
		if rec.Code >= 500 && !(p == "sitewide" && fx.srv.cfg.Sitewide == nil && rec.Code == 503) {
			t.Fatalf("%s?%s: %d %s", path, query, rec.Code, rec.Body.String())
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s?%s: %d, body not JSON: %q", path, query, rec.Code, rec.Body.String())
		}
		if rec.Code == 400 {
			e, _ := body["error"].(map[string]any)
			if p, _ := e["param"].(string); p == "" {
				t.Fatalf("%s?%s: a 400 without the parameter: %s", path, query, rec.Body.String())
			}
		}
	})
}
