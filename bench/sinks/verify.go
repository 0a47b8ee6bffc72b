package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk"
)

// scanRanges splits the token ring for parallel scans; scanConcurrency of
// them run at once (Cassandra shares the machine's two cores).
const (
	scanRanges      = 16
	scanConcurrency = 2
)

// scanner is the destinations of one scan's rows and the function that
// hashes the row just scanned into them (returning its partition key too).
type scanner func() (dest []any, fold func(h *hasher) (uint64, string))

// scan reads every row of a table, range by range, and folds each into a
// digest.
func scan(ctx context.Context, s *gocql.Session, table, token, cols string, newScanner scanner) (digest, error) {
	var (
		mu  sync.Mutex
		out digest
	)
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE token(%s) > ? AND token(%s) <= ?`, cols, table, token, token)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(scanConcurrency)
	step := uint64(math.MaxUint64 / scanRanges)
	for i := range scanRanges {
		lo := math.MinInt64 + int64(uint64(i)*step)
		hi := math.MinInt64 + int64(uint64(i+1)*step)
		if i == scanRanges-1 {
			hi = math.MaxInt64
		}
		g.Go(func() error {
			var d digest
			h := newHasher()
			iter := s.Query(q, lo, hi).WithContext(gctx).PageSize(5000).Idempotent(true).Iter()
			args, fold := newScanner()
			last := "\x00none"
			for iter.Scan(args...) {
				v, part := fold(h)
				d.add(v)
				if part != last { // a partition's rows come together
					d.partitions++
					last = part
				}
			}
			if err := iter.Close(); err != nil {
				return fmt.Errorf("scan %s: %w", table, err)
			}
			mu.Lock()
			out.rows += d.rows
			out.sum += d.sum
			out.partitions += d.partitions
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

// tables is what one keyspace holds, as digests.
type tables struct{ raw, dayItems, userDays, months, years digest }

// readTables scans the five tables the sinks write.
func readTables(ctx context.Context, s *gocql.Session) (tables, error) {
	var t tables
	var err error
	t.raw, err = scan(ctx, s, "raw_listens", "user_id, day", "user_id, day, played_at, identity, artist_name, track_name, album_name",
		func() ([]any, func(*hasher) (uint64, string)) {
			var user, artist, track, album string
			var day, at time.Time
			var id []byte
			return []any{&user, &day, &at, &id, &artist, &track, &album}, func(h *hasher) (uint64, string) {
				return h.raw(user, day, at, id, artist, track, album), user + "|" + day.Format(time.DateOnly)
			}
		})
	if err != nil {
		return t, err
	}
	items := func(table, col string) (digest, error) {
		return scan(ctx, s, table, "user_id, "+col, "user_id, "+col+", entity, item, name, artist, plays, first, spellings",
			func() ([]any, func(*hasher) (uint64, string)) {
				var user, entity string
				var day time.Time
				var part int
				var item int64
				var spellings []byte
				var r row
				dest := []any{&user, &part, &entity, &item, &r.Name, &r.Artist, &r.Plays, &r.First, &spellings}
				if col == "day" {
					dest[1] = &day
				}
				return dest, func(h *hasher) (uint64, string) {
					p := int64(part)
					if col == "day" {
						p = unixDay(day)
					}
					r.Entity, r.Key = topk.Entity(entity), uint64(item)
					return h.item(user, p, &r, spellings), fmt.Sprintf("%s|%d", user, p)
				}
			})
	}
	if t.dayItems, err = items("day_items", "day"); err != nil {
		return t, err
	}
	if t.months, err = items("month_items", "month"); err != nil {
		return t, err
	}
	if t.years, err = items("year_items", "year"); err != nil {
		return t, err
	}
	t.userDays, err = scan(ctx, s, "user_days", "user_id", "user_id, day, plays",
		func() ([]any, func(*hasher) (uint64, string)) {
			var user string
			var day time.Time
			var plays int64
			return []any{&user, &day, &plays}, func(h *hasher) (uint64, string) { return h.userDay(user, day, plays), user }
		})
	return t, err
}
