package flusher

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
)

// dayState is a user-day's state as rows, with its total.
type dayState struct {
	user  string
	day   time.Time
	total int64
	rows  []row
}

type userYear struct {
	user string
	year int
}

// roller recomputes rollups for all the partitions one flusher instance
// claims, in rounds ("group commit"): a Write that wrote its days submits
// them and waits for the next round; a round starts when the previous one
// ends and takes every submission made meanwhile, so the batches of many
// partitions that touch the same (user, year) within a round share one
// recompute. A round's reads start after every submission it serves was
// made, hence after the day writes those submissions follow.
type roller struct {
	f *Flusher

	mu      sync.Mutex
	ctx     context.Context // Run's; Background before Run
	next    *round          // collecting submissions
	running bool
	wg      sync.WaitGroup
}

// round is the rollup work of the submissions it took.
type round struct {
	groups map[userYear]*group
	order  []*group
	done   chan struct{} // closed when every group has its err set
}

// group is one (user, year) of a round: the months its submissions touched
// and the newest state of each day they wrote.
type group struct {
	uy     userYear
	months map[int]bool        // 1..12
	mem    map[int64]*dayState // by unixDay
	err    error
}

// ticket is a submission: the groups it needs.
type ticket struct {
	r      *round
	groups []*group
}

func (r *roller) setContext(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
}

// submit registers the rollups that states (just written) imply.
func (r *roller) submit(states []*dayState) *ticket {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = &round{groups: map[userYear]*group{}, done: make(chan struct{})}
	}
	rd := r.next
	t := &ticket{r: rd}
	seen := map[*group]bool{}
	for _, st := range states {
		uy := userYear{st.user, st.day.Year()}
		g := rd.groups[uy]
		if g == nil {
			g = &group{uy: uy, months: map[int]bool{}, mem: map[int64]*dayState{}}
			rd.groups[uy] = g
			rd.order = append(rd.order, g)
		}
		g.months[int(st.day.Month())] = true
		if m := g.mem[unixDay(st.day)]; m == nil || st.total > m.total {
			g.mem[unixDay(st.day)] = st
		}
		if !seen[g] {
			seen[g] = true
			t.groups = append(t.groups, g)
		}
	}
	requests.Inc()
	if !r.running {
		r.running = true
		ctx := r.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		r.wg.Add(1)
		go r.loop(ctx)
	}
	return t
}

// loop runs rounds while there are submissions.
func (r *roller) loop(ctx context.Context) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		rd := r.next
		r.next = nil
		if rd == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.f.runRound(ctx, rd)
		close(rd.done)
	}
}

