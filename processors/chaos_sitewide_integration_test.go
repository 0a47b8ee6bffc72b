//go:build integration

package processors_test

import (
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sitewide"
)

// verifySitewide checks the sitewide pipeline (issue 15) once every group
// caught up (verify waited for the fan-out, the sitewide group and the
// sitewide flusher too): user by user, the sitewide group's table holds
// exactly the aggregator's table (table: its latest value per key, which
// verify already compared with the expected counts), and sitewide_days
// holds exactly the sitewide table's latest values.
func (c *chaos) verifySitewide(table map[string]*aggregator.Day) {
	t := c.t
	ns := c.cfg.Namespace

	// cell is one item of one day; listener one user of a cell.
	type cell struct {
		entity topk.Entity
		item   uint64
		day    string // YYYY-MM-DD
	}
	type listener struct {
		cell
		user string
	}

	// The aggregator's plays of every (user, item, day), items with 0
	// plays (every listen deleted) included.
	agg := map[listener]uint32{}
	for k, d := range table {
		u, day, ok := listen.SplitKey(k)
		if !ok {
			t.Errorf("sitewide: aggregator table key %q is not user|day", k)
			continue
		}
		ds := day.Format(topk.DayLayout)
		for _, e := range topk.Entities {
			for _, it := range d.Items(e) {
				agg[listener{cell{e, it.Key, ds}, u}] = it.Plays
			}
		}
	}

	// The sitewide group's table: the latest value of each key, in the
	// partition sitewide.Hasher gives it.
	values := map[string]*sitewide.Value{}
	records := 0
	c.readTopic(string(sitewide.Table(ns)), func(p int32, n int, m *sarama.ConsumerMessage) {
		records++
		k := string(m.Key)
		if want := sitewide.KeyPartition(k, int32(n)); p != want {
			t.Errorf("sitewide table: key %s in partition %d, sitewide.Hasher gives %d", k, p, want)
		}
		if m.Value == nil {
			delete(values, k)
			return
		}
		v, err := sitewide.DecodeValue(m.Value)
		if err != nil {
			t.Errorf("sitewide table: key %s at %d/%d: %v", k, p, m.Offset, err)
			return
		}
		values[k] = v
	})
	c.mark("sitewide table read")

	held := map[listener]int{} // keys holding the listener
	got := map[listener]uint32{}
	spilled, listeners := 0, 0
	var plays int64
	for ks, v := range values {
		k, err := sitewide.ParseKey(ks)
		if err != nil {
			t.Errorf("sitewide table: %v", err)
			continue
		}
		if v.Version == 0 {
			t.Errorf("sitewide table: %s has a value of version 0 (the group writes none)", ks)
		}
		if k.Bucket >= sitewide.Buckets {
			spilled++
		}
		plays += v.Plays()
		listeners += v.ListenerCount()
		cl := cell{k.Entity, k.Item, k.Day.Format(topk.DayLayout)}
		for _, l := range v.Listeners {
			if !sitewide.OnPath(k.Bucket, l.User) {
				t.Errorf("sitewide table: %s holds user %s, whose spill path does not pass bucket %d", ks, l.User, k.Bucket)
			}
			lk := listener{cl, l.User}
			held[lk]++
			got[lk] = l.Plays
		}
	}

	var diffs []string
	compared := 0
	for lk, p := range agg {
		compared++
		switch n := held[lk]; {
		case n > 1:
			diffs = append(diffs, fmt.Sprintf("%s %016x %s: user %s in %d keys, want one", lk.entity, lk.item, lk.day, lk.user, n))
		case n == 0 && p > 0:
			diffs = append(diffs, fmt.Sprintf("%s %016x %s: user %s (%d plays in the aggregator's state) in no key", lk.entity, lk.item, lk.day, lk.user, p))
		case n == 1 && got[lk] != p:
			diffs = append(diffs, fmt.Sprintf("%s %016x %s: user %s with %d plays, the aggregator's state has %d", lk.entity, lk.item, lk.day, lk.user, got[lk], p))
		}
	}
	for lk, p := range got {
		if _, ok := agg[lk]; !ok && p > 0 {
			diffs = append(diffs, fmt.Sprintf("%s %016x %s: user %s with %d plays (in %d keys), not in the aggregator's state", lk.entity, lk.item, lk.day, lk.user, p, held[lk]))
		}
	}
	sort.Strings(diffs)
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("sitewide: %d differences in all", len(diffs))
			break
		}
		t.Error("sitewide: " + d)
	}
	line := fmt.Sprintf("sitewide   %d keys (%d spilled) from %d table records: %d plays, %d listeners; %d (user, item, day) of %d user-days compared with the aggregator's state, %d held by the group",
		len(values), spilled, records, plays, listeners, compared, len(table), len(got))
	t.Log(line)
	c.summary = append(c.summary, line)
	c.mark("sitewide checks")

	// sitewide_days: a row per key, each the key's latest value.
	it := c.session.Query(`SELECT entity, item, day, bucket, plays, listeners, name, artist, WRITETIME(plays) FROM sitewide_days`).PageSize(5000).Iter()
	var (
		entity, name, artist string
		item, rowPlays, ts   int64
		bucket, rowListeners int
		day                  time.Time
	)
	rows := map[string]bool{}
	diffs = diffs[:0]
	for it.Scan(&entity, &item, &day, &bucket, &rowPlays, &rowListeners, &name, &artist, &ts) {
		ks := sitewide.Key{Entity: topk.Entity(entity), Item: uint64(item), Day: day, Bucket: uint32(bucket)}.String()
		rows[ks] = true
		v := values[ks]
		if v == nil {
			diffs = append(diffs, fmt.Sprintf("row %s (%d plays, %d listeners, v%d): no such key in the sitewide table", ks, rowPlays, rowListeners, ts))
			continue
		}
		d := v.Display()
		if rowPlays != v.Plays() || rowListeners != v.ListenerCount() || name != d.Name || artist != d.Artist || ts != int64(v.Version) {
			diffs = append(diffs, fmt.Sprintf("row %s: %d plays, %d listeners, %q by %q, v%d; the table's value: %d plays, %d listeners, %q by %q, v%d",
				ks, rowPlays, rowListeners, name, artist, ts, v.Plays(), v.ListenerCount(), d.Name, d.Artist, v.Version))
		}
	}
	if err := it.Close(); err != nil {
		t.Errorf("sitewide_days: %v", err)
	}
	for ks, v := range values {
		if !rows[ks] && v.Version > 0 {
			diffs = append(diffs, fmt.Sprintf("%s (%d plays, %d listeners, v%d): no row", ks, v.Plays(), v.ListenerCount(), v.Version))
		}
	}
	sort.Strings(diffs)
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("sitewide_days: %d differences in all", len(diffs))
			break
		}
		t.Error("sitewide_days: " + d)
	}
	line = fmt.Sprintf("cassandra  %d rows of sitewide_days compared with the sitewide table", len(rows))
	t.Log(line)
	c.summary = append(c.summary, line)
	c.mark("sitewide_days")
}
