package chartstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/views"
)

// View is a charts.View on a World: it holds the Days days up to Now's
// and is recovered when Recovered is set.
type View struct {
	W    *World
	Days int

	mu        sync.Mutex
	recovered bool
	reads     int
}

// NewView is a view of w's last days days.
func NewView(w *World, days int, recovered bool) *View {
	return &View{W: w, Days: days, recovered: recovered}
}

// SetRecovered sets what Recovered reports.
func (v *View) SetRecovered(ok bool) { v.mu.Lock(); v.recovered = ok; v.mu.Unlock() }

// Recovered implements charts.View.
func (v *View) Recovered() bool { v.mu.Lock(); defer v.mu.Unlock(); return v.recovered }

// FirstDay implements charts.View.
func (v *View) FirstDay(now time.Time) time.Time {
	return charts.Midnight(now).AddDate(0, 0, -(v.Days - 1))
}

// Range implements charts.View.
func (v *View) Range(user string, from, to time.Time) ([]views.Day, error) {
	v.mu.Lock()
	v.reads++
	v.mu.Unlock()
	if f := v.FirstDay(Now); from.Before(f) {
		from = f
	}
	var out []views.Day
	for _, d := range v.W.SortedDays(user, from, to) {
		out = append(out, *d)
	}
	return out, nil
}

// Data is what a store holds, row by row (the contract suite writes it
// into each implementation).
type Data struct {
	Days    []Day
	Items   []Items
	Listens []Listen
	// Users are the known users (users_by_prefix).
	Users []string
}

// Day is a user_days row.
type Day struct {
	User string
	topk.DayTotal
}

// Items are one partition of day_items, month_items or year_items: one
// user's items of one entity and period.
type Items struct {
	User   string
	Period topk.Period
	Entity topk.Entity
	Items  []topk.Item
}

// Listen is a raw_listens row; its day is PlayedAt's.
type Listen struct {
	User string
	topk.Listen
}

// ErrDown is what a Store set down answers.
var ErrDown = fmt.Errorf("%w: connection refused", topk.ErrUnavailable)

type itemsKey struct {
	user   string
	period topk.Period
	entity topk.Entity
}

// Store is the in-memory charts.Store: Cassandra's tables as maps. It
// counts reads by table and can be set down.
type Store struct {
	days    map[string][]topk.DayTotal // oldest first
	items   map[itemsKey][]topk.Item
	listens map[string]map[time.Time][]topk.Listen
	users   []string

	mu    sync.Mutex
	down  bool
	reads map[string]int
}

// NewStore is a store holding d.
func NewStore(d *Data) *Store {
	s := &Store{days: map[string][]topk.DayTotal{}, items: map[itemsKey][]topk.Item{}, listens: map[string]map[time.Time][]topk.Listen{}}
	for _, x := range d.Days {
		s.days[x.User] = append(s.days[x.User], x.DayTotal)
	}
	for _, ds := range s.days {
		slices.SortFunc(ds, func(a, b topk.DayTotal) int { return a.Day.Compare(b.Day) })
	}
	for _, x := range d.Items {
		k := itemsKey{x.User, x.Period, x.Entity}
		s.items[k] = append(s.items[k], x.Items...)
	}
	for _, l := range d.Listens {
		if s.listens[l.User] == nil {
			s.listens[l.User] = map[time.Time][]topk.Listen{}
		}
		day := charts.Midnight(l.PlayedAt)
		s.listens[l.User][day] = append(s.listens[l.User][day], l.Listen)
	}
	s.users = slices.Clone(d.Users)
	return s
}

// SetDown makes every read fail (ErrDown) or answer again.
func (s *Store) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// Reads is how many queries read table (user_days, day_items,
// month_items, year_items, raw_listens, users_by_prefix, first).
func (s *Store) Reads(table string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.reads[table] }

// AllReads is the reads of every table.
func (s *Store) AllReads() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.reads {
		out[k] = v
	}
	return out
}

// ResetReads forgets the reads counted.
func (s *Store) ResetReads() { s.mu.Lock(); s.reads = nil; s.mu.Unlock() }

