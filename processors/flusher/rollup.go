// The rollup recompute: a round's groups run a few at once, each user's
// month and year rollups summed from one user_days snapshot (inputs from
// the batch, the cache or Cassandra), written unless already written, and
// the rollup sum.

package flusher

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

// runRound recomputes the round's groups, a few at once. A group that
// fails fails the submissions that need it (they retry their whole batch);
// the others still succeed. A second failure ends the round (Cassandra is
// likely down or overloaded: do not wait for every group to time out), and
// groups not finished by then fail with it.
func (f *Flusher) runRound(ctx context.Context, rd *round) {
	rounds.Inc()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
		abort  error
	)
	sem := make(chan struct{}, 2*f.cfg.Concurrency)
	for _, g := range rd.order {
		sem <- struct{}{}
		mu.Lock()
		err := abort
		mu.Unlock()
		if err != nil {
			<-sem
			g.err = fmt.Errorf("rollups of %s not recomputed: %w", g.user, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := f.recompute(ctx, g)
			if err != nil {
				mu.Lock()
				if failed++; failed == 2 {
					abort = err
					cancel()
				}
				mu.Unlock()
			}
			g.err = err
		}()
	}
	wg.Wait()
}

// recompute rewrites, for each year g's submissions touched, the month
// rollups of the months they touched, then the year rollup:
//
//  1. read the user's user_days rows of those years, once (a snapshot
//     taken after the writes of every day the group's submissions wrote);
//  2. for each month touched, sum the state of each day the snapshot lists,
//     whose total must be the snapshot's plays: taken from the submitted
//     states or the cache when one has exactly that total, else read from
//     day_items; write month_items USING TIMESTAMP the sum's total;
//  3. sum the year's months, each a rollup of the days the same snapshot
//     lists (see yearMonth); write year_items USING TIMESTAMP the total.
//
// A rollup whose total is not above one this instance already wrote is not
// written again (see the package doc).
func (f *Flusher) recompute(ctx context.Context, g *group) error {
	user := g.user
	years := make([]int, 0, len(g.years))
	for y := range g.years {
		years = append(years, y)
	}
	sort.Ints(years)
	first := time.Date(years[0], 1, 1, 0, 0, 0, 0, time.UTC)
	last := time.Date(years[len(years)-1], 12, 31, 0, 0, 0, 0, time.UTC)
	snap, err := f.store.UserDays(ctx, user, first, last)
	if err != nil {
		return fmt.Errorf("rollups %s: read user_days: %w", user, err)
	}
	plays := make(map[int64]int64, len(snap))
	for _, d := range snap {
		plays[unixDay(d.Day)] = d.Plays
	}
	for day, st := range g.mem {
		if p, ok := plays[day]; !ok || p < st.total {
			return fmt.Errorf("rollups %s: user_days shows %d plays on %s after %d were written", user, p,
				st.day.Format(listen.DayLayout), st.total)
		}
	}
	for _, y := range years {
		lo := sort.Search(len(snap), func(i int) bool { return snap[i].Day.Year() >= y })
		hi := sort.Search(len(snap), func(i int) bool { return snap[i].Day.Year() > y })
		if err := f.recomputeYear(ctx, g, y, snap[lo:hi]); err != nil {
			return err
		}
	}
	return nil
}

// recomputeYear is recompute's steps 2 and 3 for one year; snap is the
// snapshot's rows of that year, oldest first.
func (f *Flusher) recomputeYear(ctx context.Context, g *group, year int, snap []topk.DayTotal) error {
	months := make([]int, 0, len(g.years[year]))
	for m := range g.years[year] {
		months = append(months, m)
	}
	sort.Ints(months)
	done := make(map[int][]topk.EntityItem, len(months))
	for _, m := range months {
		month := year*100 + m
		rows, err := f.rollupMonth(ctx, g, monthDays(snap, month), month)
		if err != nil {
			return err
		}
		done[month] = rows
	}
	return f.rollupYear(ctx, g, year, snap, done)
}

// monthDays is the part of snap (oldest first) in month (yyyymm).
func monthDays(snap []topk.DayTotal, month int) []topk.DayTotal {
	key := func(d topk.DayTotal) int { return d.Day.Year()*100 + int(d.Day.Month()) }
	lo := sort.Search(len(snap), func(i int) bool { return key(snap[i]) >= month })
	hi := sort.Search(len(snap), func(i int) bool { return key(snap[i]) > month })
	return snap[lo:hi]
}

