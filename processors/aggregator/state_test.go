package aggregator

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
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

// spelled is a play of Radiohead's Reckoner in the given spellings: one
// artist key and one track key whatever the case.
func spelled(sec uint32, artist, track string) Play {
	p := play(sec, artist, track, "")
	p.ArtistKey, p.TrackKey = hash("radiohead"), hash("radiohead\x00reckoner")
	return p
}

// The day keeps every spelling with its plays and first second; Name is
// the majority, whatever the arrival order, and a track's artist is the
// artist item's majority.
func TestSpellingsOfTheDay(t *testing.T) {
	d := &Day{}
	for _, p := range []Play{
		spelled(900, "RADIOHEAD", "RECKONER"),
		spelled(100, "Radiohead", "Reckoner"),
		spelled(700, "RADIOHEAD", "RECKONER"),
		spelled(300, "Radiohead", "Reckoner"),
		spelled(50, "Radiohead", "Reckoner"),
		spelled(50, "Radiohead", "Reckoner"), // duplicate: no play for its spelling
	} {
		d.Add(p)
	}
	want := []Spelling{{"RECKONER", 2, 700}, {"Reckoner", 3, 50}}
	tr := d.Items(topk.Tracks)[0]
	if tr.Name != "Reckoner" || tr.First != 50 || tr.Plays != 5 || tr.Artist != "Radiohead" || fmt.Sprint(tr.Spellings) != fmt.Sprint(want) {
		t.Fatalf("track %+v, want Reckoner first at 50 with spellings %v, artist Radiohead", tr, want)
	}
	if a := d.Artists[0]; a.Name != "Radiohead" || a.Plays != 5 || len(a.Spellings) != 2 {
		t.Fatalf("artist %+v", a)
	}
	// Two more plays of RECKONER make it the majority.
	d.Add(spelled(800, "RADIOHEAD", "RECKONER"))
	d.Add(spelled(10, "RADIOHEAD", "RECKONER"))
	tr = d.Items(topk.Tracks)[0]
	if tr.Name != "RECKONER" || tr.First != 10 || tr.Plays != 7 || tr.Artist != "RADIOHEAD" {
		t.Fatalf("track %+v, want RECKONER first at 10, artist RADIOHEAD", tr)
	}
}

// Equal plays: the spelling first played earlier in the day wins, then
// the smaller string.
func TestSpellingTies(t *testing.T) {
	d := &Day{}
	d.Add(spelled(500, "radiohead", "reckoner"))
	d.Add(spelled(20, "RADIOHEAD", "RECKONER"))
	if tr := d.Items(topk.Tracks)[0]; tr.Name != "RECKONER" || tr.First != 20 || tr.Artist != "RADIOHEAD" {
		t.Fatalf("track %+v, want the spelling of second 20", tr)
	}
	// Two tracks of one artist at one second: the artist's spellings tie
	// on plays and second; the smaller string wins, whatever the order.
	for _, order := range [][2]string{{"radiohead", "RADIOHEAD"}, {"RADIOHEAD", "radiohead"}} {
		d = &Day{}
		for i, artist := range order {
			p := play(20, artist, fmt.Sprint("track", i), "")
			p.ArtistKey = hash("radiohead")
			d.Add(p)
		}
		if a := d.Artists[0]; d.Total != 2 || a.Name != "RADIOHEAD" || a.First != 20 || len(a.Spellings) != 2 {
			t.Fatalf("artist %+v, want RADIOHEAD", a)
		}
	}
}

