package flusher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
)

// memStore models the four value tables with Cassandra's rules: each cell
// keeps the write with the highest timestamp; on equal timestamps the
// greater value (Cassandra compares the cells' bytes). It can fail requests
// at random, before or after applying them (a timeout after the write
// landed), and yields the processor inside requests to shuffle goroutines.
type memStore struct {
	mu    sync.Mutex
	parts map[string]map[itemKey]*memRow // "table|user|part"
	days  map[string]map[int64]memPlays  // user → unix day → plays
	rng   *rand.Rand
	fail  atomic.Int64 // per mille of requests failing
	// poison fails every read of this user's user_days
	poison string

	reads            [3]atomic.Int64 // by table
	dayReads, writes atomic.Int64
}

type memRow struct {
	ts  int64
	r   topk.EntityItem
	set bool
}

type memPlays struct{ ts, plays int64 }

func newMemStore(seed uint64) *memStore {
	return &memStore{parts: map[string]map[itemKey]*memRow{}, days: map[string]map[int64]memPlays{},
		rng: rand.New(rand.NewPCG(seed, 99))}
}

var errInjected = errors.New("injected failure")

// chaos maybe fails (before), maybe yields; after reports whether to fail
// once the request was applied.
func (m *memStore) chaos(ctx context.Context) (before, after bool) {
	if ctx.Err() != nil {
		return true, false
	}
	runtime.Gosched()
	m.mu.Lock()
	p := m.fail.Load()
	x, y := m.rng.Int64N(1000), m.rng.Int64N(1000)
	m.mu.Unlock()
	return x < p, y < p
}

func partName(t table, user string, part any) string {
	if d, ok := part.(time.Time); ok {
		part = d.Format(listen.DayLayout)
	}
	return fmt.Sprintf("%s|%s|%v", t, user, part)
}

// tablePart is p's table and partition as the flusher numbers them: the
// day, yyyymm or yyyy.
func tablePart(p topk.Period) (table, any) {
	switch p.Kind {
	case topk.Monthly:
		return monthItems, p.Start.Year()*100 + int(p.Start.Month())
	case topk.Yearly:
		return yearItems, p.Start.Year()
	}
	return dayItems, p.Start
}

func (m *memStore) WriteItems(ctx context.Context, p topk.Period, user string, rows []topk.EntityItem, ts int64) error {
	t, part := tablePart(p)
	if before, _ := m.chaos(ctx); before {
		return errInjected
	}
	m.writes.Add(1)
	// one "batch" per call: applied at once (the model's rows fit one batch)
	m.mu.Lock()
	k := partName(t, user, part)
	cells := m.parts[k]
	if cells == nil {
		cells = map[itemKey]*memRow{}
		m.parts[k] = cells
	}
	for _, r := range rows {
		ik := itemKey{r.Entity, r.Key}
		c := cells[ik]
		if c == nil {
			c = &memRow{}
			cells[ik] = c
		}
		switch {
		case !c.set || ts > c.ts:
			c.ts, c.r, c.set = ts, r, true
		case ts == c.ts: // per cell: the greater value (bytes compared)
			c.r.Plays = max(c.r.Plays, r.Plays)
			c.r.Name = max(c.r.Name, r.Name)
			c.r.Artist = max(c.r.Artist, r.Artist)
			c.r.First = max(c.r.First, r.First)
			if bytes.Compare(topk.AppendSpellings(nil, r.Spellings), topk.AppendSpellings(nil, c.r.Spellings)) > 0 {
				c.r.Spellings = r.Spellings
			}
		}
	}
	m.mu.Unlock()
	if _, after := m.chaos(ctx); after {
		return errInjected
	}
	return nil
}

func (m *memStore) WriteUserDays(ctx context.Context, user string, days []topk.DayTotal) error {
	if before, _ := m.chaos(ctx); before {
		return errInjected
	}
	m.writes.Add(1)
	m.mu.Lock()
	u := m.days[user]
	if u == nil {
		u = map[int64]memPlays{}
		m.days[user] = u
	}
	for _, d := range days {
		k := d.Day.Unix() / 86400
		if c, ok := u[k]; !ok || d.Version > c.ts || (d.Version == c.ts && d.Plays > c.plays) {
			u[k] = memPlays{ts: d.Version, plays: d.Plays}
		}
	}
	m.mu.Unlock()
	if _, after := m.chaos(ctx); after {
		return errInjected
	}
	return nil
}

