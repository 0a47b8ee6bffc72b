package rawwriter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// t0 is the Kafka timestamp of the first test record.
var t0 = time.Date(2026, 12, 1, 10, 5, 0, 0, time.UTC)

// record is a record of the valid topic under its own key, at offset off
// and Kafka time t0 + off ms: a listen or a delete.
func record(t *testing.T, off int64, v any) *sarama.ConsumerMessage {
	t.Helper()
	m := &sarama.ConsumerMessage{Offset: off, Timestamp: t0.Add(time.Duration(off) * time.Millisecond)}
	switch v := v.(type) {
	case listen.Listen:
		m.Key, m.Value = []byte(v.Key()), encode(t, v)
	case listen.Delete:
		m.Key, m.Value = []byte(v.Key()), v.Encode()
	default:
		t.Fatalf("record of %T", v)
	}
	return m
}

// del is the delete of l as /1/delete-listen makes it.
func del(l listen.Listen) listen.Delete {
	return listen.Delete{UserID: l.UserID, PlayedAt: l.PlayedAt, MSID: listen.MSID(l.ArtistName, l.TrackName)}
}

// Records of one millisecond follow their offsets, in one batch or in
// several (an offset past a multiple of 1000 too); a clock that steps
// back still gives increasing times; a record without a timestamp takes
// the writer's clock; a redelivered record gets its time again.
func TestWriteTimes(t *testing.T) {
	ms := t0.UnixMilli() * writeTimeScale
	batch := []*sarama.ConsumerMessage{
		{Offset: 998, Timestamp: t0},
		{Offset: 999, Timestamp: t0},
		{Offset: 1000, Timestamp: t0},
		{Offset: 1001, Timestamp: t0.Add(-time.Second)}, // a producer clock stepped back
		{Offset: 1002, Timestamp: t0.Add(time.Millisecond)},
		{Offset: 1003}, // no timestamp
	}
	now := t0.Add(time.Hour)
	got := writeTimes(batch, now)
	want := []int64{ms + 998, ms + 999, ms + 1000, ms + 1001, ms + writeTimeScale + 1002, now.UnixMilli()*writeTimeScale + 1003}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("write times %v, want %v", got, want)
	}
	if again := writeTimes(batch[1:2], now); again[0] != got[1] {
		t.Errorf("a redelivered record's time %d, was %d", again[0], got[1])
	}
	// Each record in a batch of its own: still in offset order.
	prev := int64(0)
	for _, m := range batch[:3] {
		at := writeTimes([]*sarama.ConsumerMessage{m}, now)[0]
		if at <= prev {
			t.Errorf("offset %d alone: time %d, not after %d", m.Offset, at, prev)
		}
		prev = at
	}
	// Past a multiple of 1,000,000 in one millisecond (never seen: a
	// partition's records of a millisecond are hundreds at most) the
	// batch still orders them.
	wrap := writeTimes([]*sarama.ConsumerMessage{{Offset: 1_999_999, Timestamp: t0}, {Offset: 2_000_000, Timestamp: t0}}, now)
	if wrap[1] <= wrap[0] {
		t.Errorf("across 2,000,000: %v", wrap)
	}
}

