package listenbrainz_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/listenbrainz"
)

// day parses a UTC day.
func day(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// at is a time during day s (not midnight, so that truncation is tested).
func at(t *testing.T, s string) time.Time { return day(t, s).Add(15*time.Hour + 4*time.Minute) }

// span writes a period as "from to" (days, To exclusive).
func span(p listenbrainz.Period) string {
	return p.From.Format(time.DateOnly) + " " + p.To.Format(time.DateOnly)
}

func TestStatsPeriod(t *testing.T) {
	tests := []struct {
		now  string
		want map[string]string // range → "from to" (To exclusive)
	}{
		{"2020-06-10", map[string]string{ // Wednesday: the spec's worked example
			"this_week":   "2020-06-08 2020-06-15",
			"this_month":  "2020-06-01 2020-07-01",
			"this_year":   "2020-01-01 2021-01-01",
			"week":        "2020-06-01 2020-06-08",
			"month":       "2020-05-01 2020-06-01",
			"quarter":     "2020-01-01 2020-04-01",
			"half_yearly": "2019-07-01 2020-01-01",
			"year":        "2019-01-01 2020-01-01",
			"all_time":    "2002-01-01 2020-06-11",
		}},
		{"2020-06-08", map[string]string{ // Monday: this_week is this week (ListenBrainz: the last one)
			"this_week":   "2020-06-08 2020-06-15",
			"this_month":  "2020-06-01 2020-07-01",
			"this_year":   "2020-01-01 2021-01-01",
			"week":        "2020-06-01 2020-06-08",
			"month":       "2020-05-01 2020-06-01",
			"quarter":     "2020-01-01 2020-04-01",
			"half_yearly": "2019-07-01 2020-01-01",
			"year":        "2019-01-01 2020-01-01",
			"all_time":    "2002-01-01 2020-06-09",
		}},
		{"2020-06-14", map[string]string{ // Sunday
			"this_week": "2020-06-08 2020-06-15",
			"week":      "2020-06-01 2020-06-08",
			"all_time":  "2002-01-01 2020-06-15",
		}},
		{"2020-06-01", map[string]string{ // the 1st (a Monday): this_month is this month
			"this_week":  "2020-06-01 2020-06-08",
			"this_month": "2020-06-01 2020-07-01",
			"week":       "2020-05-25 2020-06-01",
			"month":      "2020-05-01 2020-06-01",
		}},
		{"2021-01-01", map[string]string{ // Friday, Jan 1: this_year is this year
			"this_week":   "2020-12-28 2021-01-04",
			"this_month":  "2021-01-01 2021-02-01",
			"this_year":   "2021-01-01 2022-01-01",
			"week":        "2020-12-21 2020-12-28",
			"month":       "2020-12-01 2021-01-01",
			"quarter":     "2020-10-01 2021-01-01",
			"half_yearly": "2020-07-01 2021-01-01",
			"year":        "2020-01-01 2021-01-01",
			"all_time":    "2002-01-01 2021-01-02",
		}},
		{"2020-02-29", map[string]string{ // Saturday, leap day
			"this_week":   "2020-02-24 2020-03-02",
			"this_month":  "2020-02-01 2020-03-01",
			"this_year":   "2020-01-01 2021-01-01",
			"week":        "2020-02-17 2020-02-24",
			"month":       "2020-01-01 2020-02-01",
			"quarter":     "2019-10-01 2020-01-01",
			"half_yearly": "2019-07-01 2020-01-01",
			"year":        "2019-01-01 2020-01-01",
			"all_time":    "2002-01-01 2020-03-01",
		}},
		{"2020-03-31", map[string]string{ // month end after a leap February
			"this_week":   "2020-03-30 2020-04-06",
			"this_month":  "2020-03-01 2020-04-01",
			"this_year":   "2020-01-01 2021-01-01",
			"week":        "2020-03-23 2020-03-30",
			"month":       "2020-02-01 2020-03-01",
			"quarter":     "2019-10-01 2020-01-01",
			"half_yearly": "2019-07-01 2020-01-01",
			"year":        "2019-01-01 2020-01-01",
			"all_time":    "2002-01-01 2020-04-01",
		}},
		{"2021-03-31", map[string]string{ // month end after a 28-day February
			"this_week":   "2021-03-29 2021-04-05",
			"this_month":  "2021-03-01 2021-04-01",
			"this_year":   "2021-01-01 2022-01-01",
			"week":        "2021-03-22 2021-03-29",
			"month":       "2021-02-01 2021-03-01",
			"quarter":     "2020-10-01 2021-01-01",
			"half_yearly": "2020-07-01 2021-01-01",
			"year":        "2020-01-01 2021-01-01",
			"all_time":    "2002-01-01 2021-04-01",
		}},
		{"2020-05-31", map[string]string{ // a 31st: month is April (30 days)
			"this_month": "2020-05-01 2020-06-01",
			"month":      "2020-04-01 2020-05-01",
		}},
		// Quarter and half-year boundaries (Q1 opens in Jan 1 above).
		{"2021-04-01", map[string]string{"quarter": "2021-01-01 2021-04-01", "half_yearly": "2020-07-01 2021-01-01", "month": "2021-03-01 2021-04-01"}},
		{"2021-06-30", map[string]string{"quarter": "2021-01-01 2021-04-01", "half_yearly": "2020-07-01 2021-01-01", "month": "2021-05-01 2021-06-01"}},
		{"2021-07-01", map[string]string{"quarter": "2021-04-01 2021-07-01", "half_yearly": "2021-01-01 2021-07-01", "month": "2021-06-01 2021-07-01"}},
		{"2021-09-30", map[string]string{"quarter": "2021-04-01 2021-07-01", "half_yearly": "2021-01-01 2021-07-01"}},
		{"2021-10-01", map[string]string{"quarter": "2021-07-01 2021-10-01", "half_yearly": "2021-01-01 2021-07-01"}},
		{"2021-12-31", map[string]string{ // Friday, the year's last day
			"this_week":   "2021-12-27 2022-01-03",
			"this_month":  "2021-12-01 2022-01-01",
			"this_year":   "2021-01-01 2022-01-01",
			"week":        "2021-12-20 2021-12-27",
			"month":       "2021-11-01 2021-12-01",
			"quarter":     "2021-07-01 2021-10-01",
			"half_yearly": "2021-01-01 2021-07-01",
			"year":        "2020-01-01 2021-01-01",
			"all_time":    "2002-01-01 2022-01-01",
		}},
		{"2024-02-29", map[string]string{ // Thursday, leap day
			"this_week":  "2024-02-26 2024-03-04",
			"this_month": "2024-02-01 2024-03-01",
			"week":       "2024-02-19 2024-02-26",
			"month":      "2024-01-01 2024-02-01",
			"quarter":    "2023-10-01 2024-01-01",
		}},
		{"2024-03-01", map[string]string{"month": "2024-02-01 2024-03-01", "this_month": "2024-03-01 2024-04-01"}},
	}
	for _, tt := range tests {
		for name, want := range tt.want {
			t.Run(tt.now+"/"+name, func(t *testing.T) {
				p, err := listenbrainz.StatsPeriod(name, at(t, tt.now))
				if err != nil {
					t.Fatal(err)
				}
				if got := span(p); got != want {
					t.Errorf("got %s, want %s", got, want)
				}
			})
		}
	}
}

// TestStatsPeriodUTC: the reference day is now's UTC day, whatever now's
// zone, and midnight belongs to the day it starts.
func TestStatsPeriodUTC(t *testing.T) {
	tests := []struct {
		now  time.Time
		want string // all_time's To
	}{
		{time.Date(2020, 6, 10, 1, 0, 0, 0, time.FixedZone("+05", 5*3600)), "2020-06-10"},  // 2020-06-09 20:00 UTC
		{time.Date(2020, 6, 9, 22, 0, 0, 0, time.FixedZone("-03", -3*3600)), "2020-06-11"}, // 2020-06-10 01:00 UTC
		{time.Date(2020, 6, 10, 0, 0, 0, 0, time.UTC), "2020-06-11"},
		{time.Date(2020, 6, 10, 23, 59, 59, 999999999, time.UTC), "2020-06-11"},
	}
	for _, tt := range tests {
		p, err := listenbrainz.StatsPeriod("all_time", tt.now)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.To.Format(time.DateOnly); got != tt.want || p.To.Location() != time.UTC {
			t.Errorf("%v: To %v, want %s UTC", tt.now, p.To, tt.want)
		}
	}
}

func TestActivityBuckets(t *testing.T) {
	tests := []struct {
		now, name   string
		period      string // "from to", To exclusive
		n           int
		first, last string // labels
		lastTo      string // the last bucket's To
	}{
		// D = Wednesday 2020-06-10 (the spec's example).
		{"2020-06-10", "this_week", "2020-06-01 2020-06-11", 10, "Monday 01 June 2020", "Wednesday 10 June 2020", "2020-06-11"},
		{"2020-06-10", "this_month", "2020-05-01 2020-06-11", 41, "01 May 2020", "10 June 2020", "2020-06-11"},
		{"2020-06-10", "this_year", "2019-01-01 2020-06-11", 18, "January 2019", "June 2020", "2020-07-01"},
		{"2020-06-10", "week", "2020-05-25 2020-06-08", 14, "Monday 25 May 2020", "Sunday 07 June 2020", "2020-06-08"},
		{"2020-06-10", "month", "2020-04-01 2020-06-01", 61, "01 April 2020", "31 May 2020", "2020-06-01"},
		{"2020-06-10", "quarter", "2019-10-01 2020-04-01", 183, "01 October 2019", "31 March 2020", "2020-04-01"},
		{"2020-06-10", "half_yearly", "2019-01-01 2020-01-01", 12, "January 2019", "December 2019", "2020-01-01"},
		{"2020-06-10", "year", "2018-01-01 2020-01-01", 24, "January 2018", "December 2019", "2020-01-01"},
		{"2020-06-10", "all_time", "2002-01-01 2020-06-11", 19, "2002", "2020", "2021-01-01"},
		// The spec's label example.
		{"2020-05-06", "this_week", "2020-04-27 2020-05-07", 10, "Monday 27 April 2020", "Wednesday 06 May 2020", "2020-05-07"},
		// A Monday: last week and today (ListenBrainz: the two weeks before).
		{"2020-06-08", "this_week", "2020-06-01 2020-06-09", 8, "Monday 01 June 2020", "Monday 08 June 2020", "2020-06-09"},
		{"2020-06-08", "week", "2020-05-25 2020-06-08", 14, "Monday 25 May 2020", "Sunday 07 June 2020", "2020-06-08"},
		// Jan 1, a Friday.
		{"2021-01-01", "this_week", "2020-12-21 2021-01-02", 12, "Monday 21 December 2020", "Friday 01 January 2021", "2021-01-02"},
		{"2021-01-01", "this_month", "2020-12-01 2021-01-02", 32, "01 December 2020", "01 January 2021", "2021-01-02"},
		{"2021-01-01", "this_year", "2020-01-01 2021-01-02", 13, "January 2020", "January 2021", "2021-02-01"},
		{"2021-01-01", "quarter", "2020-07-01 2021-01-01", 184, "01 July 2020", "31 December 2020", "2021-01-01"},
		{"2021-01-01", "half_yearly", "2020-01-01 2021-01-01", 12, "January 2020", "December 2020", "2021-01-01"},
		{"2021-01-01", "year", "2019-01-01 2021-01-01", 24, "January 2019", "December 2020", "2021-01-01"},
		{"2021-01-01", "all_time", "2002-01-01 2021-01-02", 20, "2002", "2021", "2022-01-01"},
		// Leap February.
		{"2020-03-15", "month", "2020-01-01 2020-03-01", 60, "01 January 2020", "29 February 2020", "2020-03-01"},
		{"2020-02-29", "this_month", "2020-01-01 2020-03-01", 60, "01 January 2020", "29 February 2020", "2020-03-01"},
		{"2021-03-15", "month", "2021-01-01 2021-03-01", 59, "01 January 2021", "28 February 2021", "2021-03-01"},
		// Each quarter, and both halves.
		{"2021-03-31", "quarter", "2020-07-01 2021-01-01", 184, "01 July 2020", "31 December 2020", "2021-01-01"},
		{"2021-04-01", "quarter", "2020-10-01 2021-04-01", 182, "01 October 2020", "31 March 2021", "2021-04-01"},
		{"2021-07-01", "quarter", "2021-01-01 2021-07-01", 181, "01 January 2021", "30 June 2021", "2021-07-01"},
		{"2021-10-01", "quarter", "2021-04-01 2021-10-01", 183, "01 April 2021", "30 September 2021", "2021-10-01"},
		{"2021-06-30", "half_yearly", "2020-01-01 2021-01-01", 12, "January 2020", "December 2020", "2021-01-01"},
		{"2021-07-01", "half_yearly", "2020-07-01 2021-07-01", 12, "July 2020", "June 2021", "2021-07-01"},
		// The year's last day.
		{"2021-12-31", "this_year", "2020-01-01 2022-01-01", 24, "January 2020", "December 2021", "2022-01-01"},
		{"2021-12-31", "all_time", "2002-01-01 2022-01-01", 20, "2002", "2021", "2022-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.now+"/"+tt.name, func(t *testing.T) {
			p, bs, err := listenbrainz.ActivityBuckets(tt.name, at(t, tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if got := span(p); got != tt.period {
				t.Errorf("period %s, want %s", got, tt.period)
			}
			if len(bs) != tt.n {
				t.Fatalf("%d buckets, want %d", len(bs), tt.n)
			}
			last := bs[len(bs)-1]
			if bs[0].Label != tt.first || last.Label != tt.last {
				t.Errorf("labels %q … %q, want %q … %q", bs[0].Label, last.Label, tt.first, tt.last)
			}
			if got := last.To.Format(time.DateOnly); got != tt.lastTo {
				t.Errorf("last bucket ends %s, want %s", got, tt.lastTo)
			}
		})
	}
}

// TestRangeInvariants checks every range on every day of 2019–2025: the
// periods are whole calendar periods, the previous period ends where the
// current one starts, and listening activity is the stats period plus
// the one before it, tiled by contiguous buckets.
func TestRangeInvariants(t *testing.T) {
	current := map[string]string{"week": "this_week", "month": "this_month", "year": "this_year"}
	for today := day(t, "2019-01-01"); today.Year() < 2026; today = today.AddDate(0, 0, 1) {
		now := today.Add(12 * time.Hour)
		tomorrow := today.AddDate(0, 0, 1)
		for _, name := range listenbrainz.StatsRanges {
			p, err := listenbrainz.StatsPeriod(name, now)
			if err != nil {
				t.Fatal(err)
			}
			a, bs, err := listenbrainz.ActivityBuckets(name, now)
			if err != nil {
				t.Fatal(err)
			}
			where := fmt.Sprintf("%s %s", today.Format(time.DateOnly), name)
			if !p.From.Before(p.To) || p.From != charts.Midnight(p.From) || p.To != charts.Midnight(p.To) {
				t.Fatalf("%s: period %v – %v is not whole UTC days", where, p.From, p.To)
			}
			switch {
			case name == "all_time":
				if p.From != charts.Earliest || p.To != tomorrow || a != p {
					t.Fatalf("%s: %s, activity %s", where, span(p), span(a))
				}
			case strings.HasPrefix(name, "this_"):
				// The current period holds today, and activity adds the one
				// before it and stops after today.
				if today.Before(p.From) || !today.Before(p.To) {
					t.Fatalf("%s: %s does not hold today", where, span(p))
				}
				prev, _ := listenbrainz.StatsPeriod(strings.TrimPrefix(name, "this_"), now)
				if prev.To != p.From || a.From != prev.From || a.To != tomorrow {
					t.Fatalf("%s: %s, previous %s, activity %s", where, span(p), span(prev), span(a))
				}
			default:
				// A past period, ending where the current one starts; the
				// activity is it and the one before it, of the same kind.
				if p.To.After(today) {
					t.Fatalf("%s: %s is not past", where, span(p))
				}
				if cur, ok := current[name]; ok {
					if c, _ := listenbrainz.StatsPeriod(cur, now); c.From != p.To {
						t.Fatalf("%s: %s does not end where %s %s starts", where, span(p), cur, span(c))
					}
				}
				// The period before p is the stats period of a day in p.
				if before, _ := listenbrainz.StatsPeriod(name, p.From); before.To != p.From || a.From != before.From || a.To != p.To {
					t.Fatalf("%s: activity %s is not %s and the one before it (%s)", where, span(a), span(p), span(before))
				}
			}
			if len(bs) == 0 || bs[0].From != a.From || bs[len(bs)-1].To.Before(a.To) {
				t.Fatalf("%s: buckets do not cover %s", where, span(a))
			}
			for i := 1; i < len(bs); i++ {
				if bs[i].From != bs[i-1].To {
					t.Fatalf("%s: bucket %d starts %v, the one before ends %v", where, i, bs[i].From, bs[i-1].To)
				}
			}
			if !bs[len(bs)-1].From.Before(a.To) {
				t.Fatalf("%s: the last bucket starts after the period", where)
			}
		}
	}
}

// The period lengths each range promises.
func TestStatsPeriodLengths(t *testing.T) {
	length := map[string][3]int{
		"this_week": {0, 0, 7}, "week": {0, 0, 7},
		"this_month": {0, 1, 0}, "month": {0, 1, 0},
		"quarter": {0, 3, 0}, "half_yearly": {0, 6, 0},
		"this_year": {1, 0, 0}, "year": {1, 0, 0},
	}
	for today := day(t, "2019-01-01"); today.Year() < 2026; today = today.AddDate(0, 0, 1) {
		for name, l := range length {
			p, err := listenbrainz.StatsPeriod(name, today)
			if err != nil {
				t.Fatal(err)
			}
			if p.From.AddDate(l[0], l[1], l[2]) != p.To {
				t.Fatalf("%s %s: %s is not %v long", today.Format(time.DateOnly), name, span(p), l)
			}
			if l[2] == 7 && p.From.Weekday() != time.Monday || l[2] == 0 && p.From.Day() != 1 {
				t.Fatalf("%s %s: %s starts on %v", today.Format(time.DateOnly), name, span(p), p.From.Weekday())
			}
			if (name == "quarter" || name == "half_yearly") && (p.From.Month()-1)%time.Month(l[1]) != 0 {
				t.Fatalf("%s %s: %s is not a calendar %s", today.Format(time.DateOnly), name, span(p), name)
			}
		}
	}
}

func TestPeriodHelpers(t *testing.T) {
	p, err := listenbrainz.StatsPeriod("week", at(t, "2020-06-10"))
	if err != nil {
		t.Fatal(err)
	}
	first, last := p.Days()
	if first != day(t, "2020-06-01") || last != day(t, "2020-06-07") {
		t.Errorf("Days %v – %v, want 2020-06-01 – 2020-06-07", first, last)
	}
	// 2020-06-01 and 2020-06-08 00:00 UTC: to_ts is the exclusive end.
	if p.FromTS() != 1590969600 || p.ToTS() != 1591574400 {
		t.Errorf("from_ts %d, to_ts %d, want 1590969600, 1591574400", p.FromTS(), p.ToTS())
	}

	_, bs, err := listenbrainz.ActivityBuckets("week", at(t, "2020-06-10"))
	if err != nil {
		t.Fatal(err)
	}
	// A bucket's to_ts is its last second: the next bucket's from_ts - 1.
	b := bs[7]
	if b.Label != "Monday 01 June 2020" || b.FromTS() != 1590969600 || b.ToTS() != 1591055999 || b.ToTS() != bs[8].FromTS()-1 {
		t.Errorf("bucket %q from_ts %d to_ts %d", b.Label, b.FromTS(), b.ToTS())
	}
	if first, last := b.Period().Days(); first != last || first != day(t, "2020-06-01") {
		t.Errorf("bucket days %v – %v", first, last)
	}
	_, bs, _ = listenbrainz.ActivityBuckets("year", at(t, "2020-06-10"))
	if first, last := bs[1].Period().Days(); first != day(t, "2018-02-01") || last != day(t, "2018-02-28") {
		t.Errorf("February 2018 is %v – %v", first, last)
	}
}

func TestRangeNames(t *testing.T) {
	want := []string{"this_week", "this_month", "this_year", "week", "month", "quarter", "half_yearly", "year", "all_time"}
	if !slices.Equal(listenbrainz.StatsRanges, want) {
		t.Errorf("StatsRanges %v", listenbrainz.StatsRanges)
	}
	if !slices.Contains(listenbrainz.StatsRanges, listenbrainz.DefaultStatsRange) || listenbrainz.DefaultStatsRange != "all_time" {
		t.Errorf("DefaultStatsRange %q", listenbrainz.DefaultStatsRange)
	}
}

func TestInvalidRange(t *testing.T) {
	now := at(t, "2020-06-10")
	for _, name := range []string{"", "last_week", "This_week", "all", "7d", "year_in_music", " week"} {
		_, err := listenbrainz.StatsPeriod(name, now)
		_, bs, err2 := listenbrainz.ActivityBuckets(name, now)
		for _, err := range []error{err, err2} {
			if err == nil || err.Error() != "Invalid range: "+name || !errors.Is(err, topk.ErrInvalid) {
				t.Errorf("%q: %v", name, err)
			}
		}
		if bs != nil {
			t.Errorf("%q: buckets %v", name, bs)
		}
	}
}