func (m *memStore) UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error) {
	if before, _ := m.chaos(ctx); before || user == m.poison {
		return nil, errInjected
	}
	m.dayReads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []topk.DayTotal
	for k, c := range m.days[user] {
		d := time.Unix(k*86400, 0).UTC()
		if !d.Before(from) && !d.After(to) {
			out = append(out, topk.DayTotal{Day: d, Plays: c.plays, Version: c.ts})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day.Before(out[j].Day) })
	return out, nil
}

func (m *memStore) Items(ctx context.Context, p topk.Period, user string) ([]topk.EntityItem, []int64, error) {
	if before, _ := m.chaos(ctx); before {
		return nil, nil, errInjected
	}
	t, part := tablePart(p)
	m.reads[t].Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var cells []*memRow
	for _, c := range m.parts[partName(t, user, part)] {
		cells = append(cells, c)
	}
	sort.Slice(cells, func(i, j int) bool { // any order; a fixed one
		if cells[i].r.Entity != cells[j].r.Entity {
			return cells[i].r.Entity < cells[j].r.Entity
		}
		return cells[i].r.Key < cells[j].r.Key
	})
	out, ts := make([]topk.EntityItem, len(cells)), make([]int64, len(cells))
	for i, c := range cells {
		out[i], ts[i] = c.r, c.ts
	}
	return out, ts, nil
}

// snapshot is the model's content: "table|user|part" → rows by item, and
// user_days as "user|day" → plays.
func (m *memStore) snapshot() (map[string]map[itemKey]topk.EntityItem, map[string]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := map[string]map[itemKey]topk.EntityItem{}
	for k, p := range m.parts {
		items[k] = map[itemKey]topk.EntityItem{}
		for ik, c := range p {
			items[k][ik] = c.r
		}
	}
	days := map[string]int64{}
	for u, ds := range m.days {
		for k, c := range ds {
			days[u+"|"+time.Unix(k*86400, 0).UTC().Format(listen.DayLayout)] = c.plays
		}
	}
	return items, days
}

// modelWorld is a changelog of successive (and replayed) states of a few
// user-days on a few partitions.
type modelWorld struct {
	keys  []string
	final map[string]*aggregator.Day
	log   [][]*sarama.ConsumerMessage // by partition
}

// counted is a listen a model day counted: what deleting it takes.
type counted struct {
	sec    uint32
	artist string
	track  string
}

// newModelWorld grows every user-day growths times by 1 to 3 plays; with
// deletes, each growth may also delete listens counted before (none, one,
// several, or all of the day's), so totals go down and back up.
func newModelWorld(rng *rand.Rand, users, days []string, parts, growths int, deletes ...bool) *modelWorld {
	w := &modelWorld{final: map[string]*aggregator.Day{}, log: make([][]*sarama.ConsumerMessage, parts)}
	states := map[string][][]byte{}
	listens := map[string][]counted{}
	for _, u := range users {
		for _, d := range days {
			if rng.IntN(5) == 0 {
				continue
			}
			key := u + "|" + d
			w.keys = append(w.keys, key)
			w.final[key] = &aggregator.Day{}
		}
	}
	for range growths {
		for _, key := range w.keys {
			d := w.final[key]
			for added, n := 0, 1+rng.IntN(3); added < n; {
				i := rng.IntN(9)
				a := i % 3
				p := aggregator.Play{Sec: uint32(rng.IntN(86400)), TrackKey: uint64(1000 + i), ArtistKey: uint64(10 + a),
					Track: fmt.Sprintf("Song %d", i), Artist: fmt.Sprintf("Band %d", a)}
				if rng.IntN(2) == 0 {
					p.Track, p.Artist = strings.ToUpper(p.Track), strings.ToUpper(p.Artist)
				}
				if i%3 != 0 {
					p.AlbumKey, p.Album = uint64(100+i), fmt.Sprintf("Record %d", i)
				}
				if len(deletes) > 0 && deletes[0] {
					// An item whose plays were all deleted is spelled
					// again as it was: the aggregator (state.go, 9871663)
					// keeps a spelling with 0 plays when one comes back
					// spelled otherwise, and that state does not decode.
					p.Track = zeroSpelling(d.Tracks, p.TrackKey, p.Track)
					p.Artist = zeroSpelling(d.Artists, p.ArtistKey, p.Artist)
				}
				if d.Add(p) {
					added++
					listens[key] = append(listens[key], counted{p.Sec, p.Artist, p.Track})
				}
			}
			if len(deletes) > 0 && deletes[0] {
				n := 0
				switch rng.IntN(4) {
				case 1:
					n = 1
				case 2:
					n = rng.IntN(len(listens[key]) + 1)
				case 3:
					n = len(listens[key]) // all: the day goes to 0 plays
				}
				for range n {
					i := rng.IntN(len(listens[key]))
					l := listens[key][i]
					if got := d.Delete(l.sec, listen.MSID(l.artist, l.track)); got != aggregator.Removed {
						panic(fmt.Sprintf("%s: delete of %+v: %v", key, l, got))
					}
					listens[key] = append(listens[key][:i], listens[key][i+1:]...)
				}
			}
			states[key] = append(states[key], d.Encode())
			h := fnv.New32a()
			h.Write([]byte(key))
			part := int(h.Sum32()) % parts
			w.log[part] = append(w.log[part], &sarama.ConsumerMessage{Key: []byte(key), Value: states[key][len(states[key])-1]})
		}
	}
	for p, l := range w.log { // replays: copies of states anywhere later
		for range len(l) / 3 {
			i := rng.IntN(len(l))
			j := i + 1 + rng.IntN(len(l)-i)
			m := *l[i]
			l = append(l[:j], append([]*sarama.ConsumerMessage{&m}, l[j:]...)...)
		}
		w.log[p] = l
	}
	for p := range w.log {
		for i, m := range w.log[p] {
			m.Partition, m.Offset = int32(p), int64(i)
		}
	}
	return w
}