// Topk: absolute First, spellings in name order, nil for one; ItemOf
// converts back.
func TestTopkConversion(t *testing.T) {
	date := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
	base := date.Unix()
	d := &Day{}
	d.Add(spelled(30, "Radiohead", "Reckoner"))
	d.Add(spelled(40, "Radiohead", "RECKONER"))
	d.Add(spelled(60, "Radiohead", "Reckoner"))
	got := d.Items(topk.Tracks)[0].Topk(date)
	want := topk.Item{Key: hash("radiohead\x00reckoner"), Name: "Reckoner", Artist: "Radiohead", Plays: 3, First: base + 30,
		Spellings: []topk.Spelling{{Name: "RECKONER", Plays: 1, First: base + 40}, {Name: "Reckoner", Plays: 2, First: base + 30}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Topk %+v, want %+v", got, want)
	}
	var sum topk.Item
	for _, s := range got.Spellings {
		sum.AddSpelling(s.Name, s.Plays, s.First)
	}
	if sum.Name != got.Name || sum.First != got.First || sum.Plays != got.Plays {
		t.Fatalf("topk's majority of the spellings %+v differs from the day's %+v", sum, got)
	}
	back := ItemOf(&got, date)
	if it := d.Tracks[0]; fmt.Sprint(back.Spellings) != fmt.Sprint(it.Spellings) || back.Name != it.Name || back.First != it.First || back.Plays != it.Plays {
		t.Fatalf("ItemOf %+v, want %+v", back, it)
	}
	if a := d.Artists[0].Topk(date); a.Spellings != nil || a.First != base+30 || a.Plays != 3 {
		t.Fatalf("one spelling: %+v, want nil spellings", a)
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

// encodeV1 is the version 1 encoder (before spellings were kept), to
// build the states the Kafka tables still hold: each item with its one
// (latest) spelling.
func encodeV1(d *Day) []byte { return encodeOld(d, 1) }

// encodeV2 is the version 2 encoder (before deletions: no day version, no
// album per seen entry).
func encodeV2(d *Day) []byte { return encodeOld(d, 2) }

// encodeV3 is the version 3 encoder (before Changed).
func encodeV3(d *Day) []byte { return encodeOld(d, 3) }

// encodeOld writes d in encoding version 1, 2 (with spellings) or 3
// (with the day version and the album of every seen entry).
func encodeOld(d *Day, version uint64) []byte {
	b := binary.AppendUvarint(nil, version)
	b = binary.AppendUvarint(b, uint64(d.Total))
	if version == 3 {
		b = binary.AppendUvarint(b, uint64(d.Version))
	}
	put := func(items []Item, withArtist bool) {
		b = binary.AppendUvarint(b, uint64(len(items)))
		for _, it := range items {
			b = binary.LittleEndian.AppendUint64(b, it.Key)
			b = binary.AppendUvarint(b, uint64(it.Plays))
			b = binary.AppendUvarint(b, uint64(it.First))
			if withArtist {
				b = binary.AppendUvarint(b, uint64(it.artist))
			}
			b = topk.AppendString(b, it.Name)
			if version >= 2 {
				b = appendSpellings(b, it.Spellings)
			}
		}
	}
	put(d.Artists, false)
	put(d.Tracks, true)
	put(d.Albums, true)
	b = binary.AppendUvarint(b, uint64(len(d.seen)))
	var prev uint32
	for _, s := range d.seen {
		b = binary.AppendUvarint(b, uint64(s.sec-prev))
		b = binary.AppendUvarint(b, uint64(s.track))
		if version == 3 {
			b = binary.AppendUvarint(b, uint64(s.album))
		}
		prev = s.sec
	}
	return b
}

// spelledDay has two spellings of a track and its artist, and an album
// of one.
func spelledDay() *Day {
	d := &Day{}
	d.Add(spelled(100, "Radiohead", "Reckoner"))
	d.Add(spelled(200, "RADIOHEAD", "RECKONER"))
	d.Add(spelled(300, "Radiohead", "Reckoner"))
	d.Add(play(400, "Björk", "Jóga", "Homogenic"))
	return d
}

// A version 1 state decodes with one spelling per item, all its plays and
// First its second; it counts on from there and encodes as version 2.
func TestDecodeVersion1(t *testing.T) {
	v1 := &Day{}
	v1.Add(play(100, "Radiohead", "Reckoner", "In Rainbows"))
	v1.Add(play(300, "Radiohead", "Reckoner", "In Rainbows"))
	v1.Add(play(200, "Radiohead", "Nude", ""))
	d, err := DecodeDay(encodeV1(v1))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range topk.Entities {
		if fmt.Sprint(d.Items(e)) != fmt.Sprint(v1.Items(e)) {
			t.Fatalf("%s: %+v, want %+v", e, d.Items(e), v1.Items(e))
		}
	}
	if !d.Has(play(300, "Radiohead", "Reckoner", "In Rainbows")) || d.Total != 3 || d.Artists[0].Spellings != nil {
		t.Fatalf("decoded v1 state %+v", d)
	}
	if d.Add(play(100, "Radiohead", "Reckoner", "In Rainbows")) {
		t.Fatal("a listen counted in the v1 state counted again")
	}
	p := play(50, "RADIOHEAD", "Reckoner", "")
	p.ArtistKey = hash("Radiohead")
	d.Add(p)
	if a := d.Artists[0]; a.Name != "Radiohead" || a.Plays != 4 || fmt.Sprint(a.Spellings) != fmt.Sprint([]Spelling{{"RADIOHEAD", 1, 50}, {"Radiohead", 3, 100}}) {
		t.Fatalf("artist after a new spelling %+v", a)
	}
	if b := d.Encode(); b[0] != encodingVersion {
		t.Fatalf("encoded as version %d", b[0])
	}
}

// A version 2 state keeps its spellings through a round trip, byte for
// byte.
func TestSpellingsRoundTrip(t *testing.T) {
	d := spelledDay()
	b := d.Encode()
	d2, err := DecodeDay(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range topk.Entities {
		if fmt.Sprint(d2.Items(e)) != fmt.Sprint(d.Items(e)) {
			t.Fatalf("%s: %+v, want %+v", e, d2.Items(e), d.Items(e))
		}
	}
	if len(d2.Tracks[0].Spellings) != 2 || !bytes.Equal(d2.Encode(), b) {
		t.Fatalf("round trip lost the spellings: %+v", d2.Tracks)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	d := &Day{}
	d.Add(play(1, "a", "b", "c"))
	for _, good := range [][]byte{d.Encode(), encodeV1(d), encodeV2(d), encodeV3(d), spelledDay().Encode()} {
		for i := range good {
			if _, err := DecodeDay(good[:i]); err == nil {
				t.Fatalf("truncated state (%d of %d bytes) decoded", i, len(good))
			}
		}
	}
	if _, err := DecodeDay([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatal("a huge count decoded")
	}
	for _, v := range []byte{0, encodingVersion + 1} {
		if _, err := DecodeDay([]byte{v, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
			t.Fatalf("unknown version %d decoded", v)
		}
	}
	if _, err := DecodeDay([]byte{encodingVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatalf("an empty day: %v", err)
	}
}

// Spellings that are not what Add keeps are corrupt: a decoded state must
// encode and sum as the one written.
func TestDecodeRejectsInconsistentSpellings(t *testing.T) {
	two := []Spelling{{"A", 2, 5}, {"a", 1, 1}}
	for name, c := range map[string]struct {
		it Item
		sp []Spelling
	}{
		"one spelling listed":   {Item{Name: "A", Plays: 2, First: 5}, []Spelling{{"A", 2, 5}}},
		"plays do not sum":      {Item{Name: "A", Plays: 4, First: 5}, two},
		"name not the majority": {Item{Name: "a", Plays: 3, First: 1}, two},
		"first not the name's":  {Item{Name: "A", Plays: 3, First: 1}, two},
		"out of name order":     {Item{Name: "A", Plays: 3, First: 5}, []Spelling{two[1], two[0]}},
		"a name twice":          {Item{Name: "A", Plays: 3, First: 5}, []Spelling{{"A", 2, 5}, {"A", 1, 1}}},
		"a spelling unplayed":   {Item{Name: "A", Plays: 2, First: 5}, []Spelling{{"A", 2, 5}, {"a", 0, 1}}},
	} {
		c.it.Key, c.it.Spellings = 7, c.sp
		b := (&Day{Artists: []Item{c.it}}).Encode()
		if _, err := DecodeDay(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	ok := Item{Key: 7, Name: "A", Plays: 3, First: 5, Spellings: two}
	if _, err := DecodeDay((&Day{Artists: []Item{ok}}).Encode()); err != nil {
		t.Fatalf("consistent spellings: %v", err)
	}
}

func FuzzDecodeDay(f *testing.F) {
	d := &Day{}
	d.Add(play(1, "a", "b", "c"))
	d.Add(play(2, "a", "x", ""))
	f.Add(d.Encode())
	f.Add(encodeV1(d))
	f.Add(encodeV3(d))
	f.Add(spelledDay().Encode())
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

// TestChanged: Add and Delete record the track, artist and album they
// touched (index+1, 0 none); encoding version 4 keeps Changed byte for
// byte, version 3 and older states decode with it empty, and a Changed
// that names no item of the day is corrupt.
func TestChanged(t *testing.T) {
	d := &Day{}
	d.Add(play(100, "Radiohead", "Reckoner", "In Rainbows"))
	if want := (Touched{1, 1, 1}); d.Changed != want {
		t.Fatalf("first add: Changed %+v, want %+v", d.Changed, want)
	}
	d.Add(play(200, "Björk", "Jóga", ""))
	if want := (Touched{2, 2, 0}); d.Changed != want {
		t.Fatalf("add without album: Changed %+v, want %+v", d.Changed, want)
	}
	d.Add(play(300, "Radiohead", "Reckoner", "In Rainbows"))
	if want := (Touched{1, 1, 1}); d.Changed != want {
		t.Fatalf("add of a known track: Changed %+v, want %+v", d.Changed, want)
	}
	if d.Add(play(300, "Radiohead", "Reckoner", "In Rainbows")) || d.Changed != (Touched{1, 1, 1}) {
		t.Fatalf("a duplicate changed Changed: %+v", d.Changed)
	}
	for _, c := range []struct {
		e    topk.Entity
		i    int
		name string
	}{{topk.Tracks, 0, "Reckoner"}, {topk.Artists, 0, "Radiohead"}, {topk.Albums, 0, "In Rainbows"}} {
		i, ok := d.Changed.Index(c.e)
		if !ok || i != c.i || d.Items(c.e)[i].Name != c.name {
			t.Errorf("Index(%s) = %d, %v", c.e, i, ok)
		}
	}
	if _, ok := (Touched{2, 2, 0}).Index(topk.Albums); ok {
		t.Error("Index(albums) of an album-less change is ok")
	}

	// Version 4 round trip keeps Changed.
	d2, err := DecodeDay(d.Encode())
	if err != nil || d2.Changed != d.Changed || !bytes.Equal(d2.Encode(), d.Encode()) {
		t.Fatalf("round trip: Changed %+v, err %v", d2, err)
	}

	// A deletion touches its listen's track, artist and album.
	if got := d.Delete(200, listen.MSID("Björk", "Jóga")); got != Removed || d.Changed != (Touched{2, 2, 0}) {
		t.Fatalf("delete without album: %v, Changed %+v", got, d.Changed)
	}
	if got := d.Delete(100, listen.MSID("Radiohead", "Reckoner")); got != Removed || d.Changed != (Touched{1, 1, 1}) {
		t.Fatalf("delete with album: %v, Changed %+v", got, d.Changed)
	}
	if got := d.Delete(100, listen.MSID("Radiohead", "Reckoner")); got != NotFound || d.Changed != (Touched{1, 1, 1}) {
		t.Fatalf("delete not found: %v, Changed %+v", got, d.Changed)
	}

	// Older encodings decode with Changed empty and the rest intact.
	for v, b := range map[int][]byte{1: encodeV1(d), 2: encodeV2(d), 3: encodeV3(d)} {
		old, err := DecodeDay(b)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if !old.Changed.Empty() {
			t.Errorf("version %d: Changed %+v, want empty", v, old.Changed)
		}
		if old.Total != d.Total || len(old.Tracks) != len(d.Tracks) {
			t.Errorf("version %d: total %d, %d tracks", v, old.Total, len(old.Tracks))
		}
	}
	old, _ := DecodeDay(encodeV3(d))
	if old.Version != d.Version {
		t.Errorf("version 3: Version %d, want %d", old.Version, d.Version)
	}

	// A Changed past the items is corrupt.
	for _, bad := range []Touched{{3, 1, 0}, {1, 3, 0}, {1, 1, 2}} {
		x := *d
		x.Changed = bad
		if _, err := DecodeDay(x.Encode()); err == nil {
			t.Errorf("Changed %+v decoded", bad)
		}
	}
}
