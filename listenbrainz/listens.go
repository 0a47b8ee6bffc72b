package listenbrainz

import (
	"context"
	"time"

	"github.com/topk-charts/topk/charts"
)

// Reader is what the read endpoints ask of the charts service
// (charts.Service implements it).
type Reader interface {
	Listens(ctx context.Context, q charts.ListensQuery) (*charts.ListensAnswer, error)
	Activity(ctx context.Context, user string, r charts.Range) (*charts.ActivityAnswer, error)
}

// Listen is a listen as ListenBrainz answers it.
type Listen struct {
	ListenedAt int64 `json:"listened_at"`
	// InsertedAt is when ListenBrainz stored the listen; topk does not
	// keep that, so it is 0 (ListenBrainz's value for unknown).
	InsertedAt    int64         `json:"inserted_at"`
	RecordingMSID string        `json:"recording_msid"`
	UserName      string        `json:"user_name"`
	TrackMetadata TrackMetadata `json:"track_metadata"`
}

// TrackMetadata is a listen's names and additional_info.
type TrackMetadata struct {
	ArtistName     string         `json:"artist_name"`
	TrackName      string         `json:"track_name"`
	ReleaseName    string         `json:"release_name,omitempty"`
	AdditionalInfo map[string]any `json:"additional_info"`
}

// FromChart is l (a listen of the charts service) as ListenBrainz
// answers it. additional_info has what the event contract kept:
// recording_msid, duration_ms, and the ids that are MBIDs
// (recording_mbid, release_mbid, artist_mbids); the listen's source is
// submission_client.
func FromChart(user string, l charts.ListenJSON) Listen {
	msid := MSID(l.Artist, l.Track)
	info := map[string]any{"recording_msid": msid}
	if l.DurationMS > 0 {
		info["duration_ms"] = l.DurationMS
	}
	if id, ok := ParseMSID(l.TrackID); ok {
		info["recording_mbid"] = id
	}
	if id, ok := ParseMSID(l.AlbumID); ok {
		info["release_mbid"] = id
	}
	if id, ok := ParseMSID(l.ArtistID); ok {
		info["artist_mbids"] = []string{id}
	}
	if l.Source != "" {
		info["submission_client"] = l.Source
	}
	return Listen{ListenedAt: l.PlayedAt.Unix(), RecordingMSID: msid, UserName: user,
		TrackMetadata: TrackMetadata{ArtistName: l.Artist, TrackName: l.Track, ReleaseName: l.Album, AdditionalInfo: info}}
}

// ListensQuery is GET /1/user/{user}/listens: MinTS and MaxTS are
// exclusive bounds in Unix seconds (nil: none).
type ListensQuery struct {
	User         string
	Count        int
	MinTS, MaxTS *int64
	Now          time.Time
}

// ListensPage is the payload of a listens answer.
type ListensPage struct {
	Count   int      `json:"count"`
	Listens []Listen `json:"listens"`
	// LatestListenTS and OldestListenTS are the user's newest and oldest
	// listen over all time (0: none).
	LatestListenTS int64  `json:"latest_listen_ts"`
	OldestListenTS int64  `json:"oldest_listen_ts"`
	UserID         string `json:"user_id"`
}

// pageSize is how many listens a walk asks the charts service for at a
// time.
const pageSize = charts.MaxListens

// Listens answers q as ListenBrainz does: newest first; without MinTS the
// newest Count before MaxTS; with MinTS the oldest Count after it (still
// newest first). The days a MinTS query walks are narrowed with the
// user's plays per day first, so it reads about Count listens, not every
// listen since MinTS.
func Listens(ctx context.Context, r Reader, q ListensQuery) (*ListensPage, error) {
	page := &ListensPage{Listens: []Listen{}, UserID: q.User}
	latest, oldest, days, err := bounds(ctx, r, q.User, q.Now)
	if err != nil {
		return nil, err
	}
	page.LatestListenTS, page.OldestListenTS = latest, oldest
	in := func(t int64) bool {
		return (q.MinTS == nil || t > *q.MinTS) && (q.MaxTS == nil || t < *q.MaxTS)
	}
	from, to := charts.Earliest, charts.LastDay(q.Now)
	if q.MaxTS != nil {
		to = minTime(to, dayOf(*q.MaxTS-1))
	}
	if q.MinTS != nil {
		from = maxTime(from, dayOf(*q.MinTS+1))
	}
	if q.Count == 0 || from.After(to) || latest == 0 {
		return page, nil
	}
	if q.MinTS == nil {
		err := walk(ctx, r, q.User, from, to, func(l charts.ListenJSON) bool {
			if in(l.PlayedAt.Unix()) {
				page.Listens = append(page.Listens, FromChart(q.User, l))
			}
			return len(page.Listens) < q.Count
		})
		page.Count = len(page.Listens)
		return page, err
	}
	// The oldest Count after MinTS: the days from `from` until, past the
	// first (which may hold listens before MinTS), they hold Count plays.
	var sum int64
	for _, d := range days {
		day, ok := charts.ParseDay(d.Day)
		if !ok || !day.After(from) || day.After(to) {
			continue
		}
		if sum += d.Plays; sum >= int64(q.Count) {
			to = day
			break
		}
	}
	var all []Listen
	err = walk(ctx, r, q.User, from, to, func(l charts.ListenJSON) bool {
		if in(l.PlayedAt.Unix()) {
			all = append(all, FromChart(q.User, l))
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(all) > q.Count {
		all = all[len(all)-q.Count:] // newest first: the oldest are last
	}
	page.Listens, page.Count = all, len(all)
	return page, nil
}

// bounds are the user's newest and oldest listen times (0, 0: none) and
// their days with plays over all time, oldest first.
func bounds(ctx context.Context, r Reader, user string, now time.Time) (latest, oldest int64, days []charts.DayPlays, err error) {
	ans, err := r.Listens(ctx, charts.ListensQuery{User: user, From: charts.Earliest, To: charts.LastDay(now), Limit: 1})
	if err != nil || len(ans.Listens) == 0 {
		return 0, 0, nil, err
	}
	latest = ans.Listens[0].PlayedAt.Unix()
	act, err := r.Activity(ctx, user, charts.Named("all"))
	if err != nil || len(act.Days) == 0 {
		return latest, latest, nil, err
	}
	first, ok := charts.ParseDay(act.Days[0].Day)
	if !ok {
		return latest, latest, act.Days, nil
	}
	oldest = latest
	err = walk(ctx, r, user, first, first, func(l charts.ListenJSON) bool {
		oldest = min(oldest, l.PlayedAt.Unix())
		return true
	})
	return latest, oldest, act.Days, err
}

// walk hands each listen of the user in [from, to] (days) to fn, newest
// first, until fn returns false or none are left.
func walk(ctx context.Context, r Reader, user string, from, to time.Time, fn func(charts.ListenJSON) bool) error {
	q := charts.ListensQuery{User: user, From: from, To: to, Limit: pageSize}
	for {
		ans, err := r.Listens(ctx, q)
		if err != nil {
			return err
		}
		for _, l := range ans.Listens {
			if !fn(l) {
				return nil
			}
		}
		if ans.Next == "" {
			return nil
		}
		if q.After, err = charts.ParseCursor(ans.Next); err != nil {
			return err
		}
	}
}

// dayOf is the UTC day of Unix second ts, within what charts accepts.
func dayOf(ts int64) time.Time {
	if ts < charts.Earliest.Unix() {
		return charts.Earliest.AddDate(0, 0, -1) // before every listen
	}
	return charts.Midnight(time.Unix(ts, 0))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
