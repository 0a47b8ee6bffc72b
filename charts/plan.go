package charts

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/views"
)

// split is where the days of a range come from.
type split struct {
	from, to time.Time // clamped; empty when !any
	any      bool      // the clamped range has days
	// Days before viewFrom come from Cassandra, the others from the view
	// (viewFrom is after every day when the view cannot answer).
	viewFrom time.Time
	viewDays []views.Day // the user's view days in [max(from, viewFrom), to]
	// recent is every view day of the user (the display names' part of
	// the view, names.go), today the day the range "all" ends.
	recent []views.Day
	today  time.Time
	// first is the user's first day (ranges "all"; existence), when known.
	first    time.Time
	hasFirst bool
}

func (s *split) cass() (time.Time, time.Time, bool) {
	if !s.any || !s.from.Before(s.viewFrom) {
		return time.Time{}, time.Time{}, false
	}
	to := s.to
	if !to.Before(s.viewFrom) {
		to = s.viewFrom.AddDate(0, 0, -1)
	}
	return s.from, to, true
}

func (s *split) view() bool { return s.any && !s.to.Before(s.viewFrom) }

func (s *split) source() string {
	_, _, c := s.cass()
	switch {
	case c && s.view():
		return SourceMixed
	case s.view():
		return SourceView
	}
	return SourceCassandra
}

// plan resolves a range for a user: "all" from the first day, clamped
// to the days that can hold listens, and split between the view (days it
// holds, when recovered) and Cassandra (the others). It may change r
// (the first day of "all").
func (s *Service) plan(ctx context.Context, user string, r *resolved, now time.Time) (*split, error) {
	today := Midnight(now)
	sp := &split{viewFrom: Earliest.AddDate(10000, 0, 0), today: today}
	var recent []views.Day
	if v := s.cfg.View; v != nil && v.Recovered() {
		vf := v.FirstDay(now)
		days, err := v.Range(user, vf, today.AddDate(0, 0, 1))
		if err != nil {
			s.log.Warn("view read failed: answering from Cassandra", "user", user, "err", err)
		} else {
			sp.viewFrom, recent = vf, days
			sp.recent = days
		}
	}
	if r.All {
		first, ok, err := s.firstDay(ctx, user)
		if err != nil {
			return nil, s.storeError(err, "user", user)
		}
		if len(recent) > 0 && (!ok || recent[0].Date.Before(first)) {
			first, ok = recent[0].Date, true
		}
		if !ok {
			return nil, noListens(user)
		}
		sp.first, sp.hasFirst = first, true
		r.From = first
		if r.To.Before(first) { // listens only ahead of today (played_at up to 10 min ahead)
			r.To = first
		}
	}
	sp.from, sp.to, sp.any = clamp(r.From, r.To, now)
	if sp.view() {
		for _, d := range recent {
			if !d.Date.Before(sp.from) && !d.Date.After(sp.to) {
				sp.viewDays = append(sp.viewDays, d)
			}
		}
	}
	if len(recent) > 0 && !sp.hasFirst {
		sp.first, sp.hasFirst = recent[0].Date, true // a lower bound is enough to know the user exists
	}
	return sp, nil
}

// firstDay is the user's first day in Cassandra (cached).
func (s *Service) firstDay(ctx context.Context, user string) (time.Time, bool, error) {
	d, ok, _, err := s.firstDayAsOf(ctx, user)
	return d, ok, err
}

// firstDayAsOf is firstDay and when Cassandra was read for it. Only a
// first day found is cached: a user Cassandra does not know yet may be
// flushed the next second, and a cached "none" would hide every older
// day of theirs for the TTL (asking again is one single-row read).
func (s *Service) firstDayAsOf(ctx context.Context, user string) (time.Time, bool, time.Time, error) {
	type fd struct {
		Day time.Time `json:"day"`
		OK  bool      `json:"ok"`
	}
	c := jsonCodec[fd]()
	c.keep = func(v fd) bool { return v.OK }
	v, asOf, err := fetch(ctx, s.cache, "first:"+s.userKey(user), c, func(ctx context.Context) (fd, error) {
		d, ok, err := s.cfg.Store.FirstDay(ctx, user)
		return fd{d, ok}, err
	})
	return v.Day, v.OK, asOf, err
}

