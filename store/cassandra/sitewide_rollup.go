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
	"sync"
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
	selectItemMonth    = `SELECT plays, listeners, name, artist, WRITETIME(plays) FROM sitewide_days ` +
		`WHERE entity = ? AND month = ? AND shard = ? AND item = ?`
	selectMonthShard = `SELECT item, plays, listeners, name, artist, WRITETIME(plays) FROM sitewide_days ` +
		`WHERE entity = ? AND month = ? AND shard = ?`
	insertRollup = `INSERT INTO sitewide_month_items (entity, month, shard, item, plays, listeners, best, name, artist) ` +
		`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	selectRollups = `SELECT item, plays, listeners, best, name, artist FROM sitewide_month_items WHERE entity = ? AND month = ? AND shard = ?`

	selectYearStates = `SELECT year, started, done FROM sitewide_year_rollups WHERE entity = ? AND year >= ? AND year <= ?`
	selectYearState  = `SELECT started FROM sitewide_year_rollups WHERE entity = ? AND year = ?`
	markYearStarted  = `UPDATE sitewide_year_rollups SET started = true WHERE entity = ? AND year = ?`
	markYearDone     = `UPDATE sitewide_year_rollups SET done = true WHERE entity = ? AND year = ?`
	selectItemYear   = `SELECT plays, listeners, best, name, artist, WRITETIME(plays) FROM sitewide_month_items ` +
		`WHERE entity = ? AND month IN ? AND shard = ? AND item = ?`
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

// RollupTouched recomputes the rollups of every (entity, month, item)
// of rows whose month's roll-up has started, or its year's
// (sitewide_month_rollups, sitewide_year_rollups): the month rollup from
// the item's day rows of that month, then, for a year whose roll-up has
// started, the year rollup from the item's month rollups. Call it after
// WriteSitewide succeeded. The flags are read after the writes they
// follow (month: after rows were written; year: again, after the month
// rollups were), and RollUp sets them before reading anything: so each
// row is either read by a roll-up or followed by these recomputes.
// Months of the view's window have no roll-up started and cost a read or
// two per flush and entity. It returns the first error (the caller writes
// the batch again and calls it again: idempotent).
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
			if err := c.spawn(gctx, g, func() error { return c.recompute(gctx, m, item) }); err != nil {
				return err
			}
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
		for item := range years[y] {
			if err := c.spawn(gctx, g, func() error { return c.recomputeYear(gctx, y, item) }); err != nil {
				return err
			}
		}
	}
	return g.Wait()
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

// recompute writes item's rollup of m, summed from its day rows.
func (c *SitewideStore) recompute(ctx context.Context, m sitewideMonth, item uint64) error {
	shard := SitewideShard(item)
	it := c.s.Query(selectItemMonth, string(m.entity), m.month, shard, int64(item)).WithContext(ctx).Idempotent(true).
		PageSize(sitewidePage).Iter()
	var sum rollupSum
	var plays, wt int64
	var listeners int
	var name, artist string
	n := 0
	for it.Scan(&plays, &listeners, &name, &artist, &wt) {
		sum.add(plays, int64(listeners), plays, name, artist)
		sum.ts += wt
		n++
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("sitewide_days %s %s item %x: %w", m.entity, m.month, item, err)
	}
	if n == 0 {
		return nil
	}
	return c.writeRollup(ctx, m, shard, item, &sum)
}

// writeRollup writes one item's month rollup USING TIMESTAMP its rows'
// sum.
func (c *SitewideStore) writeRollup(ctx context.Context, m sitewideMonth, shard int, item uint64, s *rollupSum) error {
	return c.writeItemRollup(ctx, insertRollup, "sitewide_month_items", m.entity, m.month, shard, item, s)
}

// writeYearRollup writes one item's year rollup USING TIMESTAMP its
// months' sum.
func (c *SitewideStore) writeYearRollup(ctx context.Context, y sitewideYear, shard int, item uint64, s *rollupSum) error {
	return c.writeItemRollup(ctx, insertYearRollup, "sitewide_year_items", y.entity, y.year, shard, item, s)
}

// writeItemRollup runs stmt (insertRollup or insertYearRollup) for one
// item of e's period (a month or a year).
func (c *SitewideStore) writeItemRollup(ctx context.Context, stmt, table string, e topk.Entity, period any, shard int, item uint64, s *rollupSum) error {
	err := c.s.Query(stmt, string(e), period, shard, int64(item), s.plays, s.listeners, s.best, s.name, s.artist, s.ts).
		WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		return fmt.Errorf("%s %s %v item %x: %w", table, e, period, item, err)
	}
	return nil
}

// recomputeYear writes item's rollup of y, summed from its month
// rollups.
func (c *SitewideStore) recomputeYear(ctx context.Context, y sitewideYear, item uint64) error {
	shard := SitewideShard(item)
	it := c.s.Query(selectItemYear, string(y.entity), monthsOf(y.year), shard, int64(item)).WithContext(ctx).Idempotent(true).Iter()
	var sum rollupSum
	n := 0
	for sum.scan(it) {
		n++
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("sitewide_month_items %s %d item %x: %w", y.entity, y.year, item, err)
	}
	if n == 0 {
		return nil
	}
	return c.writeYearRollup(ctx, y, shard, item, &sum)
}

// scan adds the next rollup row of it (plays, listeners, best, name,
// artist, write time) to s; false at the end.
func (s *rollupSum) scan(it *gocql.Iter) bool {
	var plays, listeners, best, wt int64
	var name, artist string
	if !it.Scan(&plays, &listeners, &best, &name, &artist, &wt) {
		return false
	}
	s.add(plays, listeners, best, name, artist)
	s.ts += wt
	return true
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
	return c.rollUpShards(ctx, func(shard int) *gocql.Iter {
		return c.s.Query(selectYearShard, string(y.entity), monthsOf(y.year), shard).WithContext(ctx).Idempotent(true).
			PageSize(sitewidePage).Iter()
	}, func(it *gocql.Iter) (uint64, *rollupSum, bool) {
		var item int64
		var s rollupSum
		var plays, listeners, best, wt int64
		var name, artist string
		if !it.Scan(&item, &plays, &listeners, &best, &name, &artist, &wt) {
			return 0, nil, false
		}
		s.add(plays, listeners, best, name, artist)
		s.ts = wt
		return uint64(item), &s, true
	}, func(ctx context.Context, shard int, item uint64, s *rollupSum) error {
		return c.writeYearRollup(ctx, y, shard, item, s)
	})
}

// rollUpMonth sums each partition of m per item and writes the rollups;
// it returns the items.
func (c *SitewideStore) rollUpMonth(ctx context.Context, m sitewideMonth) (int, error) {
	return c.rollUpShards(ctx, func(shard int) *gocql.Iter {
		return c.s.Query(selectMonthShard, string(m.entity), m.month, shard).WithContext(ctx).Idempotent(true).
			PageSize(sitewidePage).Iter()
	}, func(it *gocql.Iter) (uint64, *rollupSum, bool) {
		var item, plays, wt int64
		var listeners int
		var name, artist string
		var s rollupSum
		if !it.Scan(&item, &plays, &listeners, &name, &artist, &wt) {
			return 0, nil, false
		}
		s.add(plays, int64(listeners), plays, name, artist)
		s.ts = wt
		return uint64(item), &s, true
	}, func(ctx context.Context, shard int, item uint64, s *rollupSum) error {
		return c.writeRollup(ctx, m, shard, item, s)
	})
}

// rollUpShards reads each of the 16 shards (query), sums its rows (next:
// one row as a sum) per item and writes each item's sum (write), one of
// the store's Concurrency slots per shard (the flushes' writes share
// them); it returns the items.
func (c *SitewideStore) rollUpShards(ctx context.Context, query func(shard int) *gocql.Iter,
	next func(*gocql.Iter) (uint64, *rollupSum, bool), write func(context.Context, int, uint64, *rollupSum) error) (int, error) {
	var mu sync.Mutex
	items := 0
	g, gctx := errgroup.WithContext(ctx)
	for shard := range SitewideShards {
		err := c.spawn(gctx, g, func() error {
			it := query(shard)
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
			if err := it.Close(); err != nil {
				return fmt.Errorf("roll-up shard %d: %w", shard, err)
			}
			for item, s := range sums {
				if err := write(gctx, shard, item, s); err != nil {
					return err
				}
			}
			mu.Lock()
			items += len(sums)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return items, err
		}
	}
	return items, g.Wait()
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
