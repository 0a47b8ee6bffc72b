package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/store/cassandra"
)

// The sinks' statements, copied because they are unexported
// (store/cassandra/raw.go, store/cassandra/days.go);
// TestStatementsMatchTheSinks fails when they drift apart.
const (
	insertListen = `INSERT INTO raw_listens (user_id, day, played_at, identity,
 artist_name, track_name, album_name, track_id, artist_id, album_id, duration_ms, source, event_id)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	insertUserDay = `INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?) USING TIMESTAMP ?`
)

var insertItems = [...]string{
	`INSERT INTO day_items (user_id, day, entity, item, name, artist, plays, first, spellings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
	`INSERT INTO month_items (user_id, month, entity, item, name, artist, plays, first, spellings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
	`INSERT INTO year_items (user_id, year, entity, item, name, artist, plays, first, spellings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
}

const (
	dayTable = iota
	monthTable
	yearTable
)

// The sinks' defaults (rawwriter.Config, flusher.Config; `topk raw-writer`
// and `topk flusher` set none of them), which the bare writer copies.
const (
	rawBatchSize   = 1000 // listens per sink batch
	rawConcurrency = 8    // (user, day) groups written at once per batch
	rawMaxRows     = 200  // rows per CQL batch
	flushMaxBatch  = 2000 // changelog records per flush (a catch-up fills it)
	flushConc      = 4    // Cassandra requests in flight per flusher instance
	flushMaxRows   = 5000 // rows per CQL batch
)

// bare is the reference: a plain gocql writer of the same rows with the
// same statements at the same concurrency, and nothing else — no Kafka, no
// decoding, no coalescing, no reads.
type bare struct {
	s        *gocql.Session
	requests atomic.Int64 // CQL requests (batches and single inserts)
	rows     atomic.Int64
}

func (b *bare) exec(ctx context.Context, entries []gocql.BatchEntry) error {
	batch := b.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	batch.Entries = entries
	if err := b.s.ExecuteBatch(batch); err != nil {
		return err
	}
	b.requests.Add(1)
	b.rows.Add(int64(len(entries)))
	return nil
}

// rawListens writes every listen as the raw writer does: each Kafka
// partition's listens in batches of rawBatchSize (one goroutine per
// partition, as the sink claims every partition at once), a batch grouped
// by (user, day), rawConcurrency groups at once, rawMaxRows rows per CQL
// batch; and one users_by_prefix row per user not written before.
func (b *bare) rawListens(ctx context.Context, ds *dataset) error {
	known := &knownUsers{m: map[string]bool{}}
	g, gctx := errgroup.WithContext(ctx)
	for p := range ds.raw {
		g.Go(func() error { return b.rawPartition(gctx, ds.raw[p], known) })
	}
	return g.Wait()
}

type knownUsers struct {
	mu sync.Mutex
	m  map[string]bool
}

func (k *knownUsers) missing(groups []rawGroup) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, g := range groups {
		if !k.m[g.user] && !seen[g.user] {
			seen[g.user] = true
			out = append(out, g.user)
		}
	}
	return out
}

func (k *knownUsers) add(users []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, u := range users {
		k.m[u] = true
	}
}

func (b *bare) rawPartition(ctx context.Context, groups []rawGroup, known *knownUsers) error {
	var batch []rawGroup
	n := 0
	for _, grp := range groups {
		rows := grp.rows
		for len(rows) > 0 {
			take := min(len(rows), rawBatchSize-n)
			batch = append(batch, rawGroup{user: grp.user, rows: rows[:take]})
			n += take
			rows = rows[take:]
			if n == rawBatchSize {
				if err := b.rawBatch(ctx, batch, known); err != nil {
					return err
				}
				batch, n = nil, 0
			}
		}
	}
	if len(batch) > 0 {
		return b.rawBatch(ctx, batch, known)
	}
	return nil
}

