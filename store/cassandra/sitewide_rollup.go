// Sitewide month rollups (schemas/cassandra/007_sitewide_rollups.cql):
// the flusher's recompute of the items it wrote (RollupTouched), the
// roll-up of whole months once they leave the view's window (RollUp), and
// the reads of a month's rollups (Reader.SitewideRange).

package cassandra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
)

// rollupSum is an item's month summed from its day rows: the sums, the
// best row's spelling, and the sum of the rows' write timestamps (the
// rollup's own).
type rollupSum struct {
	sitewideSum
	ts int64
}

// RollupTouched recomputes the month rollup of every (entity, month,
// item) of rows whose month has its roll-up started
// (sitewide_month_rollups), from the item's day rows of that month, read
// after rows were written: call it after WriteSitewide succeeded. A
// month's started flag is read here, after the rows were written, and
// RollUp sets it before reading any row: so each row is either read by
// the month's roll-up or followed by this recompute. Months of the view's
// window have no roll-up started and cost one read per flush and entity.
// It returns the first error (the caller writes the batch again and calls
// it again: idempotent).
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
	g, gctx := errgroup.WithContext(ctx)
	for _, m := range order {
		started, err := c.rollupStarted(ctx, m)
		if err != nil {
			return err
		}
		if !started {
			continue
		}
		for item := range touched[m] {
			if err := c.spawn(gctx, g, func() error { return c.recompute(gctx, m, item) }); err != nil {
				return err
			}
		}
	}
	return g.Wait()
}

// rollupStarted reports whether m's roll-up has started: read from
// Cassandra until it has (then remembered: the flag is never cleared).
func (c *SitewideStore) rollupStarted(ctx context.Context, m sitewideMonth) (bool, error) {
	if _, ok := c.started.Load(m); ok {
		return true, nil
	}
	var started bool
	err := c.s.Query(selectRollupState, string(m.entity), m.month).WithContext(ctx).Idempotent(true).Scan(&started)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return false, fmt.Errorf("sitewide_month_rollups %s %s: %w", m.entity, m.month, err)
	}
	if started {
		c.started.Store(m, struct{}{})
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

// writeRollup writes one item's rollup USING TIMESTAMP its rows' sum.
func (c *SitewideStore) writeRollup(ctx context.Context, m sitewideMonth, shard int, item uint64, s *rollupSum) error {
	err := c.s.Query(insertRollup, string(m.entity), m.month, shard, int64(item), s.plays, s.listeners, s.best, s.name, s.artist, s.ts).
		WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		return fmt.Errorf("sitewide_month_items %s %s item %x: %w", m.entity, m.month, item, err)
	}
	return nil
}

// RollUp rolls up every month of sitewide_days before the month of
// before (the first day of the api's view window) that is not yet done:
// it sets the month's started flag, sums each of its 16 partitions per
// item (paged), writes each item's rollup USING TIMESTAMP the sum of its
// rows' write timestamps, and sets done. It returns the months it rolled
// up. Two copies rolling up one month at once write the same rollups (or,
// with a row changed in between, the newer wins): idempotent.
func (c *SitewideStore) RollUp(ctx context.Context, before time.Time, log *slog.Logger) (int, error) {
	last := utcDay(before).AddDate(0, -1, 0).Format(monthLayout)
	n := 0
	for _, e := range topk.Entities {
		months, err := c.monthsToRollUp(ctx, e, last)
		if err != nil {
			return n, err
		}
		for _, m := range months {
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
			n++
			if log != nil {
				log.Info("sitewide month rolled up", "entity", e, "month", m, "items", items, "took", time.Since(start).Round(time.Millisecond))
			}
		}
	}
	return n, nil
}

// monthsToRollUp are e's months of sitewide_days up to last whose
// roll-up is not done.
func (c *SitewideStore) monthsToRollUp(ctx context.Context, e topk.Entity, last string) ([]string, error) {
	it := c.s.Query(selectSitewideMonths, string(e), "0000-00", last).WithContext(ctx).Idempotent(true).Iter()
	var all []string
	var m string
	for it.Scan(&m) {
		all = append(all, m)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("sitewide_months %s: %w", e, err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	states, err := rollupStates(ctx, c.s, e, all[0], last)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range all {
		if !states[m].done {
			out = append(out, m)
		}
	}
	return out, nil
}

// rollUpMonth sums each partition of m per item and writes the rollups;
// it returns the items.
func (c *SitewideStore) rollUpMonth(ctx context.Context, m sitewideMonth) (int, error) {
	var mu sync.Mutex
	items := 0
	g, gctx := errgroup.WithContext(ctx)
	for shard := range SitewideShards {
		// One of the store's Concurrency slots per partition read and its
		// rollups written: the flushes' writes share them.
		err := c.spawn(gctx, g, func() error {
			it := c.s.Query(selectMonthShard, string(m.entity), m.month, shard).WithContext(gctx).Idempotent(true).
				PageSize(sitewidePage).Iter()
			sums := map[uint64]*rollupSum{}
			var item, plays, wt int64
			var listeners int
			var name, artist string
			for it.Scan(&item, &plays, &listeners, &name, &artist, &wt) {
				s := sums[uint64(item)]
				if s == nil {
					s = &rollupSum{}
					sums[uint64(item)] = s
				}
				s.add(plays, int64(listeners), plays, name, artist)
				s.ts += wt
			}
			if err := it.Close(); err != nil {
				return fmt.Errorf("sitewide_days %s %s shard %d: %w", m.entity, m.month, shard, err)
			}
			for item, s := range sums {
				if err := c.writeRollup(gctx, m, shard, item, s); err != nil {
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
	it := s.Query(selectRollupStates, string(e), first, last).WithContext(ctx).Idempotent(true).Iter()
	out := map[string]rollupState{}
	var m string
	var st rollupState
	for it.Scan(&m, &st.started, &st.done) {
		out[m] = st
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("sitewide_month_rollups %s: %w", e, err)
	}
	return out, nil
}

// readRollups sums one partition of a month's rollups per item.
func (r *Reader) readRollups(ctx context.Context, s *gocql.Session, p sitewidePartition) (map[uint64]*sitewideSum, error) {
	it := readOf(ctx, topk.Monthly, s, selectRollups, string(p.entity), p.month, p.shard).PageSize(sitewidePage).Iter()
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
		return nil, unavailable(fmt.Sprintf("sitewide_month_items %s %s shard %d", p.entity, p.month, p.shard), err)
	}
	return out, nil
}
