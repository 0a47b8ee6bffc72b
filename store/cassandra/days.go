package cassandra

import (
	"context"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
)

// DayStore is the flusher's store: it writes the day values (day_items,
// then user_days) and the rollups (month_items, year_items), every row
// USING TIMESTAMP a version (a day state's Version, a rollup's sum of its
// days' versions), and reads them back with the write timestamp of each
// row's plays. Every request it sends holds one of Concurrency slots
// while in flight, so the slots bound the requests one flusher instance
// has in flight, whatever the number of partitions it claims. Writes and
// reads are idempotent and run at the session's consistency (topk's
// default LOCAL_QUORUM: the rollups need reads that see the writes before
// them). No real-clock timestamp is ever written to these tables: see the
// flusher's package doc.
type DayStore struct {
	s       *gocql.Session
	sem     chan struct{}
	maxRows int
	onRead  func(table string)
}

// DayStoreConfig configures a DayStore.
type DayStoreConfig struct {
	// Concurrency is the most requests in flight. Default 4.
	Concurrency int
	// MaxRowsPerBatch splits the rows of one partition into several
	// batches, in the order given. Default 5000.
	MaxRowsPerBatch int
	// OnRead, when set, is called with the table's name for each read
	// once it holds its slot (the flusher counts its reads).
	OnRead func(table string)
}

// NewDayStore returns the store on s (opened on topk's keyspace).
func NewDayStore(s *gocql.Session, cfg DayStoreConfig) *DayStore {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxRowsPerBatch <= 0 {
		cfg.MaxRowsPerBatch = 5000
	}
	if cfg.OnRead == nil {
		cfg.OnRead = func(string) {}
	}
	return &DayStore{s: s, sem: make(chan struct{}, cfg.Concurrency), maxRows: cfg.MaxRowsPerBatch, onRead: cfg.OnRead}
}

func (c *DayStore) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *DayStore) release() { <-c.sem }

const (
	insertUserDay = `INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?) USING TIMESTAMP ?`
	selectDays    = `SELECT day, plays, WRITETIME(plays) FROM user_days WHERE user_id = ? AND day >= ? AND day <= ?`
)

