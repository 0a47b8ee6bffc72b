package aggregator

import (
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka/tester"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

func consumeDelete(tt *tester.Tester, ns string, l listen.Listen) {
	d := listen.Delete{UserID: l.UserID, PlayedAt: l.PlayedAt, MSID: listen.MSID(l.ArtistName, l.TrackName)}
	tt.Consume(string(listen.NewTopics(ns).Valid), d.Key(), d.Encode())
}

// TestDeleteTakesOneListenOutOnce: a deletion takes its listen out of the
// track's, the artist's and the album's plays and the seen set, once
// (again: nothing); it finds the listen by any spelling of its track;
// the version grows with every change; the deleted listen sent again
// counts again; a deletion of a listen never counted changes nothing.
func TestDeleteTakesOneListenOutOnce(t *testing.T) {
	ns := "del"
	tt := start(t, Config{Namespace: ns})
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	a := lis("u", at, "Radiohead", "Creep", "Pablo Honey")
	b := lis("u", at.Add(time.Minute), "Radiohead", "Creep", "Pablo Honey")
	c := lis("u", at.Add(2*time.Minute), "Portishead", "Roads", "Dummy")
	for _, l := range []listen.Listen{a, b, c} {
		consume(tt, ns, l)
	}
	key := a.Key()
	if d := day(tt, ns, key); d.Total != 3 || d.Version != 3 {
		t.Fatalf("before: total %d version %d", d.Total, d.Version)
	}
	// The msid of another spelling finds the listen.
	odd := a
	odd.ArtistName, odd.TrackName = "RADIOHEAD", "creep"
	consumeDelete(tt, ns, odd)
	d := day(tt, ns, key)
	if d.Total != 2 || d.Version != 4 || d.Seen() != 2 {
		t.Fatalf("after one delete: total %d version %d seen %d", d.Total, d.Version, d.Seen())
	}
	if p := plays(d, topk.Tracks); p["Creep"] != 1 || p["Roads"] != 1 {
		t.Errorf("tracks %v", p)
	}
	if p := plays(d, topk.Artists); p["Radiohead"] != 1 || p["Portishead"] != 1 {
		t.Errorf("artists %v", p)
	}
	if p := plays(d, topk.Albums); p["Pablo Honey"] != 1 || p["Dummy"] != 1 {
		t.Errorf("albums %v", p)
	}
	// Again: not found, nothing changes (a replay).
	consumeDelete(tt, ns, a)
	if d := day(tt, ns, key); d.Total != 2 || d.Version != 4 {
		t.Errorf("a second delete changed the day: total %d version %d", d.Total, d.Version)
	}
	// A listen never counted at that second: nothing.
	consumeDelete(tt, ns, lis("u", at.Add(3*time.Minute), "Radiohead", "Creep", ""))
	if d := day(tt, ns, key); d.Total != 2 || d.Version != 4 {
		t.Errorf("deleting an uncounted listen changed the day: total %d version %d", d.Total, d.Version)
	}
	// The deleted listen, sent again, counts again.
	consume(tt, ns, a)
	if d := day(tt, ns, key); d.Total != 3 || d.Version != 5 || plays(d, topk.Tracks)["Creep"] != 2 {
		t.Errorf("re-sent: total %d version %d tracks %v", d.Total, d.Version, plays(d, topk.Tracks))
	}
	// Everything deleted: items stay with 0 plays, the day with 0.
	for _, l := range []listen.Listen{a, b, c} {
		consumeDelete(tt, ns, l)
	}
	d = day(tt, ns, key)
	if d.Total != 0 || d.Version != 8 || d.Seen() != 0 {
		t.Fatalf("all deleted: total %d version %d seen %d", d.Total, d.Version, d.Seen())
	}
	for _, e := range []topk.Entity{topk.Tracks, topk.Artists, topk.Albums} {
		for _, it := range d.Items(e) {
			if it.Plays != 0 || it.Spellings != nil {
				t.Errorf("%s %q: %d plays, spellings %v", e, it.Name, it.Plays, it.Spellings)
			}
		}
	}
	rt, err := DecodeDay(d.Encode())
	if err != nil || rt.Total != 0 || rt.Version != 8 || len(rt.Tracks) != 2 {
		t.Errorf("round trip of an emptied day: %+v %v", rt, err)
	}
}

// TestDeleteBadRecordsAreDeadLettered: a deletion that does not decode, or
// under another key than its user-day, goes to the DLQ.
func TestDeleteBadRecordsAreDeadLettered(t *testing.T) {
	ns := "delbad"
	tt := start(t, Config{Namespace: ns})
	dlq := tt.NewQueueTracker(string(listen.NewTopics(ns).DLQ))
	valid := string(listen.NewTopics(ns).Valid)
	tt.Consume(valid, "u|2026-03-01", []byte(`{"delete":{"user_id":"u"}}`))
	d := listen.Delete{UserID: "u", PlayedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), MSID: listen.MSID("a", "b")}
	tt.Consume(valid, "u|2026-03-02", d.Encode())
	n := 0
	for {
		_, _, ok := dlq.Next()
		if !ok {
			break
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d dead letters, want 2", n)
	}
}

// TestDeleteTakesTheMajoritySpelling: the play leaves the majority
// spelling, and the display name follows what is left.
func TestDeleteTakesTheMajoritySpelling(t *testing.T) {
	var d Day
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	spell := []string{"Creep", "Creep", "CREEP"}
	for i, s := range spell {
		d.Add(PlayOf(lis("u", at.Add(time.Duration(i)*time.Minute), "Radiohead", s, "")))
	}
	if d.Tracks[0].Name != "Creep" || len(d.Tracks[0].Spellings) != 2 {
		t.Fatalf("before: %+v", d.Tracks[0])
	}
	for _, i := range []int{0, 1} {
		if got := d.Delete(uint32(36000+60*i), listen.MSID("radiohead", "creep")); got != Removed {
			t.Fatalf("delete %d: %v", i, got)
		}
	}
	tr := d.Tracks[0]
	if tr.Plays != 1 || tr.Name != "CREEP" || tr.Spellings != nil {
		t.Errorf("after: %+v", tr)
	}
	if _, err := DecodeDay(d.Encode()); err != nil {
		t.Error(err)
	}
}

// TestVersion2StatesMigrate: a state written before deletions decodes
// with Version = Total (so the Cassandra values it was flushed with, USING
// TIMESTAMP its total, stay in order), and each seen entry's album is
// known where the counts tell it: an artist without albums, or with one
// album holding all its plays. Elsewhere a deletion says the album is
// unknown and leaves albums alone.
func TestVersion2StatesMigrate(t *testing.T) {
	var d Day
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ls := []listen.Listen{
		lis("u", at, "Radiohead", "Creep", "Pablo Honey"),
		lis("u", at.Add(time.Minute), "Radiohead", "Anyone", "Pablo Honey"),
		lis("u", at.Add(2*time.Minute), "Portishead", "Roads", ""),
		lis("u", at.Add(3*time.Minute), "Air", "Alone", "Moon Safari"),
		lis("u", at.Add(4*time.Minute), "Air", "Alone", "Talkie Walkie"),
		lis("u", at.Add(5*time.Minute), "Beck", "Loser", "Mellow Gold"),
		lis("u", at.Add(6*time.Minute), "Beck", "Devils", ""),
	}
	for _, l := range ls {
		d.Add(PlayOf(l))
	}
	old, err := DecodeDay(encodeV2(&d))
	if err != nil {
		t.Fatal(err)
	}
	if old.Total != 7 || old.Version != 7 {
		t.Fatalf("v2: total %d version %d", old.Total, old.Version)
	}
	want := []Deleted{Removed, Removed, Removed, RemovedAlbumUnknown, RemovedAlbumUnknown, RemovedAlbumUnknown, RemovedAlbumUnknown}
	for i, l := range ls {
		sec := uint32(36000 + 60*i)
		if got := old.Delete(sec, listen.MSID(l.ArtistName, l.TrackName)); got != want[i] {
			t.Errorf("%s %s: %v, want %v", l.ArtistName, l.TrackName, got, want[i])
		}
	}
	albums := plays(old, topk.Albums)
	if albums["Pablo Honey"] != 0 || albums["Moon Safari"] != 1 || albums["Talkie Walkie"] != 1 || albums["Mellow Gold"] != 1 {
		t.Errorf("albums after deleting everything: %v", albums)
	}
	if old.Total != 0 || old.Version != 14 {
		t.Errorf("total %d version %d", old.Total, old.Version)
	}
}

// TestDeletedItemCountedAgain: an item deleted to 0 plays and counted
// again, in another spelling, starts again as new (name, first second),
// and the day decodes.
func TestDeletedItemCountedAgain(t *testing.T) {
	var d Day
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	d.Add(PlayOf(lis("u", at, "Radiohead", "Creep", "Pablo Honey")))
	if got := d.Delete(36000, listen.MSID("Radiohead", "Creep")); got != Removed {
		t.Fatal(got)
	}
	d.Add(PlayOf(lis("u", at.Add(time.Hour), "RADIOHEAD", "CREEP", "PABLO HONEY")))
	for _, items := range [][]Item{d.Tracks, d.Artists, d.Albums} {
		if it := items[0]; it.Plays != 1 || it.Spellings != nil || it.First != 39600 || it.Name != strings.ToUpper(it.Name) {
			t.Errorf("%+v", it)
		}
	}
	if _, err := DecodeDay(d.Encode()); err != nil {
		t.Error(err)
	}
}

// TestDeleteFirstListen: deleting an item's first listen moves its First
// to the first listen still counted (items with one spelling).
func TestDeleteFirstListen(t *testing.T) {
	var d Day
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	d.Add(PlayOf(lis("u", at.Add(time.Second), "Radiohead", "Creep", "Pablo Honey")))
	d.Add(PlayOf(lis("u", at.Add(3*time.Second), "Radiohead", "Anyone", "Pablo Honey")))
	d.Add(PlayOf(lis("u", at.Add(5*time.Second), "Radiohead", "Creep", "Pablo Honey")))
	if got := d.Delete(1, listen.MSID("Radiohead", "Creep")); got != Removed {
		t.Fatal(got)
	}
	if d.Tracks[0].First != 5 || d.Artists[0].First != 3 || d.Albums[0].First != 3 || d.Tracks[1].First != 3 {
		t.Errorf("firsts: creep %d, radiohead %d, pablo honey %d, anyone %d", d.Tracks[0].First, d.Artists[0].First, d.Albums[0].First, d.Tracks[1].First)
	}
}

// TestVersion2DeleteWithAlbum: the album the api found in raw_listens
// settles a listen counted before state version 3 whose album the counts
// do not tell.
func TestVersion2DeleteWithAlbum(t *testing.T) {
	var d Day
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ls := []listen.Listen{
		lis("u", at, "Air", "Alone", "Moon Safari"),
		lis("u", at.Add(time.Minute), "Air", "Alone", "Talkie Walkie"),
		lis("u", at.Add(2*time.Minute), "Air", "Venus", ""),
	}
	for _, l := range ls {
		d.Add(PlayOf(l))
	}
	old, err := DecodeDay(encodeV2(&d))
	if err != nil {
		t.Fatal(err)
	}
	talkie, none, other := "TALKIE  WALKIE", "", "Premiers Symptômes"
	if got := old.DeleteWithAlbum(36060, listen.MSID("Air", "Alone"), &talkie); got != Removed {
		t.Errorf("with its album: %v", got)
	}
	if got := old.DeleteWithAlbum(36120, listen.MSID("Air", "Venus"), &none); got != Removed {
		t.Errorf("with no album: %v", got)
	}
	if got := old.DeleteWithAlbum(36000, listen.MSID("Air", "Alone"), &other); got != RemovedAlbumUnknown {
		t.Errorf("with an album the day does not have: %v", got)
	}
	if a := plays(old, topk.Albums); a["Moon Safari"] != 1 || a["Talkie Walkie"] != 0 {
		t.Errorf("albums %v", a)
	}
}
