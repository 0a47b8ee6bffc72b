package cassandra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

// ErrUnavailable wraps every error of a read: Cassandra did not answer
// (down, connecting, timed out). The api maps it to 503.
var ErrUnavailable = fmt.Errorf("cassandra %w", topk.ErrUnavailable)

// Reader answers the charts' reads of day values, rollups, raw listens
// and the user search: it is the charts.Store, and passes that port's
// contract suite (chartstest.StoreSuite, in the integration tests). It
// connects lazily and reconnects after a failure (at most one attempt per
// RetryEvery), so the api starts and serves the view while Cassandra is
// down.
type Reader struct {
	cfg        Config
	retryEvery time.Duration

	mu         sync.Mutex
	s          *gocql.Session
	connecting bool
	lastTry    time.Time
	lastErr    error
}

// NewReader returns a reader of c's keyspace; it connects on first use.
func NewReader(c Config) *Reader {
	return &Reader{cfg: c, retryEvery: 2 * time.Second}
}

// Close closes the session.
func (r *Reader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s != nil {
		solo.Delete(r.s)
		r.s.Close()
		r.s = nil
	}
}

// session returns the session, connecting when there is none and the
// last attempt is old enough. Callers arriving while a connection is
// being made get the last error at once instead of queueing behind it.
func (r *Reader) session() (*gocql.Session, error) {
	r.mu.Lock()
	if r.s != nil {
		s := r.s
		r.mu.Unlock()
		return s, nil
	}
	if r.connecting || (!r.lastTry.IsZero() && time.Since(r.lastTry) < r.retryEvery) {
		err := r.lastErr
		r.mu.Unlock()
		if err == nil {
			err = errors.New("connecting")
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	r.connecting = true
	r.mu.Unlock()

	cl := NewCluster(r.cfg)
	cl.Keyspace = r.cfg.Keyspace
	cl.Timeout = 3 * time.Second
	cl.ConnectTimeout = 2 * time.Second
	cl.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 1}
	s, err := cl.CreateSession()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.connecting, r.lastTry, r.lastErr = false, time.Now(), err
	if err != nil {
		return nil, fmt.Errorf("%w: %v %d keyspace %s: %v", ErrUnavailable, r.cfg.Hosts, r.cfg.Port, r.cfg.Keyspace, err)
	}
	r.s = s
	markSolo(s)
	return s, nil
}

// solo holds the sessions of one-node clusters (*gocql.Session → true):
// their reads are not speculated. gocql's speculative attempt takes the
// next host of the query's plan, and on a cluster of one there is none:
// it ends at once with "no hosts available in the pool", and gocql
// answers the query with the first attempt to end — so every read slower
// than the delay failed (bench-api saw 503s on the local stack).
var solo sync.Map

// markSolo records s as a one-node cluster's when system.peers is empty
// (a read it cannot make leaves speculation on).
func markSolo(s *gocql.Session) {
	var peer string
	it := s.Query(`SELECT peer FROM system.peers LIMIT 1`).Idempotent(true).Iter()
	found := it.Scan(&peer)
	if err := it.Close(); err == nil && !found {
		solo.Store(s, true)
	}
}

// speculate is the reads' client-side speculative execution: an attempt
// that has not answered after a delay is sent once more, to the next host
// of the query plan, and the first answer wins. It covers what the
// tables' speculative_retry cannot: a coordinator that stops answering,
// such as a node killed a moment ago whose connections the driver has not
// yet seen close (schemas/cassandra/004 covers a dead replica behind a
// live coordinator). Every read is idempotent. The delay is well above a
// healthy read of its kind, so that load alone rarely doubles a read: 250
// ms for single rows, user_days and day partitions (a few ms when
// healthy; the uncached p99 at 1,000 req/s was 31 ms), longer for month
// and year rollups, which hold up to a whole year's items (a heavy user's
// year is ~20k rows).
var speculate = [...]*gocql.SimpleSpeculativeExecution{
	topk.Daily:   {NumAttempts: 1, TimeoutDelay: 250 * time.Millisecond},
	topk.Monthly: {NumAttempts: 1, TimeoutDelay: 500 * time.Millisecond},
	topk.Yearly:  {NumAttempts: 1, TimeoutDelay: time.Second},
}

// read is a query of the reader: under ctx, idempotent, speculated after
// the delay of a read of a day partition's size.
func read(ctx context.Context, s *gocql.Session, stmt string, args ...any) *gocql.Query {
	return readOf(ctx, topk.Daily, s, stmt, args...)
}

// readOf is read with the speculation delay of a period kind's partition.
func readOf(ctx context.Context, kind topk.PeriodKind, s *gocql.Session, stmt string, args ...any) *gocql.Query {
	q := s.Query(stmt, args...).WithContext(ctx).Idempotent(true)
	if _, one := solo.Load(s); one {
		return q // nowhere to speculate to: see solo
	}
	return q.SetSpeculativeExecutionPolicy(speculate[kind])
}

func unavailable(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
}

// Ping runs a real query on the reader's session.
func (r *Reader) Ping(ctx context.Context) error {
	s, err := r.session()
	if err != nil {
		return err
	}
	var v string
	return unavailable("ping", read(ctx, s, `SELECT release_version FROM system.local`).Scan(&v))
}

// firstDayPage is the page size of FirstDay's read: the first row
// answers unless the user's first days had all their listens deleted.
const firstDayPage = 32

// FirstDay is the user's first day with plays (ok false: none at all).
// user_days keeps a row with plays 0 for a day whose listens were all
// deleted, so it reads the days oldest first, a page of firstDayPage rows
// at a time, until one has plays (at most the user's days, one row each).
func (r *Reader) FirstDay(ctx context.Context, user string) (day time.Time, ok bool, err error) {
	s, err := r.session()
	if err != nil {
		return time.Time{}, false, err
	}
	it := read(ctx, s, `SELECT day, plays FROM user_days WHERE user_id = ? ORDER BY day ASC`, user).PageSize(firstDayPage).Iter()
	var plays int64
	for it.Scan(&day, &plays) {
		if plays > 0 {
			ok = true
			break
		}
	}
	if err := it.Close(); err != nil {
		return time.Time{}, false, unavailable("user_days", err)
	}
	if !ok {
		return time.Time{}, false, nil
	}
	return day.UTC(), true, nil
}

// UserDays lists the user's days with plays in [from, to], oldest first:
// rows with plays 0 (days whose listens were all deleted) are left out.
func (r *Reader) UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error) {
	s, err := r.session()
	if err != nil {
		return nil, err
	}
	it := read(ctx, s, `SELECT day, plays FROM user_days WHERE user_id = ? AND day >= ? AND day <= ? ORDER BY day ASC`,
		user, from, to).PageSize(5000).Iter()
	var out []topk.DayTotal
	var d topk.DayTotal
	for it.Scan(&d.Day, &d.Plays) {
		if d.Plays <= 0 {
			continue
		}
		d.Day = d.Day.UTC()
		out = append(out, d)
	}
	return out, unavailable("user_days", it.Close())
}

