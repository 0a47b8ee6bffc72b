package sitewideflusher

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

// memStore models sitewide_days with Cassandra's rule for rows written
// whole USING TIMESTAMP: a key keeps the row of the highest Version (a
// row of equal Version is the same value, one version being one state).
// It can fail requests: failEvery > 0 fails every failEvery-th request
// after applying only its first half of the rows (a timeout after some
// batches landed).
type memStore struct {
	mu        sync.Mutex
	rows      map[sitewide.Key]cassandra.SitewideRow
	requests  int
	failEvery int
	failAll   bool
	block     bool
	written   atomic.Int64 // rows applied
	// touched is the rows of each RollupTouched call, in order; rollUps
	// the before of each RollUp call. failRollups fails both.
	touched     [][]cassandra.SitewideRow
	rollUps     []time.Time
	failRollups bool
}

// RollupTouched records rows; the recompute itself is
// cassandra.SitewideStore's (TestIntegrationSitewideRollups).
func (m *memStore) RollupTouched(ctx context.Context, rows []cassandra.SitewideRow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRollups {
		return errInjected
	}
	m.touched = append(m.touched, append([]cassandra.SitewideRow(nil), rows...))
	return nil
}

// RollUp records before and rolls up nothing.
func (m *memStore) RollUp(ctx context.Context, before time.Time, log *slog.Logger) (cassandra.RolledUp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRollups {
		return cassandra.RolledUp{}, errInjected
	}
	m.rollUps = append(m.rollUps, before)
	return cassandra.RolledUp{}, nil
}

func newMemStore() *memStore { return &memStore{rows: map[sitewide.Key]cassandra.SitewideRow{}} }

var errInjected = errors.New("injected failure")

func (m *memStore) WriteSitewide(ctx context.Context, rows []cassandra.SitewideRow) error {
	if m.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	runtime.Gosched()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failAll {
		return errInjected
	}
	m.requests++
	apply := rows
	fail := m.failEvery > 0 && m.requests%m.failEvery == 0
	if fail {
		apply = rows[:len(rows)/2]
	}
	for _, r := range apply {
		if old, ok := m.rows[r.Key]; !ok || r.Version >= old.Version {
			m.rows[r.Key] = r
		}
		m.written.Add(1)
	}
	if fail {
		return errInjected
	}
	return nil
}

// dump is the rows of the items in items, one a line.
func (m *memStore) dump(items map[uint64]bool) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lines []string
	for k, r := range m.rows {
		if items[k.Item] {
			lines = append(lines, fmt.Sprintf("%s v%d plays %d listeners %d %q %q", k, r.Version, r.Plays, r.Listeners, r.Name, r.Artist))
		}
	}
	return sinktest.Dump(lines)
}

func quietConfig() Config {
	return Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// listener is one user's plays in a test value, spelled by spelling
// index.
type listener struct {
	user     string
	plays    uint32
	spelling uint32
}

// valueOf is a group value with version, spellings and listeners (sorted
// by user, as the group keeps them).
func valueOf(version uint64, spellings []sitewide.Spelling, ls ...listener) *sitewide.Value {
	v := &sitewide.Value{Version: version, Spellings: spellings}
	for _, l := range ls {
		v.Listeners = append(v.Listeners, sitewide.Listener{User: l.user, Plays: l.plays, Version: 1, Spelling: l.spelling})
	}
	return v
}

func recOf(k sitewide.Key, v *sitewide.Value) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{Key: []byte(k.String()), Value: sitewide.AppendValue(nil, v)}
}

func day(s string) time.Time {
	d, err := time.Parse(topk.DayLayout, s)
	if err != nil {
		panic(err)
	}
	return d
}

// ContractItems are the items contractRecords(prefix) is about;
// exported, with ContractRecords, for the integration tests.
var (
	ContractItems   = contractItems
	ContractRecords = contractRecords
)

func contractItems(prefix string) map[uint64]bool {
	out := map[uint64]bool{}
	for _, s := range []string{"a", "b"} {
		h := fnv.New64a()
		h.Write([]byte(prefix + "/" + s))
		out[h.Sum64()] = true
	}
	return out
}

// contractRecords: the successive values of keys of two items (a track
// and an artist each) on days of two months, in a spill bucket too, each
// growing, one losing its listens again (plays 0), with older values
// replayed last; and four records the flusher skips (a key that is not a
// sitewide key, a tombstone, an undecodable value, a value of version 0).
func contractRecords(prefix string) (valid, unusable []*sarama.ConsumerMessage) {
	var items []uint64
	for it := range contractItems(prefix) {
		items = append(items, it)
	}
	if items[0] > items[1] {
		items[0], items[1] = items[1], items[0]
	}
	sp := []sitewide.Spelling{{Name: "Song", Artist: "Band"}, {Name: "SONG", Artist: "BAND"}}
	var replays []*sarama.ConsumerMessage
	for n, item := range items {
		for _, e := range []topk.Entity{topk.Tracks, topk.Artists} {
			for d, dd := range []string{"2026-01-31", "2026-02-01"} {
				for _, bucket := range []uint32{3, 1030} {
					k := sitewide.Key{Entity: e, Item: item, Day: day(dd), Bucket: bucket}
					var ls []listener
					for i := range 2 + d + n {
						ls = append(ls, listener{user: fmt.Sprintf("u%d", i), plays: uint32(1 + i), spelling: uint32(i % 2)})
						valid = append(valid, recOf(k, valueOf(uint64(i+1), sp, ls...)))
						if i == 0 {
							replays = append(replays, recOf(k, valueOf(1, sp, ls...)))
						}
					}
					if bucket == 1030 && d == 1 { // every listen deleted: plays 0
						for i := range ls {
							ls[i].plays = 0
						}
						valid = append(valid, recOf(k, valueOf(uint64(len(ls)+1), sp, ls...)))
					}
				}
			}
		}
	}
	valid = append(valid, replays...)
	k := sitewide.Key{Entity: topk.Tracks, Item: items[0], Day: day("2026-02-02"), Bucket: 0}
	unusable = []*sarama.ConsumerMessage{
		{Key: []byte(prefix + "|not a key"), Value: sitewide.AppendValue(nil, valueOf(1, sp, listener{"u", 1, 0}))},
		{Key: []byte(k.String())},
		{Key: []byte(k.String()), Value: []byte{1, 2, 3}},
		recOf(k, valueOf(0, sp, listener{"u", 1, 0})),
	}
	for _, batch := range [][]*sarama.ConsumerMessage{valid, unusable} {
		for i, m := range batch {
			m.Offset = int64(i)
		}
	}
	return valid, unusable
}