// zeroSpelling is the name of the item of items with key if it has no
// plays left, else name.
func zeroSpelling(items []aggregator.Item, key uint64, name string) string {
	for _, it := range items {
		if it.Key == key && it.Plays == 0 {
			return it.Name
		}
	}
	return name
}

// want is what the tables must hold: "table|user|part" → rows, and the
// user_days totals. Day rows are the newest states' items (as
// aggregator.Item.Topk gives them, plays 0 included); a rollup row sums,
// independently of the flusher, the plays of each spelling of its days (a
// spelling's first listen is its earliest), its name and First the
// majority's (topk.Majority), its artist the earliest day's with plays;
// an item with plays 0 in every day is a row with plays 0 (the earliest
// day's name, artist and First).
func (w *modelWorld) want() (map[string]map[itemKey]topk.EntityItem, map[string]int64) {
	items := map[string]map[itemKey]topk.EntityItem{}
	sums := map[string]map[itemKey]*spellingSum{}
	totals := map[string]int64{}
	keys := append([]string(nil), w.keys...)
	sort.Strings(keys) // by user, then day: the earliest day's artist first
	for _, key := range keys {
		d := w.final[key]
		user, day, _ := listen.SplitKey(key)
		totals[key] = int64(d.Total)
		dk := partName(dayItems, user, day)
		items[dk] = map[itemKey]topk.EntityItem{}
		for _, e := range topk.Entities {
			for _, it := range d.Items(e) {
				row := topk.EntityItem{Entity: e, Item: it.Topk(day)}
				items[dk][itemKey{e, it.Key}] = row
				for _, p := range []string{partName(monthItems, user, day.Year()*100+int(day.Month())), partName(yearItems, user, day.Year())} {
					addSum(sums, p, row)
				}
			}
		}
	}
	for p, rows := range sums {
		items[p] = map[itemKey]topk.EntityItem{}
		for ik, sum := range rows {
			items[p][ik] = sum.row(ik)
		}
	}
	return items, totals
}

// quietConfig logs nothing and lets rounds wait 20 ms at most for the
// partitions expected to submit (the default, a second, would only slow
// the tests down).
func quietConfig() Config {
	return Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxRowsPerCQLBatch: 5000, RollupLinger: 20 * time.Millisecond}
}

// Several flusher instances on one model store, partitions moving between
// them in generations (with zombies: a generation's Writes are cancelled,
// not waited for), random batch sizes, replayed and out-of-date states,
// failures before and after requests land: once a last generation has
// flushed every partition to its end, every table holds exactly the sums
// of the newest states. With deletes, the states also lose listens (a
// day's total goes down, to 0 too, and up again): the tables still hold
// exactly the newest states and their sums, items and days with plays 0
// as rows with plays 0.
func TestModelExactUnderRebalancesReplaysAndFailures(t *testing.T) {
	for _, deletes := range []bool{false, true} {
		t.Run(map[bool]string{false: "adds", true: "deletes"}[deletes], func(t *testing.T) { modelExact(t, deletes) })
	}
}