func (s *Store) count(t string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reads == nil {
		s.reads = map[string]int{}
	}
	s.reads[t]++
	if s.down {
		return ErrDown
	}
	return nil
}

// FirstDay implements charts.Store.
func (s *Store) FirstDay(_ context.Context, user string) (time.Time, bool, error) {
	if err := s.count("first"); err != nil {
		return time.Time{}, false, err
	}
	if days := s.days[user]; len(days) > 0 {
		return days[0].Day, true, nil
	}
	return time.Time{}, false, nil
}

// UserDays implements charts.Store.
func (s *Store) UserDays(_ context.Context, user string, from, to time.Time) ([]topk.DayTotal, error) {
	if err := s.count("user_days"); err != nil {
		return nil, err
	}
	var out []topk.DayTotal
	for _, d := range s.days[user] {
		if !d.Day.Before(from) && !d.Day.After(to) {
			out = append(out, d)
		}
	}
	return out, nil
}

// Items implements charts.Store; the items come in random order
// (Cassandra orders them by key hash).
func (s *Store) Items(_ context.Context, p topk.Period, user string, e topk.Entity) ([]topk.Item, error) {
	if err := s.count([...]string{"day_items", "month_items", "year_items"}[p.Kind]); err != nil {
		return nil, err
	}
	out := slices.Clone(s.items[itemsKey{user, p, e}])
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// Listens implements charts.Store.
func (s *Store) Listens(_ context.Context, user string, day time.Time, after *topk.ListenPos, limit int) ([]topk.Listen, error) {
	if err := s.count("raw_listens"); err != nil {
		return nil, err
	}
	ls := slices.Clone(s.listens[user][day])
	slices.SortFunc(ls, compareListens)
	var out []topk.Listen
	for _, l := range ls {
		if after != nil && (l.PlayedAt.After(after.PlayedAt) || l.PlayedAt.Equal(after.PlayedAt) && string(l.Identity) <= string(after.Identity)) {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, l)
	}
	return out, nil
}

// compareListens is the order of a day's listens: newest first, then by
// identity.
func compareListens(a, b topk.Listen) int {
	if c := b.PlayedAt.Compare(a.PlayedAt); c != 0 {
		return c
	}
	return strings.Compare(string(a.Identity), string(b.Identity))
}

// SortListens sorts ls in the order Store.Listens returns them.
func SortListens(ls []topk.Listen) { slices.SortFunc(ls, compareListens) }

// SearchUsers implements charts.Store.
func (s *Store) SearchUsers(_ context.Context, prefix string, limit int) ([]string, error) {
	if err := s.count("users_by_prefix"); err != nil {
		return nil, err
	}
	return searchUsers(s.users, prefix, limit), nil
}

// searchUsers is the users whose folded id starts with the folded
// prefix, by folded id then id, at most limit.
func searchUsers(users []string, prefix string, limit int) []string {
	f := listen.Normalize(prefix)
	if f == "" {
		return nil
	}
	var out []string
	for _, u := range users {
		if strings.HasPrefix(listen.Normalize(u), f) {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := listen.Normalize(out[i]), listen.Normalize(out[j])
		if a != b {
			return a < b
		}
		return out[i] < out[j]
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Cache is a Redis stand-in (charts.Cache); SetDown makes every call
// fail.
type Cache struct {
	mu   sync.Mutex
	m    map[string][]byte
	down bool
	gets int
}

// SetDown makes every call fail or work again.
func (c *Cache) SetDown(down bool) { c.mu.Lock(); c.down = down; c.mu.Unlock() }

// Len is the number of keys stored.
func (c *Cache) Len() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.m) }

// Count is the number of keys stored that contain sub.
func (c *Cache) Count(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.m {
		if strings.Contains(k, sub) {
			n++
		}
	}
	return n
}

// Get implements charts.Cache.
func (c *Cache) Get(_ context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	if c.down {
		return nil, errors.New("dial tcp: connection refused")
	}
	return c.m[key], nil
}

// Set implements charts.Cache.
func (c *Cache) Set(_ context.Context, key string, v []byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errors.New("dial tcp: connection refused")
	}
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[key] = v
	return nil
}
