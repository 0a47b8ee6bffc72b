package fanout

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/processors/aggregator"
	"github.com/topk-charts/topk/processors/sitewide"
)

const groupName = "topk-sitewide-fanout"

// Group is the fan-out group of a namespace.
func Group(namespace string) goka.Group {
	return goka.Group(listen.Namespaced(namespace, groupName))
}

// Table is the fan-out's table topic, "<group>-table": user_id|day → the
// last state version sent (LastCodec).
func Table(namespace string) goka.Table { return goka.GroupTable(Group(namespace)) }

// Input is the fan-out's input: the aggregator's table topic, read as a
// stream.
func Input(namespace string) goka.Stream { return goka.Stream(aggregator.Table(namespace)) }

// Stage names this group in dead-letter headers and metrics.
const Stage = processors.StageFanout

// CountsRetention is how long the counts topic keeps Counts: as long as
// user.listen.valid keeps listens (kafka.ListenTopics), the time the
// sitewide group may be down and still catch up.
const CountsRetention = 14 * 24 * time.Hour

var (
	states = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_fanout_states_total",
		Help: "User-day states read by the sitewide fan-out, by outcome: next (the next version: its changed items sent), first (the first state of its key), gap (versions skipped: compaction, a crash), not_newer (a replayed or rewritten state), unknown_change (the next version without Changed) — those four send every item of the day — and invalid (to the DLQ).",
	}, []string{"outcome"})
	counts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_fanout_counts_total",
		Help: "Counts the sitewide fan-out emitted to the counts topic.",
	})
)

// outcome is what the fan-out does with a state.
type outcome int

const (
	outcomeNext outcome = iota
	outcomeFirst
	outcomeGap
	outcomeNotNewer
	outcomeUnknownChange
	outcomeInvalid
)

var outcomeCounters = [...]prometheus.Counter{
	outcomeNext:          states.WithLabelValues("next"),
	outcomeFirst:         states.WithLabelValues("first"),
	outcomeGap:           states.WithLabelValues("gap"),
	outcomeNotNewer:      states.WithLabelValues("not_newer"),
	outcomeUnknownChange: states.WithLabelValues("unknown_change"),
	outcomeInvalid:       states.WithLabelValues("invalid"),
}

// decide is the fan-out's rule for a state of version v whose Changed is
// known (changed) or not, given the last version sent for its key (seen:
// one was). Only outcomeNext sends the changed items alone.
func decide(last uint32, seen bool, v uint32, changed bool) outcome {
	switch {
	case !seen:
		return outcomeFirst
	case v <= last:
		return outcomeNotNewer
	case v-last > 1:
		return outcomeGap
	case !changed:
		return outcomeUnknownChange
	}
	return outcomeNext
}

// Config configures the fan-out.
type Config struct {
	Namespace string
}

// Graph is the fan-out topology. The input (the aggregator's table topic)
// is read as bytes and decoded in the callback, so a record that is not a
// day state goes to the DLQ instead of stopping the group.
func Graph(cfg Config) *goka.GroupGraph { return newFanner(cfg).graph() }

// fanner is the fan-out's callback.
type fanner struct {
	cfg Config
	t   listen.Topics
}

func newFanner(cfg Config) *fanner { return &fanner{cfg: cfg, t: listen.NewTopics(cfg.Namespace)} }

func (f *fanner) graph() *goka.GroupGraph {
	return goka.DefineGroup(Group(f.cfg.Namespace),
		goka.Input(Input(f.cfg.Namespace), processors.RawCodec{}, f.process),
		goka.Persist(LastCodec{}),
		goka.Output(f.t.Counts, processors.RawCodec{}),
		goka.Output(f.t.DLQ, processors.RawCodec{}),
	)
}

// process sends the Counts of one user-day state and records its version.
func (f *fanner) process(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	user, day, ok := listen.SplitKey(ctx.Key())
	if !ok {
		f.deadLetter(ctx, "bad_key", "key "+strconv.Quote(ctx.Key())+" is not user_id|YYYY-MM-DD", raw)
		return
	}
	if raw == nil {
		f.deadLetter(ctx, "undecodable", "no value (a tombstone): the aggregator never deletes a day", raw)
		return
	}
	d, err := aggregator.DecodeDay(raw)
	if err != nil {
		f.deadLetter(ctx, "undecodable", err.Error(), raw)
		return
	}
	last, seen := ctx.Value().(uint32)
	o := decide(last, seen, d.Version, !d.Changed.Empty())
	outcomeCounters[o].Inc()
	counts.Add(float64(f.emit(ctx, user, day, d, o != outcomeNext)))
	if !seen || d.Version > last {
		ctx.SetValue(d.Version)
	}
}