// exists reports whether the user has listens at all, for a not found on
// an empty answer. Unknown (Cassandra down, the view holds nothing of the
// user) counts as existing: an empty chart is a true answer for a real
// user, a not found would not be.
func (s *Service) exists(ctx context.Context, user string, sp *split) bool {
	if sp.hasFirst {
		return true
	}
	_, ok, err := s.firstDay(ctx, user)
	return ok || err != nil
}

// fromFirst narrows the Cassandra part [from, to] of a range to start no
// earlier than the user's first day in Cassandra (cached), so that every
// range reaching before it reads, and caches, the same days. ok false:
// Cassandra holds no day of the user in it. asOf is when the first day
// was read.
func (s *Service) fromFirst(ctx context.Context, user string, from, to time.Time) (time.Time, time.Time, bool, time.Time, error) {
	first, ok, asOf, err := s.firstDayAsOf(ctx, user)
	if err != nil || !ok {
		return from, to, false, asOf, err
	}
	if from.Before(first) {
		from = first
	}
	return from, to, !to.Before(from), asOf, nil
}

// tally is the Cassandra part of a chart: the entity's items of the user
// in [from, to], cached under a canonical key: the partitions the range
// reads (canonicalPlan), not the dates asked. Ranges that differ only in
// days before the user's first day or in days without plays, and the
// partial months whose every day with plays they hold, share one entry;
// the tally holds every item, so k and offset never enter the key. asOf
// is the oldest of the reads the answer rests on; periods are the
// partitions (another entity's tally of the same days reads them again).
func (s *Service) tally(ctx context.Context, user string, e topk.Entity, from, to time.Time) (t *tally, periods []topk.Period, asOf time.Time, err error) {
	periods, asOf, err = s.canonicalPlan(ctx, user, from, to)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	t, tallyAsOf, err := s.periodsTally(ctx, user, e, periods)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	return t, periods, oldest(asOf, tallyAsOf), nil
}

// periodsTally is the entity's items of the user in periods, summed,
// through the cache (asOf zero when there are none: nothing was read).
func (s *Service) periodsTally(ctx context.Context, user string, e topk.Entity, periods []topk.Period) (*tally, time.Time, error) {
	if len(periods) == 0 {
		return newAccumulator(0).tally(), time.Time{}, nil
	}
	return fetch(ctx, s.cache, tallyKey(e, periods, s.userKey(user)), tallyCodec, func(ctx context.Context) (*tally, error) {
		return s.readTally(ctx, user, e, periods)
	})
}

// oldest is the earlier of a and b; a zero b (nothing read) is ignored.
func oldest(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// canonicalPlan is the partitions of [from, to] that hold the user's
// plays: the range narrowed to the user's first day, then Periods with
// the partial months' user_days read through the cache (the same entries
// as /activity's over a whole month). asOf is the oldest of those reads.
func (s *Service) canonicalPlan(ctx context.Context, user string, from, to time.Time) ([]topk.Period, time.Time, error) {
	from, to, ok, asOf, err := s.fromFirst(ctx, user, from, to)
	if err != nil || !ok {
		return nil, asOf, err
	}
	days := &cachedDays{s: s, asOf: asOf}
	periods, err := Periods(ctx, days, user, from, to)
	return periods, days.asOf, err
}

// cachedDays reads user_days through the cache for Periods and keeps the
// oldest as_of of what it read.
type cachedDays struct {
	s    *Service
	asOf time.Time
}

func (c *cachedDays) UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error) {
	days, asOf, err := c.s.userDays(ctx, user, from, to)
	if err == nil {
		c.asOf = oldest(c.asOf, asOf)
	}
	return days, err
}

// tallyKey is the cache key of a tally: the entity, the partitions
// (hashed: "all" over years is dozens of them) and the user.
func tallyKey(e topk.Entity, periods []topk.Period, user string) string {
	h := sha256.New()
	for _, p := range periods {
		h.Write([]byte(p.String()))
		h.Write([]byte{','})
	}
	return "items:" + string(e) + ":" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16]) + ":" + user
}

