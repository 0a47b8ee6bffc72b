package sitewide

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

func start(t *testing.T, cfg Config) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	g := newGroup(cfg)
	p, err := goka.NewProcessor(nil, g.graph(), goka.WithTester(tt), goka.WithHasher(Hasher),
		goka.WithNilHandling(goka.NilProcess), goka.WithRebalanceCallback(g.reset))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	return tt
}

var (
	topics = listen.NewTopics("")
	day1   = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
)

// keyOf is the top-level key of user's Counts of item on day1.
func keyOf(user string) Key {
	return Key{Entity: topk.Tracks, Item: 42, Day: day1, Bucket: BucketOf(user)}
}

// sameBucket is n users other than not whose top-level bucket is k's.
func sameBucket(k Key, not string, n int) []string {
	var us []string
	for i := 0; len(us) < n; i++ {
		if u := not + "-" + strconv.Itoa(i); BucketOf(u) == k.Bucket {
			us = append(us, u)
		}
	}
	return us
}

func send(tt *tester.Tester, k Key, c Count) {
	tt.Consume(string(topics.Counts), k.String(), AppendCount(nil, &c))
}

func value(t *testing.T, tt *tester.Tester, k Key) *Value {
	t.Helper()
	b, _ := tt.TableValue(Table(""), k.String()).([]byte)
	if b == nil {
		return nil
	}
	v, err := DecodeValue(b)
	if err != nil {
		t.Fatalf("key %s: %v", k, err)
	}
	return v
}

func holder(t *testing.T, v *Value, user string) Listener {
	t.Helper()
	if v == nil {
		t.Fatalf("no value holding %s", user)
	}
	i, ok := v.Find(user)
	if !ok {
		t.Fatalf("%s not in %+v", user, v.Listeners)
	}
	return v.Listeners[i]
}

// deadLetters reads the reasons of the DLQ's next records.
func deadLetters(dlq *tester.QueueTracker) []string {
	var rs []string
	for {
		h, _, _, ok := dlq.NextWithHeaders()
		if !ok {
			return rs
		}
		rs = append(rs, string(h[processors.HeaderReason]))
	}
}

// Replays and versions out of order set what the latest version set; a
// Count that changes nothing leaves Version alone.
func TestReplaysAndOutOfOrderVersions(t *testing.T) {
	tt := start(t, Config{})
	k := keyOf("alice")
	send(tt, k, Count{User: "alice", Version: 3, Plays: 5, Name: "Song", Artist: "Band"})
	v := value(t, tt, k)
	if v.Version != 1 || v.Plays() != 5 || v.ListenerCount() != 1 {
		t.Fatalf("after v3: %+v", v)
	}
	for _, ver := range []uint32{1, 2, 3, 1, 3} {
		send(tt, k, Count{User: "alice", Version: ver, Plays: ver, Name: "Song", Artist: "Band"})
	}
	v = value(t, tt, k)
	if v.Version != 1 || v.Plays() != 5 {
		t.Fatalf("after older versions: version %d, plays %d; want 1, 5", v.Version, v.Plays())
	}
	send(tt, k, Count{User: "alice", Version: 7, Plays: 8, Name: "Song", Artist: "Band"})
	send(tt, k, Count{User: "alice", Version: 4, Plays: 6, Name: "Song", Artist: "Band"})
	v = value(t, tt, k)
	if l := holder(t, v, "alice"); v.Version != 2 || l.Plays != 8 || l.Version != 7 {
		t.Fatalf("after v7 and v4: %+v", v)
	}
}

