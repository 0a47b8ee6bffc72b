package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/sitewide"
	"github.com/topk-charts/topk/internal/ratelimit"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/listenbrainz"
)

// The ListenBrainz-compatible routes (package listenbrainz has the wire
// format, its checks and its ranges; this file the HTTP side). Scrobblers
// and ListenBrainz client libraries pointed at this server's address use
// them instead of api.listenbrainz.org's.

// TokenAuthenticator finds the user of a user API token
// (store/postgres implements it).
type TokenAuthenticator interface {
	Authenticate(ctx context.Context, token string) (user string, ok bool, err error)
}

// ListenPublisher sends listens, and deletes of listens, to
// user.listen.raw and returns once Kafka acknowledged every one
// (crawler.KafkaPublisher implements it).
type ListenPublisher interface {
	Publish(ctx context.Context, batch []listen.Listen) error
	// PublishDelete sends d's record (listen.Delete.Encode) keyed by
	// d.UserID, with the header source: source.
	PublishDelete(ctx context.Context, d listen.Delete, source string) error
}

// NowPlayingStore keeps each user's playing-now listen (JSON) for a
// while (store/redis implements it).
type NowPlayingStore interface {
	SetNowPlaying(ctx context.Context, user string, v []byte, ttl time.Duration) error
	// GetNowPlaying is user's playing now; ok false when there is none.
	GetNowPlaying(ctx context.Context, user string) (v []byte, ok bool, err error)
}

// ListenBrainzConfig wires the /1/ routes.
type ListenBrainzConfig struct {
	// Charts answers the reads (the same service as /v1/).
	Charts Charts
	// Tokens authenticates submissions; nil: every submission is a 401.
	Tokens TokenAuthenticator
	// Publisher takes submitted listens and deletes; nil: submissions and
	// deletes are a 503.
	Publisher ListenPublisher
	// NowPlaying keeps playing-now submissions; nil: they are a 503.
	NowPlaying NowPlayingStore
	// Limits is the event contract's name limit (TOPK_MAX_NAME_CHARS).
	Limits listen.Limits
}

// MountListenBrainz adds the ListenBrainz routes, each behind the
// per-client rate limit with ListenBrainz's X-RateLimit-* headers and
// answering CORS preflights as ListenBrainz does:
//
//	GET  /1/validate-token
//	POST /1/submit-listens
//	POST /1/delete-listen
//	GET  /1/user/{user}/playing-now
//	GET  /1/user/{user}/listens?count=&min_ts=&max_ts=
//	GET  /1/user/{user}/listen-count
//	GET  /1/stats/user/{user}/{artists|recordings|releases|release-groups}?range=&count=&offset=
//	GET  /1/stats/user/{user}/listening-activity?range=
//	GET  /1/stats/sitewide/{artists|recordings|releases|release-groups}?range=&count=&offset=
//
// The sitewide stats ask the server's Config.Sitewide.
func (s *Server) MountListenBrainz(cfg ListenBrainzConfig) {
	h := &lbHandler{cfg: cfg, srv: s}
	route := func(method, path string, fn echo.HandlerFunc) {
		s.echo.Add(method, path, fn, lbCORS, s.rateLimit)
		s.echo.OPTIONS(path, lbPreflight(method), lbCORS)
	}
	route(http.MethodGet, "/1/validate-token", h.validateToken)
	route(http.MethodPost, "/1/submit-listens", h.submit)
	route(http.MethodPost, "/1/delete-listen", h.deleteListen)
	route(http.MethodGet, "/1/user/:user/playing-now", h.playingNow)
	route(http.MethodGet, "/1/user/:user/listens", h.listens)
	route(http.MethodGet, "/1/user/:user/listen-count", h.listenCount)
	route(http.MethodGet, "/1/stats/user/:user/listening-activity", h.activity)
	route(http.MethodGet, "/1/stats/user/:user/:entity", h.stats)
	route(http.MethodGet, "/1/stats/sitewide/:entity", h.sitewideStats)
}

