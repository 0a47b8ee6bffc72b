// The sink's Writer: Rank and coalesce keep the newest state of each
// user-day, Write writes day_items then user_days and waits for the
// rollups those days imply.

package flusher

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
)

// userDay is one dirty user-day and its newest state.
type userDay struct {
	user string
	day  time.Time
	d    *aggregator.Day
}

// Rank implements sink.Coalescer: a user-day's state ranks by its version
// (every change, a listen added or deleted, increments it: a newer state
// has a higher version, a replayed older one a lower; its total may go
// down), so the sink keeps one state per user-day of a batch, as coalesce
// would.
// Records coalesce skips (bad key, tombstone, undecodable) are not ranked:
// they reach it, which counts and logs them. Every record read tells the
// roller that its partition is collecting a batch (see roller).
func (f *Flusher) Rank(m *sarama.ConsumerMessage) (int64, bool) {
	f.roll.ranked(m.Partition)
	if m.Value == nil {
		return 0, false
	}
	if _, _, ok := listen.SplitKey(string(m.Key)); !ok {
		return 0, false
	}
	d, err := aggregator.DecodeDay(m.Value)
	if err != nil {
		return 0, false
	}
	return int64(d.Version), true
}

// coalesce keeps the newest state (highest version; on a tie the later
// record) of each user-day of batch. Records that can never be written are
// counted and logged, and left out.
func (f *Flusher) coalesce(batch []*sarama.ConsumerMessage) []*userDay {
	byKey := map[string]*userDay{}
	var out []*userDay
	skip := func(m *sarama.ConsumerMessage, reason string, err error) {
		skipped.WithLabelValues(reason).Inc()
		f.log.Warn("changelog record skipped", "reason", reason, "partition", m.Partition, "offset", m.Offset,
			"key", string(m.Key), "err", err)
	}
	for _, m := range batch {
		user, day, ok := listen.SplitKey(string(m.Key))
		if !ok {
			skip(m, "bad_key", nil)
			continue
		}
		if m.Value == nil { // the aggregator never deletes
			skip(m, "tombstone", nil)
			continue
		}
		d, err := aggregator.DecodeDay(m.Value)
		if err != nil {
			skip(m, "undecodable", err)
			continue
		}
		// A state with Total 0 and a Version is a day whose listens were
		// all deleted: it is written (its rows with plays 0). Only a state
		// that never changed (the aggregator writes none) has nothing to
		// write.
		if d.Version == 0 {
			skipped.WithLabelValues("empty").Inc()
			continue
		}
		ud := byKey[string(m.Key)]
		if ud == nil {
			ud = &userDay{user: user, day: day}
			byKey[string(m.Key)] = ud
			out = append(out, ud)
		} else {
			coalesced.Inc()
		}
		if ud.d == nil || d.Version >= ud.d.Version {
			ud.d = d
		}
	}
	return out
}

// Write implements sink.Writer: one flush of a partition's changes. It
// writes the day_items of every user-day, then their user_days rows (one
// batch per user), then asks for the rollups those days imply and returns
// once a rollup round that started after these writes has recomputed them
// all: only then may the sink mark the batch.
func (f *Flusher) Write(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	if len(batch) == 0 {
		return nil
	}
	// The roller waits for partitions writing their days before it starts
	// a round (see roller), until they submit or return.
	w := f.roll.begin(batch[0].Partition)
	defer w.end()
	days := f.coalesce(batch)
	if len(days) == 0 {
		return nil
	}
	states := make([]*dayState, len(days))
	var users []string
	byUser := map[string][]topk.DayTotal{}
	for i, ud := range days {
		states[i] = newDayState(ud)
		if _, ok := byUser[ud.user]; !ok {
			users = append(users, ud.user)
		}
		byUser[ud.user] = append(byUser[ud.user], topk.DayTotal{Day: ud.day, Plays: states[i].plays, Version: states[i].version})
	}
	if err := f.each(ctx, len(states), func(ctx context.Context, i int) error {
		st := states[i]
		if err := f.store.WriteItems(ctx, topk.DayPeriod(st.day), st.user, st.rows, st.version); err != nil {
			return fmt.Errorf("day_items %s %s: %w", st.user, st.day.Format(listen.DayLayout), err)
		}
		rowsWritten.WithLabelValues("day_items").Add(float64(len(st.rows)))
		return nil
	}); err != nil {
		return err
	}
	// user_days after day_items: a reader that sees a day's version in
	// user_days finds at least that state in day_items.
	if err := f.each(ctx, len(users), func(ctx context.Context, i int) error {
		if err := f.store.WriteUserDays(ctx, users[i], byUser[users[i]]); err != nil {
			return fmt.Errorf("user_days %s: %w", users[i], err)
		}
		rowsWritten.WithLabelValues("user_days").Add(float64(len(byUser[users[i]])))
		return nil
	}); err != nil {
		return err
	}
	daysWritten.Add(float64(len(states)))
	for _, st := range states {
		f.cache.put(dayKey(st.user, st.day), st.version, st.rows)
	}
	if err := w.submit(ctx, states).wait(ctx); err != nil {
		return err
	}
	changed := map[string][]time.Time{}
	for _, st := range states {
		changed[st.user] = append(changed[st.user], st.day)
	}
	return f.cfg.Stored.Publish(ctx, changed)
}

// newDayState turns a user-day's state into its day_items rows, in write
// order (see inWriteOrder). Items with no plays left (their listens were
// deleted) are rows too, with plays 0: they overwrite the item's earlier
// value, and readers leave them out.
func newDayState(ud *userDay) *dayState {
	st := &dayState{user: ud.user, day: ud.day, version: int64(ud.d.Version), plays: int64(ud.d.Total)}
	var rows []topk.EntityItem
	for _, e := range writeOrder {
		items := ud.d.Items(e)
		for i := range items {
			rows = append(rows, topk.EntityItem{Entity: e, Item: items[i].Topk(ud.day)})
		}
	}
	st.rows = inWriteOrder(rows)
	return st
}

// each runs fn for 0..n-1, Concurrency at a time, and returns the first
// error (the rest are then not run). Concurrency workers take the indexes
// in turn: one goroutine per index grew a fresh stack for each CQL request
// (3.5% of the flusher's CPU catching up).
func (f *Flusher) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range min(f.cfg.Concurrency, n) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := fn(gctx, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// writeOrder is the order of the entities' rows with plays when they take
// several batches: tracks last, because readers take the sum of track
// plays as the total (see the package doc).
var writeOrder = []topk.Entity{topk.Artists, topk.Albums, topk.Tracks}

// inWriteOrder puts rows (in writeOrder) in the order they are written in
// when they take several batches: the rows with plays 0 first, then the
// others in writeOrder, so the last batch holds tracks with plays whenever
// there are plays at all. A reader that finds every track with plays
// written (their sum is the total) has then seen every other row too,
// the rows with plays 0 included (see the package doc). rows is reordered
// in place (stably) and returned.
func inWriteOrder(rows []topk.EntityItem) []topk.EntityItem {
	slices.SortStableFunc(rows, func(a, b topk.EntityItem) int {
		return cmp.Compare(min(a.Plays, 1), min(b.Plays, 1))
	})
	return rows
}
