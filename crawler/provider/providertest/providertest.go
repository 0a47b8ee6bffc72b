package providertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/topk-charts/topk/crawler/provider"
)

// Fixture is a provider under test and the history it serves.
type Fixture struct {
	// Provider is the provider under test, built as the crawler builds it
	// but pointed at the fixture's server.
	Provider provider.Provider
	// Account is the user to crawl, with the tokens the provider needs.
	Account provider.Account
	// Want is the whole history a crawl from cursor 0 returns, oldest
	// first: all of the user's plays, so that no gap is possible. Where the
	// provider pages, it should fill more than one page.
	Want []provider.Play
}

// Run checks that the providers newFixture builds keep the contract of
// provider.Provider. It calls newFixture once per subtest (a fresh server
// and provider each time).
//
// The contract: a crawl hands every play after the cursor to emit, oldest
// page first and oldest play first, each play with its time, artist and
// track; each page's cursor moves forward and, stored, resumes the crawl
// exactly after that page; Crawl stops at the first error of emit and
// returns it; a cancelled context ends the crawl with its error before
// any page; emit gets a context derived from Crawl's; concurrent crawls
// are safe.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	t.Helper()
	t.Run("WholeHistoryOldestFirst", func(t *testing.T) { wholeHistory(t, newFixture(t)) })
	t.Run("ResumeAfterEachPagesCursor", func(t *testing.T) { resume(t, newFixture(t)) })
	t.Run("EmitErrorStops", func(t *testing.T) { emitErrorStops(t, newFixture(t)) })
	t.Run("CancelledContext", func(t *testing.T) { cancelled(t, newFixture(t)) })
	t.Run("EmitContextDerivesFromCrawls", func(t *testing.T) { emitContext(t, newFixture(t)) })
	t.Run("ConcurrentCrawls", func(t *testing.T) { concurrent(t, newFixture(t)) })
}

// crawl runs a crawl from cursor and records its pages.
func crawl(ctx context.Context, f Fixture, cursor int64) ([]provider.Page, provider.Result, error) {
	var pages []provider.Page
	res, err := f.Provider.Crawl(ctx, f.Account, cursor, func(_ context.Context, p provider.Page) error {
		pages = append(pages, p)
		return nil
	})
	return pages, res, err
}

func plays(pages []provider.Page) []provider.Play {
	var out []provider.Play
	for _, p := range pages {
		out = append(out, p.Plays...)
	}
	return out
}

// same reports where got and want differ in what the contract promises of
// a play (time, artist, track, album), or "".
func same(got, want []provider.Play) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d plays, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.PlayedAt.Equal(w.PlayedAt) || g.Artist != w.Artist || g.Track != w.Track || g.Album != w.Album {
			return fmt.Sprintf("play %d: %v %q %q %q, want %v %q %q %q", i,
				g.PlayedAt, g.Artist, g.Track, g.Album, w.PlayedAt, w.Artist, w.Track, w.Album)
		}
	}
	return ""
}

func wholeHistory(t *testing.T, f Fixture) {
	if len(f.Want) == 0 {
		t.Fatal("the fixture serves no history")
	}
	pages, res, err := crawl(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := same(plays(pages), f.Want); d != "" {
		t.Fatalf("a crawl from cursor 0: %s", d)
	}
	if res.PossibleGap {
		t.Error("possible gap reported for a history served whole")
	}
	var cursor int64
	for i, p := range pages {
		if len(p.Plays) > 0 && p.Cursor <= cursor {
			t.Errorf("page %d: cursor %d does not move past %d", i, p.Cursor, cursor)
		}
		cursor = max(cursor, p.Cursor)
		if p.Total > 0 && (p.Done < 1 || p.Done > p.Total) {
			t.Errorf("page %d: progress %d/%d", i, p.Done, p.Total)
		}
		if i > 0 && p.Total > 0 && p.Done <= pages[i-1].Done {
			t.Errorf("page %d: progress %d after %d", i, p.Done, pages[i-1].Done)
		}
	}
	got := plays(pages)
	for i, p := range got {
		if p.PlayedAt.IsZero() || p.Artist == "" || p.Track == "" {
			t.Fatalf("play %d lacks its time, artist or track: %+v", i, p)
		}
		if i > 0 && p.PlayedAt.Before(got[i-1].PlayedAt) {
			t.Fatalf("play %d at %v before play %d: not oldest first", i, p.PlayedAt, i-1)
		}
	}
}

// After each page's cursor a crawl returns exactly the plays of the pages
// that followed; after the last one, nothing.
func resume(t *testing.T, f Fixture) {
	pages, _, err := crawl(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for i, p := range pages {
		seen += len(p.Plays)
		rest, res, err := crawl(context.Background(), f, p.Cursor)
		if err != nil {
			t.Fatalf("resume after page %d: %v", i, err)
		}
		if d := same(plays(rest), f.Want[seen:]); d != "" {
			t.Fatalf("resume after page %d (cursor %d): %s", i, p.Cursor, d)
		}
		if res.PossibleGap {
			t.Errorf("resume after page %d: possible gap reported", i)
		}
	}
}

func emitErrorStops(t *testing.T, f Fixture) {
	boom := errors.New("kafka down")
	calls := 0
	_, err := f.Provider.Crawl(context.Background(), f.Account, 0, func(context.Context, provider.Page) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Crawl = %v after %d pages, want the emit error after 1", err, calls)
	}
}

func cancelled(t *testing.T, f Fixture) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pages, _, err := crawl(ctx, f, 0)
	if !errors.Is(err, context.Canceled) || len(pages) != 0 {
		t.Fatalf("Crawl with a cancelled context = %v after %d pages, want context.Canceled before any", err, len(pages))
	}
}

type key struct{}

func emitContext(t *testing.T, f Fixture) {
	ctx := context.WithValue(context.Background(), key{}, "crawl")
	n := 0
	_, err := f.Provider.Crawl(ctx, f.Account, 0, func(ctx context.Context, _ provider.Page) error {
		n++
		if ctx.Value(key{}) != "crawl" {
			return errors.New("emit's context does not derive from Crawl's")
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("Crawl = %v after %d pages", err, n)
	}
}

// The worker crawls several users at once through one provider.
func concurrent(t *testing.T, f Fixture) {
	const n = 4
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pages, _, err := crawl(context.Background(), f, 0)
			if err != nil {
				errs[i] = err.Error()
				return
			}
			errs[i] = same(plays(pages), f.Want)
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("crawl %d of %d at once: %s", i, n, e)
		}
	}
}

// ClosedAddr is a loopback host:port nothing listens on (a port opened and
// closed at once): point a provider or a client at it and every request
// fails with a transport error, "connection refused".
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
