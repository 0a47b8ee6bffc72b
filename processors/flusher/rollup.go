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
//     taken after the writes of every day the group's submissions wrote),
//     each day's plays and version (WRITETIME);
//  2. for each month touched, sum the state of each day the snapshot lists,
//     whose version must be the snapshot's: taken from the submitted
//     states or the cache when one has exactly that version, else read
//     from day_items; write month_items USING TIMESTAMP the sum of the
//     snapshot's versions of those days;
//  3. sum the year's months, each a rollup of the days the same snapshot
//     lists (see rollupYear); write year_items USING TIMESTAMP the sum of
//     the snapshot's versions of the year's days.
//
// A rollup whose version is not above one this instance already wrote is
// not written again (see the package doc).
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
	versions := make(map[int64]int64, len(snap))
	for _, d := range snap {
		versions[unixDay(d.Day)] = d.Version
	}
	for day, st := range g.mem {
		if v, ok := versions[day]; !ok || v < st.version {
			return fmt.Errorf("rollups %s: user_days shows version %d of %s after version %d was written", user, v,
				st.day.Format(listen.DayLayout), st.version)
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
// wrote one with at least its version, and returns its rows.
func (f *Flusher) rollupMonth(ctx context.Context, g *group, days []topk.DayTotal, month int) ([]topk.EntityItem, error) {
	user := g.user
	rows, err := f.monthSum(ctx, g, days)
	if err != nil {
		return nil, fmt.Errorf("month %s %d: read day_items: %w", user, month, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("month %s %d: no day values read back after writing them", user, month)
	}
	version := sumVersions(days)
	f.cache.put(monthKey(user, month), version, rows)
	if err := f.writeRollup(ctx, monthItems, user, month, rows, version); err != nil {
		return nil, err
	}
	return rows, nil
}

// sumVersions is the version of a rollup of days: the sum of their
// versions (as the snapshot gives them).
func sumVersions(days []topk.DayTotal) int64 {
	var v int64
	for _, d := range days {
		v += d.Version
	}
	return v
}

// writeRollup writes a month or year rollup USING TIMESTAMP version (the
// sum of its days' versions), unless this instance already wrote one of
// that period with at least that version: then it has nothing to add (see
// the package doc).
func (f *Flusher) writeRollup(ctx context.Context, t table, user string, part int, rows []topk.EntityItem, version int64) error {
	level := "month"
	if t == yearItems {
		level = "year"
	}
	wk := writtenKey(t, user, part)
	if w, ok := f.cache.written(wk); ok && w >= version {
		rollupsSkipped.WithLabelValues(level).Inc()
		return nil
	}
	if err := f.store.WriteItems(ctx, t.period(part), user, rows, version); err != nil {
		return fmt.Errorf("%s %s %d: %w", t, user, part, err)
	}
	f.cache.wrote(wk, version)
	rowsWritten.WithLabelValues(t.String()).Add(float64(len(rows)))
	rollupsWritten.WithLabelValues(level).Inc()
	return nil
}

// inMemory reports whether every day of days has its state, at exactly
// the snapshot's version, among the submitted states or in the cache: the
// month can then be summed without a read.
func (f *Flusher) inMemory(g *group, days []topk.DayTotal) bool {
	for _, d := range days {
		if st := g.mem[unixDay(d.Day)]; st != nil && st.version == d.Version {
			continue
		}
		if !f.cache.has(dayKey(g.user, d.Day), d.Version) {
			return false
		}
	}
	return true
}

// monthSum sums the states of days (a month's, as a snapshot lists them):
// each the submitted state or the cached one whose version is exactly the
// snapshot's, else day_items as read (that state or a newer one). The sum
// is the rollup of version sumVersions(days).
func (f *Flusher) monthSum(ctx context.Context, g *group, days []topk.DayTotal) ([]topk.EntityItem, error) {
	user := g.user
	parts := make([][]topk.EntityItem, len(days))
	var miss []int
	for i, d := range days {
		if st := g.mem[unixDay(d.Day)]; st != nil && st.version == d.Version {
			parts[i] = st.rows
			inputs.WithLabelValues("day", "batch").Inc()
			continue
		}
		if rows, ok := f.cache.get(dayKey(user, d.Day), d.Version); ok {
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
		// Remember what was read only when it is certainly the snapshot's
		// state: every row was written with the snapshot's version (one
		// version is one state, and a newer state has every item of an
		// older one, so no row of an older state shows), and its tracks
		// sum to the snapshot's plays (the batch holding the last tracks
		// with plays landed: so did the others).
		if wholeAt(rows, ts, days[i]) {
			f.cache.put(dayKey(user, days[i].Day), days[i].Version, rows)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	r := newRollup()
	for _, rows := range parts { // oldest day first
		for _, x := range rows {
			r.add(x)
		}
	}
	rows, _ := r.result()
	return rows, nil
}

// wholeAt reports whether rows read with write timestamps ts are one whole
// write of version want.Version with want.Plays plays: every row written
// with that version, and their tracks summing to those plays, which must
// be some (the last batch of a write holds tracks with plays, see
// inWriteOrder; a write of rows all with plays 0 could have lost a batch
// unseen).
func wholeAt(rows []topk.EntityItem, ts []int64, want topk.DayTotal) bool {
	if len(rows) == 0 || len(ts) != len(rows) || want.Plays <= 0 {
		return false
	}
	for _, x := range ts {
		if x != want.Version {
			return false
		}
	}
	return trackPlays(rows) == want.Plays
}

// rollupYear recomputes year_items of (g's user, year) from the months
// snap (the year's rows of the group's snapshot) lists. Each month is a
// rollup of the days snap lists in it, taken, cheapest first, from:
//
//   - done: the months this round just recomputed;
//   - the cache, a month rollup whose version is exactly the snapshot's
//     sum of that month's versions;
//   - the states of its days, when the submitted states and the cache hold
//     every one at exactly the snapshot's version;
//   - month_items as read, when every row was written with that sum as its
//     timestamp and its tracks sum to the snapshot's plays of the month
//     (see the package doc: then it is the rollup of days at those
//     versions when that matters);
//   - else the states of its days, day_items read where needed.
//
// The year is written USING TIMESTAMP the sum of the snapshot's versions
// of its days.
func (f *Flusher) rollupYear(ctx context.Context, g *group, year int, snap []topk.DayTotal, done map[int][]topk.EntityItem) error {
	user := g.user
	var months []int         // yyyymm, ascending
	var sums []topk.DayTotal // the plays and the version the snapshot gives each (Day unset)
	for _, d := range snap {
		m := d.Day.Year()*100 + int(d.Day.Month())
		if len(months) == 0 || months[len(months)-1] != m {
			months = append(months, m)
			sums = append(sums, topk.DayTotal{})
		}
		sums[len(sums)-1].Plays += d.Plays
		sums[len(sums)-1].Version += d.Version
	}
	parts := make([][]topk.EntityItem, len(months))
	var miss []int
	for i, m := range months {
		if rows, ok := done[m]; ok {
			parts[i] = rows
			inputs.WithLabelValues("month", "round").Inc()
			continue
		}
		if rows, ok := f.cache.get(monthKey(user, m), sums[i].Version); ok {
			parts[i] = rows
			inputs.WithLabelValues("month", "cache").Inc()
			continue
		}
		if days := monthDays(snap, m); f.inMemory(g, days) {
			rows, err := f.monthSum(ctx, g, days) // reads only what was evicted meanwhile
			if err != nil {
				return fmt.Errorf("year %s %d: read day_items: %w", user, year, err)
			}
			f.cache.put(monthKey(user, m), sums[i].Version, rows)
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
		if wholeAt(rows, ts, sums[i]) {
			f.cache.put(monthKey(user, months[i]), sums[i].Version, rows)
			parts[i] = rows
			inputs.WithLabelValues("month", "read").Inc()
			return nil
		}
		// Not (yet) the rollup of the days the snapshot lists: sum them.
		rows, err = f.monthSum(ctx, g, monthDays(snap, months[i]))
		if err != nil {
			return fmt.Errorf("read day_items: %w", err)
		}
		f.cache.put(monthKey(user, months[i]), sums[i].Version, rows)
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
	rows, _ := r.result()
	if len(rows) == 0 {
		return fmt.Errorf("year %s %d: no month rollups read back after writing them", user, year)
	}
	return f.writeRollup(ctx, yearItems, user, year, rows, sumVersions(snap))
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
// periods), the artist the first period's having one. A row with plays 0
// (an item whose listens were deleted) adds nothing but the item: its
// stale name, First and artist are not merged. An item with plays 0 in
// every period is a row with plays 0 (the first period's row, as a
// placeholder), so the rollup overwrites whatever value it had before:
// a rollup is exactly the sum of its periods.
type rollup struct {
	rows  map[itemKey]*topk.EntityItem
	order []itemKey
	zero  map[itemKey]bool // rows holding only a placeholder (plays 0 so far)
}

type itemKey struct {
	entity topk.Entity
	key    uint64
}

func newRollup() *rollup {
	return &rollup{rows: map[itemKey]*topk.EntityItem{}, zero: map[itemKey]bool{}}
}

func (r *rollup) add(x topk.EntityItem) {
	k := itemKey{x.Entity, x.Key}
	acc := r.rows[k]
	if acc == nil {
		acc = &topk.EntityItem{Entity: x.Entity}
		r.rows[k] = acc
		r.order = append(r.order, k)
		if x.Plays <= 0 {
			acc.Item = topk.Item{Key: x.Key, Name: x.Name, Artist: x.Artist, First: x.First}
			r.zero[k] = true
			return
		}
	}
	if x.Plays <= 0 {
		return
	}
	if r.zero[k] {
		acc.Item = topk.Item{}
		delete(r.zero, k)
	}
	acc.Merge(&x.Item)
}

// result returns the rows in write order (inWriteOrder) and the total
// (the sum of track plays: every counted play has exactly one track).
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
	return inWriteOrder(rows), total
}
