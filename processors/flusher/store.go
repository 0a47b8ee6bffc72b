package flusher

import (
	"context"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
)

// table is one of the item tables, all keyed (user_id, period), entity, item.
type table int

const (
	dayItems table = iota
	monthItems
	yearItems
)

func (t table) String() string {
	return [...]string{"day_items", "month_items", "year_items"}[t]
}

// dayTotal is one user_days row: a day and its total plays.
type dayTotal struct {
	day   time.Time
	plays int64
}

// store is what the flusher needs of Cassandra. cqlStore is the real one;
// the unit tests use a model with the same last-write-wins rules.
type store interface {
	// writeItems writes rows of one partition of t — part is a day
	// (time.Time) for day_items, yyyymm or yyyy (int) otherwise — with
	// timestamp ts: one single-partition batch, or several in row order.
	writeItems(ctx context.Context, t table, user string, part any, rows []row, ts int64) error
	// writeUserDays writes user_days rows of one user (one partition),
	// each USING TIMESTAMP its own plays.
	writeUserDays(ctx context.Context, user string, days []dayTotal) error
	// userDays lists the user_days rows of user in [from, to], oldest first.
	userDays(ctx context.Context, user string, from, to time.Time) ([]dayTotal, error)
	// items reads one partition of t, and the write timestamp of each
	// row's plays (the total of the state or rollup that wrote it).
	items(ctx context.Context, t table, user string, part any) ([]row, []int64, error)
}

// cqlStore is the store on a gocql session. Every request it sends holds
// one of the sem slots while in flight: sem bounds the requests one flusher
// instance has in flight, whatever the number of partitions it claims.
type cqlStore struct {
	s       *gocql.Session
	sem     chan struct{}
	maxRows int // rows per batch
}

func (c *cqlStore) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cqlStore) release() { <-c.sem }

const (
	insertUserDay = `INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?) USING TIMESTAMP ?`
	selectDays    = `SELECT day, plays FROM user_days WHERE user_id = ? AND day >= ? AND day <= ?`
)

var (
	insertItems = [...]string{
		dayItems:   `INSERT INTO day_items (user_id, day, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		monthItems: `INSERT INTO month_items (user_id, month, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		yearItems:  `INSERT INTO year_items (user_id, year, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
	}
	selectItems = [...]string{
		dayItems:   `SELECT entity, item, name, artist, plays, WRITETIME(plays) FROM day_items WHERE user_id = ? AND day = ?`,
		monthItems: `SELECT entity, item, name, artist, plays, WRITETIME(plays) FROM month_items WHERE user_id = ? AND month = ?`,
		yearItems:  `SELECT entity, item, name, artist, plays, WRITETIME(plays) FROM year_items WHERE user_id = ? AND year = ?`,
	}
)

func (c *cqlStore) batch(ctx context.Context, entries []gocql.BatchEntry) error {
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	b := c.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	b.Entries = entries
	return c.s.ExecuteBatch(b)
}

func (c *cqlStore) writeItems(ctx context.Context, t table, user string, part any, rows []row, ts int64) error {
	for start := 0; start < len(rows); start += c.maxRows {
		chunk := rows[start:min(start+c.maxRows, len(rows))]
		entries := make([]gocql.BatchEntry, 0, len(chunk))
		for _, r := range chunk {
			var artist any = r.artist
			if r.artist == "" {
				artist = gocql.UnsetValue
			}
			entries = append(entries, gocql.BatchEntry{Stmt: insertItems[t], Idempotent: true,
				Args: []any{user, part, string(r.entity), r.item, r.name, artist, r.plays, ts}})
		}
		if err := c.batch(ctx, entries); err != nil {
			return err
		}
	}
	return nil
}

func (c *cqlStore) writeUserDays(ctx context.Context, user string, days []dayTotal) error {
	for start := 0; start < len(days); start += c.maxRows {
		chunk := days[start:min(start+c.maxRows, len(days))]
		entries := make([]gocql.BatchEntry, 0, len(chunk))
		for _, d := range chunk {
			entries = append(entries, gocql.BatchEntry{Stmt: insertUserDay, Idempotent: true,
				Args: []any{user, d.day, d.plays, d.plays}})
		}
		if err := c.batch(ctx, entries); err != nil {
			return err
		}
	}
	return nil
}

func (c *cqlStore) userDays(ctx context.Context, user string, from, to time.Time) ([]dayTotal, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	reads.WithLabelValues("user_days").Inc()
	iter := c.s.Query(selectDays, user, from, to).WithContext(ctx).Idempotent(true).Iter()
	var out []dayTotal
	var d dayTotal
	for iter.Scan(&d.day, &d.plays) {
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

func (c *cqlStore) items(ctx context.Context, t table, user string, part any) ([]row, []int64, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, nil, err
	}
	defer c.release()
	reads.WithLabelValues(t.String()).Inc()
	iter := c.s.Query(selectItems[t], user, part).WithContext(ctx).Idempotent(true).Iter()
	var out []row
	var ts []int64
	var r row
	var entity string
	var w int64
	for iter.Scan(&entity, &r.item, &r.name, &r.artist, &r.plays, &w) {
		r.entity = internEntity(entity)
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