func (b *bare) rawBatch(ctx context.Context, batch []rawGroup, known *knownUsers) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rawConcurrency)
	for _, grp := range batch {
		for start := 0; start < len(grp.rows); start += rawMaxRows {
			chunk := grp.rows[start:min(start+rawMaxRows, len(grp.rows))]
			g.Go(func() error {
				entries := make([]gocql.BatchEntry, len(chunk))
				now := time.Now().UnixMicro() // the raw writer's is its record's; the cost is the same
				for i, r := range chunk {
					entries[i] = gocql.BatchEntry{Stmt: insertListen, Idempotent: true, Args: []any{
						grp.user, r.day, r.at, r.id[:], r.artist, r.track, optional(r.album),
						gocql.UnsetValue, gocql.UnsetValue, gocql.UnsetValue, gocql.UnsetValue, gocql.UnsetValue, gocql.UnsetValue,
						now + int64(i),
					}}
				}
				if err := b.exec(gctx, entries); err != nil {
					return fmt.Errorf("raw_listens %s: %w", grp.user, err)
				}
				return nil
			})
		}
	}
	users := known.missing(batch)
	for _, u := range users {
		g.Go(func() error {
			if err := b.s.Query(cassandra.InsertKnownUser, cassandra.KnownUserArgs(u)...).WithContext(gctx).Idempotent(true).Exec(); err != nil {
				return fmt.Errorf("users_by_prefix %s: %w", u, err)
			}
			b.requests.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	known.add(users)
	return nil
}

func optional(s string) any {
	if s == "" {
		return gocql.UnsetValue
	}
	return s
}

// dayWrites writes what the flusher's day writes write: per user-day one
// day_items batch USING TIMESTAMP its total, and per user of a flush (a
// Kafka partition's next flushMaxBatch user-days) one user_days batch, each
// row USING TIMESTAMP its plays; flushConc requests in flight. It does not
// order user_days after day_items, nor wait for anything between flushes.
func (b *bare) dayWrites(ctx context.Context, ds *dataset) error {
	return b.run(ctx, func(emit func(job) bool) {
		var next [][]*period = make([][]*period, len(ds.dayP))
		copy(next, ds.dayP)
		for more := true; more; {
			more = false
			for p := range next {
				chunk := next[p][:min(flushMaxBatch, len(next[p]))]
				next[p] = next[p][len(chunk):]
				if len(chunk) == 0 {
					continue
				}
				more = true
				var users []string
				byUser := map[string][]*period{}
				for _, st := range chunk {
					if !emitItems(emit, dayTable, st.user, st.day, st.rows, st.total) {
						return
					}
					if byUser[st.user] == nil {
						users = append(users, st.user)
					}
					byUser[st.user] = append(byUser[st.user], st)
				}
				for _, u := range users {
					days := byUser[u]
					for start := 0; start < len(days); start += flushMaxRows {
						part := days[start:min(start+flushMaxRows, len(days))]
						entries := make([]gocql.BatchEntry, len(part))
						for i, d := range part {
							entries[i] = gocql.BatchEntry{Stmt: insertUserDay, Idempotent: true, Args: []any{u, d.day, d.total, d.total}}
						}
						if !emit(job{what: "user_days " + u, entries: entries}) {
							return
						}
					}
				}
			}
		}
	})
}

// rollupWrites writes every month rollup and every year rollup once, in
// their final state: what the flusher's rollup writes leave in
// month_items and year_items, without the reads and recomputes.
func (b *bare) rollupWrites(ctx context.Context, ds *dataset) error {
	return b.run(ctx, func(emit func(job) bool) {
		for _, m := range ds.months {
			if !emitItems(emit, monthTable, m.user, m.part, m.rows, m.total) {
				return
			}
		}
		for _, y := range ds.years {
			if !emitItems(emit, yearTable, y.user, y.part, y.rows, y.total) {
				return
			}
		}
	})
}

// emitItems emits the batches of one item partition, as the flusher's
// store, cassandra.DayStore.WriteItems, writes them: the key's bits as a
// bigint, first, and the spellings column always set (topk.AppendSpellings,
// one zero byte when Name is the only spelling), encoded here as the store
// encodes it per row.
func emitItems(emit func(job) bool, t int, user string, part any, rows []row, ts int64) bool {
	for start := 0; start < len(rows); start += flushMaxRows {
		chunk := rows[start:min(start+flushMaxRows, len(rows))]
		entries := make([]gocql.BatchEntry, len(chunk))
		for i := range chunk {
			r := &chunk[i]
			entries[i] = gocql.BatchEntry{Stmt: insertItems[t], Idempotent: true,
				Args: []any{user, part, string(r.Entity), int64(r.Key), r.Name, optional(r.Artist), r.Plays, r.First,
					topk.AppendSpellings(nil, r.Spellings), ts}}
		}
		if !emit(job{what: fmt.Sprintf("%s %s %v", [...]string{"day_items", "month_items", "year_items"}[t], user, part), entries: entries}) {
			return false
		}
	}
	return true
}

type job struct {
	what    string
	entries []gocql.BatchEntry
}

// run executes the batches feed emits, flushConc at a time.
func (b *bare) run(ctx context.Context, feed func(emit func(job) bool)) error {
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan job, 4*flushConc)
	for range flushConc {
		g.Go(func() error {
			for j := range jobs {
				if err := b.exec(gctx, j.entries); err != nil {
					return fmt.Errorf("%s: %w", j.what, err)
				}
			}
			return nil
		})
	}
	feed(func(j job) bool {
		select {
		case jobs <- j:
			return true
		case <-gctx.Done():
			return false
		}
	})
	close(jobs)
	return g.Wait()
}
