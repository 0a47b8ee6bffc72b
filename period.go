package topk

import "time"

// DayLayout is how a UTC day is written in keys, paths and logs.
const DayLayout = "2006-01-02"

// PeriodKind is the granularity of a Period.
type PeriodKind int

// The three granularities counts are kept at.
const (
	Daily PeriodKind = iota
	Monthly
	Yearly
)

// Period is a day, a calendar month or a calendar year (UTC).
type Period struct {
	Kind PeriodKind
	// Start is the period's first day (midnight UTC).
	Start time.Time
}

// DayPeriod is the day d (midnight UTC).
func DayPeriod(d time.Time) Period { return Period{Daily, d} }

// MonthPeriod is the month of d.
func MonthPeriod(d time.Time) Period {
	return Period{Monthly, time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)}
}

// YearPeriod is the year of d.
func YearPeriod(d time.Time) Period {
	return Period{Yearly, time.Date(d.Year(), 1, 1, 0, 0, 0, 0, time.UTC)}
}

// End is the period's last day.
func (p Period) End() time.Time {
	switch p.Kind {
	case Monthly:
		return p.Start.AddDate(0, 1, -1)
	case Yearly:
		return p.Start.AddDate(1, 0, -1)
	}
	return p.Start
}

func (p Period) String() string {
	switch p.Kind {
	case Monthly:
		return p.Start.Format("2006-01")
	case Yearly:
		return p.Start.Format("2006")
	}
	return p.Start.Format(DayLayout)
}

// DayTotal is a user's counted plays on one UTC day (a user_days row).
// Version is the day's state version (the aggregator's Day.Version, every
// change counted: listens added and deleted), which the flusher writes as
// the row's write timestamp and reads back with WRITETIME(plays); readers
// of charts leave it 0 (and JSON omits it).
type DayTotal struct {
	Day     time.Time
	Plays   int64
	Version int64 `json:",omitempty"`
}
