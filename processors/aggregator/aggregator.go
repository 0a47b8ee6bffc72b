package aggregator

import (
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

const groupName = "topk-aggregator"

// Group is the aggregator group of a namespace.
func Group(namespace string) goka.Group {
	return goka.Group(listen.Namespaced(namespace, groupName))
}

// Table is the aggregator's table topic, "<group>-table".
func Table(namespace string) goka.Table { return goka.GroupTable(Group(namespace)) }

// Stage names this group in dead-letter headers and metrics.
const Stage = "aggregator"

// DefaultMaxPlaysPerDay caps the plays counted per user-day. A day has
// 86 400 seconds; a person listening around the clock plays about 500
// tracks. Beyond the cap, listens go to the DLQ (reason daily_cap), which
// also keeps a day's state far under Kafka's 1 MiB record limit.
const DefaultMaxPlaysPerDay = 2000

var (
	listens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_aggregator_listens_total",
		Help: "Listens read by the aggregator, by outcome (counted, duplicate, over_cap, invalid).",
	}, []string{"outcome"})
	stateBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "topk_aggregator_state_bytes",
		Help:    "Encoded size of a user-day state written to the table.",
		Buckets: prometheus.ExponentialBuckets(64, 4, 9),
	})
)

func init() { prometheus.MustRegister(listens, stateBytes) }

// Config configures the aggregator.
type Config struct {
	Namespace      string
	MaxPlaysPerDay int // default DefaultMaxPlaysPerDay
}

// PlayOf reduces a listen to what a day's state keeps.
func PlayOf(l listen.Listen) Play {
	t := l.PlayedAt.UTC()
	artist, track, album := l.ItemKeys()
	return Play{
		Sec:       uint32(t.Hour()*3600 + t.Minute()*60 + t.Second()),
		TrackKey:  track,
		ArtistKey: artist,
		AlbumKey:  album,
		Track:     l.TrackName,
		Artist:    l.ArtistName,
		Album:     l.AlbumName,
	}
}

// Graph is the aggregator topology. The input is read as bytes and decoded
// in the callback, so a record that is not a listen goes to the DLQ instead
// of stopping the group.
func Graph(cfg Config) *goka.GroupGraph {
	maxPlays := cfg.MaxPlaysPerDay
	if maxPlays <= 0 {
		maxPlays = DefaultMaxPlaysPerDay
	}
	t := listen.NewTopics(cfg.Namespace)
	process := func(ctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		v, err := listen.Codec{}.Decode(raw)
		if err != nil {
			processors.DeadLetter(ctx, t.DLQ, Stage, "undecodable", err.Error(), raw)
			listens.WithLabelValues("invalid").Inc()
			return
		}
		l := v.(listen.Listen)
		if l.Key() != ctx.Key() {
			processors.DeadLetter(ctx, t.DLQ, Stage, "wrong_key", "key "+ctx.Key()+" but the listen belongs to "+l.Key(), raw)
			listens.WithLabelValues("invalid").Inc()
			return
		}
		d, _ := ctx.Value().(*Day)
		if d == nil {
			d = &Day{}
		}
		p := PlayOf(l)
		switch {
		case d.Has(p):
			// Rewrite the unchanged state: Goka writes the local store
			// before the changelog write is acknowledged, so after a crash
			// the replayed listen is already in the local state while the
			// changelog (and the flusher, and the views) never saw it.
			// Writing the value again closes that window.
			listens.WithLabelValues("duplicate").Inc()
		case int(d.Total) >= maxPlays:
			processors.DeadLetter(ctx, t.DLQ, Stage, "daily_cap", "user-day reached its cap of counted plays", raw)
			listens.WithLabelValues("over_cap").Inc()
			return
		default:
			d.Add(p)
			listens.WithLabelValues("counted").Inc()
		}
		ctx.SetValue(d)
	}
	return goka.DefineGroup(Group(cfg.Namespace),
		goka.Input(t.Valid, processors.RawCodec{}, process),
		goka.Persist(sizedCodec{}),
		goka.Output(t.DLQ, processors.RawCodec{}),
	)
}

// sizedCodec is DayCodec recording the size of every value it encodes.
type sizedCodec struct{ DayCodec }

func (c sizedCodec) Encode(v any) ([]byte, error) {
	b, err := c.DayCodec.Encode(v)
	stateBytes.Observe(float64(len(b)))
	return b, err
}

// New builds the aggregator processor with its storage in dir (see
// processors.StorageDir).
func New(s processors.Settings, cfg Config, dir string, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	if err := s.EnsureTable(Table(cfg.Namespace), listen.NewTopics(cfg.Namespace).Valid); err != nil {
		return nil, err
	}
	o := append(s.Options(string(Group(cfg.Namespace)), dir), goka.WithNilHandling(goka.NilProcess))
	return goka.NewProcessor(s.Brokers, Graph(cfg), append(o, opts...)...)
}
