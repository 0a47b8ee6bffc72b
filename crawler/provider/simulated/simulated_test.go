package simulated

import (
	"context"
	"net/http/httptest"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/crawler/provider/lastfm"
)

var now = time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC)

// The same listener and window give the same plays; overlapping windows
// agree on their overlap.
func TestDeterministic(t *testing.T) {
	p := New(Config{History: 7 * 24 * time.Hour})
	a := p.Plays("alice", now.Add(-72*time.Hour), now, now)
	b := New(Config{History: 7 * 24 * time.Hour}).Plays("alice", now.Add(-72*time.Hour), now, now)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("not deterministic: %d vs %d plays", len(a), len(b))
	}
	mid := now.Add(-30 * time.Hour)
	first := p.Plays("alice", now.Add(-72*time.Hour), mid, now)
	second := p.Plays("alice", mid.Add(time.Second), now, now)
	if !reflect.DeepEqual(append(first, second...), a) {
		t.Fatal("split windows disagree with the whole")
	}
	for i := 1; i < len(a); i++ {
		if !a[i].PlayedAt.After(a[i-1].PlayedAt) {
			t.Fatalf("plays %d and %d not strictly ordered", i-1, i)
		}
	}
	if reflect.DeepEqual(a, p.Plays("bob", now.Add(-72*time.Hour), now, now)) {
		t.Fatal("alice and bob listen alike")
	}
	if other := New(Config{Seed: 2, History: 7 * 24 * time.Hour}).Plays("alice", now.Add(-72*time.Hour), now, now); reflect.DeepEqual(a, other) {
		t.Fatal("the seed changes nothing")
	}
}

// History is bounded; the future is empty.
func TestHistoryWindow(t *testing.T) {
	p := New(Config{History: 24 * time.Hour})
	plays := p.Plays("alice", time.Unix(0, 0), now.Add(time.Hour), now)
	if len(plays) == 0 || plays[0].PlayedAt.Before(now.Add(-24*time.Hour)) || plays[len(plays)-1].PlayedAt.After(now) {
		t.Fatalf("%d plays, from %v to %v", len(plays), plays[0].PlayedAt, plays[len(plays)-1].PlayedAt)
	}
}

// Over many listeners: a Zipf head (the top artist has a far larger share
// than the median one), a daily rhythm (evenings busier than nights), a
// mean near the configured rate.
func TestShape(t *testing.T) {
	p := New(Config{History: 48 * time.Hour, Artists: 2000})
	artists := map[string]int{}
	var night, evening, total int
	users := 400
	for u := range users {
		for _, pl := range p.Plays("user"+itoa(uint64(u)), now.Add(-48*time.Hour), now, now) {
			artists[pl.Artist]++
			total++
			if pl.Artist == "" || pl.Track == "" || pl.Album == "" || pl.DurationMS < 150_000 {
				t.Fatalf("incomplete play %+v", pl)
			}
			_ = pl
		}
	}
	perHour := float64(total) / float64(users) / 48
	if perHour < 1.5 || perHour > 4 {
		t.Errorf("%.2f plays per listener-hour, want about 2.5", perHour)
	}
	counts := make([]int, 0, len(artists))
	for _, c := range artists {
		counts = append(counts, c)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	if top, median := counts[0], counts[len(counts)/2]; top < 20*median {
		t.Errorf("top artist %d plays, median %d: no Zipf head", top, median)
	}
	// Daily rhythm for one time zone: compare UTC hours of a single listener group.
	l := p.listener("user1")
	for h := now.Add(-48 * time.Hour).Truncate(time.Hour); h.Before(now); h = h.Add(time.Hour) {
		local := (h.Hour() + l.tzHours + 24) % 24
		n := 0
		for u := range 200 {
			name := "tz" + itoa(uint64(u))
			if p.listener(name).tzHours != l.tzHours {
				continue
			}
			n += len(p.hour(name, p.listener(name), h))
		}
		switch {
		case local >= 2 && local <= 5:
			night += n
		case local >= 18 && local <= 21:
			evening += n
		}
	}
	if evening < 5*night {
		t.Errorf("evening %d plays, night %d: no daily rhythm", evening, night)
	}
}

func TestProviderPagesAndCursor(t *testing.T) {
	pop := New(Config{History: 72 * time.Hour})
	sp := &Provider{Population: pop, PageSize: 50, Now: func() time.Time { return now }}
	want := pop.Plays("alice", time.Unix(0, 0), now, now)
	var got []provider.Play
	var last provider.Page
	_, err := sp.Crawl(context.Background(), provider.Account{ExternalID: "alice"}, 0, func(_ context.Context, pg provider.Page) error {
		if len(pg.Plays) > 50 || pg.Cursor != pg.Plays[len(pg.Plays)-1].PlayedAt.Unix() {
			t.Fatalf("page %+v", pg)
		}
		got = append(got, pg.Plays...)
		last = pg
		return nil
	})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v: %d plays, want %d", err, len(got), len(want))
	}
	if last.Done != last.Total || last.Total != (len(want)+49)/50 {
		t.Fatalf("progress %d/%d", last.Done, last.Total)
	}
	// Resuming from the cursor yields nothing more.
	n := 0
	_, _ = sp.Crawl(context.Background(), provider.Account{ExternalID: "alice"}, last.Cursor, func(_ context.Context, pg provider.Page) error {
		n += len(pg.Plays)
		return nil
	})
	if n != 0 {
		t.Fatalf("%d plays after the cursor", n)
	}
}

// The Last.fm client crawling LastfmHandler gets exactly the population's plays.
func TestLastfmHandlerServesThePopulation(t *testing.T) {
	pop := New(Config{History: 10 * 24 * time.Hour})
	srv := httptest.NewServer(LastfmHandler(pop, func() time.Time { return now }))
	defer srv.Close()
	c, err := lastfm.New(lastfm.Config{BaseURL: srv.URL, APIKey: "k", RequestsPerSecond: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var got []provider.Play
	pages := 0
	_, err = c.Crawl(context.Background(), provider.Account{ExternalID: "alice"}, 0, func(_ context.Context, pg provider.Page) error {
		got = append(got, pg.Plays...)
		pages++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := pop.Plays("alice", time.Unix(1, 0), now, now)
	if len(got) != len(want) || pages < 2 {
		t.Fatalf("%d plays in %d pages, want %d", len(got), pages, len(want))
	}
	for i := range want {
		if !got[i].PlayedAt.Equal(want[i].PlayedAt) || got[i].Artist != want[i].Artist || got[i].Track != want[i].Track || got[i].Album != want[i].Album {
			t.Fatalf("play %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
