package send

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

// Stage is the dead-letter stage of records an import refused (header
// processors.HeaderStage); `topk dlq replay` passes them over.
const Stage = processors.StageImport

// Dead-letter headers of an import's refused records, beside
// processors.HeaderReason, HeaderDetail, HeaderStage and HeaderKey (the
// user).
const (
	HeaderImport = "import"       // the import's name: an upload's id, or the file given to topk import
	HeaderFile   = "import_file"  // the file the record was in (a member of the archive)
	HeaderIndex  = "import_index" // the record's index in that file
)

// ErrNotSent is wrapped by Run's error when Kafka did not acknowledge a
// batch or the checkpoint could not be kept: the import stopped there,
// and running it again (resumed or not) completes it.
var ErrNotSent = errors.New("import stopped before every record was sent")

// Complete reports whether a Run that returned err read every file as far
// as it could and had every record acknowledged, so that nothing is left
// to resume: err is nil, or it holds only damaged files
// (*imports.FileError), no failed send (ErrNotSent) and no cancellation.
func Complete(err error) bool {
	var fe *imports.FileError
	return err == nil || (errors.As(err, &fe) && !errors.Is(err, ErrNotSent) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded))
}

// DefaultBatch is how many records Run sends before it waits for Kafka's
// acknowledgements and moves its checkpoint.
const DefaultBatch = 2000

// Producer sends records and returns once Kafka acknowledged every one
// (crawler.KafkaPublisher).
type Producer interface {
	Send(ctx context.Context, msgs []*sarama.ProducerMessage) error
}

// Config of Run.
type Config struct {
	// Options are the reader's (imports.Options): User is required.
	// Run sets Refused and Progress; After is where a resumed run starts.
	Options imports.Options
	// Topics name the raw topic (listens) and the dead-letter topic
	// (refused records).
	Topics listen.Topics
	// Producer sends them.
	Producer Producer
	// Name names the import in dead-letter keys and headers.
	Name string
	// Batch is the records (listens and refusals) per send; 0:
	// DefaultBatch.
	Batch int
	// Checkpoint, if set, is called after each acknowledged send with the
	// position of the last record sent: a run resumed with Options.After
	// set to it sends nothing twice and misses nothing. Its error stops
	// the run.
	Checkpoint func(imports.Position) error
	// Progress, if set, is called as the read goes (every
	// Options.ProgressEvery records, and when a file ends) and after each
	// send.
	Progress func(Status)
}

// Status is how far a run is.
type Status struct {
	imports.Progress
	// Sent counts the listens Kafka acknowledged in this run, DeadLetters
	// the refused records.
	Sent, DeadLetters int
	// Reading, Sending: time spent reading (and mapping) and waiting for
	// Kafka, so far.
	Reading, Sending time.Duration
}

// Run reads the history in r (imports.Read: size bytes called name) and
// produces every accepted listen to the raw topic, keyed by user, as the
// crawler does, and every refused record to the dead-letter topic with
// its reason, in batches: each batch is acknowledged by Kafka before the
// checkpoint moves past it. Ingest checks the listens again and the
// aggregator counts each identity once, so a run repeated, resumed from
// an older checkpoint, or overlapping listens crawled or submitted, counts
// nothing twice.
//
// The report counts what this run read (records before Options.After as
// Resumed); the error is imports.Read's, or the first send's.
func Run(ctx context.Context, r io.ReaderAt, size int64, name string, cfg Config) (*imports.Report, Status, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	s := &sender{ctx: ctx, cfg: cfg, started: time.Now()}
	opts := cfg.Options
	opts.Refused = s.refused
	opts.Progress = func(p imports.Progress) {
		s.st.Progress = p
		s.report()
	}
	rep, err := imports.Read(ctx, r, size, name, opts, s.accepted)
	// The records read before an error are sent: a corrupt file stops
	// that file, not the others, and a resumed run starts after them.
	var sendErr error
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !s.failed {
		sendErr = s.flush(ctx)
	}
	s.st.Reading = time.Since(s.started) - s.st.Sending
	s.report()
	if sendErr != nil {
		return rep, s.st, errors.Join(err, sendErr)
	}
	return rep, s.st, err
}

