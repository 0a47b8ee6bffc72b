// Sitewide month and year rollups (schemas/cassandra/007_… and
// 008_sitewide_year_rollups.cql): the flusher's recompute of the items it
// wrote (RollupTouched), the roll-up of whole months and years once they
// leave the view's window (RollUp), and the reads of the rollups
// (Reader.SitewideRange).

package cassandra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk"
)

// sitewideMonth is one entity's month of sitewide_days.
type sitewideMonth struct {
	entity topk.Entity
	month  string
}

// sitewideYear is one entity's year of sitewide_days.
type sitewideYear struct {
	entity topk.Entity
	year   int
}

// yearOf is the year of a month spelled monthLayout.
func yearOf(month string) int {
	y, _ := strconv.Atoi(month[:4])
	return y
}

// monthsOf are the twelve months of year, spelled monthLayout.
func monthsOf(year int) []string {
	out := make([]string, 12)
	for i := range out {
		out[i] = fmt.Sprintf("%04d-%02d", year, i+1)
	}
	return out
}

const (
	selectRollupStates = `SELECT month, started, done FROM sitewide_month_rollups WHERE entity = ? AND month >= ? AND month <= ?`
	selectRollupState  = `SELECT started FROM sitewide_month_rollups WHERE entity = ? AND month = ?`
	markRollupStarted  = `UPDATE sitewide_month_rollups SET started = true WHERE entity = ? AND month = ?`
	markRollupDone     = `UPDATE sitewide_month_rollups SET done = true WHERE entity = ? AND month = ?`
	selectItemsMonth   = `SELECT item, plays, listeners, name, artist, WRITETIME(plays) FROM sitewide_days ` +
		`WHERE entity = ? AND month = ? AND shard = ? AND item IN ?`
	selectMonthShard = `SELECT item, plays, listeners, name, artist, WRITETIME(plays) FROM sitewide_days ` +
		`WHERE entity = ? AND month = ? AND shard = ?`
	insertRollup = `INSERT INTO sitewide_month_items (entity, month, shard, item, plays, listeners, best, name, artist) ` +
		`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	selectRollups = `SELECT item, plays, listeners, best, name, artist FROM sitewide_month_items WHERE entity = ? AND month = ? AND shard = ?`

	selectYearStates = `SELECT year, started, done FROM sitewide_year_rollups WHERE entity = ? AND year >= ? AND year <= ?`
	selectYearState  = `SELECT started FROM sitewide_year_rollups WHERE entity = ? AND year = ?`
	markYearStarted  = `UPDATE sitewide_year_rollups SET started = true WHERE entity = ? AND year = ?`
	markYearDone     = `UPDATE sitewide_year_rollups SET done = true WHERE entity = ? AND year = ?`
	selectItemsYear  = `SELECT item, plays, listeners, best, name, artist, WRITETIME(plays) FROM sitewide_month_items ` +
		`WHERE entity = ? AND month IN ? AND shard = ? AND item IN ?`
	selectYearShard = `SELECT item, plays, listeners, best, name, artist, WRITETIME(plays) FROM sitewide_month_items ` +
		`WHERE entity = ? AND month IN ? AND shard = ?`
	insertYearRollup = `INSERT INTO sitewide_year_items (entity, year, shard, item, plays, listeners, best, name, artist) ` +
		`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	selectYearRollups = `SELECT item, plays, listeners, best, name, artist FROM sitewide_year_items WHERE entity = ? AND year = ? AND shard = ?`
)

// rollupSum is an item's month summed from its day rows: the sums, the
// best row's spelling, and the sum of the rows' write timestamps (the
// rollup's own).
type rollupSum struct {
	sitewideSum
	ts int64
}

// rollupItemsPerRead is the most items one recompute read names (its
// IN list): the items of one partition a flush touched are read in as
// few reads as that allows, not one read per item.
const rollupItemsPerRead = 128