// A delete takes back the listens of its batch before it (any spelling of
// the track, that second only) and is written with its record's time; a
// listen after it is written again from scratch (no merge with the copy
// taken back) at a later time; two deletes of one listen are one, at the
// later time; deletes under a wrong key, or that do not parse, are
// skipped; a batch of deletes alone names no user for the search.
func TestGroupDeletes(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a := listen.Listen{UserID: "alice", PlayedAt: at, ArtistName: "Radiohead", TrackName: "Reckoner", AlbumName: "In Rainbows", EventID: "1"}
	aUpper := a
	aUpper.ArtistName, aUpper.AlbumName, aUpper.EventID = "RADIOHEAD", "", "2"
	other := a // another track in the same second
	other.TrackName = "Nude"
	nextSec := a
	nextSec.PlayedAt = at.Add(time.Second)
	bobOnly := listen.Delete{UserID: "bob", PlayedAt: at, MSID: listen.MSID("X", "Y")}
	wrongKey := record(t, 7, del(a))
	wrongKey.Key = []byte("alice|2026-11-30")
	garbled := record(t, 8, del(a))
	garbled.Value = []byte(`{"delete":{"user_id":"alice"}}`)
	batch := []*sarama.ConsumerMessage{
		record(t, 0, a), record(t, 1, other), record(t, 2, nextSec),
		record(t, 3, del(aUpper)), // takes back a (same msid), not other nor nextSec
		record(t, 4, aUpper),      // sent again: written, without a's album
		record(t, 5, bobOnly),
		record(t, 6, del(a)), // takes back aUpper too: one delete, at offset 6's time
		wrongKey, garbled,
		record(t, 9, a), // sent again
	}
	times := writeTimes(batch, time.Now())
	groups, bad := group(batch, time.Now())
	if len(bad) != 2 || bad[0].msg != wrongKey || bad[0].reason != "wrong_key" || bad[1].msg != garbled || bad[1].reason != "undecodable" {
		t.Fatalf("bad %+v, want the delete under a wrong key and the garbled one", bad)
	}
	if len(groups) != 2 {
		t.Fatalf("%d groups, want alice's and bob's", len(groups))
	}
	g := groups[0]
	var got []string
	for _, l := range g.listens {
		got = append(got, fmt.Sprintf("%s/%s/%s@%d", l.Listen.TrackName, l.Listen.PlayedAt.Format("15:04:05"), l.Listen.AlbumName, l.WriteTime))
	}
	want := []string{
		fmt.Sprintf("Nude/09:00:00/In Rainbows@%d", times[1]),
		fmt.Sprintf("Reckoner/09:00:01/In Rainbows@%d", times[2]),
		fmt.Sprintf("Reckoner/09:00:00/In Rainbows@%d", times[9]),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alice's listens\n%v\nwant\n%v", got, want)
	}
	if len(g.deletes) != 1 {
		t.Fatalf("alice's deletes %+v, want one", g.deletes)
	}
	if d := g.deletes[0]; d.MSID != del(a).MSID || !d.PlayedAt.Equal(at) || d.WriteTime != times[6] || !d.inBatch {
		t.Errorf("alice's delete %+v, want %s at %v, time %d, in the batch", d, del(a).MSID, at, times[6])
	}
	if b := groups[1]; b.user != "bob" || len(b.listens) != 0 || len(b.deletes) != 1 || b.deletes[0].inBatch {
		t.Errorf("bob's group %+v, want one delete of nothing in the batch", b)
	}
	if u := distinctUsers(groups); fmt.Sprint(u) != "[alice]" {
		t.Errorf("users for the search %v, want [alice]", u)
	}
}

// play is a step of a history: a listen sent or a delete of it.
type play struct {
	l      listen.Listen
	delete bool
}

