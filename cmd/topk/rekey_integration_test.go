//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/tokens"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/postgres"
)

// A token-key rotation through the command: a token sealed with key A is
// re-sealed by `topk rekey` run with TOPK_TOKEN_KEY=B and
// TOPK_TOKEN_KEY_PREVIOUS=A, after which B alone opens it; with a key that
// opens nothing, the command names the account and exits 1.
func TestIntegrationRekeyCommand(t *testing.T) {
	_, db := crawlerEnv(t)
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, tokens.KeySize) }
	b64 := func(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
	cfg := testenv.Config(t)
	cfg.Postgres.Database = db
	ctx := testenv.Context(t, time.Minute)
	pool, err := postgres.Open(ctx, wiring.Postgres(cfg.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cipherA, _ := tokens.New(key(1))
	if err := postgres.NewStore(pool, cipherA).CreateUser(ctx, crawler.NewUser{ID: "rot", Provider: "spotify", ExternalID: "rot",
		Tokens: provider.Tokens{Access: "acc", Refresh: "ref"}, Interval: time.Hour, NextRunAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOPK_DEV_MODE", "0")
	rekey := func(current string, previous string) (postgres.RekeyResult, int, string) {
		t.Setenv("TOPK_TOKEN_KEY", current)
		t.Setenv("TOPK_TOKEN_KEY_PREVIOUS", previous)
		var out, errb bytes.Buffer
		code := Main(context.Background(), []string{"rekey"}, &out, &errb)
		var r postgres.RekeyResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("topk rekey printed %q: %v (stderr %s)", out.String(), err, errb.String())
		}
		return r, code, errb.String()
	}
	if r, code, stderr := rekey(b64(key(2)), b64(key(1))); code != 0 || r.Accounts != 1 || r.Resealed != 1 || !strings.Contains(stderr, "re-sealing provider tokens") {
		t.Fatalf("rotation: exit %d, %+v, %s", code, r, stderr)
	}
	if r, code, _ := rekey(b64(key(2)), ""); code != 0 || r.Current != 1 || r.Resealed != 0 {
		t.Fatalf("after rotation, the new key alone: exit %d, %+v", code, r)
	}
	if r, code, stderr := rekey(b64(key(1)), ""); code != 1 || len(r.Unreadable) != 1 || r.Unreadable[0] != "rot" || !strings.Contains(stderr, "no configured key opens") {
		t.Fatalf("the old key alone after rotation: exit %d, %+v, %s", code, r, stderr)
	}
}
