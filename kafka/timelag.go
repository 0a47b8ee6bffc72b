package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// GroupTimeLag is how long the oldest record of topic that group has not
// yet committed has been waiting: for each partition whose committed
// offset c is below the high-water mark, now minus the timestamp of the
// record at c (the first record at or after c: compaction may have
// removed c itself); the largest over the partitions, 0 when the group
// has committed everything. A partition without a commit counts from its
// oldest offset. One record is fetched per lagging partition, whatever
// the number of records behind.
//
// The timestamps are the producers' (CreateTime) unless the topic keeps
// LogAppendTime; a producer clock ahead of this one makes a lag look
// shorter (never below 0).
//
// sarama's requests take no context: they run in a goroutine, and ctx
// ending returns ctx's error at once while they finish within the
// client's network timeouts.
func GroupTimeLag(ctx context.Context, client sarama.Client, group, topic string) (time.Duration, error) {
	type result struct {
		lag time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		lag, err := groupTimeLag(ctx, client, group, topic, time.Now)
		done <- result{lag, err}
	}()
	select {
	case r := <-done:
		return r.lag, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("time lag of group %s on %s: %w", group, topic, ctx.Err())
	}
}

func groupTimeLag(ctx context.Context, client sarama.Client, group, topic string, now func() time.Time) (time.Duration, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	// Committed offsets first, then high-water marks: a commit made in
	// between is then still at or below the mark read.
	committed, err := committedOffsets(client, group, topic, parts)
	if err != nil {
		return 0, err
	}
	var worst time.Duration
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("high-water mark of %s/%d: %w", topic, p, err)
		}
		c := committed[p]
		if c < 0 {
			if c, err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return 0, fmt.Errorf("oldest offset of %s/%d: %w", topic, p, err)
			}
		}
		if c >= hwm {
			continue
		}
		ts, err := recordTime(client, topic, p, c)
		if errors.Is(err, sarama.ErrOffsetOutOfRange) {
			// Deleted below the commit (retention, DeleteRecords): the
			// oldest record still there is the oldest unflushed one.
			oldest, oerr := client.GetOffset(topic, p, sarama.OffsetOldest)
			if oerr != nil {
				return 0, fmt.Errorf("oldest offset of %s/%d: %w", topic, p, oerr)
			}
			if oldest >= hwm {
				continue
			}
			ts, err = recordTime(client, topic, p, max(c, oldest))
		}
		if err != nil {
			return 0, err
		}
		worst = max(worst, now().Sub(ts))
	}
	return worst, nil
}

// committedOffsets are the group's committed offsets of topic's
// partitions, -1 where none. The coordinator is looked up again once when
// it fails (moved, loading).
func committedOffsets(client sarama.Client, group, topic string, parts []int32) (map[int32]int64, error) {
	req := sarama.NewOffsetFetchRequest(client.Config().Version, group, map[string][]int32{topic: parts})
	var resp *sarama.OffsetFetchResponse
	for attempt := 0; ; attempt++ {
		coord, err := client.Coordinator(group)
		if err == nil {
			resp, err = coord.FetchOffset(req)
			if err == nil {
				if kerr := resp.GroupError(); !errors.Is(kerr, sarama.ErrNoError) {
					err = kerr
				}
			}
		}
		if err == nil {
			break
		}
		if attempt == 1 {
			return nil, fmt.Errorf("offsets of group %s: %w", group, err)
		}
		_ = client.RefreshCoordinator(group)
	}
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		out[p] = -1
		if b := resp.GetBlock(topic, p); b != nil {
			if !errors.Is(b.Err, sarama.ErrNoError) {
				return nil, fmt.Errorf("offset of group %s on %s/%d: %w", group, topic, p, b.Err)
			}
			out[p] = b.Offset
		}
	}
	return out, nil
}

// fetchBytes bounds the bytes asked for; Kafka returns the first record
// batch whole even when it is larger.
const fetchBytes = 1 << 20

// recordTime fetches the record at offset (or the first one after it)
// from the partition's leader and returns its timestamp.
func recordTime(client sarama.Client, topic string, p int32, offset int64) (time.Time, error) {
	leader, err := client.Leader(topic, p)
	if err != nil {
		return time.Time{}, fmt.Errorf("leader of %s/%d: %w", topic, p, err)
	}
	req := newFetchRequest(client.Config().Version)
	req.AddBlock(topic, p, offset, fetchBytes, -1)
	resp, err := leader.Fetch(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, offset, err)
	}
	b := resp.GetBlock(topic, p)
	if b == nil {
		return time.Time{}, fmt.Errorf("fetch %s/%d at %d: no answer for the partition", topic, p, offset)
	}
	if !errors.Is(b.Err, sarama.ErrNoError) {
		if errors.Is(b.Err, sarama.ErrNotLeaderForPartition) || errors.Is(b.Err, sarama.ErrUnknownTopicOrPartition) {
			_ = client.RefreshMetadata(topic) // the next measurement asks the new leader
		}
		return time.Time{}, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, offset, b.Err)
	}
	ts, ok := firstRecordTime(b, offset)
	if !ok {
		return time.Time{}, fmt.Errorf("fetch %s/%d at %d: no record returned", topic, p, offset)
	}
	return ts, nil
}