// RollupTouched recomputes the rollups of every (entity, month, item)
// of rows whose month's roll-up has started, or its year's
// (sitewide_month_rollups, sitewide_year_rollups): the month rollup from
// the item's day rows of that month, then, for a year whose roll-up has
// started, the year rollup from the item's month rollups. Call it after
// WriteSitewide succeeded. The flags are read after the writes they
// follow (month: after rows were written; year: again, after the month
// rollups were), and RollUp sets them before reading anything: so each
// row is either read by a roll-up or followed by these recomputes.
// The touched items of one partition (a month's or a year's shard) are
// read together, rollupItemsPerRead at a time, and their rollups
// written in one unlogged batch per read: a flush of thousands of rows
// of old months costs a read and a write per partition it touched, not
// per item. Months of the view's window have no roll-up started and
// cost a read or two per flush and entity. It returns the first error
// (the caller writes the batch again and calls it again: idempotent).
func (c *SitewideStore) RollupTouched(ctx context.Context, rows []SitewideRow) error {
	touched := map[sitewideMonth]map[uint64]struct{}{}
	var order []sitewideMonth
	for i := range rows {
		p := partitionOf(rows[i].Key)
		m := sitewideMonth{p.entity, p.month}
		if touched[m] == nil {
			touched[m] = map[uint64]struct{}{}
			order = append(order, m)
		}
		touched[m][rows[i].Key.Item] = struct{}{}
	}
	years := map[sitewideYear]map[uint64]struct{}{}
	var yearOrder []sitewideYear
	g, gctx := errgroup.WithContext(ctx)
	for _, m := range order {
		y := sitewideYear{m.entity, yearOf(m.month)}
		started, err := c.startedMonth(ctx, m)
		if err == nil && !started {
			started, err = c.startedYear(ctx, y)
		}
		if err != nil {
			_ = g.Wait()
			return err
		}
		if !started {
			continue
		}
		if years[y] == nil {
			years[y] = map[uint64]struct{}{}
			yearOrder = append(yearOrder, y)
		}
		for item := range touched[m] {
			years[y][item] = struct{}{}
		}
		err = c.spawnPerShard(gctx, g, touched[m], func(shard int, items []int64) error {
			return c.recomputeMonth(gctx, m, shard, items)
		})
		if err != nil {
			return err
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	for _, y := range yearOrder {
		started, err := c.startedYear(ctx, y)
		if err != nil {
			_ = g.Wait()
			return err
		}
		if !started {
			continue
		}
		err = c.spawnPerShard(gctx, g, years[y], func(shard int, items []int64) error {
			return c.recomputeYear(gctx, y, shard, items)
		})
		if err != nil {
			return err
		}
	}
	return g.Wait()
}

// spawnPerShard splits items by shard, each shard's into lists of at
// most rollupItemsPerRead, and spawns fn for each list.
func (c *SitewideStore) spawnPerShard(gctx context.Context, g *errgroup.Group, items map[uint64]struct{},
	fn func(shard int, items []int64) error) error {
	var byShard [SitewideShards][]int64
	for item := range items {
		s := SitewideShard(item)
		byShard[s] = append(byShard[s], int64(item))
	}
	for shard, ids := range byShard {
		for len(ids) > 0 {
			n := min(len(ids), rollupItemsPerRead)
			list := ids[:n:n]
			ids = ids[n:]
			if err := c.spawn(gctx, g, func() error { return fn(shard, list) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// startedMonth reports whether m's roll-up has started: read from
// Cassandra until it has (then remembered: the flag is never cleared).
func (c *SitewideStore) startedMonth(ctx context.Context, m sitewideMonth) (bool, error) {
	return c.startedFlag(ctx, m, selectRollupState, string(m.entity), m.month)
}

// startedYear is startedMonth for a year.
func (c *SitewideStore) startedYear(ctx context.Context, y sitewideYear) (bool, error) {
	return c.startedFlag(ctx, y, selectYearState, string(y.entity), y.year)
}

func (c *SitewideStore) startedFlag(ctx context.Context, key any, stmt string, args ...any) (bool, error) {
	if _, ok := c.started.Load(key); ok {
		return true, nil
	}
	var started bool
	err := c.s.Query(stmt, args...).WithContext(ctx).Idempotent(true).Scan(&started)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return false, fmt.Errorf("sitewide roll-up state %v: %w", args, err)
	}
	if started {
		c.started.Store(key, struct{}{})
	}
	return started, nil
}

// recomputeMonth writes the month rollups of items (all of shard) of m,
// summed from their day rows; an item without rows gets none.
func (c *SitewideStore) recomputeMonth(ctx context.Context, m sitewideMonth, shard int, items []int64) error {
	it := c.s.Query(selectItemsMonth, string(m.entity), m.month, shard, items).WithContext(ctx).Idempotent(true).
		PageSize(sitewidePage).Iter()
	sums, err := sumItems(it, scanDayRow)
	if err != nil {
		return fmt.Errorf("sitewide_days %s %s shard %d: %w", m.entity, m.month, shard, err)
	}
	return c.writeRollups(ctx, insertRollup, "sitewide_month_items", m.entity, m.month, shard, sums)
}

// recomputeYear writes the year rollups of items (all of shard) of y,
// summed from their month rollups; an item without any gets none.
func (c *SitewideStore) recomputeYear(ctx context.Context, y sitewideYear, shard int, items []int64) error {
	it := c.s.Query(selectItemsYear, string(y.entity), monthsOf(y.year), shard, items).WithContext(ctx).Idempotent(true).
		PageSize(sitewidePage).Iter()
	sums, err := sumItems(it, scanRollupRow)
	if err != nil {
		return fmt.Errorf("sitewide_month_items %s %d shard %d: %w", y.entity, y.year, shard, err)
	}
	return c.writeRollups(ctx, insertYearRollup, "sitewide_year_items", y.entity, y.year, shard, sums)
}

// writeRollups writes sums as the rollups of e's period (a month or a
// year: stmt insertRollup or insertYearRollup) in shard, each USING
// TIMESTAMP its rows' sum, in unlogged batches of at most MaxRowsPerBatch
// (one partition each).
func (c *SitewideStore) writeRollups(ctx context.Context, stmt, table string, e topk.Entity, period any, shard int,
	sums map[uint64]*rollupSum) error {
	entries := make([]gocql.BatchEntry, 0, len(sums))
	for item, s := range sums {
		entries = append(entries, gocql.BatchEntry{Stmt: stmt, Idempotent: true,
			Args: []any{string(e), period, shard, int64(item), s.plays, s.listeners, s.best, s.name, s.artist, s.ts}})
	}
	for start := 0; start < len(entries); start += c.maxRows {
		b := c.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		b.Entries = entries[start:min(start+c.maxRows, len(entries))]
		if err := c.s.ExecuteBatch(b); err != nil {
			return fmt.Errorf("%s %s %v shard %d: %d rollups: %w", table, e, period, shard, len(b.Entries), err)
		}
	}
	return nil
}

// sumItems sums it's rows (next: one row as a sum) per item, and closes
// it.
func sumItems(it *gocql.Iter, next func(*gocql.Iter) (uint64, *rollupSum, bool)) (map[uint64]*rollupSum, error) {
	sums := map[uint64]*rollupSum{}
	for {
		item, row, ok := next(it)
		if !ok {
			break
		}
		if s := sums[item]; s != nil {
			s.add(row.plays, row.listeners, row.best, row.name, row.artist)
			s.ts += row.ts
		} else {
			sums[item] = row
		}
	}
	return sums, it.Close()
}

// scanDayRow reads the next row of sitewide_days (item, plays,
// listeners, name, artist, write time) as a sum; false at the end.
func scanDayRow(it *gocql.Iter) (uint64, *rollupSum, bool) {
	var item, plays, wt int64
	var listeners int
	var name, artist string
	if !it.Scan(&item, &plays, &listeners, &name, &artist, &wt) {
		return 0, nil, false
	}
	s := &rollupSum{ts: wt}
	s.add(plays, int64(listeners), plays, name, artist)
	return uint64(item), s, true
}

// scanRollupRow reads the next month rollup row (item, plays,
// listeners, best, name, artist, write time) as a sum; false at the end.
func scanRollupRow(it *gocql.Iter) (uint64, *rollupSum, bool) {
	var item, plays, listeners, best, wt int64
	var name, artist string
	if !it.Scan(&item, &plays, &listeners, &best, &name, &artist, &wt) {
		return 0, nil, false
	}
	s := &rollupSum{ts: wt}
	s.add(plays, listeners, best, name, artist)
	return uint64(item), s, true
}

// RolledUp counts what one RollUp rolled up.
type RolledUp struct{ Months, Years int }

// RollUp rolls up what the api reads whole from Cassandra and is not yet
// done: every month of sitewide_days before the month of before (the
// first day of the api's view window), then every year whose December
// is one of those. A month: its started flag set, each of its 16
// partitions summed per item (paged), each item's rollup written USING
// TIMESTAMP the sum of its rows' write timestamps, its done flag set; a
// year likewise from its months' rollups, except that its started flag
// is set before its months are listed and rolled up (a month that gets
// its first rows later is then recomputed by RollupTouched, which counts
// a started year as started for its months). Two copies rolling up at
// once write the same rollups (or, with a row changed in between, the
// newer wins): idempotent.
func (c *SitewideStore) RollUp(ctx context.Context, before time.Time, log *slog.Logger) (RolledUp, error) {
	var n RolledUp
	lastMonth := utcDay(before).AddDate(0, -1, 0).Format(monthLayout)
	lastYear := yearOf(lastMonth)
	if lastMonth[5:] != "12" {
		lastYear--
	}
	for _, e := range topk.Entities {
		months, err := c.listMonths(ctx, e, lastMonth)
		if err != nil {
			return n, err
		}
		if len(months) == 0 {
			continue
		}
		years, err := c.yearsToRollUp(ctx, e, months, lastYear)
		if err != nil {
			return n, err
		}
		if len(years) > 0 {
			for _, y := range years {
				if err := c.s.Query(markYearStarted, string(e), y).WithContext(ctx).Idempotent(true).Exec(); err != nil {
					return n, fmt.Errorf("sitewide_year_rollups %s %d: %w", e, y, err)
				}
			}
			// Listed again after the years' flags: a month whose first
			// rows were written before a flush could see them is here.
			if months, err = c.listMonths(ctx, e, lastMonth); err != nil {
				return n, err
			}
		}
		states, err := rollupStates(ctx, c.s, e, months[0], lastMonth)
		if err != nil {
			return n, err
		}
		for _, m := range months {
			if states[m].done {
				continue
			}
			start := time.Now()
			if err := c.s.Query(markRollupStarted, string(e), m).WithContext(ctx).Idempotent(true).Exec(); err != nil {
				return n, fmt.Errorf("sitewide_month_rollups %s %s: %w", e, m, err)
			}
			items, err := c.rollUpMonth(ctx, sitewideMonth{e, m})
			if err != nil {
				return n, err
			}
			if err := c.s.Query(markRollupDone, string(e), m).WithContext(ctx).Idempotent(true).Exec(); err != nil {
				return n, fmt.Errorf("sitewide_month_rollups %s %s: %w", e, m, err)
			}
			n.Months++
			if log != nil {
				log.Info("sitewide month rolled up", "entity", e, "month", m, "items", items, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		for _, y := range years {
			start := time.Now()
			items, err := c.rollUpYear(ctx, sitewideYear{e, y})
			if err != nil {
				return n, err
			}
			if err := c.s.Query(markYearDone, string(e), y).WithContext(ctx).Idempotent(true).Exec(); err != nil {
				return n, fmt.Errorf("sitewide_year_rollups %s %d: %w", e, y, err)
			}
			n.Years++
			if log != nil {
				log.Info("sitewide year rolled up", "entity", e, "year", y, "items", items, "took", time.Since(start).Round(time.Millisecond))
			}
		}
	}
	return n, nil
}

// listMonths are e's months of sitewide_days up to last.
func (c *SitewideStore) listMonths(ctx context.Context, e topk.Entity, last string) ([]string, error) {
	it := c.s.Query(selectSitewideMonths, string(e), "0000-00", last).WithContext(ctx).Idempotent(true).Iter()
	var all []string
	var m string
	for it.Scan(&m) {
		all = append(all, m)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("sitewide_months %s: %w", e, err)
	}
	return all, nil
}

// yearsToRollUp are the years of months up to last whose roll-up is not
// done.
func (c *SitewideStore) yearsToRollUp(ctx context.Context, e topk.Entity, months []string, last int) ([]int, error) {
	first := yearOf(months[0])
	if first > last {
		return nil, nil
	}
	states, err := yearStates(ctx, c.s, e, first, last)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, m := range months {
		y := yearOf(m)
		if y <= last && !states[y].done && (len(out) == 0 || out[len(out)-1] != y) {
			out = append(out, y)
		}
	}
	return out, nil
}

// rollUpYear sums each partition of y's month rollups per item and
// writes the year rollups; it returns the items.
func (c *SitewideStore) rollUpYear(ctx context.Context, y sitewideYear) (int, error) {
	return c.rollUpShards(ctx, func(shard int) (map[uint64]*rollupSum, error) {
		it := c.s.Query(selectYearShard, string(y.entity), monthsOf(y.year), shard).WithContext(ctx).Idempotent(true).
			PageSize(sitewidePage).Iter()
		return sumItems(it, scanRollupRow)
	}, func(shard int, sums map[uint64]*rollupSum) error {
		return c.writeRollups(ctx, insertYearRollup, "sitewide_year_items", y.entity, y.year, shard, sums)
	})
}

// rollUpMonth sums each partition of m per item and writes the rollups;
// it returns the items.
func (c *SitewideStore) rollUpMonth(ctx context.Context, m sitewideMonth) (int, error) {
	return c.rollUpShards(ctx, func(shard int) (map[uint64]*rollupSum, error) {
		it := c.s.Query(selectMonthShard, string(m.entity), m.month, shard).WithContext(ctx).Idempotent(true).
			PageSize(sitewidePage).Iter()
		return sumItems(it, scanDayRow)
	}, func(shard int, sums map[uint64]*rollupSum) error {
		return c.writeRollups(ctx, insertRollup, "sitewide_month_items", m.entity, m.month, shard, sums)
	})
}

// rollUpShards sums each of the 16 shards per item (sum) and writes its
// items' rollups (write), one of the store's Concurrency slots per shard
// (the flushes' writes share them); it returns the items.
func (c *SitewideStore) rollUpShards(ctx context.Context, sum func(shard int) (map[uint64]*rollupSum, error),
	write func(shard int, sums map[uint64]*rollupSum) error) (int, error) {
	var items atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for shard := range SitewideShards {
		err := c.spawn(gctx, g, func() error {
			sums, err := sum(shard)
			if err != nil {
				return fmt.Errorf("roll-up shard %d: %w", shard, err)
			}
			if err := write(shard, sums); err != nil {
				return err
			}
			items.Add(int64(len(sums)))
			return nil
		})
		if err != nil {
			return int(items.Load()), err
		}
	}
	err := g.Wait()
	return int(items.Load()), err
}

// rollupState is a month's row of sitewide_month_rollups.
type rollupState struct{ started, done bool }

// rollupStates are e's months from first to last with a roll-up state.
func rollupStates(ctx context.Context, s *gocql.Session, e topk.Entity, first, last string) (map[string]rollupState, error) {
	return readStates(ctx, s, selectRollupStates, "sitewide_month_rollups", e, first, last)
}

// yearStates are e's years from first to last with a roll-up state.
func yearStates(ctx context.Context, s *gocql.Session, e topk.Entity, first, last int) (map[int]rollupState, error) {
	return readStates(ctx, s, selectYearStates, "sitewide_year_rollups", e, first, last)
}

// readStates runs stmt (selectRollupStates or selectYearStates): e's
// periods (months or years) from first to last with their states.
func readStates[P comparable](ctx context.Context, s *gocql.Session, stmt, table string, e topk.Entity, first, last P) (map[P]rollupState, error) {
	it := s.Query(stmt, string(e), first, last).WithContext(ctx).Idempotent(true).Iter()
	out := map[P]rollupState{}
	var p P
	var st rollupState
	for it.Scan(&p, &st.started, &st.done) {
		out[p] = st
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", table, e, err)
	}
	return out, nil
}

// readRollups sums one partition of a month's or a year's rollups
// (stmt: selectRollups or selectYearRollups, args its partition) per
// item.
func (r *Reader) readRollups(ctx context.Context, s *gocql.Session, what, stmt string, args ...any) (map[uint64]*sitewideSum, error) {
	it := readOf(ctx, topk.Monthly, s, stmt, args...).PageSize(sitewidePage).Iter()
	out := map[uint64]*sitewideSum{}
	var item, plays, listeners, best int64
	var name, artist string
	for it.Scan(&item, &plays, &listeners, &best, &name, &artist) {
		sum := out[uint64(item)]
		if sum == nil {
			sum = &sitewideSum{}
			out[uint64(item)] = sum
		}
		sum.add(plays, listeners, best, name, artist)
	}
	if err := it.Close(); err != nil {
		return nil, unavailable(fmt.Sprintf("%s %v", what, args), err)
	}
	return out, nil
}
