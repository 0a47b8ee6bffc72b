package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/views"
)

// View is what the charts read of the Goka view of recent days
// (views.View implements it).
type View interface {
	// Recovered reports whether the view caught up; checked per request.
	Recovered() bool
	// FirstDay is the oldest day the view holds at now (it holds every
	// later day).
	FirstDay(now time.Time) time.Time
	// Range returns the user's days in [from, to] it holds, oldest first.
	Range(user string, from, to time.Time) ([]views.Day, error)
}

// Store is what the charts read of Cassandra (cassandra.Reader implements
// it). Every error means Cassandra did not answer.
type Store interface {
	// FirstDay is the user's first day with plays; ok false: none.
	FirstDay(ctx context.Context, user string) (day time.Time, ok bool, err error)
	// UserDays lists the user's days with plays in [from, to], oldest first.
	UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error)
	// Items reads one entity's items of one day, month or year.
	Items(ctx context.Context, p topk.Period, user, entity string) ([]topk.Item, error)
	// Listens returns up to limit raw listens of a day, newest first,
	// after a position.
	Listens(ctx context.Context, user string, day time.Time, after *cassandra.ListenPos, limit int) ([]cassandra.Listen, error)
	// SearchUsers returns up to limit users whose folded id starts with
	// the folded prefix.
	SearchUsers(ctx context.Context, prefix string, limit int) ([]string, error)
}

// ChartsConfig configures the public read endpoints.
type ChartsConfig struct {
	// View holds the recent days; nil: Cassandra answers everything.
	View View
	// Store is Cassandra.
	Store Store
	// Cache is Redis; nil: answers are cached in this process only.
	Cache Cache
	// CacheTTL is how long a Cassandra answer is reused (TOPK_CACHE_TTL);
	// 0 disables caching.
	CacheTTL time.Duration
	// LocalCacheBytes bounds the answers decoded in this process
	// (TOPK_CACHE_LOCAL_MB). Default (0) 64 MiB; negative: none.
	LocalCacheBytes int64
	// CachePrefix starts every Redis key (the keyspace, so tests and
	// deployments sharing a Redis never meet).
	CachePrefix string
	// Timeout bounds the store reads of one request. Default 5 s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Lag tells how far Cassandra is behind the view (LagMonitor); answers
	// that read Cassandra carry it. nil: unknown.
	Lag LagSource
}

// entity is a chart kind as the URL names it.
type entity struct {
	stored     topk.Entity // as stored: "track", "artist", "album"
	withArtist bool
}

var entities = map[string]entity{
	"tracks":  {topk.Tracks, true},
	"artists": {topk.Artists, false},
	"albums":  {topk.Albums, true},
}

// MaxOffset bounds the offset parameter.
const MaxOffset = 1_000_000

// The source of an answer: the view, Cassandra, or both.
const (
	SourceView      = "view"
	SourceCassandra = "cassandra"
	SourceMixed     = "mixed"
)

// sourceKey is the echo context key under which handlers leave the
// source of their answer for the metrics.
const sourceKey = "topk.source"

