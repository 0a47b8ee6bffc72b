package charts

import (
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

// Range is the days a query asks for: a range name (Named, one of
// RangeNames), or from and to (Custom: UTC days, both inclusive). The
// service resolves names at its clock.
type Range struct {
	// Name is the range name; "custom" for a Custom range.
	Name     string
	From, To time.Time
	custom   bool
}

// Named is the range called name (RangeNames).
func Named(name string) Range { return Range{Name: name} }

// Custom is the range [from, to].
func Custom(from, to time.Time) Range { return Range{Name: "custom", From: from, To: to, custom: true} }

// RangeNames are the range names of DESIGN.md. Weeks start on Monday;
// everything is UTC.
var RangeNames = []string{"today", "7d", "30d", "90d", "180d", "365d", "all", "this_week", "this_month", "this_year"}

// DefaultRange is the range of a request that names none.
const DefaultRange = "7d"

// Bounds of the query parameters.
const (
	MaxK         = 1000
	DefaultK     = 10
	MaxOffset    = 1_000_000
	MaxListens   = 1000
	DefaultLimit = 50 // listens per page
	MaxUsers     = 100
	DefaultUsers = 20 // users per search
)

// Earliest is the first day a listen may have (the event contract accepts
// played_at from 2002-01-01).
var Earliest = time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)

// Midnight is the start of t's UTC day.
func Midnight(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// LastDay is the last day that can hold listens at now: tomorrow
// (played_at may be 10 minutes ahead).
func LastDay(now time.Time) time.Time { return Midnight(now).AddDate(0, 0, 1) }

// Validate checks a range without resolving it: a known name, or a
// custom range whose To is not before From.
func (r Range) Validate() error {
	if r.custom {
		if r.To.Before(r.From) {
			return topk.Invalid("to", "to is before from")
		}
		return nil
	}
	if _, ok := named(r.Name, time.Time{}); !ok {
		return topk.Invalid("range", "range must be one of "+strings.Join(RangeNames, ", ")+", or give from and to (YYYY-MM-DD)")
	}
	return nil
}

// resolved is a range at a time: its days, and whether it is "all"
// (From is the user's first day, known only once the stores are asked).
type resolved struct {
	Name     string
	From, To time.Time
	All      bool
}

// Resolve resolves r at now (after Validate).
func Resolve(r Range, now time.Time) (from, to time.Time, all bool, err error) {
	x, err := resolve(r, now)
	return x.From, x.To, x.All, err
}

func resolve(r Range, now time.Time) (resolved, error) {
	if err := r.Validate(); err != nil {
		return resolved{}, err
	}
	if r.custom {
		return resolved{Name: r.Name, From: r.From, To: r.To}, nil
	}
	x, _ := named(r.Name, now)
	return x, nil
}

// named resolves a range name at now; ok false for an unknown name.
func named(name string, now time.Time) (resolved, bool) {
	today := Midnight(now)
	r := resolved{Name: name, To: today}
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
		return resolved{}, false
	}
	return r, true
}

// ParseDay parses YYYY-MM-DD strictly.
func ParseDay(s string) (time.Time, bool) {
	if len(s) != len(topk.DayLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(topk.DayLayout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// clamp limits a range to the days that can hold listens: from
// Earliest to LastDay. ok false: nothing left.
func clamp(from, to, now time.Time) (time.Time, time.Time, bool) {
	if from.Before(Earliest) {
		from = Earliest
	}
	if last := LastDay(now); to.After(last) {
		to = last
	}
	return from, to, !to.Before(from)
}

// ValidUser applies the event contract's user_id rules (1–128 bytes of
// UTF-8, no control characters, no '|', no surrounding whitespace):
// listen.SplitKey checks exactly those on the user part of a state key. A
// user id breaking them cannot have listens: invalid, not not found.
func ValidUser(u string) error {
	if _, _, ok := listen.SplitKey(u + "|2002-01-01"); !ok {
		return topk.Invalid("user", "user must be 1–128 bytes of UTF-8 without '|', control characters or surrounding whitespace")
	}
	return nil
}

// ValidPrefix checks a user search prefix: what a user id may start with
// (it may end with whitespace: more follows), folding to something.
func ValidPrefix(p string) error {
	if p == "" {
		return topk.Invalid("prefix", "prefix is required: the first characters of a user id")
	}
	if len(p) > listen.MaxUserIDBytes || listen.Normalize(p) == "" || !prefixOfKey(p) {
		return topk.Invalid("prefix", "prefix must be 1–128 bytes of UTF-8 without '|' or control characters")
	}
	return nil
}

func prefixOfKey(p string) bool {
	if len(p) < listen.MaxUserIDBytes {
		p += "x"
	}
	_, _, ok := listen.SplitKey(p + "|2002-01-01")
	return ok
}

// bound checks an integer parameter within [lo, hi].
func bound(name string, n, lo, hi int) error {
	if n < lo || n > hi {
		return BoundError(name, lo, hi)
	}
	return nil
}

// BoundError is the error of an integer parameter outside [lo, hi] (or
// not an integer).
func BoundError(name string, lo, hi int) error {
	return topk.Invalid(name, name+" must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
}

func day(t time.Time) string { return t.Format(topk.DayLayout) }
