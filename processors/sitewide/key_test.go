package sitewide

import (
	"hash/fnv"
	"testing"
	"time"

	"github.com/topk-charts/topk"
)

func TestKeyRoundTrip(t *testing.T) {
	k := Key{Entity: topk.Albums, Item: 0x00ab_cdef_0123_4567, Day: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Bucket: 1031}
	s := k.String()
	if s != "album|00abcdef01234567|2026-11-30|1031" {
		t.Fatalf("String = %q", s)
	}
	got, err := ParseKey(s)
	if err != nil || got != k {
		t.Fatalf("ParseKey = %+v, %v; want %+v", got, err, k)
	}
	for _, bad := range []string{"", "track|1|2026-11-30|1", "song|00abcdef01234567|2026-11-30|1", "track|00abcdef01234567|2026-13-30|1", "track|00abcdef01234567|2026-11-30|x", "user-1|2026-11-30"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q): no error", bad)
		}
	}
}

func sum(h interface {
	Write([]byte) (int, error)
	Sum32() uint32
}, s string) uint32 {
	h.Write([]byte(s))
	return h.Sum32()
}

// TestHasher: the days of one item's bucket hash alike, buckets and items
// differ, and every other key hashes as goka.DefaultHasher (FNV-1a).
func TestHasher(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	a := Key{Entity: topk.Tracks, Item: 42, Day: day(1), Bucket: 3}
	b := a
	b.Day = day(17)
	if sum(Hasher(), a.String()) != sum(Hasher(), b.String()) {
		t.Error("two days of one item's bucket hash differently")
	}
	c := a
	c.Bucket = 4
	d := a
	d.Item = 43
	if sum(Hasher(), a.String()) == sum(Hasher(), c.String()) && sum(Hasher(), a.String()) == sum(Hasher(), d.String()) {
		t.Error("bucket and item both ignored")
	}
	for _, other := range []string{"user-1|2026-11-30", "", "track|zz", "track|00abcdef01234567|2026-11-30|1x"} {
		if got, want := sum(Hasher(), other), sum(fnv.New32a(), other); got != want {
			t.Errorf("Hasher(%q) = %d, want FNV-1a %d", other, got, want)
		}
	}
	// Partitions spread: 64 items × 8 buckets over 16 partitions.
	var per [16]int
	for item := range uint64(64) {
		for bucket := range uint32(Buckets) {
			k := Key{Entity: topk.Artists, Item: item * 0x9e3779b97f4a7c15, Day: day(1), Bucket: bucket}
			per[sum(Hasher(), k.String())%16]++
		}
	}
	for p, n := range per {
		if n < 16 || n > 48 {
			t.Errorf("partition %d holds %d of 512 keys", p, n)
		}
	}
}

func TestCountRoundTrip(t *testing.T) {
	c := Count{User: "user-7", Version: 12, Plays: 3, Name: "Song", Artist: "Band"}
	got, err := DecodeCount(AppendCount(nil, &c))
	if err != nil || got != c {
		t.Fatalf("DecodeCount = %+v, %v", got, err)
	}
	b := AppendCount(nil, &c)
	for i := range len(b) {
		if _, err := DecodeCount(b[:i]); err == nil {
			t.Errorf("DecodeCount of %d of %d bytes: no error", i, len(b))
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	v := &Value{Version: 9, Full: true,
		Spellings: []Spelling{{"Song", "Band"}, {"song", "band"}},
		Listeners: []Listener{{"a", 2, 5, 0}, {"b", 0, 3, 1}, {"c", 1, 1, 1}}}
	got, err := DecodeValue(AppendValue(nil, v))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 9 || !got.Full || len(got.Listeners) != 3 || got.Plays() != 3 || got.ListenerCount() != 2 {
		t.Fatalf("decoded %+v", got)
	}
	if d := got.Display(); d != (Spelling{"Song", "Band"}) {
		t.Errorf("Display = %+v", d)
	}
	if i, ok := got.Find("b"); !ok || i != 1 {
		t.Errorf("Find(b) = %d, %v", i, ok)
	}
	b := AppendValue(nil, v)
	for i := range len(b) {
		if _, err := DecodeValue(b[:i]); err == nil {
			t.Errorf("DecodeValue of %d of %d bytes: no error", i, len(b))
		}
	}
}