func (f *fanner) deadLetter(ctx goka.Context, reason, detail string, raw []byte) {
	processors.DeadLetter(ctx, f.t.DLQ, Stage, reason, detail, raw)
	outcomeCounters[outcomeInvalid].Inc()
}

// emit sends the Counts of d's changed items, or of all its items, and
// returns how many.
func (f *fanner) emit(ctx goka.Context, user string, day time.Time, d *aggregator.Day, all bool) int {
	n := 0
	key := sitewide.Key{Day: day, Bucket: sitewide.BucketOf(user)}
	c := sitewide.Count{User: user, Version: d.Version}
	send := func(e topk.Entity, it *aggregator.Item) {
		key.Entity, key.Item = e, it.Key
		c.Plays, c.Name, c.Artist = it.Plays, it.Name, it.Artist
		ctx.Emit(f.t.Counts, key.String(), sitewide.AppendCount(nil, &c))
		n++
	}
	for _, e := range topk.Entities {
		items := d.Items(e)
		if all {
			for i := range items {
				send(e, &items[i])
			}
		} else if i, ok := d.Changed.Index(e); ok {
			send(e, &items[i])
		}
	}
	return n
}

// LastCodec is the codec of the fan-out's table: a uint32, the last state
// version sent for the key, as an encoding byte (1) and a uvarint.
type LastCodec struct{}

const lastEncoding = 1

// Encode takes a uint32.
func (LastCodec) Encode(v any) ([]byte, error) {
	x, ok := v.(uint32)
	if !ok {
		return nil, fmt.Errorf("fanout: cannot encode %T", v)
	}
	return binary.AppendUvarint([]byte{lastEncoding}, uint64(x)), nil
}

// Decode returns a uint32.
func (LastCodec) Decode(b []byte) (any, error) {
	if len(b) < 2 || b[0] != lastEncoding {
		return nil, fmt.Errorf("fanout: last version %x: %w", b, topk.ErrCorrupt)
	}
	x, n := binary.Uvarint(b[1:])
	if n != len(b)-1 || x > 1<<32-1 {
		return nil, fmt.Errorf("fanout: last version %x: %w", b, topk.ErrCorrupt)
	}
	return uint32(x), nil
}

// Setup creates or reconciles the topics of cfg's fan-out, all with the
// partitions of user.listen.valid: its input (the aggregator's table, as
// aggregator.Setup makes it, so either may start first), its own table
// and the counts topic; and waits until they serve. Run it before New.
func Setup(ctx context.Context, s processors.Settings, cfg Config) error {
	_, err := s.EnsureCopartitioned(ctx, listen.NewTopics(cfg.Namespace).Valid,
		s.TableSpec(aggregator.Table(cfg.Namespace)), s.TableSpec(Table(cfg.Namespace)), CountsSpec(s, cfg.Namespace))
	return err
}

// EnsureCounts creates or reconciles the counts topic of namespace (the
// partitions of user.listen.valid, fixed; deleted by age after
// CountsRetention), for the sitewide group, which may start before the
// fan-out. It gives up when ctx ends.
func EnsureCounts(ctx context.Context, s processors.Settings, namespace string) error {
	_, err := s.EnsureCopartitioned(ctx, listen.NewTopics(namespace).Valid, CountsSpec(s, namespace))
	return err
}

// CountsSpec is the counts topic's spec under s, for
// Settings.EnsureCopartitioned and `topk topics`. s.MinInsync 0 leaves
// min.insync.replicas to the brokers.
func CountsSpec(s processors.Settings, namespace string) func(int32) kafka.TopicSpec {
	return func(n int32) kafka.TopicSpec {
		spec := kafka.TopicSpec{Name: string(listen.NewTopics(namespace).Counts), Partitions: n, FixedPartitions: true,
			Config: map[string]string{
				"cleanup.policy": "delete",
				"retention.ms":   strconv.FormatInt(CountsRetention.Milliseconds(), 10),
			}}
		if s.MinInsync > 0 {
			spec.Config["min.insync.replicas"] = strconv.Itoa(s.MinInsync)
		}
		return spec.WithMaxMessageBytes(s.MaxMessageBytes)
	}
}

// New builds the fan-out processor with its storage in dir (see
// processors.StorageDir). It does no I/O of its own: run Setup first. Its
// emits (Counts, dead letters) and table writes are partitioned by
// sitewide.Hasher: a Count by entity|item|bucket, a user|day key as
// goka.DefaultHasher, so the table stays copartitioned with its input.
// Its metrics and the dead letters' go to s.Registerer.
func New(s processors.Settings, cfg Config, dir string, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	if err := s.RegisterDeadLetters(states, counts); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	o := append(s.Options(string(Group(cfg.Namespace)), dir),
		goka.WithNilHandling(goka.NilProcess), goka.WithHasher(sitewide.Hasher))
	return goka.NewProcessor(s.Brokers, Graph(cfg), append(o, opts...)...)
}
