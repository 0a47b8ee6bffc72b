package cassandra

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/processors/sitewide"
)

// SitewideShards is the number of partitions one entity's month of
// sitewide_days is split into, by item (SitewideShard). It is part of
// the rows' partition key: changing it needs a new table
// (schemas/cassandra/006_sitewide.cql).
const SitewideShards = 16

// SitewideShard is the shard of an item's rows: item mod SitewideShards.
func SitewideShard(item uint64) int { return int(item % SitewideShards) }

// monthLayout is how sitewide_days spells its month.
const monthLayout = "2006-01"

// SitewideRow is one row of sitewide_days: the sitewide group's value of
// one key (sitewide.Key), as the sitewide flusher writes it.
type SitewideRow struct {
	Key sitewide.Key
	// Version is the value's version (sitewide.Value.Version): the row's
	// write timestamp.
	Version uint64
	// Plays is the sum of the key's users' plays; 0 once their listens
	// were all deleted (the row is written all the same).
	Plays int64
	// Listeners is the key's users with plays.
	Listeners int
	// Name and Artist are the key's majority spelling
	// (sitewide.Value.Display); Artist is empty for artists.
	Name, Artist string
}

// SitewideStore is the sitewide flusher's store: it writes sitewide_days
// rows, each USING TIMESTAMP its Version, in unlogged single-partition
// batches of at most MaxRowsPerBatch rows, Concurrency of them in flight
// (all of an instance's partitions together). Writes are idempotent and
// order-free: writing a row again, or an older version after a newer
// one, changes nothing. No real-clock timestamp is ever written there.
type SitewideStore struct {
	s       *gocql.Session
	sem     chan struct{}
	maxRows int
	// months are the (entity, month) rows of sitewide_months this store
	// has written.
	months sync.Map
	// started are the months (sitewideMonth) whose roll-up has started.
	started sync.Map
}

// SitewideStoreConfig configures a SitewideStore.
type SitewideStoreConfig struct {
	// Concurrency is the most batches in flight. Default 4.
	Concurrency int
	// MaxRowsPerBatch splits the rows of one partition into several
	// batches. Default 1000.
	MaxRowsPerBatch int
}

// NewSitewideStore returns the store on s (opened on topk's keyspace).
func NewSitewideStore(s *gocql.Session, cfg SitewideStoreConfig) *SitewideStore {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxRowsPerBatch <= 0 {
		cfg.MaxRowsPerBatch = 1000
	}
	return &SitewideStore{s: s, sem: make(chan struct{}, cfg.Concurrency), maxRows: cfg.MaxRowsPerBatch}
}

const insertSitewideMonth = `INSERT INTO sitewide_months (entity, month) VALUES (?, ?) USING TIMESTAMP 1`

const insertSitewide = `INSERT INTO sitewide_days (entity, month, shard, item, day, bucket, plays, listeners, name, artist) ` +
	`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`

// sitewidePartition is a partition of sitewide_days.
type sitewidePartition struct {
	entity topk.Entity
	month  string
	shard  int
}

func partitionOf(k sitewide.Key) sitewidePartition {
	return sitewidePartition{entity: k.Entity, month: k.Day.UTC().Format(monthLayout), shard: SitewideShard(k.Item)}
}

