package charts

import (
	"context"
	"strconv"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

// ActivityAnswer is a user's plays per day over a range: only the days
// with plays, oldest first.
type ActivityAnswer struct {
	User   string    `json:"user"`
	Range  RangeJSON `json:"range"`
	Source string    `json:"source"`
	AsOf   time.Time `json:"as_of"`
	Freshness
	Plays int64      `json:"plays"`
	Days  []DayPlays `json:"days"`
}

// DayPlays is one day of an activity answer.
type DayPlays struct {
	Day   string `json:"day"`
	Plays int64  `json:"plays"`
}

// Activity is the user's plays per day over r: the view's days and
// Cassandra's user_days (cached) for the others.
func (s *Service) Activity(ctx context.Context, user string, r Range) (*ActivityAnswer, error) {
	if err := ValidUser(user); err != nil {
		return nil, err
	}
	now := s.Now()
	x, err := resolve(r, now)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	sp, err := s.plan(ctx, user, &x, now)
	if err != nil {
		return nil, err
	}
	ans := &ActivityAnswer{User: user, Range: RangeJSON{x.Name, day(sp.from), day(sp.to)}, Source: sp.source(), AsOf: now, Days: []DayPlays{}}
	if x.All {
		ans.Range.From = day(sp.first)
	} else if !sp.any {
		ans.Range.From, ans.Range.To = day(x.From), day(x.To)
	}
	if from, to, ok := sp.cass(); ok {
		days, asOf, err := s.olderDays(ctx, user, from, to)
		if err != nil {
			return nil, withSource(s.storeError(err, "user", user), ans.Source)
		}
		ans.AsOf = asOf
		for _, d := range days {
			if d.Plays <= 0 { // the store leaves out days whose listens were all deleted; a second guard
				continue
			}
			ans.Days = append(ans.Days, DayPlays{day(d.Day), d.Plays})
			ans.Plays += d.Plays
		}
	}
	for _, d := range sp.viewDays {
		if d.Plays > 0 {
			ans.Days = append(ans.Days, DayPlays{day(d.Date), d.Plays})
			ans.Plays += d.Plays
		}
	}
	if ans.Plays == 0 && !s.exists(ctx, user, sp) {
		return nil, withSource(noListens(user), ans.Source)
	}
	ans.Freshness = s.freshness(ans.Source)
	return ans, nil
}

// olderDays is the Cassandra part of an activity answer: the user's days
// with plays in [from, to] narrowed to the user's first day (fromFirst),
// so that ranges reaching before it share a cache entry.
func (s *Service) olderDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, time.Time, error) {
	from, to, ok, asOf, err := s.fromFirst(ctx, user, from, to)
	if err != nil || !ok {
		return nil, asOf, err
	}
	days, daysAsOf, err := s.userDays(ctx, user, from, to)
	if err != nil {
		return nil, time.Time{}, err
	}
	return days, oldest(asOf, daysAsOf), nil
}

// userDays is the user's days with plays in [from, to] (cached).
func (s *Service) userDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, time.Time, error) {
	return fetch(ctx, s.cache, "days:"+day(from)+":"+day(to)+":"+s.userKey(user), jsonCodec[[]topk.DayTotal](),
		func(ctx context.Context) ([]topk.DayTotal, error) {
			return s.cfg.Store.UserDays(ctx, user, from, to)
		})
}

// SearchAnswer is the users whose id starts with a prefix, case-folded.
// (Its fields are in the order the api has always written them.)
type SearchAnswer struct {
	AsOf   time.Time `json:"as_of"`
	Prefix string    `json:"prefix"`
	Users  []string  `json:"users"`
}

// SearchUsers is up to limit (1–MaxUsers) users whose folded id starts
// with the folded prefix (the charts page's search), cached.
func (s *Service) SearchUsers(ctx context.Context, prefix string, limit int) (*SearchAnswer, error) {
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	if err := bound("limit", limit, 1, MaxUsers); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	users, asOf, err := fetch(ctx, s.cache, "users:"+strconv.Itoa(limit)+":"+listen.Normalize(prefix), jsonCodec[[]string](),
		func(ctx context.Context) ([]string, error) { return s.cfg.Store.SearchUsers(ctx, prefix, limit) })
	if err != nil {
		return nil, s.storeError(err, "prefix", prefix)
	}
	if users == nil {
		users = []string{}
	}
	return &SearchAnswer{Prefix: prefix, AsOf: asOf, Users: users}, nil
}
