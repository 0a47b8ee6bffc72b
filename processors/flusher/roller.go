// The rollup rounds: the roller, which gathers the submissions of the
// flushes of every claimed partition into rounds and decides when a round
// starts (the partitions expected to submit soon), and the tickets a flush
// waits on.

package flusher

import (
	"context"
	"sync"
	"time"

	"github.com/topk-charts/topk"
)

// dayState is a user-day's state as rows, with its version (the
// aggregator's Day.Version: the write timestamp of its rows) and its total
// plays.
type dayState struct {
	user    string
	day     time.Time
	version int64
	plays   int64
	rows    []topk.EntityItem
}

// roller recomputes rollups for all the partitions one flusher instance
// claims, in rounds ("group commit"): a Write that wrote its days submits
// them and waits for the round that serves them, and a round serves every
// submission made until it starts, so the batches of many partitions that
// touch the same user within a round share one recompute. A round's reads
// start after every submission it serves was made, hence after the day
// writes those submissions follow.
//
// One round per wave of flushes: a user's days are spread over all the
// partitions (the key is user|day), so every round serving some of them
// recomputes the user's months and years again. A round therefore does not
// start as soon as it could (the previous round ended and something was
// submitted): it first waits for the partitions expected to submit soon
// (see expected): those writing their days, those filling a batch (their
// last one was full before its timer), those whose batch timer is about to
// fire, and those a round just released (they start their next batch at
// once when records are waiting). While catching up that is every claimed
// partition: the round then serves all of them, and the partitions,
// released together, stay in step for the next wave. A partition that has
// nothing to write, or trickles (its batches go out on their timer, a
// second apart), is not waited for, so it neither delays the flushes of
// others nor throttles a partition still catching up to one batch per
// flush interval.
//
// The wait is bounded: by linger, or, if longer, by the time the round's
// slowest flush took to write its days. While catching up, a wave's day
// writes take seconds and partitions whose batches coalesced to more days
// finish seconds later; a group of partitions that fell out of step (a
// rebalance, a retried batch) writes its days while the others' round
// runs, and only a wait as long as a wave's day writes brings it back in
// step. Such a wait costs no throughput (Cassandra is busy with the day
// writes waited for) and adds to a flush's write at most the day-write
// time of the slowest flush of its wave (so about doubles it while
// catching up); when flushes are small (live traffic) it is the linger at
// most. The wait only changes
// which submissions share a round, never what a round reads: exactness
// does not depend on it.
type roller struct {
	f *Flusher
	// linger is the longest a round waits for expected partitions, from
	// the moment it could start (Config.RollupLinger), unless its flushes
	// took longer to write their days (see above); 0: no wait.
	linger time.Duration
	// grace is how long a partition a round released is expected to start
	// its next batch, and how soon before a batch's timer fires its
	// partition is expected (a tenth of the linger or of the flush
	// interval, the shorter).
	grace time.Duration
	// interval is the batch timer (FlushInterval: the sink writes a batch
	// at the latest that long after its first record).
	interval time.Duration
	// stale is how long a batch being collected is expected to be written
	// at the latest (twice the interval): past that its partition was
	// likely revoked.
	stale time.Duration
	// wake is signalled (never blocking) when a partition submits or ends
	// a Write: the round waiting may start.
	wake chan struct{}

	mu      sync.Mutex
	next    *round // collecting submissions
	running bool
	parts   map[int32]*partState
	wg      sync.WaitGroup
}

// partState is what the roller knows of a partition's flushes, from the
// records ranked (Rank: a batch is being collected) and the Writes.
type partState struct {
	writing   int       // Writes begun that have neither submitted nor returned
	batchFrom time.Time // non-zero: records ranked since the last Write began, the first then
	released  time.Time // non-zero: a round serving its flush ended then, and it ranked nothing and began no Write since
	// filling: its last batch was written before its timer fired (full:
	// the partition is catching up, its next batch comes soon too), or it
	// has not written one yet.
	filling bool
}

func newRoller(f *Flusher, linger, flushInterval time.Duration) *roller {
	linger = max(linger, 0)
	return &roller{f: f, linger: linger, grace: min(linger, flushInterval) / 10, interval: flushInterval, stale: 2 * flushInterval,
		wake: make(chan struct{}, 1), parts: map[int32]*partState{}}
}

// round is the rollup work of the submissions it took.
type round struct {
	// ctx is the context of the flush whose submission started the round
	// (the sink's session: it ends when the partitions are revoked or the
	// sink stops); the round gathers and runs under it.
	ctx    context.Context
	groups map[string]*group
	order  []*group
	parts  map[int32]bool // the partitions that submitted
	// writing is the longest a flush it serves took from the start of its
	// Write to its submission (its day writes).
	writing time.Duration
	done    chan struct{} // closed when every group has its err set
}

// group is one user of a round: the years and months its submissions
// touched and the newest state of each day they wrote.
type group struct {
	user  string
	years map[int]map[int]bool // year → months touched (1..12)
	mem   map[int64]*dayState  // by unixDay
	err   error
}

// ticket is a submission: the groups it needs.
type ticket struct {
	r      *round
	groups []*group
}

// flush is one Write as the roller sees it: begun, then submitted or
// ended.
type flush struct {
	r     *roller
	part  int32
	began time.Time
	out   bool // submitted or ended: no longer writing
}

// state is p's state (r.mu held).
func (r *roller) state(p int32) *partState {
	ps := r.parts[p]
	if ps == nil {
		ps = &partState{filling: true}
		r.parts[p] = ps
	}
	return ps
}

