//go:build integration

package postgres_test

import (
	"crypto/sha256"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/crawler/provider"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// API tokens: made for a user without a users row (which it creates),
// random UUIDs stored only as their SHA-256, authenticating their user
// until revoked — one, or all of a user's — and never another user's;
// listed without the token; last use recorded at most once a minute.
func TestIntegrationStoreTokens(t *testing.T) {
	s, pool, ctx := newStore(t)
	tok1, info1, err := s.CreateToken(ctx, "scrob")
	if err != nil || !uuidV4.MatchString(tok1) || info1.ID == 0 || info1.UserID != "scrob" || info1.Prefix != tok1[:8] ||
		info1.CreatedAt.IsZero() || info1.LastUsedAt != nil || info1.RevokedAt != nil {
		t.Fatalf("create: %q %+v %v", tok1, info1, err)
	}
	var name string
	if err := pool.QueryRow(ctx, `SELECT display_name FROM users WHERE id = $1`, "scrob").Scan(&name); err != nil || name != "" {
		t.Fatalf("the users row: %q %v", name, err)
	}
	// Only the hash is stored: no column holds the token.
	var row string
	var hash []byte
	if err := pool.QueryRow(ctx, `SELECT t::text, token_hash FROM api_tokens t WHERE id = $1`, info1.ID).Scan(&row, &hash); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(tok1)); string(hash) != string(sum[:]) || strings.Contains(row, tok1) || strings.Contains(row, tok1[9:]) {
		t.Fatalf("stored row %s", row)
	}
	tok2, info2, err := s.CreateToken(ctx, "scrob")
	if err != nil || tok2 == tok1 || info2.ID <= info1.ID {
		t.Fatalf("second token: %q %+v %v", tok2, info2, err)
	}
	tokOther, infoOther, err := s.CreateToken(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}

	auth := func(tok, want string) {
		t.Helper()
		user, ok, err := s.Authenticate(ctx, tok)
		if err != nil || ok != (want != "") || user != want {
			t.Fatalf("authenticate %q: %q %v %v, want %q", tok, user, ok, err, want)
		}
	}
	auth(tok1, "scrob")
	auth(tok2, "scrob")
	auth(tokOther, "other")
	for _, bad := range []string{"", "x", strings.ToUpper(tok1), tok1 + " ", " " + tok1, tok1[:35], strings.Repeat("a", 10_000)} {
		auth(bad, "")
	}

	// Last use: written by the first authentication, not again within a minute.
	lastUsed := func(id int64) *time.Time {
		t.Helper()
		var at *time.Time
		if err := pool.QueryRow(ctx, `SELECT last_used_at FROM api_tokens WHERE id = $1`, id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	first := lastUsed(info1.ID)
	if first == nil {
		t.Fatal("last_used_at not written")
	}
	auth(tok1, "scrob")
	if again := lastUsed(info1.ID); again == nil || !again.Equal(*first) {
		t.Fatalf("last_used_at rewritten within a minute: %v then %v", first, again)
	}
	if _, err := pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, info1.ID); err != nil {
		t.Fatal(err)
	}
	auth(tok1, "scrob")
	if again := lastUsed(info1.ID); again == nil || time.Since(*again) > time.Minute {
		t.Fatalf("last_used_at not refreshed after two minutes: %v", again)
	}

	list, err := s.ListTokens(ctx, "scrob")
	if err != nil || len(list) != 2 || list[0].ID != info1.ID || list[1].ID != info2.ID || list[0].Prefix != tok1[:8] ||
		list[0].LastUsedAt == nil || list[0].RevokedAt != nil || list[0].UserID != "scrob" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if list, err := s.ListTokens(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Fatalf("list of a user without tokens: %+v %v", list, err)
	}

	// Revoking one: only the user's own, once; it stops authenticating at once.
	notFound := func(err error) bool {
		var te *topk.Error
		return errors.Is(err, topk.ErrNotFound) && errors.As(err, &te) && te.Param == "id"
	}
	if err := s.RevokeToken(ctx, "scrob", infoOther.ID); !notFound(err) {
		t.Fatalf("revoke another user's token: %v", err)
	}
	auth(tokOther, "other")
	if err := s.RevokeToken(ctx, "scrob", info1.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := s.RevokeToken(ctx, "scrob", info1.ID); !notFound(err) {
		t.Fatalf("revoke twice: %v", err)
	}
	if err := s.RevokeToken(ctx, "scrob", 1<<40); !notFound(err) {
		t.Fatalf("revoke a missing id: %v", err)
	}
	auth(tok1, "")
	auth(tok2, "scrob")

	// Revoking all: the valid ones, counted.
	if n, err := s.RevokeTokens(ctx, "scrob"); n != 1 || err != nil {
		t.Fatalf("revoke all: %d %v", n, err)
	}
	if n, err := s.RevokeTokens(ctx, "scrob"); n != 0 || err != nil {
		t.Fatalf("revoke all twice: %d %v", n, err)
	}
	auth(tok2, "")
	auth(tokOther, "other")
	list, err = s.ListTokens(ctx, "scrob")
	if err != nil || len(list) != 2 || list[0].RevokedAt == nil || list[1].RevokedAt == nil {
		t.Fatalf("list after revocation: %+v %v", list, err)
	}
}

// A user id breaking the event contract's rules, or holding '/', gets no
// token and no users row: topk.ErrInvalid naming user.
func TestIntegrationStoreTokenUserIDs(t *testing.T) {
	s, pool, ctx := newStore(t)
	for _, id := range []string{"", "a|b", " alice", "alice ", "a\x00b", "a/b", strings.Repeat("x", 129), "\xff"} {
		_, _, err := s.CreateToken(ctx, id)
		var te *topk.Error
		if !errors.Is(err, topk.ErrInvalid) || !errors.As(err, &te) || te.Param != "user" || !strings.HasPrefix(te.Message, "user id: ") {
			t.Errorf("%q: %v", id, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM api_tokens)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows written: %v", n, err)
	}
	if _, _, err := s.CreateToken(ctx, "Ünïcode ok"); err != nil {
		t.Fatalf("a valid id: %v", err)
	}
}

// A user who only had API tokens can register a provider account later
// (once: a second registration is crawler.ErrExists), and deleting the
// user, with or without an account, removes their tokens.
func TestIntegrationStoreTokenUserLifecycle(t *testing.T) {
	s, _, ctx := newStore(t)
	tok, _, err := s.CreateToken(ctx, "dora")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, newUser("dora", "simulated", provider.Tokens{})); err != nil {
		t.Fatalf("register a user who had tokens only: %v", err)
	}
	sc, err := s.Schedule(ctx, "dora")
	if err != nil || sc.Provider != "simulated" || sc.DisplayName != "D dora" {
		t.Fatalf("schedule: %+v %v", sc, err)
	}
	if err := s.CreateUser(ctx, newUser("dora", "lastfm", provider.Tokens{})); !errors.Is(err, crawler.ErrExists) {
		t.Fatalf("second registration: %v", err)
	}
	if user, ok, err := s.Authenticate(ctx, tok); !ok || user != "dora" || err != nil {
		t.Fatalf("token after registration: %q %v %v", user, ok, err)
	}
	if _, err := s.DeleteUser(ctx, "dora"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Authenticate(ctx, tok); ok || err != nil {
		t.Fatalf("token of a deleted user: %v %v", ok, err)
	}

	tok, _, err = s.CreateToken(ctx, "eve")
	if err != nil {
		t.Fatal(err)
	}
	if sc, err := s.DeleteUser(ctx, "eve"); err != nil || sc.UserID != "eve" {
		t.Fatalf("delete a user with tokens only: %+v %v", sc, err)
	}
	if _, ok, err := s.Authenticate(ctx, tok); ok || err != nil {
		t.Fatalf("token of a deleted user: %v %v", ok, err)
	}
	if _, err := s.DeleteUser(ctx, "eve"); !errors.Is(err, crawler.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}
