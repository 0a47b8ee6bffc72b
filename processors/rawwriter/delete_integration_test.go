//go:build integration

package rawwriter_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// On the real Cassandra: a listen written, deleted, sent again (in
// another spelling), each batch written again afterwards as a redelivery
// or a stale instance would; a listen and its delete in one batch, a
// delete and the listen sent again in one batch; a delete of nothing.
// raw_listens is checked after each step, and the rows' write times are
// their records'.
func TestIntegrationRawWriterDeletes(t *testing.T) {
	cfg := testenv.Config(t)
	session, newWriter, _ := sinktest.Cassandra(t, cfg, func(s *gocql.Session) (sinktest.Writer, error) {
		return rawwriter.New(rawwriter.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: testenv.Logger(t)}, s)
	})
	ctx := testenv.Context(t, 2*time.Minute)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := day.Add(9 * time.Hour)
	kafkaTime := time.Now().Truncate(time.Millisecond)
	mk := func(track, album string, sec int) listen.Listen {
		return listen.Listen{UserID: "erin", PlayedAt: at.Add(time.Duration(sec) * time.Second), ArtistName: "Stereolab",
			TrackName: track, AlbumName: album, Source: "test"}
	}
	var offset int64
	rec := func(v any) *sarama.ConsumerMessage {
		m := &sarama.ConsumerMessage{Offset: offset, Timestamp: kafkaTime.Add(time.Duration(offset) * time.Millisecond)}
		offset++
		switch v := v.(type) {
		case listen.Listen:
			b, err := listen.Codec{}.Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			m.Key, m.Value = []byte(v.Key()), b
		case listen.Delete:
			m.Key, m.Value = []byte(v.Key()), v.Encode()
		}
		return m
	}
	del := func(l listen.Listen) listen.Delete {
		return listen.Delete{UserID: l.UserID, PlayedAt: l.PlayedAt, MSID: listen.MSID(l.ArtistName, l.TrackName)}
	}
	write := func(w sinktest.Writer, batch ...*sarama.ConsumerMessage) {
		t.Helper()
		if err := w.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// rows is erin's partition: "track/hh:mm:ss/album@writetime" sorted.
	rows := func() string {
		t.Helper()
		iter := session.Query(`SELECT played_at, track_name, album_name, WRITETIME(track_name) FROM raw_listens
 WHERE user_id = ? AND day = ?`, "erin", day).WithContext(ctx).Iter()
		var lines []string
		var played time.Time
		var track, album string
		var wt int64
		for iter.Scan(&played, &track, &album, &wt) {
			lines = append(lines, fmt.Sprintf("%s/%s/%s@%d", track, played.UTC().Format("15:04:05"), album, wt))
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		return sinktest.Dump(lines)
	}
	expect := func(step string, want ...string) {
		t.Helper()
		if got := rows(); got != sinktest.Dump(want) {
			t.Errorf("%s: raw_listens holds\n%s\nwant\n%s", step, got, sinktest.Dump(want))
		}
	}
	row := func(l listen.Listen, m *sarama.ConsumerMessage) string {
		return fmt.Sprintf("%s/%s/%s@%d", l.TrackName, l.PlayedAt.Format("15:04:05"), l.AlbumName,
			m.Timestamp.UnixMilli()*1_000_000+m.Offset%1_000_000)
	}
	metric := func(result string) float64 {
		return sinktest.Metric(t, "topk_raw_writer_deletes_total", "result", result)
	}
	applied0, missing0 := metric("applied"), metric("not_found")
	w := newWriter(t)

	cyber := mk("Cybele's Reverie", "Emperor Tomato Ketchup", 0)
	same := mk("French Disko", "", 0) // another track of the same second: stays
	r1, r2 := rec(cyber), rec(same)
	write(w, r1, r2)
	expect("written", row(cyber, r1), row(same, r2))

	d1 := rec(del(cyber))
	write(w, d1)
	expect("deleted", row(same, r2))

	shout := cyber
	shout.TrackName, shout.AlbumName = "CYBELE'S REVERIE", "" // sent again, another spelling, no album
	r3 := rec(shout)
	write(w, r3)
	expect("sent again after its delete", row(shout, r3), row(same, r2))

	// Redelivered from the start, in one batch; then a stale instance
	// writes the delete's batch and the first batch again.
	write(newWriter(t), r1, r2, d1, r3)
	write(newWriter(t), d1)
	write(newWriter(t), r1, r2)
	expect("after redeliveries", row(shout, r3), row(same, r2))

	// A listen and its delete in one batch: never present. A delete and
	// the listen sent again in one batch: present.
	wool := mk("Wow and Flutter", "Mars Audiac Quintet", 1)
	rw, dw := rec(wool), rec(del(wool))
	write(w, rw, dw)
	expect("a listen and its delete in one batch", row(shout, r3), row(same, r2))
	d3, r4 := rec(del(shout)), rec(cyber)
	write(w, d3, r4)
	expect("a delete and the listen again in one batch", row(cyber, r4), row(same, r2))
	write(newWriter(t), rw, dw, d3, r4) // redelivered
	expect("both batches again", row(cyber, r4), row(same, r2))

	// A delete of nothing: no error, nothing changes.
	write(w, rec(del(mk("Nothing", "", 30))))
	expect("a delete of nothing", row(cyber, r4), row(same, r2))

	// Applied: a delete that found its row or a listen of its batch — d1,
	// d1 redelivered (r1 in its batch), d1 by the stale instance (it finds
	// r3's row, which its older tombstone leaves), dw, d3, dw and d3
	// redelivered. Not found: the delete of nothing.
	if applied, missing := metric("applied")-applied0, metric("not_found")-missing0; applied != 7 || missing != 1 {
		t.Errorf("deletes counted: %v applied, %v not found; want 7 and 1", applied, missing)
	}
}
