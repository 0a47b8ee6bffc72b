package rawwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/store/cassandra"
)

// ContractRecords are the records the writer contract (sinktest.WriterContract)
// gives the raw writer; exported for the integration tests.
var ContractRecords = contractRecords

// contractRecords: listens of two users on two days, with the same record
// twice and the same play spelled otherwise without its optional fields,
// a listen deleted, and one deleted and sent again; and four records the
// raw writer skips (not a listen, a tombstone, a listen and a delete under
// another user's key).
func contractRecords(prefix string) (valid, unusable []*sarama.ConsumerMessage) {
	rec := func(key string, l listen.Listen) *sarama.ConsumerMessage {
		b, err := listen.Codec{}.Encode(l)
		if err != nil {
			panic(err)
		}
		return &sarama.ConsumerMessage{Key: []byte(key), Value: b}
	}
	del := func(l listen.Listen) *sarama.ConsumerMessage {
		d := listen.Delete{UserID: l.UserID, PlayedAt: l.PlayedAt, MSID: listen.MSID(l.ArtistName, l.TrackName)}
		return &sarama.ConsumerMessage{Key: []byte(d.Key()), Value: d.Encode()}
	}
	base := time.Date(2025, 12, 31, 22, 0, 0, 0, time.UTC)
	for u, user := range []string{prefix + "ann", prefix + "ben"} {
		var sent []listen.Listen
		for i := range 6 {
			l := listen.Listen{UserID: user, PlayedAt: base.Add(time.Duration(i*37+u) * time.Minute), ArtistName: "Radiohead",
				TrackName: fmt.Sprintf("Track %d", i), AlbumName: "In Rainbows", DurationMS: 215000, Source: "test", EventID: fmt.Sprint(i)}
			valid = append(valid, rec(l.Key(), l))
			switch i % 3 {
			case 1:
				valid = append(valid, rec(l.Key(), l))
			case 2:
				dup := listen.Listen{UserID: user, PlayedAt: l.PlayedAt, ArtistName: "RADIOHEAD", TrackName: strings.ToUpper(l.TrackName)}
				valid = append(valid, rec(dup.Key(), dup))
			}
			sent = append(sent, l)
		}
		valid = append(valid, del(sent[0]), del(sent[4]), rec(sent[4].Key(), sent[4]))
	}
	other := listen.Listen{UserID: prefix + "ann", PlayedAt: base, ArtistName: "A", TrackName: "B"}
	unusable = []*sarama.ConsumerMessage{
		{Key: []byte(other.Key()), Value: []byte("not json")},
		{Key: []byte(other.Key())},
		rec(prefix+"ben|2025-12-31", other),
		del(other),
	}
	unusable[3].Key = []byte(prefix + "ben|2025-12-31")
	for _, batch := range [][]*sarama.ConsumerMessage{valid, unusable} {
		for i, m := range batch {
			m.Offset = int64(i)
		}
	}
	return valid, unusable
}

var errInjected = errors.New("injected failure")

// memStore is raw_listens and users_by_prefix in memory, with Cassandra's
// rules: every cell keeps its write time, a write or a tombstone takes
// effect only over older ones (a tombstone wins a tie), and the fields
// written unset are not written (merge); it can fail every request, or
// block each until its context ends.
type memStore struct {
	fail, block bool

	mu    sync.Mutex
	rows  map[string]*memRow // "user|day|identity"
	users map[string]bool
}

// memRow is a raw_listens row: its cells by column and its tombstone.
type memRow struct {
	cells map[string]memCell
	tomb  int64
}

type memCell struct {
	v  string
	at int64
}

func newMemStore() *memStore {
	return &memStore{rows: map[string]*memRow{}, users: map[string]bool{}}
}

func (m *memStore) request(ctx context.Context) error {
	switch {
	case m.block:
		<-ctx.Done()
		return ctx.Err()
	case m.fail:
		return errInjected
	}
	return ctx.Err()
}