// MountCharts adds the public read endpoints:
//
//	GET /v1/users/{user}/top/{tracks|artists|albums}?range=|from=&to=&k=&offset=
//	GET /v1/users/{user}/activity?range=|from=&to=
//	GET /v1/users/{user}/listens?from=&to=&limit=&cursor=
//	GET /v1/users?prefix=&limit=
func (s *Server) MountCharts(cfg ChartsConfig) error {
	if cfg.Store == nil {
		return errors.New("api: charts need a Store")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LocalCacheBytes == 0 {
		cfg.LocalCacheBytes = 64 << 20
	}
	cache, err := newAnswers(cfg.Cache, cfg.CacheTTL, cfg.LocalCacheBytes, cfg.CachePrefix+"topk:v1:", s.log, cfg.Now, s.cfg.Registerer)
	if err != nil {
		return err
	}
	h := &charts{cfg: cfg, log: s.log, cache: cache}
	s.echo.GET("/v1/users/:user/top/:entity", h.top)
	s.echo.GET("/v1/users/:user/activity", h.activity)
	s.echo.GET("/v1/users/:user/listens", h.listens)
	s.echo.GET("/v1/users", h.search)
	return nil
}

type charts struct {
	cfg   ChartsConfig
	log   *slog.Logger
	cache *answers
}

func (h *charts) now() time.Time { return h.cfg.Now().UTC() }

// storeError turns a store failure into a 503 (the request was fine).
func (h *charts) storeError(c echo.Context, err error) error {
	h.log.Warn("store read failed", "path", c.Request().URL.Path, "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return Errorf(CodeUnavailable, "", "Cassandra did not answer in time and the view cannot answer this request")
	}
	return Errorf(CodeUnavailable, "", "Cassandra is unavailable and the view cannot answer this request")
}

func (h *charts) userOf(c echo.Context) (string, error) {
	u := userParam(c)
	return u, validUser(u)
}

// rangeJSON is the resolved range of an answer.
type rangeJSON struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

func day(t time.Time) string { return t.Format(listen.DayLayout) }

// split is where the days of a range come from.
type split struct {
	from, to time.Time // clamped; empty when !any
	any      bool      // the clamped range has days
	// Days before viewFrom come from Cassandra, the others from the view
	// (viewFrom is after every day when the view cannot answer).
	viewFrom time.Time
	viewDays []views.Day // the user's view days in [max(from, viewFrom), to]
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
// holds, when recovered) and Cassandra (the others).
func (h *charts) plan(ctx context.Context, user string, r dateRange, now time.Time) (*split, error) {
	today := midnight(now)
	sp := &split{viewFrom: Earliest.AddDate(10000, 0, 0)}
	var recent []views.Day
	if v := h.cfg.View; v != nil && v.Recovered() {
		vf := v.FirstDay(now)
		days, err := v.Range(user, vf, today.AddDate(0, 0, 1))
		if err != nil {
			h.log.Warn("view read failed: answering from Cassandra", "user", user, "err", err)
		} else {
			sp.viewFrom, recent = vf, days
		}
	}
	if r.All {
		first, ok, err := h.firstDay(ctx, user)
		if err != nil {
			return nil, err
		}
		if len(recent) > 0 && (!ok || recent[0].Date.Before(first)) {
			first, ok = recent[0].Date, true
		}
		if !ok {
			return nil, Errorf(CodeNotFound, "user", "no listens of user "+strconv.Quote(user))
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
func (h *charts) firstDay(ctx context.Context, user string) (time.Time, bool, error) {
	type fd struct {
		Day time.Time `json:"day"`
		OK  bool      `json:"ok"`
	}
	v, _, err := fetch(ctx, h.cache, "first:"+user, jsonCodec[fd](), func(ctx context.Context) (fd, error) {
		d, ok, err := h.cfg.Store.FirstDay(ctx, user)
		return fd{d, ok}, err
	})
	return v.Day, v.OK, err
}

// exists reports whether the user has listens at all, for a 404 on an
// empty answer. Unknown (Cassandra down, the view holds nothing of the
// user) counts as existing: an empty chart is a true answer for a real
// user, a 404 would not be.
func (h *charts) exists(ctx context.Context, user string, sp *split) bool {
	if sp.hasFirst {
		return true
	}
	_, ok, err := h.firstDay(ctx, user)
	return ok || err != nil
}

// topAnswer is the Top-K answer of DESIGN.md.
type topAnswer struct {
	User   string    `json:"user"`
	Entity string    `json:"entity"`
	Range  rangeJSON `json:"range"`
	Source string    `json:"source"`
	AsOf   time.Time `json:"as_of"`
	freshness
	Total int       `json:"total"`
	Items []topItem `json:"items"`
}

type topItem struct {
	Rank   int               `json:"rank"`
	Name   string            `json:"name"`
	Artist string            `json:"artist,omitempty"`
	Plays  int64             `json:"plays"`
	IDs    map[string]string `json:"ids"`
}

func (h *charts) top(c echo.Context) error {
	user, err := h.userOf(c)
	if err != nil {
		return err
	}
	name := c.Param("entity")
	e, ok := entities[name]
	if !ok {
		return Errorf(CodeNotFound, "entity", "unknown chart "+strconv.Quote(name)+": tracks, artists or albums")
	}
	q := c.QueryParams()
	now := h.now()
	r, err := parseRange(q, now)
	if err != nil {
		return err
	}
	k, err := intParam(q, "k", 10, 1, 1000)
	if err != nil {
		return err
	}
	offset, err := intParam(q, "offset", 0, 0, MaxOffset)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), h.cfg.Timeout)
	defer cancel()
	sp, err := h.plan(ctx, user, r, now)
	if err != nil {
		return h.planError(c, err)
	}
	ans := &topAnswer{User: user, Entity: name, Range: rangeJSON{r.Name, day(sp.from), day(sp.to)}, Source: sp.source(), AsOf: now, Items: []topItem{}}
	if r.All || !sp.any {
		ans.Range.From, ans.Range.To = day(r.From), day(r.To)
		if r.All {
			ans.Range.From = day(sp.first)
		}
	}
	c.Set(sourceKey, ans.Source)
	var older *tally
	if from, to, ok := sp.cass(); ok {
		t, asOf, err := h.tally(ctx, user, e.stored, from, to)
		if err != nil {
			return h.storeError(c, err)
		}
		older, ans.AsOf = t, asOf
	}
	var recent *accumulator
	if len(sp.viewDays) > 0 {
		recent = getAccumulator()
		defer recent.release()
		for i := range sp.viewDays {
			for _, it := range sp.viewDays[i].Items(e.stored) {
				recent.add(it.Key, it.Name, it.Artist, it.Plays)
			}
		}
	}
	p := rank(older, recent, offset, k)
	if p.total == 0 && !h.exists(ctx, user, sp) {
		return Errorf(CodeNotFound, "user", "no listens of user "+strconv.Quote(user))
	}
	ans.Total = p.total
	for i, it := range p.items {
		ti := topItem{Rank: offset + i + 1, Name: it.name, Plays: it.plays, IDs: map[string]string{string(e.stored): hexKey(it.key)}}
		if e.withArtist {
			ti.Artist = it.artist
			ti.IDs["artist"] = hexKey(listen.ArtistKey(it.artist))
		}
		ans.Items = append(ans.Items, ti)
	}
	ans.freshness = h.freshness(c, ans.Source)
	return c.JSON(http.StatusOK, ans)
}

func (h *charts) planError(c echo.Context, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	return h.storeError(c, err)
}

// hexKey renders a 64-bit item key as 16 hex digits (JSON numbers lose
// precision past 2^53).
func hexKey(k uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[k&0xf]
		k >>= 4
	}
	return string(b[:])
}

// tally is the Cassandra part of a chart: the entity's items of the user
// in [from, to], cached.
func (h *charts) tally(ctx context.Context, user string, e topk.Entity, from, to time.Time) (*tally, time.Time, error) {
	key := "items:" + string(e) + ":" + day(from) + ":" + day(to) + ":" + user
	return fetch(ctx, h.cache, key, tallyCodec, func(ctx context.Context) (*tally, error) {
		return h.readTally(ctx, user, e, from, to)
	})
}

var tallyCodec = codec[*tally]{
	encode: (*tally).encode,
	decode: decodeTally,
	size:   (*tally).size,
}

// readTally reads the items of [from, to] from the fewest partitions:
// whole years from year_items, whole months from month_items, and the days
// of the at most two partial months from day_items — or their month's
// rollup when the month has no plays outside the range.
func (h *charts) readTally(ctx context.Context, user string, e topk.Entity, from, to time.Time) (*tally, error) {
	periods, err := h.periods(ctx, user, from, to)
	if err != nil {
		return nil, err
	}
	results := make([][]topk.Item, len(periods))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, p := range periods {
		g.Go(func() error {
			items, err := h.cfg.Store.Items(gctx, p, user, string(e))
			results[i] = items
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	n := 0
	for _, r := range results {
		n += len(r)
	}
	acc := newAccumulator(n / 2)
	for _, r := range results { // periods are in time order: the latest spelling wins
		for _, it := range r {
			acc.add(it.Key, it.Name, it.Artist, it.Plays)
		}
	}
	return acc.tally(), nil
}

// periods covers [from, to] with year, month and day partitions, in time
// order.
func (h *charts) periods(ctx context.Context, user string, from, to time.Time) ([]topk.Period, error) {
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
		// A partial month: its days with plays, or its rollup when all of
		// them fall inside [d, end] (the current month, the first month of
		// "all").
		days, err := h.cfg.Store.UserDays(ctx, user, m.Start, m.End())
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

// activityAnswer is plays per day.
type activityAnswer struct {
	User   string    `json:"user"`
	Range  rangeJSON `json:"range"`
	Source string    `json:"source"`
	AsOf   time.Time `json:"as_of"`
	freshness
	Plays int64      `json:"plays"`
	Days  []dayPlays `json:"days"`
}

type dayPlays struct {
	Day   string `json:"day"`
	Plays int64  `json:"plays"`
}

func (h *charts) activity(c echo.Context) error {
	user, err := h.userOf(c)
	if err != nil {
		return err
	}
	now := h.now()
	r, err := parseRange(c.QueryParams(), now)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), h.cfg.Timeout)
	defer cancel()
	sp, err := h.plan(ctx, user, r, now)
	if err != nil {
		return h.planError(c, err)
	}
	ans := &activityAnswer{User: user, Range: rangeJSON{r.Name, day(sp.from), day(sp.to)}, Source: sp.source(), AsOf: now, Days: []dayPlays{}}
	if r.All {
		ans.Range.From = day(sp.first)
	} else if !sp.any {
		ans.Range.From, ans.Range.To = day(r.From), day(r.To)
	}
	c.Set(sourceKey, ans.Source)
	if from, to, ok := sp.cass(); ok {
		days, asOf, err := h.userDays(ctx, user, from, to)
		if err != nil {
			return h.storeError(c, err)
		}
		ans.AsOf = asOf
		for _, d := range days {
			ans.Days = append(ans.Days, dayPlays{day(d.Day), d.Plays})
			ans.Plays += d.Plays
		}
	}
	for _, d := range sp.viewDays {
		if d.Plays > 0 {
			ans.Days = append(ans.Days, dayPlays{day(d.Date), d.Plays})
			ans.Plays += d.Plays
		}
	}
	if ans.Plays == 0 && !h.exists(ctx, user, sp) {
		return Errorf(CodeNotFound, "user", "no listens of user "+strconv.Quote(user))
	}
	ans.freshness = h.freshness(c, ans.Source)
	return c.JSON(http.StatusOK, ans)
}

// userDays is the user's days with plays in [from, to] (cached).
func (h *charts) userDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, time.Time, error) {
	return fetch(ctx, h.cache, "days:"+day(from)+":"+day(to)+":"+user, jsonCodec[[]topk.DayTotal](),
		func(ctx context.Context) ([]topk.DayTotal, error) {
			return h.cfg.Store.UserDays(ctx, user, from, to)
		})
}

// search is the user search of the charts page.
func (h *charts) search(c echo.Context) error {
	q := c.QueryParams()
	ps, ok := q["prefix"]
	if !ok || ps[0] == "" {
		return Errorf(CodeInvalid, "prefix", "prefix is required: the first characters of a user id")
	}
	prefix := ps[0]
	_, folded := cassandra.SearchKey(prefix)
	if len(prefix) > listen.MaxUserIDBytes || folded == "" || validPrefix(prefix) != nil {
		return Errorf(CodeInvalid, "prefix", "prefix must be 1–128 bytes of UTF-8 without '|' or control characters")
	}
	limit, err := intParam(q, "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	c.Set(sourceKey, SourceCassandra)
	ctx, cancel := context.WithTimeout(c.Request().Context(), h.cfg.Timeout)
	defer cancel()
	users, asOf, err := fetch(ctx, h.cache, "users:"+strconv.Itoa(limit)+":"+folded, jsonCodec[[]string](),
		func(ctx context.Context) ([]string, error) { return h.cfg.Store.SearchUsers(ctx, prefix, limit) })
	if err != nil {
		return h.storeError(c, err)
	}
	if users == nil {
		users = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"prefix": prefix, "as_of": asOf, "users": users})
}

// validPrefix accepts what a user id may start with (it may end with
// whitespace: more follows).
func validPrefix(p string) error {
	if len(p) < listen.MaxUserIDBytes {
		p += "x"
	}
	if _, _, ok := listen.SplitKey(p + "|2002-01-01"); !ok {
		return fmt.Errorf("bad prefix")
	}
	return nil
}

// listensAnswer is one page of raw listens, newest first.
type listensAnswer struct {
	User    string       `json:"user"`
	From    string       `json:"from"`
	To      string       `json:"to"`
	AsOf    time.Time    `json:"as_of"`
	Listens []listenJSON `json:"listens"`
	// Next is the cursor of the next page; absent on the last page.
	Next string `json:"next,omitempty"`
}

type listenJSON struct {
	PlayedAt   time.Time `json:"played_at"`
	Artist     string    `json:"artist_name"`
	Track      string    `json:"track_name"`
	Album      string    `json:"album_name,omitempty"`
	TrackID    string    `json:"track_id,omitempty"`
	ArtistID   string    `json:"artist_id,omitempty"`
	AlbumID    string    `json:"album_id,omitempty"`
	DurationMS int       `json:"duration_ms,omitempty"`
	Source     string    `json:"source,omitempty"`
}

func (h *charts) listens(c echo.Context) error {
	user, err := h.userOf(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	now := h.now()
	r := dateRange{Name: "custom", From: Earliest, To: midnight(now).AddDate(0, 0, 1)}
	if _, ok := q["range"]; ok {
		return Errorf(CodeInvalid, "range", "listens take from and to (YYYY-MM-DD), not range")
	}
	if _, hasFrom := q["from"]; hasFrom {
		if r.From, err = dayParam(q.Get("from"), "from"); err != nil {
			return err
		}
	}
	if _, hasTo := q["to"]; hasTo {
		if r.To, err = dayParam(q.Get("to"), "to"); err != nil {
			return err
		}
	}
	if r.To.Before(r.From) {
		return Errorf(CodeInvalid, "to", "to is before from")
	}
	limit, err := intParam(q, "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	var cur *cursor
	if v, ok := q["cursor"]; ok {
		if cur, err = decodeCursor(v[0]); err != nil {
			return Errorf(CodeInvalid, "cursor", "cursor is not one this api returned")
		}
	}
	c.Set(sourceKey, SourceCassandra)
	ans := &listensAnswer{User: user, From: day(r.From), To: day(r.To), Listens: []listenJSON{}}
	from, to, any := clamp(r.From, r.To, now)
	if cur != nil && (cur.day.Before(from) || cur.day.After(to)) {
		return Errorf(CodeInvalid, "cursor", "cursor does not belong to this from/to")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), h.cfg.Timeout)
	defer cancel()
	ans.AsOf = now
	if any {
		curKey := ""
		if cur != nil {
			curKey = cur.encode()
		}
		page, asOf, err := fetch(ctx, h.cache, "listens:"+day(from)+":"+day(to)+":"+strconv.Itoa(limit)+":"+curKey+":"+user,
			jsonCodec[listensAnswer](), func(ctx context.Context) (listensAnswer, error) {
				return h.readListens(ctx, user, from, to, cur, limit, now)
			})
		if err != nil {
			return h.storeError(c, err)
		}
		ans.AsOf, ans.Listens, ans.Next = asOf, page.Listens, page.Next
	}
	if len(ans.Listens) == 0 && cur == nil {
		sp := &split{}
		if !h.exists(ctx, user, sp) {
			return Errorf(CodeNotFound, "user", "no listens of user "+strconv.Quote(user))
		}
	}
	return c.JSON(http.StatusOK, ans)
}

func dayParam(v, name string) (time.Time, error) {
	d, ok := parseDay(v)
	if !ok {
		return time.Time{}, Errorf(CodeInvalid, name, name+" must be a date YYYY-MM-DD")
	}
	return d, nil
}

// readListens walks the user's days with plays from the newest, from the
// cursor on, until limit listens. The days come from user_days and, for
// days not flushed yet, from the view.
func (h *charts) readListens(ctx context.Context, user string, from, to time.Time, cur *cursor, limit int, now time.Time) (listensAnswer, error) {
	var ans listensAnswer
	dayList, err := h.cfg.Store.UserDays(ctx, user, from, to)
	if err != nil {
		return ans, err
	}
	var days []time.Time
	for _, d := range dayList {
		days = append(days, d.Day)
	}
	if v := h.cfg.View; v != nil && v.Recovered() {
		if recent, err := v.Range(user, from, to); err == nil {
			for _, d := range recent {
				days = append(days, d.Date)
			}
		}
	}
	slices.SortFunc(days, func(a, b time.Time) int { return b.Compare(a) }) // newest first
	days = slices.CompactFunc(days, time.Time.Equal)
	for _, d := range days {
		if cur != nil && d.After(cur.day) {
			continue
		}
		var after *cassandra.ListenPos
		if cur != nil && d.Equal(cur.day) {
			after = &cassandra.ListenPos{PlayedAt: cur.playedAt, Identity: cur.identity}
		}
		rows, err := h.cfg.Store.Listens(ctx, user, d, after, limit-len(ans.Listens))
		if err != nil {
			return ans, err
		}
		for _, l := range rows {
			ans.Listens = append(ans.Listens, listenJSON{PlayedAt: l.PlayedAt, Artist: l.Artist, Track: l.Track, Album: l.Album,
				TrackID: l.TrackID, ArtistID: l.ArtistID, AlbumID: l.AlbumID, DurationMS: l.DurationMS, Source: l.Source})
		}
		if len(ans.Listens) >= limit {
			last := rows[len(rows)-1]
			ans.Next = (&cursor{day: d, playedAt: last.PlayedAt, identity: last.Identity}).encode()
			break
		}
	}
	return ans, nil
}
