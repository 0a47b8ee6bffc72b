package ratelimit

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 11, 15, 4, 5, 0, time.UTC)

// clock is a clock the test moves.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

// A client spends its burst, is refused with the wait until its next
// token, and regains tokens at the rate; another client has its own
// bucket.
func TestBucketPerClient(t *testing.T) {
	c := &clock{t0}
	l := New(Config{PerSecond: 2, Burst: 4, Now: c.Now})
	for i := range 4 {
		d := l.Allow("192.0.2.1")
		if !d.Allowed || d.Limit != 4 || d.Remaining != 3-i {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	d := l.Allow("192.0.2.1")
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != time.Second || d.ResetIn != 2*time.Second {
		t.Fatalf("over the burst: %+v (want refused, retry after 1 s, full in 2 s)", d)
	}
	if d := l.Allow("192.0.2.2"); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("another client: %+v", d)
	}
	c.advance(500 * time.Millisecond) // one token back at 2/s
	if d := l.Allow("192.0.2.1"); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after half a second: %+v", d)
	}
	if d := l.Allow("192.0.2.1"); d.Allowed {
		t.Fatalf("no token left: %+v", d)
	}
	c.advance(10 * time.Second)
	if d := l.Allow("192.0.2.1"); !d.Allowed || d.Remaining != 3 || d.ResetIn != 500*time.Millisecond {
		t.Fatalf("refilled: %+v", d)
	}
}

// The headers of an allowed and of a refused request, with the names and
// units ListenBrainz documents.
func TestHeaders(t *testing.T) {
	c := &clock{t0}
	l := New(Config{PerSecond: 0.5, Burst: 2, Now: c.Now})
	h := http.Header{}
	l.Allow("a").SetHeaders(h)
	want := map[string]string{HeaderLimit: "2", HeaderRemaining: "1", HeaderResetIn: "2", HeaderReset: fmt.Sprint(t0.Unix() + 2), HeaderRetryAfter: ""}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("allowed: %s = %q, want %q", k, h.Get(k), v)
		}
	}
	l.Allow("a")
	c.advance(300 * time.Millisecond)
	h = http.Header{}
	l.Allow("a").SetHeaders(h) // 0.15 tokens: 1.7 s to the next, 3.7 s to full
	want = map[string]string{HeaderLimit: "2", HeaderRemaining: "0", HeaderResetIn: "4", HeaderReset: fmt.Sprint(t0.Unix() + 4), HeaderRetryAfter: "2"}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("refused: %s = %q, want %q", k, h.Get(k), v)
		}
	}
}

// No rate: everything is allowed and nothing remembered.
func TestDisabled(t *testing.T) {
	l := New(Config{})
	for range 1000 {
		if !l.Allow("a").Allowed {
			t.Fatal("refused without a rate")
		}
	}
	if l.Enabled() || l.Clients() != 0 {
		t.Fatalf("enabled %v, %d clients", l.Enabled(), l.Clients())
	}
}

// The map is bounded: idle clients (full buckets) are dropped by the
// sweep, and past MaxClients active ones are dropped to make room.
func TestClientsBounded(t *testing.T) {
	c := &clock{t0}
	l := New(Config{PerSecond: 1, Burst: 2, MaxClients: 100, Now: c.Now})
	for i := range 50 {
		l.Allow(fmt.Sprint("idle-", i))
	}
	c.advance(sweepEvery) // their buckets are full again
	l.Allow("new")
	if n := l.Clients(); n != 1 {
		t.Fatalf("after a sweep %d clients, want 1 (the idle ones dropped)", n)
	}
	for i := range 1000 {
		l.Allow(fmt.Sprint("busy-", i))
		if n := l.Clients(); n > 100 {
			t.Fatalf("%d clients, more than MaxClients", n)
		}
	}
	// A client dropped while active comes back with a full bucket; the
	// one just seen keeps its state.
	if d := l.Allow("busy-999"); d.Remaining != 0 {
		t.Fatalf("the newest client lost its bucket: %+v", d)
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"not-an-ip":            "not-an-ip",
		"::1":                  "::/64",
		"127.0.0.2":            "127.0.0.2",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%s) = %s, want %s", in, got, want)
		}
	}
	for ip, want := range map[string]bool{"127.0.0.1": true, "127.0.0.2": true, "::1": true, "192.0.2.1": false, "": false} {
		if Loopback(ip) != want {
			t.Errorf("Loopback(%q) = %v", ip, !want)
		}
	}
}

// Charge takes what a request turned out to cost after it was allowed:
// the bucket may go into debt, at most a burst deep, and the client waits
// until the debt is repaid at the rate; another client is not charged.
func TestCharge(t *testing.T) {
	c := &clock{t0}
	l := New(Config{PerSecond: 2, Burst: 4, Now: c.Now})
	if d := l.Allow("192.0.2.1"); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("first request: %+v", d)
	}
	l.Charge("192.0.2.1", 100) // capped at the burst: 3 - 4 = one token of debt
	d := l.Allow("192.0.2.1")
	if d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("in debt: %+v, want refused for a second (1 token of debt + the request's at 2/s)", d)
	}
	if d := l.Allow("192.0.2.2"); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("another client: %+v", d)
	}
	c.advance(time.Second)
	if d := l.Allow("192.0.2.1"); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("debt repaid: %+v", d)
	}
	l.Charge("192.0.2.1", 0)
	l.Charge("192.0.2.1", -3)
	c.advance(500 * time.Millisecond)
	if d := l.Allow("192.0.2.1"); !d.Allowed {
		t.Fatalf("charges of 0 and less took tokens: %+v", d)
	}
}

// Enter bounds a client's requests in progress; leaving frees a place;
// another client has its own; a sweep keeps a client with requests in
// progress.
func TestEnter(t *testing.T) {
	c := &clock{t0}
	l := New(Config{PerSecond: 1, Burst: 2, Now: c.Now})
	var leaves []func()
	for i := range 2 {
		leave, ok := l.Enter("192.0.2.1", 2)
		if !ok {
			t.Fatalf("request %d refused", i)
		}
		leaves = append(leaves, leave)
	}
	if _, ok := l.Enter("192.0.2.1", 2); ok {
		t.Fatal("a third request in progress was let in")
	}
	if leave, ok := l.Enter("192.0.2.2", 2); !ok {
		t.Fatal("another client refused")
	} else {
		leave()
	}
	c.advance(2 * time.Minute) // a sweep is due; the bucket is full
	l.Allow("192.0.2.3")       // sweeps
	if _, ok := l.Enter("192.0.2.1", 2); ok {
		t.Fatal("the sweep forgot a client with requests in progress")
	}
	leaves[0]()
	if leave, ok := l.Enter("192.0.2.1", 2); !ok {
		t.Fatal("refused after one left")
	} else {
		leave()
	}
	leaves[1]()
	if leave, ok := New(Config{}).Enter("192.0.2.1", 1); !ok {
		t.Fatal("a disabled limiter refused")
	} else {
		leave()
	}
}