// partKey is the local cache key of one partition's items.
func partKey(e topk.Entity, p topk.Period, user string) string {
	return "part:" + string(e) + ":" + p.String() + ":" + user
}

// readTally reads the items of periods and sums them. Partitions read
// within the cache's TTL come from this process's memory (the answers'
// local tier, under "part:" keys): ranges that differ in their days
// share most of their years and months, and a tally is cached only whole,
// so without this every new from/to read a heavy user's years again
// (make bench-api's attacker: each of its answers read ~80k rows of the
// same few partitions, and Cassandra's work on the two cores it shares
// with the api slowed the view-served answers). Every partition is
// admitted (Cost.Admit); only those read from Cassandra are counted.
func (s *Service) readTally(ctx context.Context, user string, e topk.Entity, periods []topk.Period) (*tally, error) {
	results := make([][]topk.Item, len(periods))
	missing := make([]int, 0, len(periods))
	for i, p := range periods {
		if items, ok := s.cache.part(partKey(e, p, s.userKey(user))); ok {
			results[i] = items
		} else {
			missing = append(missing, i)
		}
	}
	// Every partition is paid for, read or kept: merging a heavy user's
	// years costs this process as much as reading them costs Cassandra
	// (bench-api: admitting only the reads let one attacker get 71 answers
	// in 10 s instead of ~15, and the merges slowed the view's answers).
	if err := admit(ctx, len(periods)); err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, i := range missing {
		g.Go(func() error {
			items, err := s.cfg.Store.Items(gctx, periods[i], user, e)
			results[i] = items
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, i := range missing {
		s.cache.putPart(partKey(e, periods[i], s.userKey(user)), results[i])
	}
	n := 0
	for _, r := range results {
		n += len(r)
	}
	acc := newAccumulator(n / 2)
	for _, r := range results {
		for i := range r {
			acc.add(&r[i])
		}
	}
	return acc.tally(), nil
}

// DaysReader reads a user's days with plays (Store does; the service
// reads them through its cache).
type DaysReader interface {
	// UserDays lists the user's days with plays in [from, to], oldest first.
	UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error)
}

// Periods is the Cassandra partition planner: it covers [from, to] with
// whole years (year_items), whole months (month_items) and the days of
// the at most two partial months (day_items) — or a partial month's
// rollup when the month has no plays outside the range (the current
// month, the first month of "all") — in time order. It reads the
// partial months' user_days.
func Periods(ctx context.Context, st DaysReader, user string, from, to time.Time) ([]topk.Period, error) {
	var out []topk.Period
	for d := from; !d.After(to); {
		if y := topk.YearPeriod(d); y.Start.Equal(d) && !y.End().After(to) {
			out = append(out, y)
			d = d.AddDate(1, 0, 0)
			continue
		}
		m := topk.MonthPeriod(d)
		if m.Start.Equal(d) && !m.End().After(to) {
			out = append(out, m)
			d = d.AddDate(0, 1, 0)
			continue
		}
		end := m.End()
		if end.After(to) {
			end = to
		}
		days, err := st.UserDays(ctx, user, m.Start, m.End())
		if err != nil {
			return nil, err
		}
		inside := true
		var mine []topk.Period
		for _, x := range days {
			if x.Day.Before(d) || x.Day.After(end) {
				inside = false
			} else if x.Plays > 0 {
				mine = append(mine, topk.DayPeriod(x.Day))
			}
		}
		switch {
		case len(mine) == 0:
		case inside:
			out = append(out, m)
		default:
			out = append(out, mine...)
		}
		d = end.AddDate(0, 0, 1)
	}
	return out, nil
}

// jsonCodec caches small answers as JSON.
func jsonCodec[T any]() codec[T] {
	return codec[T]{
		encode: func(v T) []byte { b, _ := json.Marshal(v); return b },
		decode: func(b []byte) (T, error) {
			var v T
			err := json.Unmarshal(b, &v)
			return v, err
		},
		size: func(T) int64 { return -1 }, // from the encoding's length
	}
}