// A user whose listens were all deleted stays with 0 plays (a replayed
// older Count must not bring them back) and is no listener.
func TestDeletionToZero(t *testing.T) {
	tt := start(t, Config{})
	k := keyOf("bob")
	other := sameBucket(k, "bob", 1)[0]
	send(tt, k, Count{User: "bob", Version: 1, Plays: 2, Name: "Song", Artist: "Band"})
	send(tt, k, Count{User: other, Version: 1, Plays: 1, Name: "Song", Artist: "Band"})
	send(tt, k, Count{User: "bob", Version: 2, Plays: 0, Name: "Song", Artist: "Band"})
	send(tt, k, Count{User: "bob", Version: 1, Plays: 2, Name: "Song", Artist: "Band"})
	v := value(t, tt, k)
	if l := holder(t, v, "bob"); l.Plays != 0 || l.Version != 2 {
		t.Fatalf("bob %+v", l)
	}
	if v.Plays() != 1 || v.ListenerCount() != 1 || len(v.Listeners) != 2 || v.Version != 3 {
		t.Fatalf("value %+v: want 1 play, 1 listener of 2 kept, version 3", v)
	}
	// A first Count of 0 plays is kept too, for the same reason.
	k3 := keyOf("carol")
	send(tt, k3, Count{User: "carol", Version: 4, Plays: 0, Name: "Song", Artist: "Band"})
	send(tt, k3, Count{User: "carol", Version: 3, Plays: 1, Name: "Song", Artist: "Band"})
	if v := value(t, tt, k3); v.Plays() != 0 || v.ListenerCount() != 0 || len(v.Listeners) != 1 {
		t.Fatalf("carol's key %+v", v)
	}
}

// Spellings: at most MaxSpellings per key; past them a Count's spelling
// is the key's of the same name in another case, else the first.
func TestSpellings(t *testing.T) {
	tt := start(t, Config{})
	k := keyOf("u0")
	users := []string{}
	for i := 0; len(users) < MaxSpellings+2; i++ {
		if u := "u" + strconv.Itoa(i); BucketOf(u) == k.Bucket {
			users = append(users, u)
		}
	}
	for i, u := range users[:MaxSpellings] {
		send(tt, k, Count{User: u, Version: 1, Plays: 1, Name: "Song " + strconv.Itoa(i), Artist: "Band"})
	}
	send(tt, k, Count{User: users[MaxSpellings], Version: 1, Plays: 1, Name: "SONG 3", Artist: "Other"})
	send(tt, k, Count{User: users[MaxSpellings+1], Version: 1, Plays: 1, Name: "Else", Artist: "Band"})
	// A known spelling is found again.
	send(tt, k, Count{User: users[0], Version: 2, Plays: 3, Name: "Song 5", Artist: "Band"})
	v := value(t, tt, k)
	if len(v.Spellings) != MaxSpellings {
		t.Fatalf("%d spellings", len(v.Spellings))
	}
	if l := holder(t, v, users[MaxSpellings]); v.Spellings[l.Spelling] != (Spelling{"Song 3", "Band"}) {
		t.Errorf("a 17th spelling of another case shows as %+v", v.Spellings[l.Spelling])
	}
	if l := holder(t, v, users[MaxSpellings+1]); l.Spelling != 0 {
		t.Errorf("a 17th spelling of another name shows as %d", l.Spelling)
	}
	if l := holder(t, v, users[0]); v.Spellings[l.Spelling].Name != "Song 5" {
		t.Errorf("a known spelling: %+v", v.Spellings[l.Spelling])
	}
	if d := v.Display(); d.Name != "Song 5" {
		t.Errorf("display %+v, want the majority's Song 5", d)
	}
}

