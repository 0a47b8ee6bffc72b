package charts

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/topk-charts/topk"
)

// ListensQuery asks for a page of a user's listens in [From, To], newest
// first.
type ListensQuery struct {
	User string
	// From and To are UTC days, both inclusive (Earliest and LastDay:
	// everything).
	From, To time.Time
	// Limit is the page size (1–MaxListens).
	Limit int
	// After is where the previous page ended (its Next); nil: the start.
	After *Cursor
}

// ListensAnswer is one page of listens, newest first.
type ListensAnswer struct {
	User    string       `json:"user"`
	From    string       `json:"from"`
	To      string       `json:"to"`
	AsOf    time.Time    `json:"as_of"`
	Listens []ListenJSON `json:"listens"`
	// Next is the cursor of the next page (ParseCursor); absent on the
	// last page.
	Next string `json:"next,omitempty"`
}

// ListenJSON is one listen of an answer.
type ListenJSON struct {
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

// Validate checks the query, in the order the api reads its parameters.
func (q *ListensQuery) Validate() error {
	if err := ValidUser(q.User); err != nil {
		return err
	}
	if err := Custom(q.From, q.To).Validate(); err != nil {
		return err
	}
	return bound("limit", q.Limit, 1, MaxListens)
}

// Listens is a page of the user's listens: the days with plays (from
// user_days and, for days not flushed yet, the view) walked from the
// newest, from the cursor on, until Limit listens; cached.
func (s *Service) Listens(ctx context.Context, q ListensQuery) (*ListensAnswer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	now := s.Now()
	ans := &ListensAnswer{User: q.User, From: day(q.From), To: day(q.To), Listens: []ListenJSON{}}
	from, to, any := clamp(q.From, q.To, now)
	cur := q.After
	if cur != nil && (cur.day.Before(from) || cur.day.After(to)) {
		return nil, topk.Invalid("cursor", "cursor does not belong to this from/to")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ans.AsOf = now
	if any {
		curKey := ""
		if cur != nil {
			curKey = cur.encode()
		}
		page, asOf, err := fetch(ctx, s.cache, "listens:"+day(from)+":"+day(to)+":"+strconv.Itoa(q.Limit)+":"+curKey+":"+s.userKey(q.User),
			jsonCodec[ListensAnswer](), func(ctx context.Context) (ListensAnswer, error) {
				return s.readListens(ctx, q.User, from, to, cur, q.Limit)
			})
		if err != nil {
			return nil, s.storeError(err, "user", q.User)
		}
		ans.AsOf, ans.Listens, ans.Next = asOf, page.Listens, page.Next
	}
	if len(ans.Listens) == 0 && cur == nil && !s.exists(ctx, q.User, &split{}) {
		return nil, noListens(q.User)
	}
	return ans, nil
}

// readListens walks the user's days with plays from the newest, from the
// cursor on, until limit listens. The days come from user_days and, for
// days not flushed yet, from the view.
func (s *Service) readListens(ctx context.Context, user string, from, to time.Time, cur *Cursor, limit int) (ListensAnswer, error) {
	var ans ListensAnswer
	dayList, err := s.cfg.Store.UserDays(ctx, user, from, to)
	if err != nil {
		return ans, err
	}
	var days []time.Time
	for _, d := range dayList {
		days = append(days, d.Day)
	}
	if v := s.cfg.View; v != nil && v.Recovered() {
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
		var after *topk.ListenPos
		if cur != nil && d.Equal(cur.day) {
			after = &topk.ListenPos{PlayedAt: cur.playedAt, Identity: cur.identity}
		}
		rows, err := s.cfg.Store.Listens(ctx, user, d, after, limit-len(ans.Listens))
		if err != nil {
			return ans, err
		}
		for _, l := range rows {
			ans.Listens = append(ans.Listens, ListenJSON{PlayedAt: l.PlayedAt, Artist: l.Artist, Track: l.Track, Album: l.Album,
				TrackID: l.TrackID, ArtistID: l.ArtistID, AlbumID: l.AlbumID, DurationMS: l.DurationMS, Source: l.Source})
		}
		if len(ans.Listens) >= limit {
			last := rows[len(rows)-1]
			ans.Next = (&Cursor{day: d, playedAt: last.PlayedAt, identity: last.Identity}).encode()
			break
		}
	}
	return ans, nil
}
