package flusher

import (
	"context"
	"time"

	"github.com/topk-charts/topk"
)

// store is what the flusher needs of Cassandra: cassandra.DayStore, or in
// the unit tests a model with the same last-write-wins rules. Exactness
// depends on each method's contract (see the package doc).
type store interface {
	// WriteItems writes rows of user's partition of p's item table
	// (day_items, month_items, year_items), every row USING TIMESTAMP ts
	// (a day state's version, a rollup's sum of its days' versions): one
	// single-partition batch, or several in the order of rows.
	WriteItems(ctx context.Context, p topk.Period, user string, rows []topk.EntityItem, ts int64) error
	// WriteUserDays writes user_days rows of one user (one partition),
	// each its plays USING TIMESTAMP its Version.
	WriteUserDays(ctx context.Context, user string, days []topk.DayTotal) error
	// UserDays lists the user_days rows of user in [from, to], oldest
	// first, plays 0 included, each with its Version (the write timestamp
	// of its plays).
	UserDays(ctx context.Context, user string, from, to time.Time) ([]topk.DayTotal, error)
	// Items reads user's partition of p's item table, and the write
	// timestamp of each row's plays (the version of the state or rollup
	// that wrote it).
	Items(ctx context.Context, p topk.Period, user string) ([]topk.EntityItem, []int64, error)
}

// table is one of the item tables, all keyed (user_id, period), entity, item.
type table int

const (
	dayItems table = iota
	monthItems
	yearItems
)

func (t table) String() string {
	return [...]string{"day_items", "month_items", "year_items"}[t]
}

// period is the period of part of a rollup table: yyyymm (monthItems) or
// yyyy (yearItems).
func (t table) period(part int) topk.Period {
	if t == yearItems {
		return topk.YearPeriod(time.Date(part, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	return topk.MonthPeriod(time.Date(part/100, time.Month(part%100), 1, 0, 0, 0, 0, time.UTC))
}
