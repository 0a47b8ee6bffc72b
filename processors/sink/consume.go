// One claimed partition: a batch collected (one record per key for a
// Coalescer) up to BatchSize, MaxBatchBytes or Linger, written until it
// succeeds, then marked.

package sink

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/outage"
)

// consume is one claimed partition: collect a batch (BatchSize records,
// MaxBatchBytes bytes, or Linger from its first record), write it until it
// succeeds, mark it, repeat. A record that would take the batch past
// MaxBatchBytes is held while the batch is written, then starts the next
// one; so a batch is at most MaxBatchBytes, or one record. For a
// Coalescer, the bytes are those of the records still to be written (see
// collecting.add). It returns nil when the claim is released or the
// session ends; a batch not yet written is then dropped unmarked. It
// returns an error when a batch has kept failing for longer than
// OutageLimit (also dropped unmarked).
func (s *Sink) consume(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	log := s.log.With("partition", claim.Partition())
	p := s.track(claim, log)
	defer s.untrack(p)
	log.Debug("partition claimed", "initial_offset", claim.InitialOffset())
	ctx := sess.Context()
	msgs := claim.Messages()
	b := s.newBatch()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	// flush writes and marks the batch; false: consume must return err.
	flush := func() (bool, error) {
		linger.Stop()
		if ok, err := s.write(ctx, p, log, b.live); !ok {
			return false, err
		}
		last := b.all[len(b.all)-1]
		p.mu.Lock()
		p.next, p.oldest = last.Offset+1, time.Time{}
		p.mu.Unlock()
		if l, ok := p.lag(); ok {
			lag.WithLabelValues(s.cfg.Name, p.label).Set(l)
		}
		messagesWritten.WithLabelValues(s.cfg.Name).Add(float64(len(b.all)))
		batchesWritten.WithLabelValues(s.cfg.Name).Inc()
		batchSize.WithLabelValues(s.cfg.Name).Observe(float64(len(b.all)))
		batchSizeBytes.WithLabelValues(s.cfg.Name).Observe(float64(b.bytes))
		if n := len(b.all) - len(b.live); n > 0 {
			coalesced.WithLabelValues(s.cfg.Name).Add(float64(n))
		}
		// Marked after the metrics, so whoever sees the marks (tests) sees
		// the batch counted.
		for _, m := range b.all { // each message: kafka.OrderedCommits
			sess.MarkMessage(m, "")
		}
		// A new batch: the Writer may not keep the old one, but its arrays
		// must not pin records until the next batch overwrites them.
		b = s.newBatch()
		p.bytes.Store(0)
		return true, nil
	}
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			add := b.plan(m)
			if add.delta > 0 && b.liveAfter(add) > 1 && b.bytes+add.delta > s.cfg.MaxBatchBytes {
				// m does not fit: the batch so far is written first, and m
				// starts the next one.
				if ok, err := flush(); !ok {
					return err
				}
				add = placement{at: -1, ranked: add.ranked, rank: add.rank, delta: RecordBytes(m)}
			}
			if len(b.all) == 0 {
				linger.Reset(s.cfg.Linger)
				p.mu.Lock()
				if p.next < 0 {
					p.next = m.Offset
				}
				p.oldest = m.Timestamp
				if p.oldest.IsZero() {
					p.oldest = time.Now()
				}
				p.mu.Unlock()
			}
			b.add(m, add)
			p.bytes.Store(int64(b.bytes))
			full = len(b.all) >= s.cfg.BatchSize || b.bytes >= s.cfg.MaxBatchBytes
		case <-linger.C:
			full = len(b.all) > 0
		}
		if !full {
			continue
		}
		if ok, err := flush(); !ok {
			return err
		}
	}
}

// collecting is the batch a partition collects: every record read (all,
// marked once written) and those to write (live). They are the same unless
// the Writer is a Coalescer: then live keeps, of the records it ranks with
// equal keys, the one of highest rank (on a tie the later), in the place
// of its key's first record; the others are marked, never written, and
// their keys and values dropped at once.
type collecting struct {
	c     Coalescer // nil: no coalescing
	all   []*sarama.ConsumerMessage
	live  []*sarama.ConsumerMessage
	bytes int              // RecordBytes of live
	rank  []int64          // of live, when ranked
	index map[string]int32 // key → its place in live (ranked records only)
}

