package flusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sink"
)

const groupName = "topk-flusher"

// Group is the flusher's consumer group in a namespace.
func Group(namespace string) string { return listen.Namespaced(namespace, groupName) }

// Name labels the flusher's sink metrics (topk_sink_*{sink="flusher"});
// topk_sink_oldest_unwritten_seconds{sink="flusher"} is the flush lag.
const Name = "flusher"

var (
	daysWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_flusher_days_written_total",
		Help: "User-day states written to Cassandra (after coalescing).",
	})
	rollupsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_rollups_written_total",
		Help: "Rollups recomputed and written, by level (month, year).",
	}, []string{"level"})
	rowsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_rows_written_total",
		Help: "Rows written, by table.",
	}, []string{"table"})
	coalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_flusher_changes_coalesced_total",
		Help: "Changelog records superseded by a newer state of the same user-day within one flush.",
	})
	skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_flusher_records_skipped_total",
		Help: "Changelog records not written, by reason (tombstone, undecodable, bad_key, empty).",
	}, []string{"reason"})
)

func init() {
	prometheus.MustRegister(daysWritten, rollupsWritten, rowsWritten, coalesced, skipped)
}

// Config configures the flusher.
type Config struct {
	// Namespace prefixes the topic and the group (tests); empty in production.
	Namespace string
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// FlushInterval is how long changes are coalesced before they are
	// written (from the first unwritten change of a partition). Default 1 s
	// (TOPK_FLUSH_INTERVAL_MS).
	FlushInterval time.Duration
	// MaxBatch flushes early once a partition has this many unwritten
	// changes: it bounds memory while catching up (records are day states,
	// about 30 bytes per play; up to MaxBatch of them per claimed
	// partition are held). Default 2000.
	MaxBatch int
	// Concurrency is how many user-days, months or years are written or
	// recomputed at once within a flush. Default 8.
	Concurrency int
	// MaxRowsPerCQLBatch splits rollups larger than this into several
	// batches (tracks last, see the package doc). Default 5000.
	MaxRowsPerCQLBatch int
	// Backoff spaces retries of a failed flush. Default sink.DefaultBackoff.
	Backoff sink.Backoff
	// Log receives the logs. Default slog.Default().
	Log *slog.Logger
	// Sarama overrides the Kafka client settings (default kafka.NewSaramaConfig).
	Sarama *sarama.Config
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("flusher: no Brokers"))
	}
	if c.FlushInterval < 0 || c.MaxBatch < 0 || c.Concurrency < 0 || c.MaxRowsPerCQLBatch < 0 {
		errs = append(errs, errors.New("flusher: sizes and durations must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 2000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.MaxRowsPerCQLBatch == 0 {
		c.MaxRowsPerCQLBatch = 5000
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Flusher is the flusher: New, then Run.
type Flusher struct {
	cfg     Config
	session *gocql.Session
	log     *slog.Logger
	sink    *sink.Sink
}

// New returns a flusher on session (opened on topk's keyspace by the
// caller, who closes it after Run returns). Day values are read back at the
// session's consistency (topk's default LOCAL_QUORUM): rollups need reads
// that see the writes before them.
func New(cfg Config, session *gocql.Session) (*Flusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if session == nil {
		return nil, errors.New("flusher: nil Cassandra session")
	}
	cfg = cfg.withDefaults()
	f := &Flusher{cfg: cfg, session: session, log: cfg.Log.With("component", Name)}
	s, err := sink.New(sink.Config{
		Name:      Name,
		Brokers:   cfg.Brokers,
		Group:     Group(cfg.Namespace),
		Topic:     string(aggregator.Table(cfg.Namespace)),
		BatchSize: cfg.MaxBatch,
		Linger:    cfg.FlushInterval,
		Backoff:   cfg.Backoff,
		Log:       cfg.Log,
		Sarama:    cfg.Sarama,
	}, f)
	if err != nil {
		return nil, err
	}
	f.sink = s
	return f, nil
}

// Run flushes until ctx ends; see sink.Sink.Run.
func (f *Flusher) Run(ctx context.Context) error { return f.sink.Run(ctx) }

// Check reports partitions whose flushes keep failing (a readiness detail:
// Cassandra down does not make the flusher unready, only late).
func (f *Flusher) Check(ctx context.Context) error { return f.sink.Check(ctx) }

// userDay is one dirty user-day and its newest state.
type userDay struct {
	user string
	day  time.Time
	d    *aggregator.Day
}

type userMonth struct {
	user  string
	month time.Time // the first of the month, UTC
}

type userYear struct {
	user string
	year int
}

// coalesce keeps the newest state (highest total; on a tie the later
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
		if d.Total == 0 {
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
		if ud.d == nil || d.Total >= ud.d.Total {
			ud.d = d
		}
	}
	return out
}

// Write implements sink.Writer: one flush of a partition's changes.
func (f *Flusher) Write(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	days := f.coalesce(batch)
	if len(days) == 0 {
		return nil
	}
	var months []userMonth
	seenMonth := map[userMonth]bool{}
	var years []userYear
	seenYear := map[userYear]bool{}
	for _, ud := range days {
		m := userMonth{ud.user, time.Date(ud.day.Year(), ud.day.Month(), 1, 0, 0, 0, 0, time.UTC)}
		if !seenMonth[m] {
			seenMonth[m] = true
			months = append(months, m)
		}
		y := userYear{ud.user, ud.day.Year()}
		if !seenYear[y] {
			seenYear[y] = true
			years = append(years, y)
		}
	}
	if err := f.each(ctx, len(days), func(ctx context.Context, i int) error { return f.writeDay(ctx, days[i]) }); err != nil {
		return err
	}
	if err := f.each(ctx, len(months), func(ctx context.Context, i int) error { return f.rollupMonth(ctx, months[i]) }); err != nil {
		return err
	}
	return f.each(ctx, len(years), func(ctx context.Context, i int) error { return f.rollupYear(ctx, years[i]) })
}

// each runs fn for 0..n-1, Concurrency at a time, and returns the first error.
func (f *Flusher) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Concurrency)
	for i := range n {
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}

// row is one item row of day_items, month_items or year_items.
type row struct {
	entity aggregator.Entity
	item   int64 // the item key's bits (uint64 in package aggregator)
	name   string
	artist string
	plays  int64
}

// writeOrder is the order rows are written in when they take several
// batches: tracks last, because readers take the sum of track plays as the
// total (see the package doc).
var writeOrder = []aggregator.Entity{aggregator.Artists, aggregator.Albums, aggregator.Tracks}

const (
	insertDayItem   = `INSERT INTO day_items (user_id, day, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	insertUserDay   = `INSERT INTO user_days (user_id, day, plays) VALUES (?, ?, ?) USING TIMESTAMP ?`
	insertMonthItem = `INSERT INTO month_items (user_id, month, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	insertYearItem  = `INSERT INTO year_items (user_id, year, entity, item, name, artist, plays) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	selectDays      = `SELECT day FROM user_days WHERE user_id = ? AND day >= ? AND day <= ?`
	selectDayItems  = `SELECT entity, item, name, artist, plays FROM day_items WHERE user_id = ? AND day = ?`
	selectMonthItem = `SELECT entity, item, name, artist, plays FROM month_items WHERE user_id = ? AND month = ?`
)

// writeDay writes a user-day's items as one single-partition batch, then
// its user_days row, all with the day's total as the write timestamp.
func (f *Flusher) writeDay(ctx context.Context, ud *userDay) error {
	ts := int64(ud.d.Total)
	var rows []row
	for _, e := range writeOrder {
		for _, it := range ud.d.Items(e) {
			rows = append(rows, row{entity: e, item: int64(it.Key), name: it.Name, artist: it.Artist, plays: int64(it.Plays)})
		}
	}
	if err := f.writeRows(ctx, insertDayItem, ud.user, ud.day, rows, ts); err != nil {
		return fmt.Errorf("day_items %s %s: %w", ud.user, ud.day.Format(listen.DayLayout), err)
	}
	rowsWritten.WithLabelValues("day_items").Add(float64(len(rows)))
	if err := f.session.Query(insertUserDay, ud.user, ud.day, ts, ts).WithContext(ctx).Idempotent(true).Exec(); err != nil {
		return fmt.Errorf("user_days %s %s: %w", ud.user, ud.day.Format(listen.DayLayout), err)
	}
	rowsWritten.WithLabelValues("user_days").Inc()
	daysWritten.Inc()
	return nil
}

// writeRows writes rows of one partition (user, part) with timestamp ts:
// one unlogged batch, or several in row order when there are more than
// MaxRowsPerCQLBatch.
func (f *Flusher) writeRows(ctx context.Context, stmt, user string, part any, rows []row, ts int64) error {
	for start := 0; start < len(rows); start += f.cfg.MaxRowsPerCQLBatch {
		chunk := rows[start:min(start+f.cfg.MaxRowsPerCQLBatch, len(rows))]
		b := f.session.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		for _, r := range chunk {
			var artist any = r.artist
			if r.artist == "" {
				artist = gocql.UnsetValue
			}
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: stmt, Idempotent: true,
				Args: []any{user, part, string(r.entity), r.item, r.name, artist, r.plays, ts}})
		}
		if err := f.session.ExecuteBatch(b); err != nil {
			return err
		}
	}
	return nil
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

func (f *Flusher) readItems(ctx context.Context, stmt string, args ...any) ([]row, error) {
	iter := f.session.Query(stmt, args...).WithContext(ctx).Idempotent(true).Iter()
	var out []row
	var r row
	var entity string
	for iter.Scan(&entity, &r.item, &r.name, &r.artist, &r.plays) {
		r.entity = aggregator.Entity(entity)
		out = append(out, r)
	}
	return out, iter.Close()
}

// daysWithPlays lists the days of user in [from, to] that user_days knows,
// oldest first.
func (f *Flusher) daysWithPlays(ctx context.Context, user string, from, to time.Time) ([]time.Time, error) {
	iter := f.session.Query(selectDays, user, from, to).WithContext(ctx).Idempotent(true).Iter()
	var days []time.Time
	var d time.Time
	for iter.Scan(&d) {
		days = append(days, d)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	for i, j := 0, len(days)-1; i < j; i, j = i+1, j-1 { // the table is clustered newest first
		days[i], days[j] = days[j], days[i]
	}
	return days, nil
}

// readPeriods reads the item rows of each period (concurrently, at most
// Concurrency at once) and sums them, oldest period first.
func (f *Flusher) readPeriods(ctx context.Context, n int, read func(ctx context.Context, i int) ([]row, error)) (*rollup, error) {
	parts := make([][]row, n)
	if err := f.each(ctx, n, func(ctx context.Context, i int) error {
		rows, err := read(ctx, i)
		parts[i] = rows
		return err
	}); err != nil {
		return nil, err
	}
	r := newRollup()
	for _, rows := range parts {
		for _, x := range rows {
			r.add(x)
		}
	}
	return r, nil
}

// rollupMonth recomputes month_items of (user, month) from the day values.
func (f *Flusher) rollupMonth(ctx context.Context, um userMonth) error {
	month := um.month.Year()*100 + int(um.month.Month())
	days, err := f.daysWithPlays(ctx, um.user, um.month, um.month.AddDate(0, 1, -1))
	if err != nil {
		return fmt.Errorf("month %s %d: read user_days: %w", um.user, month, err)
	}
	r, err := f.readPeriods(ctx, len(days), func(ctx context.Context, i int) ([]row, error) {
		return f.readItems(ctx, selectDayItems, um.user, days[i])
	})
	if err != nil {
		return fmt.Errorf("month %s %d: read day_items: %w", um.user, month, err)
	}
	rows, total := r.result()
	if total == 0 {
		return fmt.Errorf("month %s %d: no day values read back after writing them", um.user, month)
	}
	if err := f.writeRows(ctx, insertMonthItem, um.user, month, rows, total); err != nil {
		return fmt.Errorf("month_items %s %d: %w", um.user, month, err)
	}
	rowsWritten.WithLabelValues("month_items").Add(float64(len(rows)))
	rollupsWritten.WithLabelValues("month").Inc()
	return nil
}

// rollupYear recomputes year_items of (user, year) from the month rollups.
func (f *Flusher) rollupYear(ctx context.Context, uy userYear) error {
	first := time.Date(uy.year, 1, 1, 0, 0, 0, 0, time.UTC)
	days, err := f.daysWithPlays(ctx, uy.user, first, first.AddDate(1, 0, -1))
	if err != nil {
		return fmt.Errorf("year %s %d: read user_days: %w", uy.user, uy.year, err)
	}
	var months []int
	for _, d := range days {
		m := d.Year()*100 + int(d.Month())
		if len(months) == 0 || months[len(months)-1] != m {
			months = append(months, m)
		}
	}
	r, err := f.readPeriods(ctx, len(months), func(ctx context.Context, i int) ([]row, error) {
		return f.readItems(ctx, selectMonthItem, uy.user, months[i])
	})
	if err != nil {
		return fmt.Errorf("year %s %d: read month_items: %w", uy.user, uy.year, err)
	}
	rows, total := r.result()
	if total == 0 {
		return fmt.Errorf("year %s %d: no month rollups read back after writing them", uy.user, uy.year)
	}
	if err := f.writeRows(ctx, insertYearItem, uy.user, uy.year, rows, total); err != nil {
		return fmt.Errorf("year_items %s %d: %w", uy.user, uy.year, err)
	}
	rowsWritten.WithLabelValues("year_items").Add(float64(len(rows)))
	rollupsWritten.WithLabelValues("year").Inc()
	return nil
}
