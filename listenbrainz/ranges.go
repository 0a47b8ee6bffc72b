package listenbrainz

// ListenBrainz's stats endpoints take a range name; this file maps each
// name to calendar days that package charts can answer.
//
// ListenBrainz computes its stats in a daily Spark batch
// (listenbrainz_spark/stats/__init__.py get_dates_for_stats_range for the
// entity stats, stats/common/listening_activity.py get_time_range_bounds
// for listening activity). topk keeps the same calendar periods with two
// differences, both because topk counts today live:
//
//   - The reference day D is today (UTC at the caller's clock), not the
//     day of the latest listen the batch has seen.
//   - The current periods (this_week, this_month, this_year) include
//     today, and there is no "on the first day of a period, show the
//     previous one" rule. ListenBrainz has that rule (and stops listening
//     activity at the day before D) only because its batch has no data
//     for today; topk has.
//
// Everything is UTC; weeks run Monday to Sunday; quarters are Jan–Mar,
// Apr–Jun, Jul–Sep, Oct–Dec; halves are Jan–Jun and Jul–Dec. all_time
// starts on charts.Earliest (2002-01-01, ListenBrainz's
// LAST_FM_FOUNDING_YEAR too) and runs through today.

import (
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
)

// StatsRanges are the range names the ListenBrainz stats endpoints accept
// (its StatisticsRange).
var StatsRanges = []string{"this_week", "this_month", "this_year", "week", "month", "quarter", "half_yearly", "year", "all_time"}

// DefaultStatsRange is the range of a stats request that names none.
const DefaultStatsRange = "all_time"

// Period is a span of whole UTC days: From is the first day's midnight,
// To the midnight after the last day (exclusive).
type Period struct {
	From, To time.Time
}

// Days are the period's first and last days, both inclusive: what
// charts.Custom and charts.ListensQuery take. Days after today hold no
// listens yet (the charts service clamps a range to the days that can).
func (p Period) Days() (first, last time.Time) {
	return p.From, p.To.AddDate(0, 0, -1)
}

// FromTS is the payload's from_ts: From in Unix seconds.
func (p Period) FromTS() int64 { return p.From.Unix() }

// ToTS is the payload's to_ts: the exclusive end To in Unix seconds, as
// ListenBrainz stores it for entity stats and listening activity (so a
// week's to_ts is the next Monday's midnight; all_time's, where
// ListenBrainz has the latest listen's time, is tomorrow's midnight).
func (p Period) ToTS() int64 { return p.To.Unix() }

// Bucket is one row of listening activity: a day, a month or a year,
// From to To (exclusive), with ListenBrainz's label for it.
type Bucket struct {
	From, To time.Time
	Label    string
}

// Period is the bucket's days.
func (b Bucket) Period() Period { return Period{From: b.From, To: b.To} }

// FromTS is the row's from_ts: From in Unix seconds.
func (b Bucket) FromTS() int64 { return b.From.Unix() }

// ToTS is the row's to_ts: the bucket's last second (To in Unix seconds
// minus one), as ListenBrainz writes a row's end (the next row's from_ts
// minus one). Unlike Period.ToTS, inclusive.
func (b Bucket) ToTS() int64 { return b.To.Unix() - 1 }

// calendar is a kind of calendar period: week, month, quarter, half year
// or year.
type calendar struct {
	// start is the first day of the period holding d (a midnight).
	start func(d time.Time) time.Time
	// years, months, days is a period's length, for time.AddDate; start
	// gives the 1st of a month whenever months or years are set, so
	// AddDate never overflows a month end.
	years, months, days int
}

// shift moves a period's start by n periods.
func (c calendar) shift(start time.Time, n int) time.Time {
	return start.AddDate(n*c.years, n*c.months, n*c.days)
}

var (
	calWeek = calendar{days: 7, start: func(d time.Time) time.Time {
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) // Monday 0 … Sunday 6
	}}
	calMonth = calendar{months: 1, start: func(d time.Time) time.Time {
		return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
	}}
	calQuarter = calendar{months: 3, start: func(d time.Time) time.Time {
		return time.Date(d.Year(), d.Month()-(d.Month()-1)%3, 1, 0, 0, 0, 0, time.UTC)
	}}
	calHalfYear = calendar{months: 6, start: func(d time.Time) time.Time {
		return time.Date(d.Year(), d.Month()-(d.Month()-1)%6, 1, 0, 0, 0, 0, time.UTC)
	}}
	calYear = calendar{years: 1, start: func(d time.Time) time.Time {
		return time.Date(d.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}}
)

// bucketStep is a listening-activity bucket's length, for time.AddDate.
type bucketStep struct{ years, months, days int }