func (s *Sink) newBatch() *collecting {
	n := min(s.cfg.BatchSize, 1024)
	b := &collecting{all: make([]*sarama.ConsumerMessage, 0, n)}
	if c, ok := s.w.(Coalescer); ok {
		b.c, b.index, b.rank = c, map[string]int32{}, make([]int64, 0, n)
		b.live = make([]*sarama.ConsumerMessage, 0, n)
	}
	return b
}

// placement is where a record goes: appended to live (at -1), in place of
// live[at], or nowhere (drop: a record of its key in live outranks it);
// delta is what it adds to the batch's bytes.
type placement struct {
	at     int
	drop   bool
	ranked bool
	rank   int64
	delta  int
}

func (b *collecting) plan(m *sarama.ConsumerMessage) placement {
	size := RecordBytes(m)
	if b.c == nil {
		return placement{at: -1, delta: size}
	}
	rank, ok := b.c.Rank(m)
	if !ok {
		return placement{at: -1, delta: size}
	}
	i, seen := b.index[string(m.Key)]
	switch {
	case !seen:
		return placement{at: -1, ranked: true, rank: rank, delta: size}
	case rank < b.rank[i]:
		return placement{drop: true}
	default:
		return placement{at: int(i), ranked: true, rank: rank, delta: size - RecordBytes(b.live[i])}
	}
}

// liveAfter is how many records live would hold with pl.
func (b *collecting) liveAfter(pl placement) int {
	if pl.drop || pl.at >= 0 {
		return len(b.live)
	}
	return len(b.live) + 1
}

func (b *collecting) add(m *sarama.ConsumerMessage, pl placement) {
	b.all = append(b.all, m)
	b.bytes += pl.delta
	if b.c == nil {
		b.live = b.all
		return
	}
	switch {
	case pl.drop:
		forget(m)
	case pl.at >= 0:
		forget(b.live[pl.at])
		b.live[pl.at], b.rank[pl.at] = m, pl.rank
	default:
		if pl.ranked {
			b.index[string(m.Key)] = int32(len(b.live))
		}
		b.live = append(b.live, m)
		b.rank = append(b.rank, pl.rank)
	}
}

// forget drops what a record not to be written holds; what marking needs
// (topic, partition, offset) stays.
func forget(m *sarama.ConsumerMessage) { m.Key, m.Value, m.Headers = nil, nil, nil }

// write calls the Writer with batch until it succeeds (true), ctx ends
// (false, nil) or the batch has kept failing for longer than OutageLimit
// (false and the *outage.LimitError). It never skips a batch. The log says
// when the partition's writes start failing and when they work again; the
// attempts in between are debug lines.
func (s *Sink) write(ctx context.Context, p *partition, log *slog.Logger, batch []*sarama.ConsumerMessage) (bool, error) {
	first, last := batch[0].Offset, batch[len(batch)-1].Offset
	defer func() {
		p.mu.Lock()
		if p.attempt > 0 {
			retrying.WithLabelValues(s.cfg.Name).Dec()
		}
		p.attempt, p.lastErr = 0, nil
		p.mu.Unlock()
	}()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := s.w.Write(ctx, batch)
		if err == nil {
			writeSeconds.WithLabelValues(s.cfg.Name).Observe(time.Since(start).Seconds())
			if attempt > 1 {
				log.Debug("batch written after retries", "attempts", attempt, "first_offset", first, "last_offset", last)
			}
			p.writes.OK()
			return true, nil
		}
		if ctx.Err() != nil {
			log.Info("batch abandoned unmarked: session ended", "first_offset", first, "last_offset", last, "err", err)
			return false, nil
		}
		writeFailures.WithLabelValues(s.cfg.Name).Inc()
		p.mu.Lock()
		if p.attempt == 0 {
			retrying.WithLabelValues(s.cfg.Name).Inc()
		}
		p.attempt, p.lastErr = attempt, err
		p.mu.Unlock()
		if lerr := p.writes.Fail(err); lerr != nil {
			return false, fmt.Errorf("sink %s: partition %d (offsets %d–%d left unmarked): %w", s.cfg.Name, p.id, first, last, lerr)
		}
		d := p.writes.Delay(s.cfg.Backoff)
		log.Debug("write failed; retrying the same batch", "attempt", attempt, "retry_in", d,
			"first_offset", first, "last_offset", last, "records", len(batch), "err", err)
		if !outage.Sleep(ctx, d) {
			log.Info("batch abandoned unmarked: session ended", "first_offset", first, "last_offset", last)
			return false, nil
		}
	}
}
