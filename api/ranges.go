package api

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/listen"
)

// dateRange is a range of UTC days, both ends inclusive.
type dateRange struct {
	// Name is the range parameter, or "custom" for from/to.
	Name string
	From time.Time
	To   time.Time
	// All is the "all" range: From is the user's first day, known only
	// once the stores are asked.
	All bool
}

// Range names of DESIGN.md. Weeks start on Monday; everything is UTC.
var rangeNames = []string{"today", "7d", "30d", "90d", "180d", "365d", "all", "this_week", "this_month", "this_year"}

// DefaultRange is the range of a request that names none.
const DefaultRange = "7d"

// Earliest is the first day a listen may have (the event contract accepts
// played_at from 2002-01-01).
var Earliest = time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)

func midnight(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// namedRange resolves a range name at now; ok false for an unknown name.
func namedRange(name string, now time.Time) (dateRange, bool) {
	today := midnight(now)
	r := dateRange{Name: name, To: today}
	switch name {
	case "today":
		r.From = today
	case "7d", "30d", "90d", "180d", "365d":
		n, _ := strconv.Atoi(strings.TrimSuffix(name, "d"))
		r.From = today.AddDate(0, 0, -(n - 1))
	case "all":
		r.All = true
	case "this_week":
		back := (int(today.Weekday()) + 6) % 7 // Monday 0 … Sunday 6
		r.From = today.AddDate(0, 0, -back)
	case "this_month":
		r.From = time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	case "this_year":
		r.From = time.Date(today.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	default:
		return dateRange{}, false
	}
	return r, true
}

// parseDay parses YYYY-MM-DD strictly.
func parseDay(s string) (time.Time, bool) {
	if len(s) != len(listen.DayLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(listen.DayLayout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// parseRange reads range, or from and to, of a query. Neither: the
// default range. Both kinds: a 400 naming range.
func parseRange(q url.Values, now time.Time) (dateRange, error) {
	name, hasName := q["range"]
	_, hasFrom := q["from"]
	_, hasTo := q["to"]
	switch {
	case hasName && (hasFrom || hasTo):
		return dateRange{}, Errorf(CodeInvalid, "range", "give either range or from/to, not both")
	case hasFrom || hasTo:
		return parseFromTo(q, now)
	}
	n := DefaultRange
	if hasName {
		n = name[0]
	}
	r, ok := namedRange(n, now)
	if !ok {
		return dateRange{}, Errorf(CodeInvalid, "range", "range must be one of "+strings.Join(rangeNames, ", ")+", or give from and to (YYYY-MM-DD)")
	}
	return r, nil
}

// parseFromTo reads a custom range: both dates required, from ≤ to.
func parseFromTo(q url.Values, now time.Time) (dateRange, error) {
	var days [2]time.Time
	for i, p := range []string{"from", "to"} {
		v := q.Get(p)
		if _, ok := q[p]; !ok {
			return dateRange{}, Errorf(CodeInvalid, p, p+" is missing: give both from and to (YYYY-MM-DD, inclusive)")
		}
		d, ok := parseDay(v)
		if !ok {
			return dateRange{}, Errorf(CodeInvalid, p, p+" must be a date YYYY-MM-DD")
		}
		days[i] = d
	}
	if days[1].Before(days[0]) {
		return dateRange{}, Errorf(CodeInvalid, "to", "to is before from")
	}
	return dateRange{Name: "custom", From: days[0], To: days[1]}, nil
}

// clamp limits a range to the days that can hold listens: from
// 2002-01-01 to tomorrow (played_at may be 10 minutes ahead). ok false:
// nothing left.
func clamp(from, to, now time.Time) (time.Time, time.Time, bool) {
	if from.Before(Earliest) {
		from = Earliest
	}
	if last := midnight(now).AddDate(0, 0, 1); to.After(last) {
		to = last
	}
	return from, to, !to.Before(from)
}

// intParam reads an integer query parameter within [lo, hi].
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < lo || n > hi {
		return 0, Errorf(CodeInvalid, name, name+" must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

// validUser applies the event contract's user_id rules (1–128 bytes of
// UTF-8, no control characters, no '|', no surrounding whitespace):
// listen.SplitKey checks exactly those on the user part of a state key. A
// user id breaking them cannot have listens: a 400, not a 404.
func validUser(u string) error {
	if _, _, ok := listen.SplitKey(u + "|2002-01-01"); !ok {
		return Errorf(CodeInvalid, "user", "user must be 1–128 bytes of UTF-8 without '|', control characters or surrounding whitespace")
	}
	return nil
}