// ranked notes that a record of p was read into the batch p collects.
func (r *roller) ranked(p int32) {
	r.mu.Lock()
	ps := r.state(p)
	if ps.batchFrom.IsZero() {
		ps.batchFrom = time.Now()
	}
	ps.released = time.Time{}
	r.mu.Unlock()
}

// begin notes that a Write of p began; the Write submits or ends it.
func (r *roller) begin(p int32) *flush {
	r.mu.Lock()
	ps := r.state(p)
	ps.writing++
	if !ps.batchFrom.IsZero() { // (not on a retry of the same batch)
		// A batch written a tenth of its timer early was full.
		ps.filling = time.Since(ps.batchFrom) < r.interval*9/10
	}
	ps.batchFrom, ps.released = time.Time{}, time.Time{}
	r.mu.Unlock()
	return &flush{r: r, part: p, began: time.Now()}
}

// leave notes that w is no longer writing (r.mu held).
func (w *flush) leave() {
	if w.out {
		return
	}
	w.out = true
	w.r.state(w.part).writing--
	select {
	case w.r.wake <- struct{}{}:
	default:
	}
}

// end notes that the Write returned (a no-op after submit).
func (w *flush) end() {
	w.r.mu.Lock()
	w.leave()
	w.r.mu.Unlock()
}

// submit registers the rollups that states (just written) imply. A
// submission that starts a round gives it ctx (its Write's).
func (w *flush) submit(ctx context.Context, states []*dayState) *ticket {
	r := w.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = &round{ctx: ctx, groups: map[string]*group{}, parts: map[int32]bool{}, done: make(chan struct{})}
	}
	rd := r.next
	rd.parts[w.part] = true
	rd.writing = max(rd.writing, time.Since(w.began))
	t := &ticket{r: rd}
	seen := map[*group]bool{}
	for _, st := range states {
		g := rd.groups[st.user]
		if g == nil {
			g = &group{user: st.user, years: map[int]map[int]bool{}, mem: map[int64]*dayState{}}
			rd.groups[st.user] = g
			rd.order = append(rd.order, g)
		}
		y := st.day.Year()
		if g.years[y] == nil {
			g.years[y] = map[int]bool{}
		}
		g.years[y][int(st.day.Month())] = true
		if m := g.mem[unixDay(st.day)]; m == nil || st.version > m.version {
			g.mem[unixDay(st.day)] = st
		}
		if !seen[g] {
			seen[g] = true
			t.groups = append(t.groups, g)
		}
	}
	requests.Inc()
	w.leave()
	if !r.running {
		r.running = true
		r.wg.Add(1)
		go r.loop()
	}
	return t
}

// loop runs rounds while there are submissions, each under its own ctx.
func (r *roller) loop() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		rd := r.next
		if rd == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		waited := r.gather(rd.ctx, rd)
		r.mu.Lock()
		r.next = nil // later submissions go to the next round
		r.mu.Unlock()
		roundWait.Observe(waited.Seconds())
		start := time.Now()
		r.f.runRound(rd.ctx, rd)
		r.f.log.Debug("rollup round", "users", len(rd.order), "partitions", len(rd.parts), "waited", waited,
			"took", time.Since(start))
		r.mu.Lock()
		now := time.Now()
		for p := range rd.parts {
			if ps := r.state(p); ps.writing == 0 && ps.batchFrom.IsZero() {
				ps.released = now
			}
		}
		r.mu.Unlock()
		close(rd.done)
	}
}

// gather waits until no partition is expected to submit to rd, or the
// wait's bound has passed (linger, or the longest rd's flushes took to
// write their days if longer), or ctx ended, and returns how long it
// waited.
func (r *roller) gather(ctx context.Context, rd *round) time.Duration {
	start := time.Now()
	if r.linger <= 0 {
		return 0
	}
	timer := time.NewTimer(r.linger)
	defer timer.Stop()
	for {
		r.mu.Lock()
		now := time.Now()
		deadline := start.Add(max(r.linger, rd.writing))
		wait, change := r.expected(rd, now)
		r.mu.Unlock()
		if !wait || !now.Before(deadline) {
			return now.Sub(start)
		}
		until := deadline
		if !change.IsZero() && change.Before(until) {
			until = change
		}
		timer.Reset(until.Sub(now))
		select {
		case <-r.wake:
		case <-timer.C:
		case <-ctx.Done():
			return time.Since(start)
		}
	}
}

// expected reports whether a partition that has not submitted to rd is
// expected to soon (r.mu held): it is writing its days; or it is
// collecting a batch (until stale) and either filling batches or within
// grace of its batch timer; or a round released it less than grace ago
// and it has started nothing since. change is the earliest moment the
// answer may change without an event (zero: none).
func (r *roller) expected(rd *round, now time.Time) (wait bool, change time.Time) {
	at := func(t time.Time) {
		if change.IsZero() || t.Before(change) {
			change = t
		}
	}
	for p, ps := range r.parts {
		if rd.parts[p] {
			continue
		}
		switch {
		case ps.writing > 0:
			wait = true
		case !ps.batchFrom.IsZero():
			stale := ps.batchFrom.Add(r.stale)
			due := ps.batchFrom.Add(r.interval - r.grace)
			switch {
			case !now.Before(stale):
			case ps.filling || !now.Before(due):
				wait = true
				at(stale)
			default:
				at(due)
			}
		case !ps.released.IsZero() && now.Before(ps.released.Add(r.grace)):
			wait = true
			at(ps.released.Add(r.grace))
		}
	}
	return wait, change
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
