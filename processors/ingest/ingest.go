package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

const groupName = "topk-ingest"

// Group is the ingest group of a namespace.
func Group(namespace string) goka.Group {
	return goka.Group(listen.Namespaced(namespace, groupName))
}

// Stage names this group in dead-letter headers and metrics.
const Stage = "ingest"

var records = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "topk_ingest_records_total",
	Help: "Records read from user.listen.raw, by outcome (valid, dead_letter).",
}, []string{"outcome"})

// Config configures the ingest group.
type Config struct {
	Namespace string
	// Now is the clock of the played_at window check; default time.Now.
	Now func() time.Time
	// MaxNameChars limits artist_name, track_name and album_name
	// (TOPK_MAX_NAME_CHARS; see listen.Limits); a longer name goes to the
	// DLQ with reason name_too_long. 0: listen.DefaultMaxNameChars.
	MaxNameChars int
}

// Graph is the ingest topology.
func Graph(cfg Config) *goka.GroupGraph {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	t := listen.NewTopics(cfg.Namespace)
	limits := listen.Limits{MaxNameChars: cfg.MaxNameChars}
	process := func(ctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		var key string
		var v any
		var err error
		if listen.IsDelete(raw) {
			var d listen.Delete
			d, err = listen.ParseDelete(raw, now())
			key, v = d.Key(), d
		} else {
			var l listen.Listen
			l, err = limits.Parse(raw, now())
			key, v = l.Key(), l
		}
		if err != nil {
			reason := "invalid"
			var ie *listen.InvalidError
			if errors.As(err, &ie) {
				reason = string(ie.Reason)
			}
			processors.DeadLetter(ctx, t.DLQ, Stage, reason, err.Error(), raw)
			records.WithLabelValues("dead_letter").Inc()
			return
		}
		ctx.Emit(t.Valid, key, v)
		records.WithLabelValues("valid").Inc()
	}
	return goka.DefineGroup(Group(cfg.Namespace),
		goka.Input(t.Raw, processors.RawCodec{}, process),
		goka.Output(t.Valid, listen.Codec{}),
		goka.Output(t.DLQ, processors.RawCodec{}),
	)
}

// New builds the ingest processor. Records with no value reach the callback
// (and the DLQ) instead of being dropped.
func New(s processors.Settings, cfg Config, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	if err := s.RegisterDeadLetters(records); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	o := append(s.Options(string(Group(cfg.Namespace)), ""), goka.WithNilHandling(goka.NilProcess))
	return goka.NewProcessor(s.Brokers, Graph(cfg), append(o, opts...)...)
}
