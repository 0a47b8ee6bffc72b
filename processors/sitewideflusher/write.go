// The sink's Writer: Rank and coalesce keep the newest value of each
// key, Write writes their rows.

package sitewideflusher

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/processors/sitewide"
	"github.com/topk-charts/topk/store/cassandra"
)

// Rank implements sink.Coalescer: a key's value ranks by its Version
// (every change of the key increments it: a replayed older value ranks
// lower), so the sink keeps one value per key of a batch, as coalesce
// would. Records coalesce skips (bad key, tombstone, undecodable) are not
// ranked: they reach it, which counts and logs them.
func (f *Flusher) Rank(m *sarama.ConsumerMessage) (int64, bool) {
	if m.Value == nil {
		return 0, false
	}
	if _, err := sitewide.ParseKey(string(m.Key)); err != nil {
		return 0, false
	}
	v, err := sitewide.DecodeValue(m.Value)
	if err != nil {
		return 0, false
	}
	return int64(min(v.Version, math.MaxInt64)), true
}

// coalesce turns batch into rows: of the records of one key, the value
// with the highest Version (on a tie the later record), as its row.
// Records that can never be written are counted and logged, and left out.
func (f *Flusher) coalesce(batch []*sarama.ConsumerMessage) []cassandra.SitewideRow {
	byKey := map[sitewide.Key]int{}
	var out []cassandra.SitewideRow
	skip := func(m *sarama.ConsumerMessage, reason string, err error) {
		skipped.WithLabelValues(reason).Inc()
		f.log.Warn("sitewide table record skipped", "reason", reason, "partition", m.Partition, "offset", m.Offset,
			"key", string(m.Key), "err", err)
	}
	for _, m := range batch {
		k, err := sitewide.ParseKey(string(m.Key))
		if err != nil {
			skip(m, "bad_key", err)
			continue
		}
		if m.Value == nil { // the group never deletes a key
			skip(m, "tombstone", nil)
			continue
		}
		v, err := sitewide.DecodeValue(m.Value)
		if err != nil {
			skip(m, "undecodable", err)
			continue
		}
		// Version 0: a value no Count ever changed (the group writes
		// none); nothing to order its row by.
		if v.Version == 0 {
			skipped.WithLabelValues("empty").Inc()
			continue
		}
		i, seen := byKey[k]
		if seen {
			coalesced.Inc()
			if v.Version < out[i].Version {
				continue
			}
		} else {
			i = len(out)
			byKey[k] = i
			out = append(out, cassandra.SitewideRow{})
		}
		out[i] = rowOf(k, v)
	}
	return out
}

// rowOf is the sitewide_days row of a key's value.
func rowOf(k sitewide.Key, v *sitewide.Value) cassandra.SitewideRow {
	d := v.Display()
	return cassandra.SitewideRow{Key: k, Version: v.Version, Plays: v.Plays(), Listeners: v.ListenerCount(),
		Name: d.Name, Artist: d.Artist}
}

// Write implements sink.Writer: one flush of a partition's changes, the
// newest value of each key written as its row. Only a nil return lets the
// sink mark the batch; after an error it writes the batch again.
func (f *Flusher) Write(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	start := time.Now()
	rows := f.coalesce(batch)
	if len(rows) == 0 {
		return nil
	}
	if err := f.store.WriteSitewide(ctx, rows); err != nil {
		return fmt.Errorf("sitewide flusher: %d rows of partition %d: %w", len(rows), batch[0].Partition, err)
	}
	// After the rows: a month rolled up whole keeps its rollups equal to
	// its rows (late listens, imports of old history).
	if err := f.store.RollupTouched(ctx, rows); err != nil {
		return fmt.Errorf("sitewide flusher: rollups of %d rows of partition %d: %w", len(rows), batch[0].Partition, err)
	}
	rowsWritten.Add(float64(len(rows)))
	flushSeconds.Observe(time.Since(start).Seconds())
	return nil
}