// WriteSitewide writes rows, each USING TIMESTAMP its Version: the rows
// of each partition in batches of MaxRowsPerBatch (unlogged, one
// partition each), up to Concurrency batches at once. Rows with Plays 0
// are written like the others (never a DELETE). It returns the first
// error, once the batches in flight have ended; some rows may then be
// written and others not: the caller writes them all again (idempotent).
func (c *SitewideStore) WriteSitewide(ctx context.Context, rows []SitewideRow) error {
	var order []sitewidePartition
	byPart := map[sitewidePartition][]gocql.BatchEntry{}
	for i := range rows {
		r := &rows[i]
		p := partitionOf(r.Key)
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		ts := int64(min(r.Version, math.MaxInt64))
		byPart[p] = append(byPart[p], gocql.BatchEntry{Stmt: insertSitewide, Idempotent: true,
			Args: []any{string(p.entity), p.month, p.shard, int64(r.Key.Item), r.Key.Day.UTC(), int32(r.Key.Bucket),
				r.Plays, r.Listeners, r.Name, r.Artist, ts}})
	}
	if err := c.writeMonths(ctx, order); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range order {
		entries := byPart[p]
		for start := 0; start < len(entries); start += c.maxRows {
			chunk := entries[start:min(start+c.maxRows, len(entries))]
			err := c.spawn(gctx, g, func() error {
				b := c.s.NewBatch(gocql.UnloggedBatch).WithContext(gctx)
				b.Entries = chunk
				if err := c.s.ExecuteBatch(b); err != nil {
					return fmt.Errorf("sitewide_days %s %s shard %d: %w", p.entity, p.month, p.shard, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return g.Wait()
}

// spawn runs fn in g once one of the store's Concurrency slots is free,
// and gives the slot back when fn returns. The slot is taken before the
// goroutine starts: at most Concurrency goroutines wait on Cassandra,
// not one per request. If gctx ends first it waits for g and returns
// its error (or gctx's).
func (c *SitewideStore) spawn(gctx context.Context, g *errgroup.Group, fn func() error) error {
	select {
	case c.sem <- struct{}{}:
	case <-gctx.Done():
		if err := g.Wait(); err != nil {
			return err
		}
		return gctx.Err()
	}
	g.Go(func() error {
		defer func() { <-c.sem }()
		return fn()
	})
	return nil
}

// writeMonths writes the sitewide_months rows of parts' months that this
// store has not written yet, before their day rows.
func (c *SitewideStore) writeMonths(ctx context.Context, parts []sitewidePartition) error {
	for _, p := range parts {
		m := sitewideMonth{p.entity, p.month}
		if _, ok := c.months.Load(m); ok {
			continue
		}
		if err := c.s.Query(insertSitewideMonth, string(p.entity), p.month).WithContext(ctx).Idempotent(true).Exec(); err != nil {
			return fmt.Errorf("sitewide_months %s %s: %w", p.entity, p.month, err)
		}
		c.months.Store(m, struct{}{})
	}
	return nil
}

// sitewideReads bounds the partitions one SitewideRange reads at once.
const sitewideReads = SitewideShards

// sitewidePage is the page size of the reads of sitewide_days.
const sitewidePage = 5000

const selectSitewide = `SELECT item, day, plays, listeners, name, artist FROM sitewide_days WHERE entity = ? AND month = ? AND shard = ?`

// sitewideSum is what SitewideRange keeps of an item: the sums, and the
// spelling of its row with the most plays.
type sitewideSum struct {
	plays, listeners int64
	best             int64 // plays of the row Name and Artist come from
	name, artist     string
}

// add counts one row (or a partial sum's best row) into s.
func (s *sitewideSum) add(plays, listeners, best int64, name, artist string) {
	s.plays += plays
	s.listeners += listeners
	if best <= 0 {
		return
	}
	if best > s.best || best == s.best && (name < s.name || name == s.name && artist < s.artist) {
		s.best, s.name, s.artist = best, name, artist
	}
}

// SitewideRange sums entity's sitewide_days rows of the days from to to
// (UTC days, both included) per item: Plays the sum of the rows' plays,
// Listeners the sum of their listeners (a per-day sum: an upper bound of
// the distinct listeners over more than one day), Name and Artist those
// of the item's row with the most plays (ties: the smaller name, then
// artist). Items summing to 0 plays are left out; the order is none. It
// reads every shard of each month the range overlaps that has rows
// (sitewide_months), paged, up to 16 partitions at once: a range of many
// years costs what its months with listens hold, not its length. A month
// wholly in the range whose roll-up is done (sitewide_month_rollups) is
// read from its rollups (sitewide_month_items: a row per item), any other
// from its day rows; both sum to the same figures. read,
// unless nil, is called before each of those reads (the months with
// their roll-up states, each partition) and the function it returns
// after it: the api's bound on the Cassandra reads it runs and decodes at
// once (charts.Service.Read, TOPK_API_CASSANDRA_READS). Errors wrap ErrUnavailable.
func (r *Reader) SitewideRange(ctx context.Context, entity topk.Entity, from, to time.Time, read func(context.Context) (done func())) ([]topk.SitewideItem, error) {
	if read == nil {
		read = func(context.Context) func() { return func() {} }
	}
	from, to = utcDay(from), utcDay(to)
	if to.Before(from) {
		return nil, nil
	}
	s, err := r.session()
	if err != nil {
		return nil, err
	}
	done := read(ctx)
	months, err := r.sitewideMonths(ctx, s, entity, from, to)
	var states map[string]rollupState
	var years map[int]rollupState
	if err == nil && len(months) > 0 {
		states, err = rollupStates(ctx, s, entity, months[0], months[len(months)-1])
		if err == nil {
			years, err = yearStates(ctx, s, entity, yearOf(months[0]), yearOf(months[len(months)-1]))
		}
		err = unavailable("sitewide roll-up states", err)
	}
	done()
	if err != nil {
		return nil, err
	}
	// A year or month wholly in the range whose roll-up is done is read
	// from its rollups: a row per item instead of one per item, day and
	// bucket.
	type part struct {
		sitewidePartition
		year   int  // a year's rollups, or 0
		rollup bool // a month's rollups, or its days
	}
	var parts []part
	for _, m := range months {
		y := yearOf(m)
		first := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		if years[y].done && !first.Before(from) && !first.AddDate(1, 0, -1).After(to) {
			if len(parts) == 0 || parts[len(parts)-1].year != y {
				for shard := range SitewideShards {
					parts = append(parts, part{sitewidePartition: sitewidePartition{entity: entity, shard: shard}, year: y})
				}
			}
			continue
		}
		first, _ = time.Parse(monthLayout, m)
		whole := !first.Before(from) && !first.AddDate(0, 1, -1).After(to)
		for shard := range SitewideShards {
			parts = append(parts, part{sitewidePartition: sitewidePartition{entity: entity, month: m, shard: shard}, rollup: whole && states[m].done})
		}
	}
	var mu sync.Mutex
	sums := map[uint64]*sitewideSum{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sitewideReads)
	for _, p := range parts {
		g.Go(func() error {
			done := read(gctx)
			var part map[uint64]*sitewideSum
			var err error
			switch {
			case p.year != 0:
				part, err = r.readRollups(gctx, s, "sitewide_year_items", selectYearRollups, string(p.entity), p.year, p.shard)
			case p.rollup:
				part, err = r.readRollups(gctx, s, "sitewide_month_items", selectRollups, string(p.entity), p.month, p.shard)
			default:
				part, err = r.readSitewide(gctx, s, p.sitewidePartition, from, to)
			}
			done()
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for item, x := range part {
				if sum := sums[item]; sum != nil {
					sum.add(x.plays, x.listeners, x.best, x.name, x.artist)
				} else {
					sums[item] = x
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]topk.SitewideItem, 0, len(sums))
	for item, x := range sums {
		if x.plays <= 0 {
			continue
		}
		out = append(out, topk.SitewideItem{Item: topk.Item{Key: item, Name: x.name, Artist: x.artist, Plays: x.plays}, Listeners: x.listeners})
	}
	return out, nil
}

const selectSitewideMonths = `SELECT month FROM sitewide_months WHERE entity = ? AND month >= ? AND month <= ?`

// sitewideMonths are the months from from to to that sitewide_days has
// rows of (sitewide_months).
func (r *Reader) sitewideMonths(ctx context.Context, s *gocql.Session, entity topk.Entity, from, to time.Time) ([]string, error) {
	it := readOf(ctx, topk.Monthly, s, selectSitewideMonths, string(entity), from.Format(monthLayout), to.Format(monthLayout)).Iter()
	var months []string
	var m string
	for it.Scan(&m) {
		months = append(months, m)
	}
	if err := it.Close(); err != nil {
		return nil, unavailable(fmt.Sprintf("sitewide_months %s", entity), err)
	}
	return months, nil
}

// readSitewide sums one partition's rows of the days from to to per item.
func (r *Reader) readSitewide(ctx context.Context, s *gocql.Session, p sitewidePartition, from, to time.Time) (map[uint64]*sitewideSum, error) {
	it := readOf(ctx, topk.Monthly, s, selectSitewide, string(p.entity), p.month, p.shard).PageSize(sitewidePage).Iter()
	out := map[uint64]*sitewideSum{}
	var item, plays int64
	var listeners int
	var day time.Time
	var name, artist string
	for it.Scan(&item, &day, &plays, &listeners, &name, &artist) {
		if day.Before(from) || day.After(to) {
			continue
		}
		sum := out[uint64(item)]
		if sum == nil {
			sum = &sitewideSum{}
			out[uint64(item)] = sum
		}
		sum.add(plays, int64(listeners), plays, name, artist)
	}
	if err := it.Close(); err != nil {
		return nil, unavailable(fmt.Sprintf("sitewide_days %s %s shard %d", p.entity, p.month, p.shard), err)
	}
	return out, nil
}

// utcDay is t's UTC day at midnight.
func utcDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
