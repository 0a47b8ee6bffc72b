package processors

import (
	"strconv"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/topk-charts/topk/internal/metrics"
)

// Dead-letter headers: every record on user.listen.dlq carries the reason
// and where the original bytes came from.
const (
	HeaderReason    = "reason"
	HeaderDetail    = "detail"
	HeaderStage     = "stage"
	HeaderTopic     = "source_topic"
	HeaderPartition = "source_partition"
	HeaderOffset    = "source_offset"
	HeaderKey       = "source_key"
)

// StageImport is the stage of a record an import refused (package
// imports/send): its bytes are the history file's own record, not a listen
// of the contract, so a replay passes it over (import the file again
// instead).
const StageImport = "import"

// StageFanout and StageSitewide are the stages of the sitewide charts'
// groups (processors/fanout, processors/sitewide): their dead letters are
// an aggregator state and a sitewide Count, not listens, so a replay
// passes them over too (they come from a corrupt or foreign record on a
// topic only topk writes; the letter keeps its bytes and source).
const (
	StageFanout   = "fanout"
	StageSitewide = "sitewide"
)

// replayable reports whether a dead letter of stage holds a listen of
// the event contract, which a replay can send to the raw topic again.
func replayable(stage string) bool {
	switch stage {
	case StageImport, StageFanout, StageSitewide:
		return false
	}
	return true
}

// DeadLetters counts records sent to the DLQ by stage and reason. The
// groups that send dead letters register it (RegisterDeadLetters).
var DeadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "topk_dlq_records_total",
	Help: "Records sent to the dead-letter topic, by stage and reason.",
}, []string{"stage", "reason"})

// RegisterDeadLetters registers DeadLetters on s.Registerer (nil:
// prometheus.DefaultRegisterer), with cs, the collectors of the group
// built with s; registering them again is a no-op.
func (s Settings) RegisterDeadLetters(cs ...prometheus.Collector) error {
	return metrics.Register(s.Registerer, append(cs, DeadLetters)...)
}

// DeadLetterKey is the DLQ key of a record: its source topic/partition/offset.
func DeadLetterKey(topic string, partition int32, offset int64) string {
	return topic + "/" + strconv.Itoa(int(partition)) + "/" + strconv.FormatInt(offset, 10)
}

// DeadLetter emits the original bytes of the record in ctx to dlq with the
// reason and source headers. The DLQ's codec must pass bytes through
// (RawCodec).
func DeadLetter(ctx goka.Context, dlq goka.Stream, stage, reason, detail string, original []byte) {
	if len(detail) > 512 {
		detail = detail[:512]
	}
	h := goka.Headers{
		HeaderReason:    []byte(reason),
		HeaderDetail:    []byte(detail),
		HeaderStage:     []byte(stage),
		HeaderTopic:     []byte(ctx.Topic()),
		HeaderPartition: []byte(strconv.Itoa(int(ctx.Partition()))),
		HeaderOffset:    []byte(strconv.FormatInt(ctx.Offset(), 10)),
		HeaderKey:       []byte(ctx.Key()),
	}
	ctx.Emit(dlq, DeadLetterKey(string(ctx.Topic()), ctx.Partition(), ctx.Offset()), original, goka.WithCtxEmitHeaders(h))
	DeadLetters.WithLabelValues(stage, reason).Inc()
}

// RawCodec passes bytes through unchanged, nil included. With
// goka.WithNilHandling(goka.NilProcess) a record with no value reaches the
// callback as a nil []byte instead of being dropped or failing a decoder.
type RawCodec struct{}

// Encode accepts []byte (nil allowed) or string.
func (RawCodec) Encode(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	case nil:
		return nil, nil
	}
	return nil, errNotBytes
}

// Decode returns the bytes as they are.
func (RawCodec) Decode(b []byte) (any, error) { return b, nil }

type codecError string

func (e codecError) Error() string { return string(e) }

const errNotBytes = codecError("processors: RawCodec encodes []byte or string only")
