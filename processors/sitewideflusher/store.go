package sitewideflusher

import (
	"context"
	"log/slog"
	"time"

	"github.com/topk-charts/topk/store/cassandra"
)

// store is what the sitewide flusher needs of Cassandra:
// cassandra.SitewideStore, or in the unit tests a model with the same
// last-write-wins rule.
type store interface {
	// WriteSitewide writes rows of sitewide_days, each USING TIMESTAMP
	// its Version (a row of a lower version than the one stored changes
	// nothing). An error may leave some rows written: the flush is
	// retried whole.
	WriteSitewide(ctx context.Context, rows []cassandra.SitewideRow) error
	// RollupTouched recomputes the month and year rollups of the items of
	// rows whose month's or year's roll-up has started, after rows were
	// written.
	RollupTouched(ctx context.Context, rows []cassandra.SitewideRow) error
	// RollUp rolls up the months before before's month, and the years
	// they end, not yet done, and says how many.
	RollUp(ctx context.Context, before time.Time, log *slog.Logger) (cassandra.RolledUp, error)
}