type lbHandler struct {
	cfg ListenBrainzConfig
	srv *Server
}

// lbCORS sets ListenBrainz's CORS headers: any origin may call the API
// (browser scrobblers do), with the Authorization header, and read the
// rate-limit headers.
func lbCORS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "21600")
		h.Set("Access-Control-Expose-Headers", strings.Join([]string{ratelimit.HeaderRemaining, ratelimit.HeaderLimit, ratelimit.HeaderReset, ratelimit.HeaderResetIn}, ","))
		return next(c)
	}
}

// lbPreflight answers a CORS preflight of a route taking method.
func lbPreflight(method string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Access-Control-Allow-Methods", method+", OPTIONS")
		return c.NoContent(http.StatusOK)
	}
}

// lbError is a ListenBrainz error answer: {"code": code, "error": msg}.
func lbError(code int, msg string) *listenbrainz.Error {
	return listenbrainz.NewError(code, msg)
}

// lbStatus is the ListenBrainz answer of an error of the charts service or
// the api's limits: the status StatusOf gives, ListenBrainz's body shape,
// its message for an unknown user.
func lbStatus(err error, user string) *listenbrainz.Error {
	var le *listenbrainz.Error
	if errors.As(err, &le) {
		return le
	}
	status, e := StatusOf(err)
	if status == http.StatusNotFound && user != "" {
		return lbError(status, "Cannot find user: "+user)
	}
	return lbError(status, e.Message)
}

// lbUser reads the {user} path parameter.
func lbUser(c echo.Context) (string, error) {
	user := userParam(c)
	if charts.ValidUser(user) != nil {
		return "", lbError(http.StatusNotFound, "Cannot find user: "+user)
	}
	return user, nil
}

// authenticate finds the user of the request's Authorization header with
// ListenBrainz's messages ("Token <token>"; like ListenBrainz, the word
// before the token is not checked).
func (h *lbHandler) authenticate(c echo.Context) (string, error) {
	v := c.Request().Header.Get(echo.HeaderAuthorization)
	if v == "" {
		return "", lbError(http.StatusUnauthorized, "You need to provide an Authorization header.")
	}
	_, token, ok := strings.Cut(v, " ")
	if !ok {
		return "", lbError(http.StatusUnauthorized, "Provided Authorization header is invalid.")
	}
	user, ok, err := h.lookup(c.Request().Context(), strings.TrimSpace(token))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", lbError(http.StatusUnauthorized, "Invalid authorization token.")
	}
	return user, nil
}

func (h *lbHandler) lookup(ctx context.Context, token string) (string, bool, error) {
	if h.cfg.Tokens == nil || token == "" {
		return "", false, nil
	}
	user, ok, err := h.cfg.Tokens.Authenticate(ctx, token)
	if err != nil {
		h.srv.log.Error("token lookup failed", "err", err)
		return "", false, lbError(http.StatusServiceUnavailable, "Cannot check the token right now.")
	}
	return user, ok, nil
}

// validateToken answers GET /1/validate-token: the token of an
// "Authorization: Token …" header, else of ?token=.
func (h *lbHandler) validateToken(c echo.Context) error {
	token := c.QueryParam("token")
	if v := c.Request().Header.Get(echo.HeaderAuthorization); strings.HasPrefix(strings.ToLower(v), "token ") {
		token = strings.TrimSpace(v[len("token "):])
	}
	if token == "" {
		return lbError(http.StatusBadRequest, "You need to provide an Authorization token.")
	}
	user, ok, err := h.lookup(c.Request().Context(), token)
	if err != nil {
		return err
	}
	if !ok {
		return c.JSON(http.StatusOK, map[string]any{"code": 200, "message": "Token invalid.", "valid": false})
	}
	return c.JSON(http.StatusOK, map[string]any{"code": 200, "message": "Token valid.", "valid": true, "user_name": user})
}