// The end state of raw_listens is the last word on each listen, in record
// order: whatever the batches' boundaries, when a batch is written again
// (a redelivery after a crash, from any offset), or when a stale instance
// writes an older batch after a newer one (a rebalance) — on the model
// store, which applies Cassandra's rules (write times, tombstones).
func TestDeleteOrderAndReplays(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	mk := func(track, album string, sec int) listen.Listen {
		return listen.Listen{UserID: "carol", PlayedAt: at.Add(time.Duration(sec) * time.Second), ArtistName: "Björk",
			TrackName: track, AlbumName: album}
	}
	joga, jogaShout, hyper := mk("Jóga", "Homogenic", 0), mk("JÓGA", "", 0), mk("Hyperballad", "Post", 0)
	later := mk("Jóga", "Homogenic", 60)
	steps := []play{
		{joga, false}, {hyper, false}, {joga, true}, // sent, deleted
		{later, false}, {later, true}, {later, true}, // deleted twice
		{jogaShout, false},                                           // the deleted one sent again, another spelling: present without album
		{hyper, true}, {hyper, false}, {hyper, true}, {hyper, false}, // ends present
		{mk("Army of Me", "Post", 30), true}, // a delete of nothing
	}
	var batch []*sarama.ConsumerMessage
	for i, s := range steps {
		if s.delete {
			batch = append(batch, record(t, int64(i), del(s.l)))
		} else {
			batch = append(batch, record(t, int64(i), s.l))
		}
	}
	wantRows := []string{
		"Björk/JÓGA/09:00:00/", // the copy sent after the delete: a's album went with the delete
		"Björk/Hyperballad/09:00:00/Post",
	}
	check := func(t *testing.T, st *memStore, what string) {
		t.Helper()
		var rows []string
		for k, r := range st.rows {
			if l, ok := r.listen(); ok && strings.HasPrefix(k, "carol|") {
				rows = append(rows, fmt.Sprintf("%s/%s/%s/%s", l.ArtistName, l.TrackName, l.PlayedAt.Format("15:04:05"), l.AlbumName))
			}
		}
		if sinktest.Dump(rows) != sinktest.Dump(wantRows) {
			t.Errorf("%s: raw_listens holds\n%s\nwant\n%s", what, sinktest.Dump(rows), sinktest.Dump(wantRows))
		}
	}
	cfg := Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxRowsPerCQLBatch: 1, Concurrency: 4}
	write := func(t *testing.T, w *Writer, b []*sarama.ConsumerMessage) {
		t.Helper()
		if err := w.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	// Every split into two batches, each written twice, and then the
	// batch from every offset again (a redelivery after a crash).
	for cut := 0; cut <= len(batch); cut++ {
		st := newMemStore()
		w := newWriter(cfg, st)
		write(t, w, batch[:cut])
		write(t, w, batch[:cut])
		write(t, w, batch[cut:])
		write(t, w, batch[cut:])
		check(t, st, fmt.Sprintf("batches cut at %d", cut))
		for from := range batch {
			write(t, w, batch[from:])
			check(t, st, fmt.Sprintf("cut at %d, then redelivered from %d", cut, from))
		}
		// A stale instance writes the first batch after the second.
		write(t, newWriter(cfg, st), batch[:cut])
		check(t, st, fmt.Sprintf("cut at %d, the first batch again after the second", cut))
	}
	// One record per batch, as a slow topic delivers them.
	st := newMemStore()
	w := newWriter(cfg, st)
	for i := range batch {
		write(t, w, batch[i:i+1])
	}
	check(t, st, "one record per batch")
}

// Deletes are counted: applied when a row or a listen of the batch was
// taken back, not_found otherwise.
func TestDeleteMetrics(t *testing.T) {
	if err := registerMetrics(nil); err != nil {
		t.Fatal(err)
	}
	applied0 := sinktest.Metric(t, "topk_raw_writer_deletes_total", "result", "applied")
	missing0 := sinktest.Metric(t, "topk_raw_writer_deletes_total", "result", "not_found")
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := listen.Listen{UserID: "dave", PlayedAt: at, ArtistName: "Can", TrackName: "Vitamin C"}
	m := l
	m.TrackName = "Mother Sky"
	st := newMemStore()
	w := newWriter(Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, st)
	for _, b := range [][]*sarama.ConsumerMessage{
		{record(t, 0, l)},
		{record(t, 1, del(l)), record(t, 2, m), record(t, 3, del(m))}, // a row, a listen of the batch
		{record(t, 4, del(l))}, // already deleted
	} {
		if err := w.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if n := sinktest.Metric(t, "topk_raw_writer_deletes_total", "result", "applied") - applied0; n != 2 {
		t.Errorf("%v deletes applied, want 2", n)
	}
	if n := sinktest.Metric(t, "topk_raw_writer_deletes_total", "result", "not_found") - missing0; n != 1 {
		t.Errorf("%v deletes not found, want 1", n)
	}
	if d := st.dump("dave"); d != "user dave" {
		t.Errorf("dave's rows after the deletes:\n%s", d)
	}
}