func modelExact(t *testing.T, deletes bool) {
	days := []string{"2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02", "2026-01-31", "2026-02-01", "2026-02-02"}
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			const parts = 4
			w := newModelWorld(rng, []string{"ann", "ben", "cat"}, days, parts, 6, deletes)
			st := newMemStore(seed)
			var insts []*Flusher
			for i := range 3 {
				cfg := quietConfig()
				cfg.Concurrency = 1 + i*2
				cfg.RollupLinger = []time.Duration{-1, 5 * time.Millisecond, 30 * time.Millisecond}[i] // none, short, long
				if i == 2 {
					cfg.CacheBytes = -1
				}
				insts = append(insts, newFlusher(cfg, st))
			}
			committed := make([]int, parts)
			var cmu sync.Mutex
			var all sync.WaitGroup
			for gen := range 8 {
				last := gen == 7
				if last {
					st.fail.Store(0)
				} else {
					st.fail.Store(int64(rng.IntN(8)))
				}
				ctx, cancel := context.WithCancel(context.Background())
				var genWG sync.WaitGroup
				for p := range parts {
					f := insts[rng.IntN(len(insts))]
					cmu.Lock()
					from := committed[p]
					cmu.Unlock()
					batchMax := 1 + rng.IntN(6)
					steps := 1 + rng.IntN(4)
					r := rand.New(rand.NewPCG(seed, uint64(gen*parts+p)))
					all.Add(1)
					genWG.Add(1)
					go func() {
						defer all.Done()
						defer genWG.Done()
						for step := 0; (last || step < steps) && from < len(w.log[p]); step++ {
							to := min(from+1+r.IntN(batchMax), len(w.log[p]))
							batch := w.log[p][from:to]
							for {
								err := f.Write(ctx, batch)
								if err == nil {
									break
								}
								if ctx.Err() != nil {
									return
								}
								if !last && r.IntN(3) == 0 {
									return // the member gives up; another replays later
								}
							}
							from = to
							cmu.Lock()
							committed[p] = max(committed[p], to) // the sink marks monotonically
							cmu.Unlock()
						}
					}()
				}
				if last {
					genWG.Wait()
				} else {
					time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
				}
				cancel() // a rebalance: Writes in flight are abandoned, not awaited (zombies)
			}
			all.Wait()
			for _, f := range insts {
				f.roll.wg.Wait() // rounds still running for zombies
			}
			for p := range parts {
				if committed[p] != len(w.log[p]) {
					t.Fatalf("partition %d committed %d of %d", p, committed[p], len(w.log[p]))
				}
			}
			gotItems, gotDays := st.snapshot()
			wantItems, wantDays := w.want()
			for k, v := range wantDays {
				if gotDays[k] != v {
					t.Errorf("user_days %s = %d, want %d", k, gotDays[k], v)
				}
			}
			if len(gotDays) != len(wantDays) {
				t.Errorf("user_days has %d rows, want %d", len(gotDays), len(wantDays))
			}
			for k, want := range wantItems {
				got := gotItems[k]
				for ik, r := range want {
					if !reflect.DeepEqual(got[ik], r) {
						t.Errorf("%s %v = %+v, want %+v", k, ik, got[ik], r)
					}
				}
				if len(got) != len(want) {
					t.Errorf("%s has %d rows, want %d", k, len(got), len(want))
				}
			}
			if len(gotItems) != len(wantItems) {
				t.Errorf("%d partitions, want %d", len(gotItems), len(wantItems))
			}
		})
	}
}

