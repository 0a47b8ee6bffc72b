package sitewide

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/sink"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/views"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func date(s string) time.Time {
	t, err := time.Parse(topk.DayLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

// play is one user's plays of a key's item, spelled as.
type play struct {
	user   string
	plays  uint32
	spell  sitewide.Spelling
	weight uint32 // the listener's version
}

// value is the group's value holding plays (listeners sorted by user, as
// the group keeps them).
func value(plays ...play) []byte {
	v := &sitewide.Value{Version: uint64(len(plays))}
	slices.SortFunc(plays, func(a, b play) int { return strings.Compare(a.user, b.user) })
	for _, p := range plays {
		i := slices.Index(v.Spellings, p.spell)
		if i < 0 {
			i = len(v.Spellings)
			v.Spellings = append(v.Spellings, p.spell)
		}
		v.Listeners = append(v.Listeners, sitewide.Listener{User: p.user, Plays: p.plays, Version: p.weight + 1, Spelling: uint32(i)})
	}
	return sitewide.AppendValue(nil, v)
}

func key(e topk.Entity, item uint64, day string, bucket uint32) string {
	return sitewide.Key{Entity: e, Item: item, Day: date(day), Bucket: bucket}.String()
}

var (
	reckoner = sitewide.Spelling{Name: "Reckoner", Artist: "Radiohead"}
	shouty   = sitewide.Spelling{Name: "RECKONER", Artist: "RADIOHEAD"}
	nude     = sitewide.Spelling{Name: "Nude", Artist: "Radiohead"}
)

func startView(t *testing.T, cfg Config) (*View, *tester.Tester) {
	t.Helper()
	tt := tester.New(t)
	cfg.Registerer, cfg.Maintain = prometheus.NewRegistry(), time.Hour
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v, err := New(processors.Settings{}, cfg, goka.WithViewTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !v.Recovered() {
		if time.Now().After(deadline) {
			t.Fatal("view did not recover")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return v, tt
}

func find(ts []Tally, item uint64) (Tally, bool) {
	for _, t := range ts {
		if t.Item == item {
			return t, true
		}
	}
	return Tally{}, false
}

// Through Goka's tester: Range sums plays over buckets, children and
// days, names each item by its range's majority spelling (ties: the
// smaller name), DayListeners sums each day's listeners, and Listeners
// is the exact union over days; a listener with 0 plays counts nowhere;
// an entity's keys stay its own.
func TestRangeAndListeners(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v, tt := startView(t, Config{Days: 3, Now: now.now})
	topic := string(listen.NewTopics("").SitewideRecent)
	const track, other = 0x1111, 0x2222
	b := sitewide.BucketOf
	// 2026-03-08: alice and bob in their buckets, carol in a child key
	// (her bucket was full).
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-08", b("alice")), value(play{"alice", 3, reckoner, 0}))
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-08", b("bob")), value(play{"bob", 1, shouty, 0}))
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-08", 1024+b("carol")), value(play{"carol", 2, shouty, 0}))
	// 2026-03-09: alice again, dave (in her bucket); erin's listens were
	// deleted.
	if b("alice") != b("dave") {
		t.Fatal("alice and dave were to share a bucket")
	}
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-09", b("alice")), value(play{"alice", 1, shouty, 0}, play{"dave", 1, reckoner, 0}))
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-09", b("erin")), value(play{"erin", 0, shouty, 0}))
	// Another track, and an artist with the same item number.
	tt.Consume(topic, key(topk.Tracks, other, "2026-03-09", b("bob")), value(play{"bob", 7, nude, 0}))
	tt.Consume(topic, key(topk.Artists, track, "2026-03-09", b("bob")), value(play{"bob", 9, sitewide.Spelling{Name: "Radiohead"}, 0}))
	// Before the window: skipped.
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-07", b("zed")), value(play{"zed", 50, reckoner, 0}))

	from, to := date("2026-03-01"), date("2026-03-11")
	got := v.Range(topk.Tracks, from, to)
	if len(got) != 2 {
		t.Fatalf("Range = %+v, want 2 tracks", got)
	}
	tr, _ := find(got, track)
	// Reckoner 3+1 = 4 plays, RECKONER 1+2+1 = 4: a tie, the smaller
	// name wins ("RECKONER" < "Reckoner").
	if tr.Plays != 8 || tr.DayListeners != 5 || tr.Name != "RECKONER" || tr.Artist != "RADIOHEAD" || len(tr.Spellings) != 2 {
		t.Fatalf("track %+v: want 8 plays, 5 day-listeners, RECKONER by RADIOHEAD with 2 spellings", tr)
	}
	if n := v.Listeners(topk.Tracks, []uint64{track, other, 0x9999}, from, to); !slices.Equal(n, []int64{4, 1, 0}) {
		t.Fatalf("Listeners = %v, want [4 1 0] (alice, bob, carol, dave; bob; none)", n)
	}
	// One day: the day's own spelling and listeners.
	day8 := v.Range(topk.Tracks, date("2026-03-08"), date("2026-03-08"))
	if tr, _ := find(day8, track); len(day8) != 1 || tr.Plays != 6 || tr.DayListeners != 3 || tr.Name != "RECKONER" {
		t.Fatalf("2026-03-08 = %+v: want the track with 6 plays, 3 listeners, RECKONER (3 against Reckoner's 3)", day8)
	}
	if n := v.Listeners(topk.Tracks, []uint64{track}, date("2026-03-08"), date("2026-03-08")); n[0] != 3 {
		t.Fatalf("Listeners on 2026-03-08 = %v, want 3", n)
	}
	if a := v.Range(topk.Artists, from, to); len(a) != 1 || a[0].Plays != 9 || a[0].Name != "Radiohead" || a[0].Artist != "" {
		t.Fatalf("artists %+v", a)
	}
	// A new value of a key replaces the old one: alice's plays of the
	// 9th go from 1 to 5; frank comes, in his own bucket.
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-09", b("alice")), value(play{"alice", 5, shouty, 1}, play{"dave", 1, reckoner, 0}))
	tt.Consume(topic, key(topk.Tracks, track, "2026-03-09", b("frank")), value(play{"frank", 2, shouty, 0}))
	tr, _ = find(v.Range(topk.Tracks, from, to), track)
	if tr.Plays != 14 || tr.Name != "RECKONER" {
		t.Fatalf("after the update: %+v, want 14 plays", tr)
	}
	if n := v.Listeners(topk.Tracks, []uint64{track}, from, to); n[0] != 5 {
		t.Fatalf("Listeners after the update = %v, want 5", n)
	}
	// A deletion (nil value) drops the key.
	tt.Consume(topic, key(topk.Tracks, other, "2026-03-09", b("bob")), nil)
	if _, ok := find(v.Range(topk.Tracks, from, to), other); ok {
		t.Fatal("a deleted key still counts")
	}
	if n := testutil.ToFloat64(v.skipped.WithLabelValues("old")); n != 1 {
		t.Fatalf("skipped old = %v, want 1", n)
	}
}

// The spelling rule over a range: the most plays summed over days, ties
// the smaller name then artist; a range of one spelling has no
// Spellings.
func TestRangeNames(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v := newTestView(t, Config{Days: 5, Now: now.now})
	st := views.NewMemStore()
	put := func(k string, b []byte) {
		if err := v.update(nil, st, k, b); err != nil {
			t.Fatal(err)
		}
	}
	put(key(topk.Tracks, 1, "2026-03-08", 0), value(play{"a", 2, nude, 0}))
	put(key(topk.Tracks, 1, "2026-03-09", 0), value(play{"a", 2, nude, 0}))
	put(key(topk.Tracks, 2, "2026-03-08", 0), value(play{"a", 1, reckoner, 0}))
	put(key(topk.Tracks, 2, "2026-03-09", 1), value(play{"b", 3, shouty, 0}))
	put(key(topk.Tracks, 2, "2026-03-10", 2), value(play{"c", 2, reckoner, 0}))
	got := v.Range(topk.Tracks, date("2026-03-06"), date("2026-03-10"))
	one, _ := find(got, 1)
	if one.Plays != 4 || one.Name != "Nude" || one.Spellings != nil || one.DayListeners != 2 {
		t.Fatalf("item 1 %+v", one)
	}
	two, _ := find(got, 2)
	want := []Spelling{{"RECKONER", "RADIOHEAD", 3}, {"Reckoner", "Radiohead", 3}}
	if two.Plays != 6 || two.Name != "RECKONER" || !slices.Equal(two.Spellings, want) {
		t.Fatalf("item 2 %+v, want RECKONER (3 against 3, smaller name) with spellings %v", two, want)
	}
	// 9th–10th: RECKONER 3, Reckoner 2.
	two, _ = find(v.Range(topk.Tracks, date("2026-03-10"), date("2026-03-10")), 2)
	if two.Name != "Reckoner" || two.Plays != 2 {
		t.Fatalf("item 2 on the 10th %+v", two)
	}
	// The merge left the item-days' spellings alone.
	two, _ = find(v.Range(topk.Tracks, date("2026-03-09"), date("2026-03-09")), 2)
	if two.Name != "RECKONER" || two.Plays != 3 || two.Spellings != nil {
		t.Fatalf("item 2 on the 9th %+v", two)
	}
}

func newTestView(t *testing.T, cfg Config) *View {
	t.Helper()
	cfg.Registerer = prometheus.NewRegistry()
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := New(processors.Settings{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Against an independent count: random users' plays of random items over
// days, split into buckets and child keys as the group does, some
// rewritten, some deleted; Range and Listeners agree with sums and sets
// over the raw plays for several ranges.
func TestRangeMatchesIndependentCount(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v := newTestView(t, Config{Days: 7, Now: now.now})
	stores := map[int]*views.MemStore{}
	rng := rand.New(rand.NewPCG(1, 2))
	type cell struct {
		day  string
		item uint64
	}
	// plays[cell][user] is the latest value of each user.
	plays := map[cell]map[string]uint32{}
	// A user's key: bucket BucketOf(user), or a child when the user's
	// number says so (a full bucket).
	keyOf := func(c cell, user string, n int) string {
		bucket := sitewide.BucketOf(user)
		if n%5 == 0 {
			bucket = 1024 + bucket*4 + uint32(n%3)
		}
		return key(topk.Albums, c.item, c.day, bucket)
	}
	users := 300
	for round := range 3 {
		for range 4000 {
			u := rng.IntN(users)
			c := cell{date("2026-03-04").AddDate(0, 0, rng.IntN(7)).Format(topk.DayLayout), uint64(1 + rng.IntN(60))}
			if plays[c] == nil {
				plays[c] = map[string]uint32{}
			}
			p := uint32(rng.IntN(4)) // 0: every listen deleted
			if round == 2 && rng.IntN(3) == 0 {
				p = 0
			}
			plays[c][fmt.Sprintf("user%03d", u)] = p
		}
		// Write every key of this round's state.
		keys := map[string][]play{}
		for c, us := range plays {
			for user, p := range us {
				var n int
				fmt.Sscanf(user, "user%d", &n)
				k := keyOf(c, user, n)
				sp := nude
				if n%2 == 0 {
					sp = reckoner
				}
				keys[k] = append(keys[k], play{user, p, sp, uint32(round)})
			}
		}
		for k, ps := range keys {
			st := stores[len(k)%3]
			if st == nil {
				st = views.NewMemStore()
				stores[len(k)%3] = st
			}
			if err := v.update(nil, st, k, value(ps...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range [][2]string{{"2026-03-04", "2026-03-10"}, {"2026-03-06", "2026-03-06"}, {"2026-03-05", "2026-03-08"}, {"2026-01-01", "2026-03-04"}} {
		from, to := date(r[0]), date(r[1])
		wantPlays, wantUsers := map[uint64]int64{}, map[uint64]map[string]bool{}
		for c, us := range plays {
			if d := date(c.day); d.Before(from) || d.After(to) {
				continue
			}
			for u, p := range us {
				if p == 0 {
					continue
				}
				wantPlays[c.item] += int64(p)
				if wantUsers[c.item] == nil {
					wantUsers[c.item] = map[string]bool{}
				}
				wantUsers[c.item][u] = true
			}
		}
		got := v.Range(topk.Albums, from, to)
		if len(got) != len(wantPlays) {
			t.Fatalf("%v: %d items, want %d", r, len(got), len(wantPlays))
		}
		items := make([]uint64, len(got))
		for i, g := range got {
			items[i] = g.Item
			if g.Plays != wantPlays[g.Item] {
				t.Errorf("%v: item %d has %d plays, want %d", r, g.Item, g.Plays, wantPlays[g.Item])
			}
		}
		ls := v.Listeners(topk.Albums, items, from, to)
		for i, item := range items {
			if ls[i] != int64(len(wantUsers[item])) {
				t.Errorf("%v: item %d has %d listeners, want %d", r, item, ls[i], len(wantUsers[item]))
			}
			if ls[i] > got[i].DayListeners {
				t.Errorf("%v: item %d: %d listeners above the day sum %d", r, item, ls[i], got[i].DayListeners)
			}
		}
	}
	// The pooled bitset is left empty.
	b := bitsets.Get().(*bitset)
	if b.count() != 0 {
		t.Fatalf("bitset left with %d ids", b.count())
	}
	bitsets.Put(b)
}

// The date rolls over: Prune drops the days that left the window from
// the index and the stores, and gives their users back; a record of a
// pruned day is skipped.
func TestPrune(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v, tt := startView(t, Config{Days: 2, Now: now.now})
	topic := string(listen.NewTopics("").SitewideRecent)
	tt.Consume(topic, key(topk.Tracks, 1, "2026-03-09", 0), value(play{"old-only", 1, nude, 0}, play{"both", 1, nude, 0}))
	tt.Consume(topic, key(topk.Tracks, 1, "2026-03-10", 0), value(play{"both", 2, nude, 0}))
	if st := v.stats(); st.keys != 2 || st.users != 2 {
		t.Fatalf("stats %+v, want 2 keys, 2 users", st)
	}
	before := v.stats().bytes
	now.t = now.t.Add(24 * time.Hour)
	if n := v.Prune(now.t); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	st := v.stats()
	if st.keys != 1 || st.users != 1 || st.bytes >= before {
		t.Fatalf("after the prune: %+v (bytes before %d)", st, before)
	}
	if got := v.Range(topk.Tracks, date("2026-03-01"), date("2026-03-12")); len(got) != 1 || got[0].Plays != 2 {
		t.Fatalf("Range after the prune = %+v", got)
	}
	n := 0
	for _, s := range v.stores {
		n += s.Len()
	}
	if n != 1 {
		t.Fatalf("stores hold %d keys, want 1", n)
	}
	tt.Consume(topic, key(topk.Tracks, 1, "2026-03-09", 1), value(play{"late", 1, nude, 0}))
	if st := v.stats(); st.keys != 1 {
		t.Fatalf("a record of a pruned day was kept: %+v", st)
	}
}

// Bad keys and undecodable values are counted and skipped; they stop
// nothing.
func TestSkips(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v, tt := startView(t, Config{Days: 2, Now: now.now})
	topic := string(listen.NewTopics("").SitewideRecent)
	tt.Consume(topic, "alice|2026-03-10", value(play{"a", 1, nude, 0}))
	tt.Consume(topic, key(topk.Tracks, 1, "2026-03-10", 0), []byte{9, 9, 9})
	tt.Consume(topic, key(topk.Tracks, 2, "2026-03-10", 0), value(play{"a", 1, nude, 0}))
	if a, b := testutil.ToFloat64(v.skipped.WithLabelValues("bad_key")), testutil.ToFloat64(v.skipped.WithLabelValues("undecodable")); a != 1 || b != 1 {
		t.Fatalf("skipped bad_key %v, undecodable %v; want 1 and 1", a, b)
	}
	if got := v.Range(topk.Tracks, date("2026-03-10"), date("2026-03-10")); len(got) != 1 || got[0].Item != 2 {
		t.Fatalf("Range = %+v", got)
	}
}

// Past MaxBytes the view keeps the newest days that fit in 90% of it,
// FirstDay moves up (the api reads the rest from Cassandra), later
// records of the cut days are skipped, and today stays.
func TestMemoryBound(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	one := decode("x", sitewide.Key{Entity: topk.Tracks, Item: 1, Day: date("2026-03-10")}, mustDecode(value(play{"user00", 1, nude, 0})), 40)
	per := one.h.size + itemDayBytes + userBytes + 8
	v := newTestView(t, Config{Days: 10, Now: now.now, MaxBytes: 25 * per})
	st := views.NewMemStore()
	for i := 9; i >= 0; i-- { // oldest first, as a recovery reads them
		d := now.t.AddDate(0, 0, -i).Format(topk.DayLayout)
		for item := range uint64(10) {
			if err := v.update(nil, st, key(topk.Tracks, item, d, 0), value(play{fmt.Sprintf("user%02d", item), 1, nude, 0})); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := v.FirstDay(now.t)
	if !first.After(now.t.AddDate(0, 0, -9)) {
		t.Fatalf("first day %v: the memory bound did not cut the window", first)
	}
	v.Prune(now.t)
	if s := v.stats(); s.bytes > v.cfg.MaxBytes || s.keys == 0 {
		t.Fatalf("view holds %d keys in %d bytes, bound %d", s.keys, s.bytes, v.cfg.MaxBytes)
	}
	if got := v.Range(topk.Tracks, midnight(now.t), midnight(now.t)); len(got) != 10 {
		t.Fatalf("today has %d items, want 10", len(got))
	}
	old := first.AddDate(0, 0, -1).Format(topk.DayLayout)
	if err := v.update(nil, st, key(topk.Tracks, 99, old, 0), value(play{"late", 1, nude, 0})); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(v.skipped.WithLabelValues("memory")); n != 1 {
		t.Fatalf("skipped memory = %v, want 1", n)
	}
	if got := v.Range(topk.Tracks, date("2026-03-01"), now.t); len(got) != 10 {
		t.Fatalf("Range over the window has %d items, want 10 (every day from %v)", len(got), first)
	}
}

func mustDecode(b []byte) *sitewide.Value {
	v, err := sitewide.DecodeValue(b)
	if err != nil {
		panic(err)
	}
	return v
}

// Ids of users no key holds any more are reused; a user of several keys
// is one id.
func TestUserTable(t *testing.T) {
	u := userTable{ids: map[string]uint32{}}
	a, b, a2 := u.acquire("a"), u.acquire("b"), u.acquire("a")
	if a != a2 || a == b || u.live() != 2 {
		t.Fatalf("ids %d %d %d, live %d", a, b, a2, u.live())
	}
	u.release(a)
	if u.live() != 2 {
		t.Fatal("a released while a key still holds it")
	}
	u.release(a)
	if c := u.acquire("c"); c != a || u.live() != 2 || u.names[c] != "c" {
		t.Fatalf("c got id %d (a's was %d), live %d", c, a, u.live())
	}
	u.release(b)
	u.release(a)
	if u.live() != 0 || u.bytes != 0 {
		t.Fatalf("live %d, bytes %d after releasing everything", u.live(), u.bytes)
	}
}

// Tens of thousands of keys: a 7-day Range and a page of Listeners stay
// well within an api request's budget (the bound is loose: shared CI
// cores; the time is logged).
func TestRangeOfManyKeys(t *testing.T) {
	now := &clock{time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	v := newTestView(t, Config{Days: 7, Now: now.now})
	st := views.NewMemStore()
	const items = 4000
	for d := range 7 {
		day := now.t.AddDate(0, 0, -d).Format(topk.DayLayout)
		for item := range uint64(items) {
			for bucket := range uint32(2) {
				u := fmt.Sprintf("u%d", (int(item)+int(bucket)*7+d)%500)
				if err := v.update(nil, st, key(topk.Tracks, item, day, bucket), value(play{u, uint32(1 + item%5), nude, 0})); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The fastest of a few: the cores are shared.
	var got []Tally
	took := time.Hour
	for range 5 {
		start := time.Now()
		got = v.Range(topk.Tracks, now.t.AddDate(0, 0, -6), now.t)
		took = min(took, time.Since(start))
	}
	page := make([]uint64, 100)
	for i := range page {
		page[i] = got[i].Item
	}
	start := time.Now()
	ls := v.Listeners(topk.Tracks, page, now.t.AddDate(0, 0, -6), now.t)
	tookL := time.Since(start)
	t.Logf("Range over 7 days × %d items × 2 keys: %v; Listeners of 100 items: %v", items, took, tookL)
	if len(got) != items || ls[0] < 2 || ls[0] > 14 {
		t.Fatalf("%d items, listeners %d", len(got), ls[0])
	}
	if took > 500*time.Millisecond || tookL > 500*time.Millisecond {
		t.Fatalf("Range took %v, Listeners %v", took, tookL)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Days: -1}).Validate(); err == nil {
		t.Error("negative days accepted")
	}
	if err := (Config{MaxBytes: -1}).Validate(); err == nil {
		t.Error("negative MaxBytes accepted")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Error(err)
	}
}

// Kafka away: the set-up fails, Check says so, the view rebuilds and
// recovers; the rebuilds are counted.
func TestViewWaitsForKafka(t *testing.T) {
	tt := tester.New(t)
	v, err := New(processors.Settings{}, Config{Registerer: prometheus.NewRegistry(), Maintain: time.Hour, OutageLimit: time.Minute,
		Backoff: sink.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil))}, goka.WithViewTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	fails := 0
	release := make(chan struct{})
	v.life.Build = func(ctx context.Context) (*goka.View, func(), error) {
		if fails < 2 {
			fails++
			if fails == 2 {
				<-release
			}
			return nil, nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
		}
		return v.newGoka(ctx)
	}
	if err := v.Check(context.Background()); err == nil || err.Error() != "starting" {
		t.Fatalf("Check before Run = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for v.life.Kafka.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the failed set-up was not noticed")
		}
		time.Sleep(time.Millisecond)
	}
	if err := v.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Check while Kafka is away = %v", err)
	}
	close(release)
	for !v.Recovered() {
		if time.Now().After(deadline) {
			t.Fatal("the view did not recover")
		}
		time.Sleep(time.Millisecond)
	}
	if err := v.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(v.life.Restarts); n != 2 {
		t.Fatalf("restarts %v, want 2", n)
	}
	today := time.Now().UTC().Format(topk.DayLayout)
	tt.Consume(string(listen.NewTopics("").SitewideRecent), key(topk.Tracks, 5, today, 0), value(play{"a", 1, nude, 0}))
	if got := v.Range(topk.Tracks, date(today), date(today)); len(got) != 1 {
		t.Fatalf("Range after recovery = %+v", got)
	}
}

// The store keeps the records as they came (Goka's monitor reads them),
// iterates in key order and prunes by the key's date.
func TestKeyStore(t *testing.T) {
	s := views.NewMemStore()
	for _, k := range []string{key(topk.Tracks, 2, "2026-01-02", 0), key(topk.Albums, 1, "2026-01-01", 3), key(topk.Tracks, 1, "2026-01-03", 1030)} {
		_ = s.Set(k, []byte(k))
	}
	it, _ := s.Iterator()
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	if len(keys) != 3 || !slices.IsSorted(keys) {
		t.Fatalf("iterator %v", keys)
	}
	it, _ = s.IteratorWithRange([]byte("track|"), nil)
	keys = keys[:0]
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	if len(keys) != 2 {
		t.Fatalf("prefix iterator %v", keys)
	}
	if d, ok := keyDate(key(topk.Albums, 7, "2026-01-05", 1031)); !ok || d != "2026-01-05" {
		t.Fatalf("keyDate = %q, %v", d, ok)
	}
	if n := s.Prune("2026-01-02", keyDate); n != 1 || s.Len() != 2 {
		t.Fatalf("pruned %d, left %d", n, s.Len())
	}
	if b, _ := s.Get(key(topk.Tracks, 2, "2026-01-02", 0)); string(b) != key(topk.Tracks, 2, "2026-01-02", 0) {
		t.Fatalf("Get = %q", b)
	}
}