// wait returns once the round has recomputed every rollup the submission
// needs (nil), or one of them failed, or ctx ended.
func (t *ticket) wait(ctx context.Context) error {
	select {
	case <-t.r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, g := range t.groups {
		if g.err != nil {
			return g.err
		}
	}
	return nil
}

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
			g.err = fmt.Errorf("rollups of %s %d not recomputed: %w", g.uy.user, g.uy.year, err)
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

// recompute rewrites the month rollups of g's months, then the year rollup
// of g's year:
//
//  1. read the user's user_days rows of the year (a snapshot taken after
//     the writes of every day the group's submissions wrote);
//  2. for each month touched, sum the state of each day the snapshot lists,
//     whose total must be the snapshot's plays: taken from the submitted
//     states or the cache when one has exactly that total, else read from
//     day_items; write month_items USING TIMESTAMP the sum's total;
//  3. read user_days of the year again (after step 2's writes) and sum the
//     month rollups: a month from the cache when a rollup this instance
//     computed has exactly the plays the snapshot gives the month, else
//     read from month_items; write year_items USING TIMESTAMP the total.
func (f *Flusher) recompute(ctx context.Context, g *group) error {
	user, year := g.uy.user, g.uy.year
	first := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(1, 0, -1)
	snap, err := f.store.userDays(ctx, user, first, last)
	if err != nil {
		return fmt.Errorf("rollups %s %d: read user_days: %w", user, year, err)
	}
	plays := make(map[int64]int64, len(snap))
	for _, d := range snap {
		plays[unixDay(d.day)] = d.plays
	}
	for day, st := range g.mem {
		if p, ok := plays[day]; !ok || p < st.total {
			return fmt.Errorf("rollups %s %d: user_days shows %d plays on %s after %d were written", user, year, p,
				st.day.Format(listen.DayLayout), st.total)
		}
	}
	months := make([]int, 0, len(g.months))
	for m := range g.months {
		months = append(months, m)
	}
	sort.Ints(months)
	for _, m := range months {
		if err := f.rollupMonth(ctx, g, snap, m); err != nil {
			return err
		}
	}
	return f.rollupYear(ctx, user, year)
}

// rollupMonth recomputes month_items of (g's user, year, m) from the days
// snap lists in that month.
func (f *Flusher) rollupMonth(ctx context.Context, g *group, snap []dayTotal, m int) error {
	user := g.uy.user
	month := g.uy.year*100 + m
	var days []dayTotal
	for _, d := range snap {
		if int(d.day.Month()) == m {
			days = append(days, d)
		}
	}
	parts := make([][]row, len(days))
	var miss []int
	for i, d := range days {
		if st := g.mem[unixDay(d.day)]; st != nil && st.total == d.plays {
			parts[i] = st.rows
			inputs.WithLabelValues("day", "batch").Inc()
			continue
		}
		if rows, ok := f.cache.get(dayKey(user, d.day), d.plays); ok {
			parts[i] = rows
			inputs.WithLabelValues("day", "cache").Inc()
			continue
		}
		miss = append(miss, i)
	}
	if err := f.each(ctx, len(miss), func(ctx context.Context, k int) error {
		i := miss[k]
		rows, err := f.store.items(ctx, dayItems, user, days[i].day)
		if err != nil {
			return err
		}
		inputs.WithLabelValues("day", "read").Inc()
		parts[i] = rows
		// Remember what was read only when it is certainly one whole state:
		// its plays are those user_days gave (user_days is written after
		// day_items), and it has fewer rows than a batch takes, so no state
		// written in several batches was seen half-way.
		if len(rows) < f.cfg.MaxRowsPerCQLBatch && trackPlays(rows) == days[i].plays {
			f.cache.put(dayKey(user, days[i].day), days[i].plays, rows)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("month %s %d: read day_items: %w", user, month, err)
	}
	r := newRollup()
	for _, rows := range parts { // oldest day first
		for _, x := range rows {
			r.add(x)
		}
	}
	rows, total := r.result()
	if total == 0 {
		return fmt.Errorf("month %s %d: no day values read back after writing them", user, month)
	}
	if err := f.store.writeItems(ctx, monthItems, user, month, rows, total); err != nil {
		return fmt.Errorf("month_items %s %d: %w", user, month, err)
	}
	f.cache.put(monthKey(user, month), total, rows)
	rowsWritten.WithLabelValues("month_items").Add(float64(len(rows)))
	rollupsWritten.WithLabelValues("month").Inc()
	return nil
}

// rollupYear recomputes year_items of (user, year) from the month rollups.
func (f *Flusher) rollupYear(ctx context.Context, user string, year int) error {
	first := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	snap, err := f.store.userDays(ctx, user, first, first.AddDate(1, 0, -1))
	if err != nil {
		return fmt.Errorf("year %s %d: read user_days: %w", user, year, err)
	}
	var months []int // yyyymm, ascending
	var sums []int64 // plays user_days gives each
	for _, d := range snap {
		m := d.day.Year()*100 + int(d.day.Month())
		if len(months) == 0 || months[len(months)-1] != m {
			months = append(months, m)
			sums = append(sums, 0)
		}
		sums[len(sums)-1] += d.plays
	}
	parts := make([][]row, len(months))
	var miss []int
	for i, m := range months {
		if rows, ok := f.cache.get(monthKey(user, m), sums[i]); ok {
			parts[i] = rows
			inputs.WithLabelValues("month", "cache").Inc()
			continue
		}
		miss = append(miss, i)
	}
	if err := f.each(ctx, len(miss), func(ctx context.Context, k int) error {
		i := miss[k]
		rows, err := f.store.items(ctx, monthItems, user, months[i])
		inputs.WithLabelValues("month", "read").Inc()
		parts[i] = rows
		return err
	}); err != nil {
		return fmt.Errorf("year %s %d: read month_items: %w", user, year, err)
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
	if err := f.store.writeItems(ctx, yearItems, user, year, rows, total); err != nil {
		return fmt.Errorf("year_items %s %d: %w", user, year, err)
	}
	rowsWritten.WithLabelValues("year_items").Add(float64(len(rows)))
	rollupsWritten.WithLabelValues("year").Inc()
	return nil
}

// unixDay numbers a UTC day (days since 1970-01-01): a map key that does
// not depend on how a time.Time was made.
func unixDay(day time.Time) int64 { return day.Unix() / 86400 }

// trackPlays is the total of a period's rows: every counted play has
// exactly one track.
func trackPlays(rows []row) int64 {
	var n int64
	for _, r := range rows {
		if r.entity == aggregator.Tracks {
			n += r.plays
		}
	}
	return n
}

// rollup sums rows of several periods given oldest first: plays add up,
// the display name is the one of the latest period having the item.
type rollup struct {
	rows  map[itemKey]*row
	order []itemKey
}

type itemKey struct {
	entity aggregator.Entity
	item   int64
}

func newRollup() *rollup { return &rollup{rows: map[itemKey]*row{}} }

func (r *rollup) add(x row) {
	k := itemKey{x.entity, x.item}
	acc := r.rows[k]
	if acc == nil {
		acc = &row{entity: x.entity, item: x.item}
		r.rows[k] = acc
		r.order = append(r.order, k)
	}
	acc.plays += x.plays
	acc.name, acc.artist = x.name, x.artist
}

// result returns the rows in write order and the total (the sum of track
// plays: every counted play has exactly one track).
func (r *rollup) result() (rows []row, total int64) {
	for _, e := range writeOrder {
		for _, k := range r.order {
			if x := r.rows[k]; x.entity == e {
				rows = append(rows, *x)
				if e == aggregator.Tracks {
					total += x.plays
				}
			}
		}
	}
	return rows, total
}