// What a rollup recompute reads: cold, it reads the days it did not just
// write; warm (cache), a flush of one day of a month reads only user_days
// (once: one snapshot serves the months and the year), no day or month
// values.
func TestRecomputeReadsOnlyWhatItCannotKnow(t *testing.T) {
	st := newMemStore(1)
	rec := func(key string, d *aggregator.Day) *sarama.ConsumerMessage {
		return &sarama.ConsumerMessage{Key: []byte(key), Value: d.Encode()}
	}
	ctx := context.Background()
	writer := newFlusher(quietConfig(), st)
	var batch []*sarama.ConsumerMessage
	for day := 1; day <= 20; day++ {
		batch = append(batch, rec(fmt.Sprintf("ann|2026-03-%02d", day), dayWith(day)))
	}
	if err := writer.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n := st.reads[dayItems].Load() + st.reads[monthItems].Load(); n != 0 {
		t.Errorf("first flush read %d item partitions, want 0 (all days just written)", n)
	}
	// another instance (cold cache) flushes day 21
	cold := newFlusher(quietConfig(), st)
	if err := cold.Write(ctx, []*sarama.ConsumerMessage{rec("ann|2026-03-21", dayWith(3))}); err != nil {
		t.Fatal(err)
	}
	if n := st.reads[dayItems].Load(); n != 20 {
		t.Errorf("cold instance read %d days, want the 20 it did not write", n)
	}
	if n := st.reads[monthItems].Load(); n != 0 {
		t.Errorf("cold instance read %d months, want 0 (it computed the only month)", n)
	}
	// warm: the same instance flushes a newer state of day 21, and day 5
	d0, m0, u0 := st.reads[dayItems].Load(), st.reads[monthItems].Load(), st.dayReads.Load()
	if err := cold.Write(ctx, []*sarama.ConsumerMessage{rec("ann|2026-03-21", dayWith(4)), rec("ann|2026-03-05", dayWith(9))}); err != nil {
		t.Fatal(err)
	}
	if d, m, u := st.reads[dayItems].Load()-d0, st.reads[monthItems].Load()-m0, st.dayReads.Load()-u0; d != 0 || m != 0 || u != 1 {
		t.Errorf("warm flush read %d days, %d months, %d user_days ranges; want 0, 0, 1", d, m, u)
	}
	// the first instance's cache has day 21 at 3 plays, Cassandra 4: it must read it
	d0 = st.reads[dayItems].Load()
	if err := writer.Write(ctx, []*sarama.ConsumerMessage{rec("ann|2026-03-01", dayWith(2))}); err != nil {
		t.Fatal(err)
	}
	if d := st.reads[dayItems].Load() - d0; d != 2 {
		t.Errorf("read %d days, want 2 (days 5 and 21 changed elsewhere)", d)
	}
	items, _ := st.snapshot()
	var total int64
	for _, r := range items[partName(monthItems, "ann", 202603)] {
		if r.Entity == topk.Tracks {
			total += r.Plays
		}
	}
	if want := int64(20*21/2 - 5 + 9 + 4 - 1 + 2); total != want {
		t.Errorf("month total %d, want %d", total, want)
	}
}

func TestCacheKeepsTheHighestVersionAndEvicts(t *testing.T) {
	rows := func(n int) []topk.EntityItem {
		var out []topk.EntityItem
		for i := range n {
			out = append(out, entityItem(topk.Tracks, uint64(i), "Song", "Band", 1))
		}
		return out
	}
	c := newCache(10000)
	k := dayKey("ann", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	c.put(k, 5, rows(5))
	c.put(k, 3, rows(3))
	if _, ok := c.get(k, 3); ok {
		t.Error("a lower version replaced a higher one")
	}
	got, ok := c.get(k, 5)
	if !ok || len(got) != 5 || !reflect.DeepEqual(got[4], entityItem(topk.Tracks, 4, "Song", "Band", 1)) {
		t.Errorf("get = %+v, %v", got, ok)
	}
	for i := range 200 {
		c.put(monthKey(fmt.Sprint(i), 202603), 10, rows(10))
	}
	if c.bytes() > 10000 {
		t.Errorf("cache holds %d bytes, max 10000", c.bytes())
	}
	if _, ok := c.get(k, 5); ok {
		t.Error("the least recently used entry was not evicted")
	}
	if _, ok := c.get(monthKey("199", 202603), 10); !ok {
		t.Error("the most recent entry was evicted")
	}
	// the bits of key -3 (a bigint in Cassandra), spellings, Firsts
	// before 1970 and of today
	spelled := entityItem(topk.Tracks, 12, "", "Band", 0)
	spelled.SetSpellings([]topk.Spelling{{Name: "Song", Plays: 300, First: 1_780_000_000}, {Name: "SONG", Plays: 1, First: -3}})
	odd := []topk.EntityItem{entityItem("playlist", ^uint64(2), "x", "", 7), entityItem(topk.Artists, 1<<62, "Ünïcode", "", 0), spelled}
	odd[0].First = -1 << 40
	if enc := encodeRows(odd); len(enc) != cap(enc) {
		t.Errorf("encoding of %d bytes in a buffer of %d: the size is not exact", len(enc), cap(enc))
	}
	if got, ok := decodeRows(encodeRows(odd)); !ok || !reflect.DeepEqual(got, odd) {
		t.Errorf("round trip %+v, %v, want %+v", got, ok, odd)
	}
	if _, ok := decodeRows(encodeRows(odd)[:9]); ok {
		t.Error("a cut encoding decoded")
	}
	var off *cache = newCache(0)
	off.put(k, 5, rows(5))
	if _, ok := off.get(k, 5); ok {
		t.Error("a disabled cache answered")
	}
}

func (m *memStore) total(t table, user string, part any) int64 {
	items, _ := m.snapshot()
	var n int64
	for _, r := range items[partName(t, user, part)] {
		if r.Entity == topk.Tracks {
			n += r.Plays
		}
	}
	return n
}

func recOf(key string, d *aggregator.Day) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{Key: []byte(key), Value: d.Encode()}
}