var selectItems = [...]string{
	topk.Daily:   `SELECT item, name, artist, plays, first, spellings FROM day_items WHERE user_id = ? AND day = ? AND entity = ?`,
	topk.Monthly: `SELECT item, name, artist, plays, first, spellings FROM month_items WHERE user_id = ? AND month = ? AND entity = ?`,
	topk.Yearly:  `SELECT item, name, artist, plays, first, spellings FROM year_items WHERE user_id = ? AND year = ? AND entity = ?`,
}

// Items reads the items of one entity of one period, with their First
// and spellings (a row written before first existed counts from p's
// start). Rows with plays 0 (items whose listens were all deleted) are
// left out. A spellings value that does not decode is an error wrapping
// topk.ErrCorrupt, not ErrUnavailable: asking again will not help.
func (r *Reader) Items(ctx context.Context, p topk.Period, user string, entity topk.Entity) ([]topk.Item, error) {
	s, err := r.session()
	if err != nil {
		return nil, err
	}
	it := readOf(ctx, p.Kind, s, selectItems[p.Kind], user, partition(p), string(entity)).PageSize(10000).Iter()
	var out []topk.Item
	var key int64
	var x topk.Item
	var cols itemColumns
	for it.Scan(&key, &x.Name, &x.Artist, &x.Plays, &cols.first, &cols.spellings) {
		if x.Plays <= 0 {
			x, cols = topk.Item{}, itemColumns{}
			continue
		}
		x.Key = uint64(key)
		cols.fill(&x, p)
		out = append(out, x)
		x = topk.Item{}
	}
	if err := it.Close(); errors.Is(err, topk.ErrCorrupt) {
		return nil, fmt.Errorf("%s %s %s: %w", user, p, entity, err)
	} else if err != nil {
		return nil, unavailable(p.String(), err)
	}
	return out, nil
}

