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
)

// ContractRecords are the records the writer contract (sinktest.WriterContract)
// gives the raw writer; exported for the integration tests.
var ContractRecords = contractRecords

// contractRecords: listens of two users on two days, with the same record
// twice and the same play spelled otherwise without its optional fields;
// and three records the raw writer skips (not a listen, a tombstone, a
// listen under another user's key).
func contractRecords(prefix string) (valid, unusable []*sarama.ConsumerMessage) {
	rec := func(key string, l listen.Listen) *sarama.ConsumerMessage {
		b, err := listen.Codec{}.Encode(l)
		if err != nil {
			panic(err)
		}
		return &sarama.ConsumerMessage{Key: []byte(key), Value: b}
	}
	base := time.Date(2025, 12, 31, 22, 0, 0, 0, time.UTC)
	for u, user := range []string{prefix + "ann", prefix + "ben"} {
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
		}
	}
	other := listen.Listen{UserID: prefix + "ann", PlayedAt: base, ArtistName: "A", TrackName: "B"}
	unusable = []*sarama.ConsumerMessage{
		{Key: []byte(other.Key()), Value: []byte("not json")},
		{Key: []byte(other.Key())},
		rec(prefix+"ben|2025-12-31", other),
	}
	for _, batch := range [][]*sarama.ConsumerMessage{valid, unusable} {
		for i, m := range batch {
			m.Offset = int64(i)
		}
	}
	return valid, unusable
}

var errInjected = errors.New("injected failure")

// memStore is raw_listens and users_by_prefix in memory, with Cassandra's
// rule for the fields written unset (merge); it can fail every request, or
// block each until its context ends.
type memStore struct {
	fail, block bool

	mu    sync.Mutex
	rows  map[string]listen.Listen // "user|day|identity"
	users map[string]bool
}

func newMemStore() *memStore {
	return &memStore{rows: map[string]listen.Listen{}, users: map[string]bool{}}
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

func (m *memStore) WriteListens(ctx context.Context, user string, day time.Time, listens []listen.Listen) error {
	if err := m.request(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range listens {
		k := fmt.Sprintf("%s|%s|%s", user, day.Format(listen.DayLayout), l.Identity())
		l.PlayedAt = l.PlayedAt.UTC()
		if old, ok := m.rows[k]; ok {
			l = merge(old, l)
		}
		m.rows[k] = l
	}
	return nil
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
	for k, l := range m.rows {
		if strings.HasPrefix(k, prefix) {
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
