package aggregator

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// A new assignment drops the cached states: a state another copy advanced
// meanwhile is read from the store, not shadowed by the cache.
func TestCacheResetOnAssignment(t *testing.T) {
	c := newCounter(Config{})
	tt := startCounter(t, c)
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	first := lis("ann", at, "A", "one", "")
	consume(tt, "", first)
	// Another copy counted a second listen of the day while this one did
	// not own the partition.
	other := &Day{}
	other.Add(PlayOf(first))
	other.Add(PlayOf(lis("ann", at.Add(time.Minute), "A", "two", "")))
	tt.SetTableValue(Table(""), first.Key(), other)
	c.reset(nil)
	consume(tt, "", lis("ann", at.Add(2*time.Minute), "A", "three", ""))
	d := day(tt, "", first.Key())
	if d == nil || d.Total != 3 {
		t.Fatalf("state %+v, want the 2 plays in the store and the new one", d)
	}
	if c.cache.total.Load() <= 0 {
		t.Fatal("the written state was not cached")
	}
	c.reset(nil)
	if n := c.cache.total.Load(); n != 0 {
		t.Fatalf("reset left %d bytes counted", n)
	}
}

// The cache stays within its bound (plus the entry just put), evicting
// other entries; counting stays exact whether a state comes from the cache
// or the store.
func TestCacheBounded(t *testing.T) {
	const max = 16 << 10
	c := newCounter(Config{CacheBytes: max})
	tt := startCounter(t, c)
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var peak int64
	for round := range 5 {
		for u := range 100 {
			l := lis(fmt.Sprintf("user%03d", u), at.Add(time.Duration(round)*time.Minute), "Artist", fmt.Sprintf("track %d", round), "Album")
			consume(tt, "", l)
			peak = max64(peak, c.cache.total.Load())
		}
	}
	// One entry may pass the bound while it is the partition's only one;
	// these states are far under 4 KiB.
	if peak > max+4<<10 {
		t.Fatalf("cache reached %d bytes, bound %d", peak, max)
	}
	for u := range 100 {
		if d := day(tt, "", fmt.Sprintf("user%03d|2026-06-01", u)); d == nil || d.Total != 5 {
			t.Fatalf("user%03d: state %+v, want 5 plays", u, d)
		}
	}
	// No cache at all still counts.
	tt2 := start(t, Config{CacheBytes: -1})
	l := lis("bob", at, "A", "B", "")
	consume(tt2, "", l)
	consume(tt2, "", lis("bob", at.Add(time.Second), "A", "B", ""))
	if d := day(tt2, "", l.Key()); d == nil || d.Total != 2 {
		t.Fatalf("without a cache: state %+v", d)
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// footprint's estimate is within a factor of the heap decoded states take
// (runtime.MemStats), for days like `make bench-ingest` writes and grown
// by Add as the callback grows them.
func TestCacheFootprint(t *testing.T) {
	const n = 3000
	days := make([]*Day, n)
	var estimate int64
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range days {
		d := &Day{}
		for j := range 10 + i%40 {
			artist := fmt.Sprintf("Artist %d of user %d", j%7, i)
			d.Add(Play{Sec: uint32(j * 60), TrackKey: uint64(j), ArtistKey: uint64(j % 7), AlbumKey: uint64(j%5 + 1),
				Track: fmt.Sprintf("Track number %d", j), Artist: artist, Album: fmt.Sprintf("Album %d", j%5)})
		}
		b := d.Encode()
		// Half decoded from the store, half grown by Add.
		if i%2 == 0 {
			var err error
			if d, err = DecodeDay(b); err != nil {
				t.Fatal(err)
			}
		}
		days[i] = d
		estimate += footprint(fmt.Sprintf("user%05d|2026-06-01", i), d, len(b))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(days)
	ratio := float64(estimate) / float64(heap)
	t.Logf("footprint %d bytes for %d bytes of heap (%.2f)", estimate, heap, ratio)
	if ratio < 0.8 || ratio > 2 {
		t.Fatalf("footprint is %.2f of the heap, want 0.8–2", ratio)
	}
}