var (
	itemTables  = [...]string{topk.Daily: "day_items", topk.Monthly: "month_items", topk.Yearly: "year_items"}
	insertItems = [...]string{
		topk.Daily:   `INSERT INTO day_items (user_id, day, entity, item, name, artist, plays, first, spellings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		topk.Monthly: `INSERT INTO month_items (user_id, month, entity, item, name, artist, plays, first, spellings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		topk.Yearly:  `INSERT INTO year_items (user_id, year, entity, item, name, artist, plays, first, spellings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
	}
	selectItemsAt = [...]string{
		topk.Daily:   `SELECT entity, item, name, artist, plays, WRITETIME(plays), first, spellings FROM day_items WHERE user_id = ? AND day = ?`,
		topk.Monthly: `SELECT entity, item, name, artist, plays, WRITETIME(plays), first, spellings FROM month_items WHERE user_id = ? AND month = ?`,
		topk.Yearly:  `SELECT entity, item, name, artist, plays, WRITETIME(plays), first, spellings FROM year_items WHERE user_id = ? AND year = ?`,
	}
)

// partition is p's partition value in its item table (with the user):
// the day (a date), yyyymm or yyyy (ints).
func partition(p topk.Period) any {
	switch p.Kind {
	case topk.Monthly:
		return p.Start.Year()*100 + int(p.Start.Month())
	case topk.Yearly:
		return p.Start.Year()
	}
	return p.Start
}

func (c *DayStore) batch(ctx context.Context, entries []gocql.BatchEntry) error {
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	b := c.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	b.Entries = entries
	return c.s.ExecuteBatch(b)
}

// WriteItems writes rows of user's partition of p's item table, each USING
// TIMESTAMP ts: one single-partition unlogged batch, or several of
// MaxRowsPerBatch rows in the order of rows (the flusher puts tracks
// last). An empty artist is left unset. A row's key is stored as a bigint
// (its bits); its First and spellings go to first and spellings
// (spellingsValue: always written, like name and plays).
func (c *DayStore) WriteItems(ctx context.Context, p topk.Period, user string, rows []topk.EntityItem, ts int64) error {
	stmt, part := insertItems[p.Kind], partition(p)
	for start := 0; start < len(rows); start += c.maxRows {
		chunk := rows[start:min(start+c.maxRows, len(rows))]
		entries := make([]gocql.BatchEntry, 0, len(chunk))
		for _, r := range chunk {
			var artist any = r.Artist
			if r.Artist == "" {
				artist = gocql.UnsetValue
			}
			entries = append(entries, gocql.BatchEntry{Stmt: stmt, Idempotent: true,
				Args: []any{user, part, string(r.Entity), int64(r.Key), r.Name, artist, r.Plays, r.First, spellingsValue(&r.Item), ts}})
		}
		if err := c.batch(ctx, entries); err != nil {
			return err
		}
	}
	return nil
}

// WriteUserDays writes user_days rows of user (one partition), each USING
// TIMESTAMP its own Version (plays 0 included: a day whose listens were
// all deleted), in batches of MaxRowsPerBatch rows.
func (c *DayStore) WriteUserDays(ctx context.Context, user string, days []topk.DayTotal) error {
	for start := 0; start < len(days); start += c.maxRows {
		chunk := days[start:min(start+c.maxRows, len(days))]
		entries := make([]gocql.BatchEntry, 0, len(chunk))
		for _, d := range chunk {
			entries = append(entries, gocql.BatchEntry{Stmt: insertUserDay, Idempotent: true,
				Args: []any{user, d.Day, d.Plays, d.Version}})
		}
		if err := c.batch(ctx, entries); err != nil {
			return err
		}
	}
	return nil
}

// UserDays lists the user_days rows of user in [from, to], oldest first,
// plays 0 included, each with its Version: the write timestamp of its
// plays (rows written before deletions existed were written USING
// TIMESTAMP their plays, which was their state's version too).
func (c *DayStore) UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	c.onRead("user_days")
	iter := c.s.Query(selectDays, user, from, to).WithContext(ctx).Idempotent(true).Iter()
	var out []topk.DayTotal
	var d topk.DayTotal
	for iter.Scan(&d.Day, &d.Plays, &d.Version) {
		out = append(out, d)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 { // the table is clustered newest first
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Items reads user's partition of p's item table, and the write timestamp
// of each row's plays (the version of the state or rollup that wrote it).
// Rows with plays 0 are returned too. A row written before first existed counts from p's start; a spellings
// value that does not decode is an error (wrapping topk.ErrCorrupt).
func (c *DayStore) Items(ctx context.Context, p topk.Period, user string) ([]topk.EntityItem, []int64, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, nil, err
	}
	defer c.release()
	c.onRead(itemTables[p.Kind])
	iter := c.s.Query(selectItemsAt[p.Kind], user, partition(p)).WithContext(ctx).Idempotent(true).Iter()
	var out []topk.EntityItem
	var ts []int64
	var r topk.EntityItem
	var entity string
	var key, w int64
	var cols itemColumns
	for iter.Scan(&entity, &key, &r.Name, &r.Artist, &r.Plays, &w, &cols.first, &cols.spellings) {
		r.Entity, r.Key = internEntity(entity), uint64(key)
		cols.fill(&r.Item, p)
		out = append(out, r)
		ts = append(ts, w)
	}
	if err := iter.Close(); err != nil {
		return nil, nil, err
	}
	return out, ts, nil
}

// internEntity returns the package constant for a stored entity name, so
// rows read and cached do not each hold a copy.
func internEntity(s string) topk.Entity {
	for _, e := range topk.Entities {
		if string(e) == s {
			return e
		}
	}
	return topk.Entity(s)
}