// newFetchRequest is a fetch request of the highest version the
// protocol version allows (as sarama's consumer picks it), answered at
// once when data is there.
func newFetchRequest(v sarama.KafkaVersion) *sarama.FetchRequest {
	req := &sarama.FetchRequest{MinBytes: 1, MaxWaitTime: 100}
	switch {
	case v.IsAtLeast(sarama.V2_7_0_0):
		req.Version = 12
	case v.IsAtLeast(sarama.V2_3_0_0):
		req.Version = 11
	case v.IsAtLeast(sarama.V2_1_0_0):
		req.Version = 10
	case v.IsAtLeast(sarama.V0_11_0_0):
		req.Version = 4
	case v.IsAtLeast(sarama.V0_10_1_0):
		req.Version = 3
	}
	if req.Version >= 3 {
		req.MaxBytes = fetchBytes
	}
	if req.Version >= 7 {
		req.SessionID, req.SessionEpoch = 0, -1 // no fetch session
	}
	return req
}

// firstRecordTime is the timestamp of the first data record at or after
// offset in a fetched partition: a batch may start before offset, and
// control batches (transaction markers) are not data.
func firstRecordTime(b *sarama.FetchResponseBlock, offset int64) (time.Time, bool) {
	for _, rs := range b.RecordsSet {
		switch {
		case rs.RecordBatch != nil:
			rb := rs.RecordBatch
			if rb.Control {
				continue
			}
			for _, r := range rb.Records {
				if rb.FirstOffset+r.OffsetDelta < offset {
					continue
				}
				if rb.LogAppendTime {
					return rb.MaxTimestamp, true
				}
				return rb.FirstTimestamp.Add(r.TimestampDelta), true
			}
		case rs.MsgSet != nil: // message format 0/1 (before Kafka 0.11; Kafka 4 has none)
			for _, mb := range rs.MsgSet.Messages {
				if mb.Offset >= offset && mb.Msg != nil {
					return mb.Msg.Timestamp, true
				}
			}
		}
	}
	return time.Time{}, false
}

// TimeLagMeter measures GroupTimeLag of one group on one topic with a
// client of its own, connected on first use and kept: the process using
// it may start while Kafka is down. A zero TimeLagMeter is not usable;
// call NewTimeLagMeter.
type TimeLagMeter struct {
	*meter
	group, topic string
}

// NewTimeLagMeter measures group on topic through brokers. cfg nil: the
// shared settings (NewSaramaConfig) with 5 s network timeouts and one
// metadata retry, so a measurement against an unreachable broker fails
// within seconds.
func NewTimeLagMeter(brokers []string, cfg *sarama.Config, group, topic string) *TimeLagMeter {
	return &TimeLagMeter{meter: newMeter(brokers, cfg, "topk-time-lag"), group: group, topic: topic}
}

// Measure returns the group's time lag now (GroupTimeLag). It connects
// first if it has no client yet. While an earlier measurement still waits
// for Kafka (ctx ended before it did), it fails at once rather than pile
// up requests.
func (m *TimeLagMeter) Measure(ctx context.Context) (time.Duration, error) {
	return measure(ctx, m.meter, fmt.Sprintf("time lag of group %s on %s", m.group, m.topic), func(cl sarama.Client) (time.Duration, error) {
		return groupTimeLag(ctx, cl, m.group, m.topic, time.Now)
	})
}

// meter is a Kafka client for measurements (TimeLagMeter,
// LagCollector), connected on first use and kept, that runs one
// measurement at a time.
type meter struct {
	brokers []string
	cfg     *sarama.Config

	busy chan struct{} // holds a token while a measurement runs
	mu   sync.Mutex
	cl   sarama.Client // nil until connected
	done bool
}

// newMeter connects to brokers with cfg; nil: the shared settings
// (NewSaramaConfig, client id clientID) with 5 s network timeouts and one
// metadata retry, so a measurement against an unreachable broker fails
// within seconds.
func newMeter(brokers []string, cfg *sarama.Config, clientID string) *meter {
	if cfg == nil {
		cfg = NewSaramaConfig(clientID)
		cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = 5*time.Second, 5*time.Second, 5*time.Second
		cfg.Metadata.Retry.Max = 1
	}
	return &meter{brokers: brokers, cfg: cfg, busy: make(chan struct{}, 1)}
}

// errBusy: the previous measurement still waits for Kafka.
var errBusy = errors.New("the previous measurement is still running")

// measure runs f with m's client (connecting first if needed) and returns
// its result, or ctx's error as soon as ctx ends (f finishes within the
// client's network timeouts). While an earlier f still runs it fails at
// once with errBusy. what names the measurement in its errors.
func measure[T any](ctx context.Context, m *meter, what string, f func(sarama.Client) (T, error)) (T, error) {
	var zero T
	select {
	case m.busy <- struct{}{}:
	default:
		return zero, fmt.Errorf("%s: %w", what, errBusy)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-m.busy }()
		cl, err := m.client()
		if err != nil {
			done <- result{zero, err}
			return
		}
		v, err := f(cl)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

func (m *meter) client() (sarama.Client, error) {
	m.mu.Lock()
	cl, done := m.cl, m.done
	m.mu.Unlock()
	if done {
		return nil, sarama.ErrClosedClient
	}
	if cl != nil {
		return cl, nil
	}
	// Connect without the lock (it may take the network timeouts): Close
	// must not wait for it. One measurement runs at a time (busy).
	cl, err := sarama.NewClient(m.brokers, m.cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", m.brokers, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		_ = cl.Close()
		return nil, sarama.ErrClosedClient
	}
	m.cl = cl
	return cl, nil
}

// Close closes the client; a measurement still running fails.
func (m *meter) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = true
	if m.cl == nil {
		return nil
	}
	return m.cl.Close()
}