// A batch whose state of a day is older than Cassandra's (a replay) must
// not put that state into the rollup, though it was "just written": the
// newer state is summed (from the cache or read back).
func TestRollupIgnoresAStaleStateOfTheBatch(t *testing.T) {
	for _, cacheBytes := range []int{0, -1} {
		st := newMemStore(1)
		cfg := quietConfig()
		cfg.CacheBytes = cacheBytes
		f := newFlusher(cfg, st)
		ctx := context.Background()
		if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", dayWith(5)), recOf("ann|2026-03-02", dayWith(2))}); err != nil {
			t.Fatal(err)
		}
		if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", dayWith(3)), recOf("ann|2026-03-02", dayWith(6))}); err != nil {
			t.Fatal(err)
		}
		if got := st.total(monthItems, "ann", 202603); got != 11 {
			t.Errorf("cache %d: month total %d, want 11 (5 + 6, not the replayed 3 + 6)", cacheBytes, got)
		}
		if got := st.total(yearItems, "ann", 2026); got != 11 {
			t.Errorf("cache %d: year total %d, want 11", cacheBytes, got)
		}
	}
}

// A month rollup this instance computed and cached is not summed into the
// year once another instance has changed that month.
func TestYearIgnoresACachedMonthChangedElsewhere(t *testing.T) {
	st := newMemStore(1)
	x, y := newFlusher(quietConfig(), st), newFlusher(quietConfig(), st)
	ctx := context.Background()
	if err := x.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", dayWith(5))}); err != nil {
		t.Fatal(err)
	}
	if err := y.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-02", dayWith(4))}); err != nil {
		t.Fatal(err)
	}
	if err := x.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-04-01", dayWith(7))}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t    table
		part any
		want int64
	}{{monthItems, 202603, 9}, {monthItems, 202604, 7}, {yearItems, 2026, 16}} {
		if got := st.total(c.t, "ann", c.part); got != c.want {
			t.Errorf("%s %v: total %d, want %d", c.t, c.part, got, c.want)
		}
	}
}

// month_items can hold a mix of two rollups with equal totals (timestamps),
// each summing the newest state of one day and an older state of the
// other, written by rounds whose snapshots differed: its tracks then sum
// to the month's complete total, yet its artist and album counts are short.
// A year recompute that finds it must not take it for the month's rollup
// (the rows' write timestamps are not the month's total): it sums the days.
func TestYearDoesNotTakeAMixOfRollupsForTheMonth(t *testing.T) {
	st := newMemStore(1)
	ctx := context.Background()
	day := func(tracks ...string) *aggregator.Day {
		d := &aggregator.Day{}
		for i, tr := range tracks {
			d.Add(play(uint32(i), tr))
		}
		return d
	}
	d1, d2 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	state := func(at time.Time, d *aggregator.Day) *dayState {
		return newDayState(&userDay{user: "ann", day: at, d: d})
	}
	final1, final2 := state(d1, day("a", "ccc")), state(d2, day("bb", "dddd"))
	old1, old2 := state(d1, day("a")), state(d2, day("bb"))
	for _, s := range []*dayState{final1, final2} {
		if err := st.WriteItems(ctx, topk.DayPeriod(s.day), "ann", s.rows, s.version); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.WriteUserDays(ctx, "ann", []topk.DayTotal{{Day: d1, Plays: 2, Version: 2}, {Day: d2, Plays: 2, Version: 2}}); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]*dayState{{final1, old2}, {old1, final2}} {
		r := newRollup()
		for _, s := range pair {
			for _, x := range s.rows {
				r.add(x)
			}
		}
		rows, total := r.result()
		if total != 3 {
			t.Fatalf("mixed rollup total %d, want 3", total)
		}
		if err := st.WriteItems(ctx, topk.MonthPeriod(d1), "ann", rows, total); err != nil {
			t.Fatal(err)
		}
	}
	if got := st.total(monthItems, "ann", 202603); got != 4 {
		t.Fatalf("the mix's tracks sum to %d, want 4 (the complete total)", got)
	}
	cold := newFlusher(quietConfig(), st)
	if err := cold.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-04-01", dayWith(1))}); err != nil {
		t.Fatal(err)
	}
	items, _ := st.snapshot()
	year := items[partName(yearItems, "ann", 2026)]
	if got := year[itemKey{topk.Artists, 7}].Plays; got != 5 {
		t.Errorf("year: artist plays %d, want 5 (4 in March, 1 in April)", got)
	}
	if got := year[itemKey{topk.Albums, 9}].Plays; got != 5 {
		t.Errorf("year: album plays %d, want 5", got)
	}
	if got := st.total(yearItems, "ann", 2026); got != 5 {
		t.Errorf("year total %d, want 5", got)
	}
}