// spillCase is a shuffled stream of Counts (two versions per user) over
// KeyBytes 100, sent twice.
func TestSpillExact(t *testing.T) {
	const keyBytes = 100
	tt := start(t, Config{KeyBytes: keyBytes})
	rng := rand.New(rand.NewPCG(1, 2))
	type uc struct {
		k Key
		c Count
	}
	var stream []uc
	final := map[string]uint32{}
	for i := range 400 {
		u := "user-" + strconv.Itoa(i)
		p1 := uint32(1 + rng.IntN(100))
		p2 := p1 + uint32(rng.IntN(120)) // some cross 127: their record grows
		name := "Song"
		if i%7 == 0 {
			name = "song"
		}
		stream = append(stream,
			uc{keyOf(u), Count{User: u, Version: 1, Plays: p1, Name: name, Artist: "Band"}},
			uc{keyOf(u), Count{User: u, Version: 2, Plays: p2, Name: "Song", Artist: "Band"}})
		final[u] = p2
	}
	changelog := tt.NewQueueTracker(string(Table("")))
	dlq := tt.NewQueueTracker(string(topics.DLQ))
	for range 2 {
		rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
		for _, s := range stream {
			send(tt, s.k, s.c)
		}
	}
	if rs := deadLetters(dlq); len(rs) != 0 {
		t.Fatalf("dead letters %v", rs)
	}
	for {
		_, v, ok := changelog.Next()
		if !ok {
			break
		}
		if n := len(v.([]byte)); n > keyBytes {
			t.Fatalf("a value of %d bytes was written, over %d", n, keyBytes)
		}
	}
	seen := map[string]Key{}
	var sum int64
	full, depth := 0, 0
	for _, ks := range tt.GetTableKeys(Table("")) {
		k, err := ParseKey(ks)
		if err != nil {
			t.Fatal(err)
		}
		v := value(t, tt, k)
		if v.Full {
			full++
		}
		depth = max(depth, level(k.Bucket))
		sum += v.Plays()
		for _, l := range v.Listeners {
			if prev, ok := seen[l.User]; ok {
				t.Fatalf("user %s in %s and %s", l.User, prev, k)
			}
			seen[l.User] = k
			if !OnPath(k.Bucket, l.User) {
				t.Fatalf("user %s in %s, off its spill path", l.User, k)
			}
			if l.Plays != final[l.User] || l.Version != 2 {
				t.Fatalf("user %s: %+v, want %d plays at version 2", l.User, l, final[l.User])
			}
		}
	}
	var want int64
	for _, p := range final {
		want += int64(p)
	}
	if len(seen) != len(final) || sum != want {
		t.Fatalf("%d users counted, %d plays; want %d, %d", len(seen), sum, len(final), want)
	}
	if full == 0 || depth < 2 {
		t.Fatalf("%d full keys, depth %d: the test did not spill", full, depth)
	}
	t.Logf("%d users over %d keys, %d full, %d levels deep", len(seen), len(tt.GetTableKeys(Table(""))), full, depth)
}

// A full key forwards a new user's Count, bytes unchanged, to the user's
// child key; a user it holds is still updated there.
func TestFullKeyForwards(t *testing.T) {
	tt := start(t, Config{KeyBytes: minKeyBytes})
	k := keyOf("a")
	var users []string
	for i := 0; len(users) < 3; i++ {
		if u := "a" + strconv.Itoa(i); BucketOf(u) == k.Bucket {
			users = append(users, u)
		}
	}
	counts := tt.NewQueueTracker(string(topics.Counts))
	long := "a name long enough: two" // two spellings of it pass 64 bytes
	send(tt, k, Count{User: users[0], Version: 1, Plays: 1, Name: long, Artist: "B"})
	c := Count{User: users[1], Version: 1, Plays: 1, Name: long + "!", Artist: "B"}
	send(tt, k, c)
	v := value(t, tt, k)
	if !v.Full || len(v.Listeners) != 1 || v.Version != 2 {
		t.Fatalf("parent %+v: want full with one listener at version 2", v)
	}
	child, _ := Spill(k.Bucket, users[1])
	ck := k
	ck.Bucket = child
	if l := holder(t, value(t, tt, ck), users[1]); l.Plays != 1 {
		t.Fatalf("child %+v", l)
	}
	// The counts topic holds both sent Counts and the forwarded one.
	var fwd []string
	for {
		key, b, ok := counts.Next()
		if !ok {
			break
		}
		if key == ck.String() {
			if got, err := DecodeCount(b.([]byte)); err != nil || got != c {
				t.Fatalf("forwarded %+v, %v; want %+v", got, err, c)
			}
		}
		fwd = append(fwd, key)
	}
	if len(fwd) != 3 || fwd[2] != ck.String() {
		t.Fatalf("counts topic keys %v", fwd)
	}
	// Full stays: a smaller user goes to its child too; the held user is
	// updated in the parent.
	send(tt, k, Count{User: users[2], Version: 1, Plays: 1, Name: "x", Artist: ""})
	send(tt, k, Count{User: users[0], Version: 2, Plays: 4, Name: long, Artist: "B"})
	v = value(t, tt, k)
	if _, ok := v.Find(users[2]); ok || !v.Full || v.Plays() != 4 {
		t.Fatalf("parent %+v", v)
	}
}