type sender struct {
	ctx     context.Context
	cfg     Config
	st      Status
	started time.Time
	msgs    []*sarama.ProducerMessage
	listens int
	last    imports.Position
	failed  bool // a send failed: nothing more is sent
}

func (s *sender) accepted(rec imports.Record) error {
	v, err := json.Marshal(rec.Listen)
	if err != nil {
		return err
	}
	m := &sarama.ProducerMessage{Topic: string(s.cfg.Topics.Raw), Key: sarama.StringEncoder(rec.Listen.UserID), Value: sarama.ByteEncoder(v)}
	if rec.Listen.Source != "" {
		m.Headers = []sarama.RecordHeader{{Key: []byte(crawler.SourceHeader), Value: []byte(rec.Listen.Source)}}
	}
	s.listens++
	return s.add(m, rec.Position)
}

func (s *sender) refused(r imports.Refusal) error {
	detail := r.Detail
	if len(detail) > 512 {
		detail = detail[:512]
	}
	m := &sarama.ProducerMessage{
		Topic: string(s.cfg.Topics.DLQ),
		Key:   sarama.StringEncoder(DeadLetterKey(s.cfg.Name, r.Position)),
		Value: sarama.ByteEncoder(r.Raw),
		Headers: []sarama.RecordHeader{
			{Key: []byte(processors.HeaderReason), Value: []byte(r.Reason)},
			{Key: []byte(processors.HeaderDetail), Value: []byte(detail)},
			{Key: []byte(processors.HeaderStage), Value: []byte(Stage)},
			{Key: []byte(processors.HeaderKey), Value: []byte(s.cfg.Options.User)},
			{Key: []byte(HeaderImport), Value: []byte(s.cfg.Name)},
			{Key: []byte(HeaderFile), Value: []byte(r.File)},
			{Key: []byte(HeaderIndex), Value: []byte(strconv.Itoa(r.Index))},
		},
	}
	processors.DeadLetters.WithLabelValues(Stage, string(r.Reason)).Inc()
	return s.add(m, r.Position)
}

// DeadLetterKey is the dead-letter key of a refused record of the import
// called name: import/<name>/<file>/<index>.
func DeadLetterKey(name string, p imports.Position) string {
	return "import/" + name + "/" + p.File + "/" + strconv.Itoa(p.Index)
}

func (s *sender) add(m *sarama.ProducerMessage, at imports.Position) error {
	s.msgs = append(s.msgs, m)
	s.last = at
	if len(s.msgs) >= s.cfg.Batch {
		return s.flush(s.ctx)
	}
	return nil
}

// flush sends the pending records, waits for their acknowledgement and
// moves the checkpoint.
func (s *sender) flush(ctx context.Context) error {
	if len(s.msgs) == 0 {
		return nil
	}
	t0 := time.Now()
	err := s.cfg.Producer.Send(ctx, s.msgs)
	s.st.Sending += time.Since(t0)
	if err != nil {
		s.failed = true
		return fmt.Errorf("%w: %d records not all acknowledged by Kafka (the checkpoint stays before them): %w", ErrNotSent, len(s.msgs), err)
	}
	dl := len(s.msgs) - s.listens
	s.st.Sent += s.listens
	s.st.DeadLetters += dl
	s.msgs, s.listens = s.msgs[:0], 0
	if s.cfg.Checkpoint != nil {
		if err := s.cfg.Checkpoint(s.last); err != nil {
			s.failed = true
			return fmt.Errorf("%w: checkpoint: %w", ErrNotSent, err)
		}
	}
	s.st.Reading = time.Since(s.started) - s.st.Sending
	s.report()
	return nil
}

func (s *sender) report() {
	if s.cfg.Progress != nil {
		s.cfg.Progress(s.st)
	}
}