// Listen is one raw_listens row (the domain's topk.Listen).
type Listen = topk.Listen

// ListenPos is a position in a day's listens (topk.ListenPos).
type ListenPos = topk.ListenPos

// Listens returns up to limit listens of the user's day, newest first,
// after pos when given (rows are ordered played_at desc, identity asc).
func (r *Reader) Listens(ctx context.Context, user string, day time.Time, after *ListenPos, limit int) ([]Listen, error) {
	s, err := r.session()
	if err != nil {
		return nil, err
	}
	const cols = `SELECT played_at, identity, artist_name, track_name, album_name, track_id, artist_id, album_id, duration_ms, source FROM raw_listens`
	var q *gocql.Query
	if after != nil {
		q = read(ctx, s, cols+` WHERE user_id = ? AND day = ? AND played_at <= ?`, user, day, after.PlayedAt)
	} else {
		q = read(ctx, s, cols+` WHERE user_id = ? AND day = ?`, user, day)
	}
	it := q.PageSize(min(limit+16, 5000)).Iter()
	var out []Listen
	var l Listen
	var album, trackID, artistID, albumID, source *string
	var dur *int
	for len(out) < limit && it.Scan(&l.PlayedAt, &l.Identity, &l.Artist, &l.Track, &album, &trackID, &artistID, &albumID, &dur, &source) {
		l.PlayedAt = l.PlayedAt.UTC()
		if after != nil && l.PlayedAt.Equal(after.PlayedAt) && bytes.Compare(l.Identity, after.Identity) <= 0 {
			continue
		}
		l.Album, l.TrackID, l.ArtistID, l.AlbumID, l.Source = deref(album), deref(trackID), deref(artistID), deref(albumID), deref(source)
		if dur != nil {
			l.DurationMS = *dur
		}
		out = append(out, l)
		l, album, trackID, artistID, albumID, source, dur = Listen{}, nil, nil, nil, nil, nil, nil
	}
	return out, unavailable("raw_listens", it.Close())
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// SearchKey is the users_by_prefix partition and clustering value of a
// user id or search prefix: the folded id (listen.Normalize) and its first
// character.
func SearchKey(user string) (bucket, folded string) {
	folded = listen.Normalize(user)
	if folded == "" {
		return "", ""
	}
	_, n := utf8.DecodeRuneInString(folded)
	return folded[:n], folded
}

// InsertKnownUser is the statement that records a user for the search;
// its arguments are KnownUserArgs. Writing it again changes nothing.
const InsertKnownUser = `INSERT INTO users_by_prefix (bucket, folded, user_id) VALUES (?, ?, ?)`

// KnownUserArgs are InsertKnownUser's arguments for user.
func KnownUserArgs(user string) []any {
	b, f := SearchKey(user)
	return []any{b, f, user}
}

// SearchUsers returns up to limit user ids whose folded form starts with
// the folded prefix, in folded order.
func (r *Reader) SearchUsers(ctx context.Context, prefix string, limit int) ([]string, error) {
	bucket, folded := SearchKey(prefix)
	if folded == "" {
		return nil, nil
	}
	s, err := r.session()
	if err != nil {
		return nil, err
	}
	it := read(ctx, s, `SELECT folded, user_id FROM users_by_prefix WHERE bucket = ? AND folded >= ? AND folded < ? LIMIT ?`,
		bucket, folded, folded+string(utf8.MaxRune), limit).Iter()
	var out []string
	var f, u string
	for it.Scan(&f, &u) {
		if strings.HasPrefix(f, folded) {
			out = append(out, u)
		}
	}
	return out, unavailable("users_by_prefix", it.Close())
}