// A held user whose record grows past KeyBytes moves to its child: it
// leaves the key (now full), and older Counts of it follow it there.
func TestGrowingUserMoves(t *testing.T) {
	tt := start(t, Config{KeyBytes: minKeyBytes})
	k := keyOf("m")
	// A key of exactly KeyBytes holding m with 100 plays (one byte) and
	// a filler user (no Count of it is sent: only its bytes matter).
	other := sameBucket(k, "m", 1)[0]
	v := &Value{Version: 1, Spellings: []Spelling{{"S", "B"}}, Listeners: []Listener{{User: "m", Plays: 100, Version: 1}, {User: other, Plays: 1, Version: 1}}}
	for len(AppendValue(nil, v)) < minKeyBytes {
		v.Listeners[1].User += "z"
	}
	tt.SetTableValue(Table(""), k.String(), AppendValue(nil, v))
	name := "S"
	send(tt, k, Count{User: "m", Version: 2, Plays: 300, Name: name, Artist: "B"})
	v = value(t, tt, k)
	child, _ := Spill(k.Bucket, "m")
	ck := k
	ck.Bucket = child
	if _, ok := v.Find("m"); ok || !v.Full || v.Version != 2 {
		t.Fatalf("parent %+v: the user should have moved", v)
	}
	if l := holder(t, value(t, tt, ck), "m"); l.Plays != 300 || l.Version != 2 {
		t.Fatalf("child %+v", l)
	}
	send(tt, k, Count{User: "m", Version: 1, Plays: 100, Name: name, Artist: "B"})
	if l := holder(t, value(t, tt, ck), "m"); l.Plays != 300 {
		t.Fatalf("an older Count changed the moved user: %+v", l)
	}
	if v := value(t, tt, k); v.Version != 2 || len(v.Listeners) != 1 {
		t.Fatalf("an older Count changed the parent: %+v", v)
	}
}

// At the last level a full key has no child: the Count goes to the DLQ
// (spill_depth).
func TestSpillDepthDeadLetters(t *testing.T) {
	tt := start(t, Config{})
	dlq := tt.NewQueueTracker(string(topics.DLQ))
	u := "deep"
	b := BucketOf(u)
	for {
		c, ok := Spill(b, u)
		if !ok {
			break
		}
		b = c
	}
	k := keyOf(u)
	k.Bucket = b
	tt.SetTableValue(Table(""), k.String(), AppendValue(nil, &Value{Version: 1, Full: true, Spellings: []Spelling{{"S", "B"}}}))
	send(tt, k, Count{User: u, Version: 1, Plays: 1, Name: "S", Artist: "B"})
	if rs := deadLetters(dlq); len(rs) != 1 || rs[0] != "spill_depth" {
		t.Fatalf("dead letters %v", rs)
	}
	if v := value(t, tt, k); v.Version != 1 {
		t.Fatalf("value changed: %+v", v)
	}
}

// Only the days within RecentDays of today (UTC) reach SitewideRecent,
// with the table's bytes.
func TestRecentWindow(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tt := start(t, Config{RecentDays: 35, Now: func() time.Time { return now }})
	recent := tt.NewQueueTracker(string(topics.SitewideRecent))
	in := keyOf("r")
	in.Day = time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC) // 35 days before
	out := in
	out.Day = in.Day.AddDate(0, 0, -1)
	send(tt, in, Count{User: "r", Version: 1, Plays: 1, Name: "S", Artist: "B"})
	send(tt, out, Count{User: "r", Version: 1, Plays: 1, Name: "S", Artist: "B"})
	key, b, ok := recent.Next()
	if !ok || key != in.String() {
		t.Fatalf("recent: %q, %v", key, ok)
	}
	if tb := tt.TableValue(Table(""), in.String()).([]byte); string(tb) != string(b.([]byte)) {
		t.Fatal("recent value differs from the table's")
	}
	if key, _, ok := recent.Next(); ok {
		t.Fatalf("a day outside the window was written: %s", key)
	}
}

