//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/postgres"
)

// runTopk runs topk with args: its exit code, stdout and stderr.
func runTopk(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// tokenEnv points the environment at a migrated PostgreSQL database of
// the test's own (TOPK_DEV_MODE devMode, no TOPK_TOKEN_KEY) and returns a
// check that the store authenticates a token as want ("": not at all).
func tokenEnv(t *testing.T, devMode string) (auth func(token, want string)) {
	t.Helper()
	cfg := testenv.Config(t)
	t.Setenv("TOPK_POSTGRES_DB", cfg.Postgres.Database)
	t.Setenv("TOPK_RUNTIME_DIR", t.TempDir())
	t.Setenv("TOPK_DEV_MODE", devMode)
	t.Setenv("TOPK_TOKEN_KEY", "")
	testenv.Database(t, cfg)
	if code, _, stderr := runTopk("migrate", "postgres"); code != 0 {
		t.Fatalf("topk migrate postgres: %s", stderr)
	}
	ctx := testenv.Context(t, time.Minute)
	pool, err := postgres.Open(ctx, wiring.Postgres(cfg.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := postgres.NewStore(pool, nil)
	return func(tok, want string) {
		t.Helper()
		user, ok, err := store.Authenticate(ctx, tok)
		if err != nil || ok != (want != "") || user != want {
			t.Fatalf("authenticate: %q %v %v, want %q", user, ok, err, want)
		}
	}
}

// A user's API tokens through the command, on PostgreSQL alone (no token
// key, no dev mode): `topk token create` prints a token once (JSON on
// stdout, the warning on stderr) that the store then authenticates;
// `list` shows it without the token; `revoke --id` and `revoke` end
// what they name at once; a token id not the user's and a bad user id
// exit 1 naming the problem.
func TestIntegrationTokenCommand(t *testing.T) {
	auth := tokenEnv(t, "0")
	create := func(user string) api.CreatedToken {
		t.Helper()
		code, stdout, stderr := runTopk("token", "create", "--user", user)
		var c api.CreatedToken
		if err := json.Unmarshal([]byte(stdout), &c); err != nil || code != 0 || c.Token == "" || c.UserID != user || c.Prefix != c.Token[:8] {
			t.Fatalf("topk token create: exit %d, %q, %s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "will not be shown again") || strings.Contains(stderr, c.Token) {
			t.Fatalf("topk token create: stderr %q", stderr)
		}
		return c
	}

	first := create("scrob")
	auth(first.Token, "scrob")
	second := create("scrob")
	other := create("other")
	auth(second.Token, "scrob")

	code, stdout, stderr := runTopk("token", "list", "--user", "scrob")
	var list struct {
		UserID string `json:"user_id"`
		Tokens []struct {
			ID         int64      `json:"id"`
			Prefix     string     `json:"prefix"`
			LastUsedAt *time.Time `json:"last_used_at"`
			RevokedAt  *time.Time `json:"revoked_at"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || code != 0 || list.UserID != "scrob" || len(list.Tokens) != 2 ||
		list.Tokens[0].ID != first.ID || list.Tokens[0].Prefix != first.Prefix || list.Tokens[0].LastUsedAt == nil ||
		list.Tokens[0].RevokedAt != nil || strings.Contains(stdout, first.Token) || strings.Contains(stdout, second.Token) {
		t.Fatalf("topk token list: exit %d, %s %s", code, stdout, stderr)
	}

	revoked := func(want int, args ...string) {
		t.Helper()
		code, stdout, stderr := runTopk(append([]string{"token", "revoke"}, args...)...)
		var r struct{ Revoked int }
		if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != 0 || r.Revoked != want {
			t.Fatalf("topk token revoke %v: exit %d, %q, %s", args, code, stdout, stderr)
		}
	}
	revoked(1, "--user", "scrob", "--id", strconv.FormatInt(first.ID, 10))
	auth(first.Token, "")
	auth(second.Token, "scrob")
	if code, _, stderr := runTopk("token", "revoke", "--user", "scrob", "--id", strconv.FormatInt(other.ID, 10)); code != 1 ||
		!strings.Contains(stderr, "has no valid token with id") {
		t.Fatalf("revoke another user's token: exit %d, %s", code, stderr)
	}
	auth(other.Token, "other")
	revoked(1, "--user", "scrob")
	auth(second.Token, "")
	revoked(0, "--user", "scrob")
	auth(other.Token, "other")

	if code, _, stderr := runTopk("token", "create", "--user", "a|b"); code != 1 || !strings.Contains(stderr, "user id: contains '|'") {
		t.Fatalf("a bad user id: exit %d, %s", code, stderr)
	}
	if code, _, _ := runTopk("token", "create"); code != 1 {
		t.Fatalf("without --user: exit %d", code)
	}
	if code, _, _ := runTopk("token", "rotate", "--user", "scrob"); code != 2 {
		t.Fatalf("an unknown subcommand: exit %d", code)
	}
}

// The token endpoints as `topk api` mounts them (mountAdmin, on the real
// PostgreSQL): a token made over HTTP authenticates through the store
// until revoked over HTTP, at once; only with the admin token.
func TestIntegrationTokensOfTheAdminAPI(t *testing.T) {
	auth := tokenEnv(t, "1")
	t.Setenv("TOPK_ADMIN_TOKEN", "tok-0123456789abcdef")
	_, req := adminAPI(t)
	const admin = "Bearer tok-0123456789abcdef"
	if code, body := req("POST", "/v1/admin/users/scrob/tokens", "", ""); code != 401 {
		t.Fatalf("without the admin token: %d %s", code, body)
	}
	code, body := req("POST", "/v1/admin/users/scrob/tokens", admin, "")
	var c api.CreatedToken
	if err := json.Unmarshal([]byte(body), &c); err != nil || code != 201 || c.Token == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	auth(c.Token, "scrob")
	if code, body := req("GET", "/v1/admin/users/scrob/tokens", admin, ""); code != 200 ||
		!strings.Contains(body, `"prefix":"`+c.Prefix+`"`) || strings.Contains(body, c.Token) {
		t.Fatalf("list: %d %s", code, body)
	}
	path := "/v1/admin/users/scrob/tokens/" + strconv.FormatInt(c.ID, 10)
	if code, body := req("DELETE", path, admin, ""); code != 204 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	auth(c.Token, "")
	if code, body := req("DELETE", path, admin, ""); code != 404 || !strings.Contains(body, `"param":"id"`) {
		t.Fatalf("revoke twice: %d %s", code, body)
	}
	if code, body := req("POST", "/v1/admin/users/a%7Cb/tokens", admin, ""); code != 400 || !strings.Contains(body, `"param":"user"`) {
		t.Fatalf("a bad user id: %d %s", code, body)
	}
	if code, body := req("DELETE", "/v1/admin/users/scrob/tokens", admin, ""); code != 200 || !strings.Contains(body, `"revoked":0`) {
		t.Fatalf("revoke all: %d %s", code, body)
	}
}