// rollupMonth recomputes month_items of (g's user, month) from days (the
// snapshot's days of that month), writes it unless this instance already
// wrote one with at least its total, and returns its rows.
func (f *Flusher) rollupMonth(ctx context.Context, g *group, days []topk.DayTotal, month int) ([]topk.EntityItem, error) {
	user := g.user
	rows, total, err := f.monthSum(ctx, g, days)
	if err != nil {
		return nil, fmt.Errorf("month %s %d: read day_items: %w", user, month, err)
	}
	if total == 0 {
		return nil, fmt.Errorf("month %s %d: no day values read back after writing them", user, month)
	}
	f.cache.put(monthKey(user, month), total, rows)
	if err := f.writeRollup(ctx, monthItems, user, month, rows, total); err != nil {
		return nil, err
	}
	return rows, nil
}

// writeRollup writes a month or year rollup with total, unless this
// instance already wrote one of that period with at least that total:
// then it has nothing to add (see the package doc, "Rollups not written
// again").
func (f *Flusher) writeRollup(ctx context.Context, t table, user string, part int, rows []topk.EntityItem, total int64) error {
	level := "month"
	if t == yearItems {
		level = "year"
	}
	wk := writtenKey(t, user, part)
	if w, ok := f.cache.written(wk); ok && w >= total {
		rollupsSkipped.WithLabelValues(level).Inc()
		return nil
	}
	if err := f.store.WriteItems(ctx, t.period(part), user, rows, total); err != nil {
		return fmt.Errorf("%s %s %d: %w", t, user, part, err)
	}
	f.cache.wrote(wk, total)
	rowsWritten.WithLabelValues(t.String()).Add(float64(len(rows)))
	rollupsWritten.WithLabelValues(level).Inc()
	return nil
}

// inMemory reports whether every day of days has its state, with exactly
// the snapshot's plays, among the submitted states or in the cache: the
// month can then be summed without a read.
func (f *Flusher) inMemory(g *group, days []topk.DayTotal) bool {
	for _, d := range days {
		if st := g.mem[unixDay(d.Day)]; st != nil && st.total == d.Plays {
			continue
		}
		if !f.cache.has(dayKey(g.user, d.Day), d.Plays) {
			return false
		}
	}
	return true
}

