package aggregator

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/topk-charts/topk"
)

func play(sec uint32, artist, track, album string) Play {
	p := Play{Sec: sec, Artist: artist, Track: track, Album: album,
		ArtistKey: hash(artist), TrackKey: hash(artist + "\x00" + track)}
	if album != "" {
		p.AlbumKey = hash(artist + "\x00" + album)
	}
	return p
}

func hash(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func TestAddCountsOnceAndRoundTrips(t *testing.T) {
	d := &Day{}
	plays := []Play{
		play(100, "Radiohead", "Reckoner", "In Rainbows"),
		play(100, "Radiohead", "Reckoner", "In Rainbows"), // duplicate
		play(100, "Radiohead", "Nude", "In Rainbows"),     // same second, other track
		play(50, "Radiohead", "Reckoner", "In Rainbows"),  // earlier, out of order
		play(7000, "Björk", "Jóga", ""),                   // no album
	}
	added := 0
	for _, p := range plays {
		if d.Add(p) {
			added++
		}
	}
	if added != 4 || d.Total != 4 || d.Seen() != 4 {
		t.Fatalf("added %d, total %d, seen %d; want 4", added, d.Total, d.Seen())
	}
	for _, p := range plays {
		if !d.Has(p) {
			t.Fatalf("counted play %+v not seen", p)
		}
	}
	if d.Has(play(101, "Radiohead", "Reckoner", "")) {
		t.Fatal("an uncounted play is seen")
	}
	want := map[topk.Entity]map[string]uint32{
		topk.Tracks:  {"Reckoner": 2, "Nude": 1, "Jóga": 1},
		topk.Artists: {"Radiohead": 3, "Björk": 1},
		topk.Albums:  {"In Rainbows": 3},
	}
	check := func(d *Day) {
		t.Helper()
		for e, w := range want {
			got := map[string]uint32{}
			for _, it := range d.Items(e) {
				got[it.Name] = it.Plays
				if e != topk.Artists && it.Artist == "" {
					t.Errorf("%s %s has no artist", e, it.Name)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("%s: %v, want %v", e, got, w)
			}
		}
	}
	check(d)
	d2, err := DecodeDay(d.Encode())
	if err != nil {
		t.Fatal(err)
	}
	check(d2)
	if !bytes.Equal(d2.Encode(), d.Encode()) {
		t.Fatal("encode(decode(x)) != x")
	}
	for _, p := range plays {
		if !d2.Has(p) {
			t.Fatalf("decoded state lost seen play %+v", p)
		}
	}
}

// The display spelling is the one of the latest played_at, whatever the
// arrival order.
func TestSpellingOfLatestListen(t *testing.T) {
	d := &Day{}
	late := play(500, "radiohead", "reckoner", "")
	late.ArtistKey, late.TrackKey = hash("radiohead"), hash("radiohead\x00reckoner")
	early := play(10, "RADIOHEAD", "RECKONER", "")
	early.ArtistKey, early.TrackKey = late.ArtistKey, late.TrackKey
	d.Add(late)
	d.Add(early)
	tr := d.Items(topk.Tracks)
	if tr[0].Name != "reckoner" || d.Artists[0].Name != "radiohead" || tr[0].Artist != "radiohead" || tr[0].Plays != 2 {
		t.Fatalf("%+v %+v", d.Tracks, d.Artists)
	}
}

// A heavy user-day (the cap, 2000 plays of 1500 distinct tracks with long
// names) stays far under Kafka's 1 MiB record limit.
func TestHeavyDaySize(t *testing.T) {
	d := &Day{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; d.Total < DefaultMaxPlaysPerDay; i++ {
		a := fmt.Sprintf("Artist with a fairly long name number %d", r.IntN(300))
		tr := fmt.Sprintf("A track title that is long enough to be realistic %d", r.IntN(1500))
		d.Add(play(uint32(r.IntN(86400)), a, tr, "An album title "+a))
	}
	n := len(d.Encode())
	t.Logf("%d plays, %d tracks, %d artists: %d bytes (%.1f bytes/play)", d.Total, len(d.Tracks), len(d.Artists), n, float64(n)/float64(d.Total))
	if n > 256<<10 {
		t.Fatalf("heavy day encodes to %d bytes, want far under 1 MiB", n)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	d := &Day{}
	d.Add(play(1, "a", "b", "c"))
	good := d.Encode()
	for i := range good {
		if _, err := DecodeDay(good[:i]); err == nil {
			t.Fatalf("truncated state (%d of %d bytes) decoded", i, len(good))
		}
	}
	if _, err := DecodeDay([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatal("a huge count decoded")
	}
}

func FuzzDecodeDay(f *testing.F) {
	d := &Day{}
	d.Add(play(1, "a", "b", "c"))
	d.Add(play(2, "a", "x", ""))
	f.Add(d.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDay(b)
		if err != nil {
			return
		}
		if _, err := DecodeDay(d.Encode()); err != nil {
			t.Fatalf("re-encoding a decoded state fails: %v", err)
		}
	})
}

func BenchmarkAddEncodeDecode(b *testing.B) {
	d := &Day{}
	for i := range 200 {
		d.Add(play(uint32(i*60), fmt.Sprint("artist", i%20), fmt.Sprint("track", i%80), "album"))
	}
	enc := d.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x, _ := DecodeDay(enc)
		x.Add(play(uint32(i%86400), "artist1", "track1", "album"))
		_ = x.Encode()
	}
}