// A rollup recomputed with a total this instance already wrote for that
// period is not written again.
func TestAnUnchangedRollupIsNotWrittenAgain(t *testing.T) {
	st := newMemStore(1)
	f := newFlusher(quietConfig(), st)
	ctx := context.Background()
	if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", dayWith(2)), recOf("ann|2026-04-01", dayWith(3))}); err != nil {
		t.Fatal(err)
	}
	w0 := st.writes.Load()
	// a replay of the same states: the days are written again (the flusher
	// cannot know Cassandra has them), the rollups are not
	if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", dayWith(2)), recOf("ann|2026-04-01", dayWith(3))}); err != nil {
		t.Fatal(err)
	}
	if n := st.writes.Load() - w0; n != 3 {
		t.Errorf("%d writes, want 3 (two day_items, one user_days; no rollup)", n)
	}
	// a new state of April: April and the year are written, March is not
	w0 = st.writes.Load()
	if err := f.Write(ctx, []*sarama.ConsumerMessage{recOf("ann|2026-03-01", dayWith(2)), recOf("ann|2026-04-01", dayWith(4))}); err != nil {
		t.Fatal(err)
	}
	if n := st.writes.Load() - w0; n != 5 {
		t.Errorf("%d writes, want 5 (two day_items, one user_days, April, the year)", n)
	}
	if got := st.total(yearItems, "ann", 2026); got != 6 {
		t.Errorf("year total %d, want 6", got)
	}
}

// One (user, year) whose recompute keeps failing fails the flushes that
// need it, not the others served by the same round.
func TestAFailingGroupFailsOnlyItsFlushes(t *testing.T) {
	st := newMemStore(1)
	st.poison = "bad"
	f := newFlusher(quietConfig(), st)
	ctx := context.Background()
	state := func(key string, n int) *dayState {
		user, day, _ := listen.SplitKey(key)
		s := newDayState(&userDay{user: user, day: day, d: dayWith(n)})
		if err := st.WriteItems(ctx, topk.DayPeriod(day), user, s.rows, s.version); err != nil {
			t.Fatal(err)
		}
		if err := st.WriteUserDays(ctx, user, []topk.DayTotal{{Day: day, Plays: s.plays, Version: s.version}}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	f.roll.running = true // no loop: the round is run below
	good := f.roll.begin(0).submit(ctx, []*dayState{state("ann|2026-03-01", 3), state("ben|2025-01-01", 2)})
	bad := f.roll.begin(1).submit(ctx, []*dayState{state("bad|2026-03-01", 4), state("ann|2026-03-02", 1)})
	rd := f.roll.next
	f.runRound(ctx, rd)
	close(rd.done)
	if err := good.wait(ctx); err != nil {
		t.Errorf("flush without the failing group: %v", err)
	}
	if err := bad.wait(ctx); !errors.Is(err, errInjected) {
		t.Errorf("flush with the failing group: %v, want the injected failure", err)
	}
	if got := st.total(monthItems, "ann", 202603); got != 4 {
		t.Errorf("ann's month total %d, want 4", got)
	}
}