// monthSum sums the states of days (a month's, as a snapshot lists them):
// each the submitted state or the cached one whose total is exactly the
// snapshot's plays, else day_items as read (that state or a newer one).
func (f *Flusher) monthSum(ctx context.Context, g *group, days []topk.DayTotal) ([]topk.EntityItem, int64, error) {
	user := g.user
	parts := make([][]topk.EntityItem, len(days))
	var miss []int
	for i, d := range days {
		if st := g.mem[unixDay(d.Day)]; st != nil && st.total == d.Plays {
			parts[i] = st.rows
			inputs.WithLabelValues("day", "batch").Inc()
			continue
		}
		if rows, ok := f.cache.get(dayKey(user, d.Day), d.Plays); ok {
			parts[i] = rows
			inputs.WithLabelValues("day", "cache").Inc()
			continue
		}
		miss = append(miss, i)
	}
	if err := f.each(ctx, len(miss), func(ctx context.Context, k int) error {
		i := miss[k]
		rows, ts, err := f.store.Items(ctx, topk.DayPeriod(days[i].Day), user)
		if err != nil {
			return err
		}
		inputs.WithLabelValues("day", "read").Inc()
		parts[i] = rows
		// Remember what was read only when it is certainly one whole state:
		// every row was written with the same total (one total is one
		// state, and a newer state has every item of an older one, so no
		// row of an older state shows), and its tracks sum to it (the
		// batch holding the tracks, the last, landed: so did the others).
		if t, ok := wholeAt(rows, ts); ok {
			f.cache.put(dayKey(user, days[i].Day), t, rows)
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	r := newRollup()
	for _, rows := range parts { // oldest day first
		for _, x := range rows {
			r.add(x)
		}
	}
	rows, total := r.result()
	return rows, total, nil
}

// wholeAt reports whether rows read with write timestamps ts are all of
// one write's total t, and their tracks sum to t.
func wholeAt(rows []topk.EntityItem, ts []int64) (int64, bool) {
	if len(rows) == 0 || len(ts) != len(rows) {
		return 0, false
	}
	t := ts[0]
	for _, x := range ts {
		if x != t {
			return 0, false
		}
	}
	return t, trackPlays(rows) == t
}

// rollupYear recomputes year_items of (g's user, year) from the months
// snap (the year's rows of the group's snapshot) lists. Each month is a
// rollup of the days snap lists in it, taken, cheapest first, from:
//
//   - done: the months this round just recomputed;
//   - the cache, a month rollup whose total is exactly the snapshot's sum
//     of that month's plays;
//   - the states of its days, when the submitted states and the cache hold
//     every one at exactly the snapshot's plays;
//   - month_items as read, when every row was written with that sum as its
//     timestamp (see the package doc: then it is the rollup of days at
//     those totals);
//   - else the states of its days, day_items read where needed.
func (f *Flusher) rollupYear(ctx context.Context, g *group, year int, snap []topk.DayTotal, done map[int][]topk.EntityItem) error {
	user := g.user
	var months []int // yyyymm, ascending
	var sums []int64 // plays the snapshot gives each
	for _, d := range snap {
		m := d.Day.Year()*100 + int(d.Day.Month())
		if len(months) == 0 || months[len(months)-1] != m {
			months = append(months, m)
			sums = append(sums, 0)
		}
		sums[len(sums)-1] += d.Plays
	}
	parts := make([][]topk.EntityItem, len(months))
	var miss []int
	for i, m := range months {
		if rows, ok := done[m]; ok {
			parts[i] = rows
			inputs.WithLabelValues("month", "round").Inc()
			continue
		}
		if rows, ok := f.cache.get(monthKey(user, m), sums[i]); ok {
			parts[i] = rows
			inputs.WithLabelValues("month", "cache").Inc()
			continue
		}
		if days := monthDays(snap, m); f.inMemory(g, days) {
			rows, total, err := f.monthSum(ctx, g, days) // reads only what was evicted meanwhile
			if err != nil {
				return fmt.Errorf("year %s %d: read day_items: %w", user, year, err)
			}
			f.cache.put(monthKey(user, m), total, rows)
			parts[i] = rows
			inputs.WithLabelValues("month", "days").Inc()
			continue
		}
		miss = append(miss, i)
	}
	if err := f.each(ctx, len(miss), func(ctx context.Context, k int) error {
		i := miss[k]
		rows, ts, err := f.store.Items(ctx, monthItems.period(months[i]), user)
		if err != nil {
			return fmt.Errorf("read month_items: %w", err)
		}
		if t, ok := wholeAt(rows, ts); ok && t == sums[i] {
			f.cache.put(monthKey(user, months[i]), t, rows)
			parts[i] = rows
			inputs.WithLabelValues("month", "read").Inc()
			return nil
		}
		// Not (yet) the rollup of the days the snapshot lists: sum them.
		rows, total, err := f.monthSum(ctx, g, monthDays(snap, months[i]))
		if err != nil {
			return fmt.Errorf("read day_items: %w", err)
		}
		f.cache.put(monthKey(user, months[i]), total, rows)
		parts[i] = rows
		inputs.WithLabelValues("month", "days").Inc()
		return nil
	}); err != nil {
		return fmt.Errorf("year %s %d: %w", user, year, err)
	}
	r := newRollup()
	for _, rows := range parts { // oldest month first
		for _, x := range rows {
			r.add(x)
		}
	}
	rows, total := r.result()
	if total == 0 {
		return fmt.Errorf("year %s %d: no month rollups read back after writing them", user, year)
	}
	return f.writeRollup(ctx, yearItems, user, year, rows, total)
}

// unixDay numbers a UTC day (days since 1970-01-01): a map key that does
// not depend on how a time.Time was made.
func unixDay(day time.Time) int64 { return day.Unix() / 86400 }

// trackPlays is the total of a period's rows: every counted play has
// exactly one track.
func trackPlays(rows []topk.EntityItem) int64 {
	var n int64
	for _, r := range rows {
		if r.Entity == topk.Tracks {
			n += r.Plays
		}
	}
	return n
}

// rollup sums rows of several periods (given oldest first): plays and
// spellings add up (topk.Item.Merge), the display name and First are the
// majority spelling's over the sum (the same whatever the order of the
// periods), the artist the first period's having one.
type rollup struct {
	rows  map[itemKey]*topk.EntityItem
	order []itemKey
}

type itemKey struct {
	entity topk.Entity
	key    uint64
}

func newRollup() *rollup { return &rollup{rows: map[itemKey]*topk.EntityItem{}} }

func (r *rollup) add(x topk.EntityItem) {
	k := itemKey{x.Entity, x.Key}
	acc := r.rows[k]
	if acc == nil {
		acc = &topk.EntityItem{Entity: x.Entity}
		r.rows[k] = acc
		r.order = append(r.order, k)
	}
	acc.Merge(&x.Item)
}

// result returns the rows in write order and the total (the sum of track
// plays: every counted play has exactly one track).
func (r *rollup) result() (rows []topk.EntityItem, total int64) {
	for _, e := range writeOrder {
		for _, k := range r.order {
			if x := r.rows[k]; x.Entity == e {
				rows = append(rows, *x)
				if e == topk.Tracks {
					total += x.Plays
				}
			}
		}
	}
	return rows, total
}
