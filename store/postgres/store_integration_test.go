//go:build integration

package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/tokens"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/postgres/postgrestest"
)

// newStore is a Store on a migrated database of the test's own.
func newStore(t *testing.T) (*postgres.Store, *pgxpool.Pool, context.Context) {
	t.Helper()
	pool := postgrestest.Migrated(t, wiring.Postgres(testenv.Config(t).Postgres))
	cipher, err := tokens.New(bytes.Repeat([]byte{7}, tokens.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return postgres.NewStore(pool, cipher), pool, testenv.Context(t, time.Minute)
}

var slot = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func newUser(id, prov string, tok provider.Tokens) crawler.NewUser {
	return crawler.NewUser{ID: id, DisplayName: "D " + id, Provider: prov, ExternalID: id + "-ext",
		Tokens: tok, Interval: time.Hour, NextRunAt: slot}
}

// Users: created with account and schedule, read, listed by prefix and
// after, refused twice, deleted once; a missing user is crawler.ErrNotFound
// and topk.ErrNotFound.
func TestIntegrationStoreUsers(t *testing.T) {
	s, _, ctx := newStore(t)
	for _, id := range []string{"ann", "anna", "bob"} {
		if err := s.CreateUser(ctx, newUser(id, "simulated", provider.Tokens{})); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, newUser("ann", "lastfm", provider.Tokens{})); !errors.Is(err, crawler.ErrExists) {
		t.Fatalf("second registration: %v", err)
	}
	sc, err := s.Schedule(ctx, "ann")
	if err != nil || sc.UserID != "ann" || sc.Provider != "simulated" || sc.ExternalID != "ann-ext" || sc.DisplayName != "D ann" ||
		sc.HasTokens || !sc.Active || time.Duration(sc.Interval) != time.Hour || !sc.NextRunAt.Equal(slot) || sc.LastStatus != "new" {
		t.Fatalf("%+v %v", sc, err)
	}
	list, err := s.Schedules(ctx, "ann", "", 10)
	if err != nil || len(list) != 2 || list[0].UserID != "ann" || list[1].UserID != "anna" {
		t.Fatalf("prefix ann: %+v %v", list, err)
	}
	if list, err = s.Schedules(ctx, "", "ann", 1); err != nil || len(list) != 1 || list[0].UserID != "anna" {
		t.Fatalf("after ann, limit 1: %+v %v", list, err)
	}
	if _, err := s.Schedule(ctx, "nobody"); !errors.Is(err, crawler.ErrNotFound) || !errors.Is(err, topk.ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
	if sc, err := s.DeleteUser(ctx, "bob"); err != nil || sc.UserID != "bob" {
		t.Fatalf("delete: %+v %v", sc, err)
	}
	if _, err := s.DeleteUser(ctx, "bob"); !errors.Is(err, crawler.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := s.MoveNextRun(ctx, "bob", slot, time.Hour); !errors.Is(err, crawler.ErrNotFound) {
		t.Fatalf("crawl now of a deleted user: %v", err)
	}
}

// A crawl's lease: only the task of the next run's slot gets it, one at a
// time; its progress and outcome are recorded while it holds it, and
// nothing once the user is gone.
func TestIntegrationStoreCrawlLease(t *testing.T) {
	s, _, ctx := newStore(t)
	if err := s.CreateUser(ctx, newUser("cy", "spotify", provider.Tokens{Access: "acc", Refresh: "ref"})); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Claim(ctx, "cy", slot.Add(time.Second), "t0", 0, time.Hour); ok || err != nil {
		t.Fatalf("claim of a stale slot: %v %v", ok, err)
	}
	c, ok, err := s.Claim(ctx, "cy", slot, "t1", 0, time.Hour)
	if err != nil || !ok || c.RunID == 0 || c.Tokens.Access != "acc" || c.Tokens.Refresh != "ref" || c.Provider != "spotify" {
		t.Fatalf("claim: %+v %v %v", c, ok, err)
	}
	if _, ok, err := s.Claim(ctx, "cy", slot, "t2", 0, time.Hour); ok || err != nil {
		t.Fatalf("a second crawl got the lease: %v %v", ok, err)
	}
	if _, err := s.MoveNextRun(ctx, "cy", slot.Add(time.Minute), time.Hour); !errors.Is(err, crawler.ErrBusy) {
		t.Fatalf("crawl now during a crawl: %v", err)
	}
	for i, cur := range []int64{100, 50} { // the cursor never moves back
		if held, err := s.Advance(ctx, "cy", "t1", c.RunID, crawler.Progress{Cursor: cur, Listens: 3, Done: i + 1, Total: 2}); !held || err != nil {
			t.Fatalf("advance: %v %v", held, err)
		}
	}
	next := slot.Add(time.Hour)
	if held, err := s.Finish(ctx, "cy", "t1", c.RunID, crawler.Outcome{Status: "ok", PossibleGap: true, Next: next}); !held || err != nil {
		t.Fatalf("finish: %v %v", held, err)
	}
	sc, err := s.Schedule(ctx, "cy")
	if err != nil || sc.Cursor != 100 || sc.ListensTotal != 6 || sc.PagesDone != 2 || sc.PagesTotal != 2 || sc.LastStatus != "ok" ||
		sc.RunningTask != "" || sc.PossibleGaps != 1 || !sc.NextRunAt.Equal(next) || !sc.HasTokens {
		t.Fatalf("after the crawl: %+v %v", sc, err)
	}
	runs, err := s.Runs(ctx, "cy", 10)
	if err != nil || len(runs) != 1 || runs[0].Outcome != "ok" || runs[0].Listens != 6 || !runs[0].PossibleGap || runs[0].TaskID != "t1" {
		t.Fatalf("runs: %+v %v", runs, err)
	}
	// The lease is released: its writes are refused, and the run of a
	// finish without the lease is skipped.
	if held, err := s.Advance(ctx, "cy", "t1", c.RunID, crawler.Progress{Cursor: 200, Listens: 1}); held || err != nil {
		t.Fatalf("advance without the lease: %v %v", held, err)
	}
	if held, err := s.Finish(ctx, "cy", "t1", c.RunID, crawler.Outcome{Status: "ok", Next: next}); held || err != nil {
		t.Fatalf("finish without the lease: %v %v", held, err)
	}
	if runs, _ := s.Runs(ctx, "cy", 10); runs[0].Outcome != "skipped" {
		t.Fatalf("run after a finish without the lease: %+v", runs[0])
	}
	// Asynq archived the next run's task: the schedule moves on, once.
	later := next.Add(time.Hour)
	for i, want := range []bool{true, false} {
		moved, err := s.MarkArchived(ctx, "cy", next, "t3", "boom", later)
		if err != nil || moved != want {
			t.Fatalf("mark archived %d: %v %v", i, moved, err)
		}
	}
	if sc, _ := s.Schedule(ctx, "cy"); sc.LastStatus != "failed" || sc.ArchivedTask != "t3" || sc.LastError != "boom" || !sc.NextRunAt.Equal(later) {
		t.Fatalf("after archived: %+v", sc)
	}
	old, err := s.MoveNextRun(ctx, "cy", slot, time.Hour)
	if err != nil || !old.Equal(later) {
		t.Fatalf("crawl now: %v %v", old, err)
	}
	// More runs, then pruned to the last two.
	for _, task := range []string{"t4", "t5", "t6"} {
		c, ok, err := s.Claim(ctx, "cy", slot, task, 0, time.Hour)
		if !ok || err != nil {
			t.Fatalf("claim %s: %v %v", task, ok, err)
		}
		if held, err := s.Finish(ctx, "cy", task, c.RunID, crawler.Outcome{Status: "retrying", Err: "again"}); !held || err != nil {
			t.Fatalf("finish %s: %v %v", task, held, err)
		}
	}
	if err := s.PruneRuns(ctx, "cy", 2); err != nil {
		t.Fatal(err)
	}
	if runs, err := s.Runs(ctx, "cy", 10); err != nil || len(runs) != 2 || runs[0].TaskID != "t6" || runs[1].TaskID != "t5" || runs[0].Outcome != "failed" {
		t.Fatalf("pruned runs: %+v %v", runs, err)
	}
	// A deleted user's lease is lost.
	c, ok, err = s.Claim(ctx, "cy", slot, "t7", 0, time.Hour)
	if !ok || err != nil {
		t.Fatalf("claim t7: %v %v", ok, err)
	}
	if _, err := s.DeleteUser(ctx, "cy"); err != nil {
		t.Fatal(err)
	}
	if held, err := s.Advance(ctx, "cy", "t7", c.RunID, crawler.Progress{Cursor: 300, Listens: 1}); held || err != nil {
		t.Fatalf("advance after delete: %v %v", held, err)
	}
}

// Tokens are sealed at rest, opened by a claim, and sealed again when
// saved; ActiveSchedules visits every active user once.
func TestIntegrationStoreTokensSealedAndActiveSchedules(t *testing.T) {
	s, pool, ctx := newStore(t)
	access, refresh := "plain-access-4711", "plain-refresh-0815"
	exp := slot.Add(time.Hour)
	if err := s.CreateUser(ctx, newUser("dee", "spotify", provider.Tokens{Access: access, Refresh: refresh, Expiry: exp})); err != nil {
		t.Fatal(err)
	}
	sealed := func(secrets ...string) {
		t.Helper()
		var a, r []byte
		if err := pool.QueryRow(ctx, `SELECT access_token, refresh_token FROM provider_accounts WHERE user_id = $1`, "dee").Scan(&a, &r); err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if bytes.Contains(a, []byte(sec)) || bytes.Contains(r, []byte(sec)) {
				t.Fatalf("token %q in plaintext", sec)
			}
		}
	}
	sealed(access, refresh)
	if err := s.SaveTokens(ctx, "dee", provider.Tokens{Access: "new-access", Refresh: refresh}); err != nil {
		t.Fatal(err)
	}
	sealed(access, refresh, "new-access")
	c, ok, err := s.Claim(ctx, "dee", slot, "t1", 0, time.Hour)
	if err != nil || !ok || c.Tokens.Access != "new-access" || c.Tokens.Refresh != refresh || !c.Tokens.Expiry.IsZero() {
		t.Fatalf("claim: %+v %v %v", c.Tokens, ok, err)
	}
	for _, id := range []string{"eve", "fay"} {
		if err := s.CreateUser(ctx, newUser(id, "simulated", provider.Tokens{})); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	if err := s.ActiveSchedules(ctx, func(sc crawler.Schedule) error { seen = append(seen, sc.UserID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0] != "dee" || seen[2] != "fay" {
		t.Fatalf("active schedules %v", seen)
	}
	stop := errors.New("stop")
	if err := s.ActiveSchedules(ctx, func(crawler.Schedule) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("ActiveSchedules does not return fn's error: %v", err)
	}
}

// Key rotation: tokens sealed with the old key are re-sealed with the new
// one (Rekey), after which the new key alone opens them; a row no key
// opens is reported and left alone; a row a refresh rewrote meanwhile is
// not overwritten; a second run re-seals nothing.
func TestIntegrationStoreRekey(t *testing.T) {
	pool := postgrestest.Migrated(t, wiring.Postgres(testenv.Config(t).Postgres))
	ctx := testenv.Context(t, time.Minute)
	oldKey, newKey, strayKey := bytes.Repeat([]byte{7}, tokens.KeySize), bytes.Repeat([]byte{9}, tokens.KeySize), bytes.Repeat([]byte{3}, tokens.KeySize)
	store := func(key []byte, previous ...[]byte) *postgres.Store {
		c, err := tokens.New(key, previous...)
		if err != nil {
			t.Fatal(err)
		}
		return postgres.NewStore(pool, c)
	}
	old := store(oldKey)
	for _, u := range []crawler.NewUser{
		newUser("a-both", "spotify", provider.Tokens{Access: "acc-a", Refresh: "ref-a"}),
		newUser("b-refresh", "spotify", provider.Tokens{Refresh: "ref-b"}),
		newUser("c-raced", "spotify", provider.Tokens{Access: "acc-c", Refresh: "ref-c"}),
		newUser("d-none", "simulated", provider.Tokens{}),
	} {
		if err := old.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := store(strayKey).CreateUser(ctx, newUser("e-stray", "spotify", provider.Tokens{Refresh: "ref-e"})); err != nil {
		t.Fatal(err)
	}
	rotating, onlyNew := store(newKey, oldKey), store(newKey)
	var progress []int
	r, err := rotating.Rekey(ctx, func(done, total int) {
		if total != 5 {
			t.Errorf("progress total %d, want 5", total)
		}
		progress = append(progress, done)
		if done == 2 { // a crawl refreshes c-raced's tokens between Rekey's read and its write
			if err := onlyNew.SaveTokens(ctx, "c-raced", provider.Tokens{Access: "acc-c2", Refresh: "ref-c2"}); err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil || r.Accounts != 5 || r.Resealed != 2 || r.Changed != 1 || r.Current != 1 || len(r.Unreadable) != 1 || r.Unreadable[0] != "e-stray" {
		t.Fatalf("rekey: %+v %v", r, err)
	}
	if len(progress) != 5 || progress[4] != 5 {
		t.Errorf("progress calls %v", progress)
	}
	for user, want := range map[string]provider.Tokens{"a-both": {Access: "acc-a", Refresh: "ref-a"}, "b-refresh": {Refresh: "ref-b"},
		"c-raced": {Access: "acc-c2", Refresh: "ref-c2"}} {
		c, ok, err := onlyNew.Claim(ctx, user, slot, "t-"+user, 0, time.Hour)
		if err != nil || !ok || c.Tokens.Access != want.Access || c.Tokens.Refresh != want.Refresh {
			t.Errorf("%s with the new key alone: %+v %v %v", user, c.Tokens, ok, err)
		}
	}
	if r, err := rotating.Rekey(ctx, nil); err != nil || r.Resealed != 0 || r.Changed != 0 || r.Current != 4 || len(r.Unreadable) != 1 {
		t.Fatalf("second rekey: %+v %v", r, err)
	}
}