// Bad records go to the DLQ with a reason and the group goes on.
func TestBadInputDeadLetters(t *testing.T) {
	tt := start(t, Config{})
	dlq := tt.NewQueueTracker(string(topics.DLQ))
	good := AppendCount(nil, &Count{User: "x", Version: 1, Plays: 1, Name: "S", Artist: "B"})
	k := keyOf("x")
	wrong := k
	wrong.Bucket = (k.Bucket + 1) % Buckets
	cases := []struct {
		key    string
		value  []byte
		reason string
	}{
		{"user-1|2026-11-30", good, "bad_key"},
		{k.String(), []byte("garbage"), "undecodable"},
		{k.String(), nil, "undecodable"},
		{k.String(), AppendCount(nil, &Count{Version: 1, Plays: 1}), "undecodable"},
		{wrong.String(), good, "wrong_bucket"},
		{fmt.Sprintf("%s|%016x|2026-11-30|1024", topk.Tracks, 42), good, "wrong_bucket"},
	}
	for _, c := range cases {
		if c.value == nil {
			tt.Consume(string(topics.Counts), c.key, nil)
		} else {
			tt.Consume(string(topics.Counts), c.key, c.value)
		}
	}
	rs := deadLetters(dlq)
	if len(rs) != len(cases) {
		t.Fatalf("dead letters %v", rs)
	}
	for i, c := range cases {
		if rs[i] != c.reason {
			t.Errorf("%q: reason %q, want %q", c.key, rs[i], c.reason)
		}
	}
	// A corrupt stored value dead-letters the Count, and the group goes on.
	tt.SetTableValue(Table(""), k.String(), []byte{valueEncoding, 0, 1})
	tt.Consume(string(topics.Counts), k.String(), good)
	if rs := deadLetters(dlq); len(rs) != 1 || rs[0] != "corrupt_value" {
		t.Fatalf("dead letters %v", rs)
	}
	y := keyOf("y")
	send(tt, y, Count{User: "y", Version: 1, Plays: 2, Name: "S", Artist: "B"})
	if v := value(t, tt, y); v.Plays() != 2 {
		t.Fatalf("after bad input: %+v", v)
	}
}

// A Count that changes nothing rewrites the key once per assignment (the
// local store may be ahead of the changelog after a crash), then never.
func TestStaleRewritesOncePerKey(t *testing.T) {
	tt := start(t, Config{})
	changelog := tt.NewQueueTracker(string(Table("")))
	k := keyOf("z")
	ahead := AppendValue(nil, &Value{Version: 4, Spellings: []Spelling{{"S", "B"}}, Listeners: []Listener{{User: "z", Plays: 2, Version: 9}}})
	tt.SetTableValue(Table(""), k.String(), ahead)
	changelog.Seek(changelog.Hwm())
	for range 3 {
		send(tt, k, Count{User: "z", Version: 9, Plays: 2, Name: "S", Artist: "B"})
	}
	_, v, ok := changelog.Next()
	if !ok || string(v.([]byte)) != string(ahead) {
		t.Fatal("a stale Count did not rewrite the value")
	}
	if _, _, ok := changelog.Next(); ok {
		t.Fatal("rewritten twice")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if c := (Config{MaxStateBytes: 9000}).WithDefaults(); c.KeyBytes != 3000 {
		t.Fatalf("key bytes %d under a 9000-byte state limit", c.KeyBytes)
	}
	for _, c := range []Config{{KeyBytes: 200 << 10}, {KeyBytes: 10}, {KeyBytes: 4000, MaxStateBytes: 9000}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