var (
	byDay   = bucketStep{days: 1}
	byMonth = bucketStep{months: 1}
	byYear  = bucketStep{years: 1}
)

// Listening-activity labels: Python's %A %d %B %Y, %d %B %Y, %B %Y and %Y.
const (
	labelWeekday = "Monday 02 January 2006"
	labelDay     = "02 January 2006"
	labelMonth   = "January 2006"
	labelYear    = "2006"
)

// statsRange is what a range name means (all_time aside).
type statsRange struct {
	cal calendar
	// current: the period holding today (this_*); else the one before it.
	current bool
	// step and label are listening activity's buckets.
	step  bucketStep
	label string
}

var statsRangeOf = map[string]statsRange{
	"this_week":   {calWeek, true, byDay, labelWeekday},
	"this_month":  {calMonth, true, byDay, labelDay},
	"this_year":   {calYear, true, byMonth, labelMonth},
	"week":        {calWeek, false, byDay, labelWeekday},
	"month":       {calMonth, false, byDay, labelDay},
	"quarter":     {calQuarter, false, byDay, labelDay},
	"half_yearly": {calHalfYear, false, byMonth, labelMonth},
	"year":        {calYear, false, byMonth, labelMonth},
}

// invalidRange is ListenBrainz's 400 for a range name it does not know.
func invalidRange(name string) error {
	return topk.Invalid("range", "Invalid range: "+name)
}

// StatsPeriod is the calendar period of the entity stats (artists,
// releases, release groups, recordings) for the range name at now:
//
//   - this_week, this_month, this_year: the week, month or year holding
//     today, to its end (To may be in the future, as in ListenBrainz's
//     to_ts; the days after today are empty).
//   - week, month, quarter, half_yearly, year: the full calendar period
//     before the current one (on 2020-06-10: 2020-06-01..07, May,
//     Jan–Mar, Jul–Dec 2019, 2019).
//   - all_time: charts.Earliest through today (To is tomorrow's midnight).
//
// An unknown name is a topk.ErrInvalid whose message is ListenBrainz's
// "Invalid range: <name>".
func StatsPeriod(name string, now time.Time) (Period, error) {
	today := charts.Midnight(now)
	if name == "all_time" {
		return Period{From: charts.Earliest, To: today.AddDate(0, 0, 1)}, nil
	}
	r, ok := statsRangeOf[name]
	if !ok {
		return Period{}, invalidRange(name)
	}
	from := r.cal.start(today)
	if !r.current {
		from = r.cal.shift(from, -1)
	}
	return Period{From: from, To: r.cal.shift(from, 1)}, nil
}

// ActivityBuckets is listening activity's period and buckets for the
// range name at now: the range's period and the one before it, for
// comparison, in buckets of a day (this_week, this_month, week, month,
// quarter), a month (this_year, half_yearly, year) or a year (all_time),
// ascending, each labelled as ListenBrainz does ("Monday 27 April 2020",
// "01 May 2020", "January 2020", "2020").
//
//   - this_week, this_month, this_year: from the start of the previous
//     week, month or year through today (To is tomorrow's midnight;
//     ListenBrainz stops at the day before).
//   - week, month, quarter, half_yearly, year: the two full calendar
//     periods before the current one (on 2020-06-10, week is
//     2020-05-25..06-07 in 14 daily buckets).
//   - all_time: charts.Earliest through today, one bucket per year from
//     2002 to the current year.
//
// Buckets are whole days, months or years, so the last one may run past
// the period's To (the current month of this_year, the current year of
// all_time), as ListenBrainz's do. An unknown name is the error of
// StatsPeriod.
func ActivityBuckets(name string, now time.Time) (Period, []Bucket, error) {
	today := charts.Midnight(now)
	var (
		p     Period
		st    bucketStep
		label string
	)
	if name == "all_time" {
		p, st, label = Period{From: charts.Earliest, To: today.AddDate(0, 0, 1)}, byYear, labelYear
	} else {
		r, ok := statsRangeOf[name]
		if !ok {
			return Period{}, nil, invalidRange(name)
		}
		start := r.cal.start(today)
		if r.current {
			p = Period{From: r.cal.shift(start, -1), To: today.AddDate(0, 0, 1)}
		} else {
			p = Period{From: r.cal.shift(start, -2), To: start}
		}
		st, label = r.step, r.label
	}
	var buckets []Bucket
	for from := p.From; from.Before(p.To); {
		to := from.AddDate(st.years, st.months, st.days)
		buckets = append(buckets, Bucket{From: from, To: to, Label: from.Format(label)})
		from = to
	}
	return p, buckets, nil
}
