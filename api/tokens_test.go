package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/ops"
)

// fakeTokens is an in-memory token store with the store's error values.
type fakeTokens struct {
	mu     sync.Mutex
	tokens []fakeToken
}

type fakeToken struct {
	token string
	info  topk.TokenInfo
}

func newFakeTokens() *fakeTokens { return &fakeTokens{} }

func (f *fakeTokens) CreateToken(_ context.Context, user string) (string, topk.TokenInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := int64(len(f.tokens) + 1)
	tok := fmt.Sprintf("%08d-0000-4000-8000-000000000000", id)
	info := topk.TokenInfo{ID: id, UserID: user, Prefix: tok[:8], CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	f.tokens = append(f.tokens, fakeToken{tok, info})
	return tok, info, nil
}

func (f *fakeTokens) ListTokens(_ context.Context, user string) ([]topk.TokenInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []topk.TokenInfo
	for _, t := range f.tokens {
		if t.info.UserID == user {
			out = append(out, t.info)
		}
	}
	return out, nil
}

func (f *fakeTokens) RevokeTokens(_ context.Context, user string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for i, t := range f.tokens {
		if t.info.UserID == user && t.info.RevokedAt == nil {
			now := time.Now()
			f.tokens[i].info.RevokedAt = &now
			n++
		}
	}
	return n, nil
}

func (f *fakeTokens) RevokeToken(_ context.Context, user string, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, t := range f.tokens {
		if t.info.ID == id && t.info.UserID == user && t.info.RevokedAt == nil {
			now := time.Now()
			f.tokens[i].info.RevokedAt = &now
			return nil
		}
	}
	return topk.NotFound("id", "no such token")
}

// The token endpoints: a token made (201, shown once, not cached), listed
// without the token, revoked one by one (204, then 404) and all at once
// (the count); only the user's own.
func TestAdminTokens(t *testing.T) {
	s, _, ft := adminServerWithTokens(t, token)
	auth := "Bearer " + token
	res := do(s, "POST", "/v1/admin/users/scrob/tokens", auth, "")
	var created CreatedToken
	if err := json.Unmarshal([]byte(res.body), &created); err != nil || res.code != 201 || created.Token == "" ||
		created.ID != 1 || created.UserID != "scrob" || created.Prefix != created.Token[:8] || created.CreatedAt.IsZero() {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	for _, field := range []string{`"token":`, `"id":1`, `"prefix":`, `"created_at":`, `"last_used_at":null`, `"revoked_at":null`} {
		if !strings.Contains(res.body, field) {
			t.Errorf("create: %s lacks %s", res.body, field)
		}
	}
	if cc := res.hdr.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("create: Cache-Control %q", cc)
	}
	second := do(s, "POST", "/v1/admin/users/scrob/tokens", auth, "")
	other := do(s, "POST", "/v1/admin/users/other/tokens", auth, "")
	if second.code != 201 || other.code != 201 {
		t.Fatalf("more tokens: %d %s, %d %s", second.code, second.body, other.code, other.body)
	}

	res = do(s, "GET", "/v1/admin/users/scrob/tokens", auth, "")
	var list struct {
		UserID string           `json:"user_id"`
		Tokens []topk.TokenInfo `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(res.body), &list); err != nil || res.code != 200 || list.UserID != "scrob" || len(list.Tokens) != 2 ||
		list.Tokens[0].ID != 1 || list.Tokens[1].ID != 2 {
		t.Fatalf("list: %d %s", res.code, res.body)
	}
	for _, tok := range ft.tokens {
		if strings.Contains(res.body, tok.token) || strings.Contains(res.body, `"token"`) {
			t.Fatalf("the list shows a token: %s", res.body)
		}
	}
	if res = do(s, "GET", "/v1/admin/users/nobody/tokens", auth, ""); res.code != 200 || !strings.Contains(res.body, `"tokens":[]`) {
		t.Fatalf("list of a user without tokens: %d %s", res.code, res.body)
	}

	if res = do(s, "DELETE", "/v1/admin/users/scrob/tokens/3", auth, ""); res.code != 404 {
		t.Fatalf("revoke another user's token: %d %s", res.code, res.body)
	}
	if code, param := res.errorCode(t); code != CodeNotFound || param != "id" {
		t.Fatalf("revoke another user's token: %s", res.body)
	}
	if res = do(s, "DELETE", "/v1/admin/users/scrob/tokens/1", auth, ""); res.code != 204 || res.body != "" {
		t.Fatalf("revoke: %d %s", res.code, res.body)
	}
	if res = do(s, "DELETE", "/v1/admin/users/scrob/tokens/1", auth, ""); res.code != 404 {
		t.Fatalf("revoke twice: %d %s", res.code, res.body)
	}
	for _, id := range []string{"x", "0", "-1", "1.5", "99999999999999999999"} {
		res = do(s, "DELETE", "/v1/admin/users/scrob/tokens/"+id, auth, "")
		if code, param := res.errorCode(t); res.code != 400 || code != CodeInvalid || param != "id" {
			t.Errorf("revoke id %s: %d %s", id, res.code, res.body)
		}
	}
	if res = do(s, "DELETE", "/v1/admin/users/scrob/tokens", auth, ""); res.code != 200 || res.body != "{\"revoked\":1}\n" {
		t.Fatalf("revoke all: %d %q", res.code, res.body)
	}
	if res = do(s, "DELETE", "/v1/admin/users/scrob/tokens", auth, ""); res.code != 200 || res.body != "{\"revoked\":0}\n" {
		t.Fatalf("revoke all twice: %d %q", res.code, res.body)
	}
	if n, _ := ft.RevokeTokens(context.Background(), "other"); n != 1 {
		t.Fatal("another user's token was revoked")
	}
}

// A user id that breaks the event contract's rules or holds '/' (escaped)
// is a 400 naming user on every token route, and reaches no store.
func TestAdminTokensBadUser(t *testing.T) {
	s, _, ft := adminServerWithTokens(t, token)
	auth := "Bearer " + token
	for _, user := range []string{"a%7Cb", "a%2Fb", "%20alice", "alice%20", "a%00b", "%FF", strings.Repeat("x", 129)} {
		for _, r := range []struct{ method, path string }{
			{"POST", "/tokens"}, {"GET", "/tokens"}, {"DELETE", "/tokens"}, {"DELETE", "/tokens/1"},
		} {
			res := do(s, r.method, "/v1/admin/users/"+user+r.path, auth, "")
			if code, param := res.errorCode(t); res.code != 400 || code != CodeInvalid || param != "user" {
				t.Errorf("%s %s of %q: %d %s", r.method, r.path, user, res.code, res.body)
			}
		}
	}
	if len(ft.tokens) != 0 {
		t.Fatalf("tokens made for bad user ids: %+v", ft.tokens)
	}
	if res := do(s, "POST", "/v1/admin/users/%C3%9Cn%C3%AFcode%20ok/tokens", auth, ""); res.code != 201 || ft.tokens[0].info.UserID != "Ünïcode ok" {
		t.Fatalf("an escaped valid id: %d %s", res.code, res.body)
	}
}

// Without a token store the token routes are not there: 404 naming the
// path.
func TestAdminTokensNotMountedWithoutStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{Checker: &ops.Checker{}, Registerer: reg, Gatherer: reg}, ops.NewLogger(io.Discard, "info", "text"))
	if err != nil {
		t.Fatal(err)
	}
	s.MountAdmin(AdminConfig{Token: token, Control: &fakeAdmin{}})
	res := do(s, "POST", "/v1/admin/users/alice/tokens", "Bearer "+token, "")
	if code, _ := res.errorCode(t); res.code != 404 || code != CodeNotFound || !strings.Contains(res.body, "no such path") {
		t.Fatalf("%d %s", res.code, res.body)
	}
}