// submit answers POST /1/submit-listens: the payload is checked whole
// (ListenBrainz's rules, then the event contract's), then every listen is
// produced to user.listen.raw and the answer waits for Kafka's
// acknowledgements; playing_now goes to Redis only.
func (h *lbHandler) submit(c echo.Context) error {
	user, err := h.authenticate(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, listenbrainz.MaxPayloadBytes+1))
	if err != nil {
		return lbError(http.StatusBadRequest, "Cannot read the request body: "+err.Error())
	}
	now := h.cfg.Charts.Now()
	sub, lerr := listenbrainz.ParseSubmission(body, now)
	if lerr != nil {
		return lerr
	}
	ctx := c.Request().Context()
	if sub.Type == listenbrainz.ListenTypePlayingNow {
		if h.cfg.NowPlaying == nil {
			return lbError(http.StatusServiceUnavailable, "Playing now is not kept by this server.")
		}
		if err := h.putNowPlaying(ctx, user, sub.Listens[0]); err != nil {
			h.srv.log.Error("playing now not kept", "user", user, "err", err)
			return lbError(http.StatusServiceUnavailable, "Cannot keep playing now right now.")
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
	batch := make([]listen.Listen, 0, len(sub.Listens))
	for _, sl := range sub.Listens {
		l, lerr := sl.Listen(user, h.cfg.Limits, now)
		if lerr != nil {
			return lerr
		}
		batch = append(batch, l)
	}
	if h.cfg.Publisher == nil {
		return lbError(http.StatusServiceUnavailable, "Listens are not accepted by this server.")
	}
	if err := h.cfg.Publisher.Publish(ctx, batch); err != nil {
		h.srv.log.Error("submitted listens not acknowledged", "user", user, "listens", len(batch), "err", err)
		return lbError(http.StatusServiceUnavailable, "Listens could not be stored right now; nothing may be counted twice, so submit them again.")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// deleteListen answers POST /1/delete-listen: the token's user's listen
// at listened_at with that recording_msid is taken back, as ListenBrainz
// does (listenbrainz.ParseDeleteListen has its checks and messages). The
// delete record goes to user.listen.raw through the submissions' producer
// (keyed by the user, after the user's listens) and the answer waits for
// Kafka's acknowledgement; the pipeline then takes the listen out of
// raw_listens and the counts (a listen that does not exist is no error,
// as in ListenBrainz).
func (h *lbHandler) deleteListen(c echo.Context) error {
	user, err := h.authenticate(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, listenbrainz.MaxDeleteBytes+1))
	if err != nil {
		return lbError(http.StatusBadRequest, "Cannot read the request body: "+err.Error())
	}
	d, lerr := listenbrainz.ParseDeleteListen(user, c.Request().Header.Get(echo.HeaderContentType), body, h.cfg.Charts.Now())
	if lerr != nil {
		return lerr
	}
	if h.cfg.Publisher == nil {
		return lbError(http.StatusServiceUnavailable, "Listens are not deleted by this server.")
	}
	d.Album = h.storedAlbum(c.Request().Context(), d)
	if err := h.cfg.Publisher.PublishDelete(c.Request().Context(), d, listenbrainz.Source); err != nil {
		h.srv.log.Error("listen delete not acknowledged", "user", user, "listened_at", d.PlayedAt.Unix(), "msid", d.MSID, "err", err)
		return lbError(http.StatusServiceUnavailable, "We couldn't delete the listen. Please try again later.")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// storedAlbum is the album name the listen d deletes was stored with in
// raw_listens ("" for none), read through the charts' /listens pages of
// its day; nil when it is not found there (not written yet, or no such
// listen) or cannot be read within a second. The aggregator needs it only
// for a listen counted before its state recorded each listen's album
// (listen.Delete.Album).
func (h *lbHandler) storedAlbum(ctx context.Context, d listen.Delete) *string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	day := d.PlayedAt.UTC().Truncate(24 * time.Hour)
	q := charts.ListensQuery{User: d.UserID, From: day, To: day, Limit: charts.MaxListens}
	for range 4 { // a day holds at most a few pages (TOPK_MAX_PLAYS_PER_DAY)
		ans, err := h.cfg.Charts.Listens(ctx, q)
		if err != nil {
			return nil
		}
		for _, l := range ans.Listens { // newest first
			if l.PlayedAt.After(d.PlayedAt) {
				continue
			}
			if l.PlayedAt.Before(d.PlayedAt) {
				return nil
			}
			if listen.MSID(l.Artist, l.Track) == d.MSID {
				album := l.Album
				return &album
			}
		}
		if ans.Next == "" {
			return nil
		}
		if q.After, err = charts.ParseCursor(ans.Next); err != nil {
			return nil
		}
	}
	return nil
}

// putNowPlaying keeps a playing-now listen for its duration, unless the
// one kept has the same track and artist (ListenBrainz then keeps the
// first and its expiry).
func (h *lbHandler) putNowPlaying(ctx context.Context, user string, sl listenbrainz.Submitted) error {
	np, ttl := listenbrainz.NewNowPlaying(user, sl)
	if old, ok, err := h.cfg.NowPlaying.GetNowPlaying(ctx, user); err != nil {
		return err
	} else if ok {
		var kept listenbrainz.NowPlaying
		if json.Unmarshal(old, &kept) == nil && kept.SameTrack(np) {
			return nil
		}
	}
	b, err := json.Marshal(np)
	if err != nil {
		return err
	}
	return h.cfg.NowPlaying.SetNowPlaying(ctx, user, b, ttl)
}

// playingNow answers GET /1/user/{user}/playing-now.
func (h *lbHandler) playingNow(c echo.Context) error {
	user, err := lbUser(c)
	if err != nil {
		return err
	}
	listens := []json.RawMessage{}
	if h.cfg.NowPlaying != nil {
		np, ok, err := h.cfg.NowPlaying.GetNowPlaying(c.Request().Context(), user)
		if err != nil {
			h.srv.log.Error("playing now not read", "user", user, "err", err)
			return lbError(http.StatusServiceUnavailable, "Cannot read playing now right now.")
		}
		if ok && json.Valid(np) {
			listens = append(listens, np)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"payload": map[string]any{
		"count": len(listens), "user_id": user, "playing_now": true, "listens": listens,
	}})
}

// lbInt reads an integer query parameter with ListenBrainz's message
// (msg names the value); absent: def.
func lbInt(c echo.Context, name string, def int64, msg string) (int64, bool, error) {
	v, ok := c.QueryParams()[name]
	if !ok {
		return def, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
	if err != nil {
		return 0, false, lbError(http.StatusBadRequest, msg+v[0])
	}
	return n, true, nil
}

// lbCount reads count (default 25, at most 1000 as ListenBrainz clamps it).
func lbCount(c echo.Context, message string) (int, error) {
	n, _, err := lbInt(c, "count", listenbrainz.DefaultItemsPerGet, message)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, lbError(http.StatusBadRequest, "'count' should be a non-negative integer")
	}
	return int(min(n, listenbrainz.MaxItemsPerGet)), nil
}

// listens answers GET /1/user/{user}/listens: newest first; max_ts and
// min_ts are exclusive bounds in Unix seconds; with min_ts, the oldest
// count listens after it (still newest first), as ListenBrainz does.
func (h *lbHandler) listens(c echo.Context) error {
	user, err := lbUser(c)
	if err != nil {
		return err
	}
	maxTS, hasMax, err := lbInt(c, "max_ts", 0, "Incorrect max_ts timestamp argument: ")
	if err != nil {
		return err
	}
	minTS, hasMin, err := lbInt(c, "min_ts", 0, "Incorrect min_ts timestamp argument: ")
	if err != nil {
		return err
	}
	if hasMax && hasMin && maxTS <= minTS {
		return lbError(http.StatusBadRequest, "max_ts should be greater than min_ts")
	}
	count, err := lbCount(c, "Invalid count argument: ")
	if err != nil {
		return err
	}
	now := h.cfg.Charts.Now()
	q := listenbrainz.ListensQuery{User: user, Count: count, Now: now}
	if hasMax {
		q.MaxTS = &maxTS
	}
	if hasMin {
		q.MinTS = &minTS
	}
	c.Set(sourceKey, charts.SourceCassandra)
	page, err := listenbrainz.Listens(c.Request().Context(), h.cfg.Charts, q)
	if err != nil {
		return lbStatus(h.srv.busy(c, err), user)
	}
	return c.JSON(http.StatusOK, map[string]any{"payload": page})
}

// listenCount answers GET /1/user/{user}/listen-count: every counted
// listen of the user (the all-time activity's plays).
func (h *lbHandler) listenCount(c echo.Context) error {
	user, err := lbUser(c)
	if err != nil {
		return err
	}
	ans, err := h.cfg.Charts.Activity(c.Request().Context(), user, charts.Named("all"))
	if err != nil {
		return lbStatus(h.srv.busy(c, err), user)
	}
	c.Set(sourceKey, ans.Source)
	return c.JSON(http.StatusOK, map[string]any{"payload": map[string]int64{"count": ans.Plays}})
}

// lbRange reads range (default all_time).
func lbRange(c echo.Context) string {
	if r := c.QueryParam("range"); r != "" {
		return r
	}
	return listenbrainz.DefaultStatsRange
}

// stats answers GET /1/stats/user/{user}/{artists|recordings|releases|
// release-groups} from the charts service's Top over the range's days.
func (h *lbHandler) stats(c echo.Context) error {
	user, err := lbUser(c)
	if err != nil {
		return err
	}
	q, err := h.statsParams(c)
	if err != nil || q.past {
		return err
	}
	ans, err := h.cfg.Charts.Top(c.Request().Context(), charts.TopQuery{User: user, Entity: q.kind.Entity, Range: q.chartsRange,
		K: max(q.count, 1), Offset: q.offset})
	if err != nil {
		return lbStatus(h.srv.busy(c, err), user)
	}
	c.Set(sourceKey, ans.Source)
	if ans.Total == 0 {
		return c.NoContent(http.StatusNoContent) // ListenBrainz: no statistics for this range
	}
	if q.count == 0 {
		ans.Items = ans.Items[:0]
	}
	return c.JSON(http.StatusOK, map[string]any{"payload": listenbrainz.EntityStats(q.kind, user, q.name, q.period, q.offset, ans)})
}

// lbStats are the parameters of an entity stats request, user's or
// sitewide.
type lbStats struct {
	kind        listenbrainz.StatsEntity
	name        string // the range name
	period      listenbrainz.Period
	chartsRange charts.Range
	offset      int
	count       int // clamped at MaxItemsPerGet; 0 asks for no items
	// past: offset is beyond charts.MaxOffset, the answer (a 204) sent.
	past bool
}

// statsParams reads an entity stats request as ListenBrainz does, the
// first bad parameter answering: the {entity} of the path (another is
// ListenBrainz's 404), range (default all_time; another name is a 400
// "Invalid range: <name>"), offset, count (each not a non-negative
// integer: a 400 "'<param>' should be a non-negative integer"). An offset
// past charts.MaxOffset is answered here with a 204 (no items there).
func (h *lbHandler) statsParams(c echo.Context) (lbStats, error) {
	kind, ok := listenbrainz.StatsEntities[c.Param("entity")]
	if !ok {
		return lbStats{}, lbError(http.StatusNotFound, "The requested URL was not found on the server.")
	}
	name := lbRange(c)
	now := h.cfg.Charts.Now()
	p, err := listenbrainz.StatsPeriod(name, now)
	if err != nil {
		return lbStats{}, lbError(http.StatusBadRequest, err.Error())
	}
	offset, _, err := lbInt(c, "offset", 0, "'offset' should be a non-negative integer")
	if err != nil || offset < 0 {
		return lbStats{}, lbError(http.StatusBadRequest, "'offset' should be a non-negative integer")
	}
	count, err := lbCount(c, "")
	if err != nil {
		return lbStats{}, lbError(http.StatusBadRequest, "'count' should be a non-negative integer")
	}
	if offset > charts.MaxOffset {
		return lbStats{past: true}, c.NoContent(http.StatusNoContent)
	}
	return lbStats{kind: kind, name: name, period: p, chartsRange: lbChartsRange(name, p, now), offset: int(offset), count: count}, nil
}

// sitewideStats answers GET /1/stats/sitewide/{artists|recordings|
// releases|release-groups} from the sitewide query service
// (Config.Sitewide) over the range's days, with the user stats'
// parameters and ListenBrainz's sitewide payload
// (listenbrainz.SitewideStats). recordings are topk's tracks, artists its
// artists; releases and release-groups both answer topk's albums, since
// topk has no release-group identity apart from the album (artist and
// album name). No sitewide service: a 503.
func (h *lbHandler) sitewideStats(c echo.Context) error {
	q, err := h.statsParams(c)
	if err != nil || q.past {
		return err
	}
	svc := h.srv.cfg.Sitewide
	if svc == nil {
		return lbError(http.StatusServiceUnavailable, "Sitewide statistics are not served by this server.")
	}
	ans, err := svc.Top(c.Request().Context(), sitewide.Query{Entity: q.kind.Entity, Range: q.chartsRange, K: max(q.count, 1), Offset: q.offset})
	if err != nil {
		return lbStatus(h.srv.busy(c, err), "")
	}
	c.Set(sourceKey, ans.Source)
	if ans.Total == 0 {
		return c.NoContent(http.StatusNoContent) // ListenBrainz: no statistics for this range
	}
	if q.count == 0 {
		ans.Items = ans.Items[:0]
	}
	return c.JSON(http.StatusOK, map[string]any{"payload": listenbrainz.SitewideStats(q.kind, q.name, q.period, q.offset, q.count, ans)})
}

// lbChartsRange is the charts range of a ListenBrainz period: "all" for
// all_time, else its days up to the last that can hold listens.
func lbChartsRange(name string, p listenbrainz.Period, now time.Time) charts.Range {
	if name == "all_time" {
		return charts.Named("all")
	}
	first, last := p.Days()
	if l := charts.LastDay(now); last.After(l) {
		last = l
	}
	return charts.Custom(first, last)
}

// activity answers GET /1/stats/user/{user}/listening-activity: the
// range's buckets, each with its plays.
func (h *lbHandler) activity(c echo.Context) error {
	user, err := lbUser(c)
	if err != nil {
		return err
	}
	name := lbRange(c)
	now := h.cfg.Charts.Now()
	p, buckets, err := listenbrainz.ActivityBuckets(name, now)
	if err != nil {
		return lbError(http.StatusBadRequest, err.Error())
	}
	ans, err := h.cfg.Charts.Activity(c.Request().Context(), user, lbChartsRange(name, p, now))
	if err != nil {
		return lbStatus(h.srv.busy(c, err), user)
	}
	c.Set(sourceKey, ans.Source)
	if ans.Plays == 0 {
		return c.NoContent(http.StatusNoContent)
	}
	return c.JSON(http.StatusOK, map[string]any{"payload": listenbrainz.Activity(user, name, p, buckets, ans)})
}

// lbJSON writes a ListenBrainz error answer.
func lbJSON(c echo.Context, e *listenbrainz.Error) {
	b, err := json.Marshal(e)
	if err != nil {
		b = []byte(`{"code":500,"error":"internal error"}`)
	}
	_ = c.JSONBlob(e.Code, b)
}