// columns are a listen's cells as WriteListens writes them ("" unset).
func columns(l listen.Listen) map[string]string {
	c := map[string]string{
		"played_at": l.PlayedAt.UTC().Format(time.RFC3339), "artist_name": l.ArtistName, "track_name": l.TrackName,
		"album_name": l.AlbumName, "track_id": l.TrackID, "artist_id": l.ArtistID, "album_id": l.AlbumID,
		"source": l.Source, "event_id": l.EventID,
	}
	if cassandra.StoresDuration(l.DurationMS) {
		c["duration_ms"] = fmt.Sprint(l.DurationMS)
	}
	return c
}

// listen is the live row as a listen, and whether it is there.
func (r *memRow) listen() (listen.Listen, bool) {
	if len(r.cells) == 0 {
		return listen.Listen{}, false
	}
	c := func(k string) string { return r.cells[k].v }
	at, _ := time.Parse(time.RFC3339, c("played_at"))
	var dur int64
	fmt.Sscan(c("duration_ms"), &dur)
	return listen.Listen{PlayedAt: at, ArtistName: c("artist_name"), TrackName: c("track_name"), AlbumName: c("album_name"),
		TrackID: c("track_id"), ArtistID: c("artist_id"), AlbumID: c("album_id"), DurationMS: dur, Source: c("source"),
		EventID: c("event_id")}, true
}

func (m *memStore) WriteListens(ctx context.Context, user string, day time.Time, listens []cassandra.RawListen) error {
	if err := m.request(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rl := range listens {
		k := fmt.Sprintf("%s|%s|%s", user, day.Format(listen.DayLayout), rl.Listen.Identity())
		r := m.rows[k]
		if r == nil {
			r = &memRow{cells: map[string]memCell{}}
			m.rows[k] = r
		}
		if rl.WriteTime <= r.tomb {
			continue
		}
		for col, v := range columns(rl.Listen) {
			if v != "" && rl.WriteTime >= r.cells[col].at {
				r.cells[col] = memCell{v, rl.WriteTime}
			}
		}
	}
	return nil
}

func (m *memStore) DeleteListen(ctx context.Context, user string, day time.Time, d cassandra.RawDelete) (int, error) {
	if err := m.request(ctx); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := fmt.Sprintf("%s|%s|", user, day.Format(listen.DayLayout))
	n := 0
	for k, r := range m.rows {
		l, ok := r.listen()
		if !strings.HasPrefix(k, prefix) || !ok || l.PlayedAt.Unix() != d.PlayedAt.Unix() || listen.MSID(l.ArtistName, l.TrackName) != d.MSID {
			continue
		}
		n++
		r.tomb = max(r.tomb, d.WriteTime)
		for col, c := range r.cells {
			if c.at <= r.tomb {
				delete(r.cells, col)
			}
		}
	}
	return n, nil
}

func (m *memStore) WriteKnownUser(ctx context.Context, user string) error {
	if err := m.request(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[user] = true
	return nil
}

// dump is what m holds of the users whose ids start with prefix.
func (m *memStore) dump(prefix string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lines []string
	for k, r := range m.rows {
		if l, ok := r.listen(); ok && strings.HasPrefix(k, prefix) {
			lines = append(lines, fmt.Sprintf("%s %+v", k, l))
		}
	}
	for u := range m.users {
		if strings.HasPrefix(u, prefix) {
			lines = append(lines, "user "+u)
		}
	}
	return sinktest.Dump(lines)
}

// The raw writer on the model store passes the sink writers' contract.
func TestWriterContract(t *testing.T) {
	if err := registerMetrics(nil); err != nil { // as New does: Skipped reads the default registry
		t.Fatal(err)
	}
	st, failing, blocking := newMemStore(), newMemStore(), newMemStore()
	failing.fail, blocking.block = true, true
	cfg := Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxRowsPerCQLBatch: 2}
	sinktest.WriterContract(t, sinktest.WriterSubject{
		NewWriter:      func(*testing.T) sinktest.Writer { return newWriter(cfg, st) },
		FailingWriter:  func(*testing.T) sinktest.Writer { return newWriter(cfg, failing) },
		BlockingWriter: func(*testing.T) sinktest.Writer { return newWriter(cfg, blocking) },
		Records:        contractRecords,
		Stored:         func(_ *testing.T, prefix string) string { return st.dump(prefix) },
		Skipped:        func(t *testing.T) float64 { return sinktest.Metric(t, "topk_raw_writer_skipped_total") },
	})
}
