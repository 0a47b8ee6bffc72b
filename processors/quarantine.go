// Quarantine (topk dlq quarantine): its configuration, result and
// refusals, the checks and steps in order, and the dead letter it writes.

package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/kafka"
)

// The reason and stage headers of a record an operator moved aside with
// `topk dlq quarantine`.
const (
	ReasonQuarantined = "quarantined"
	StageOperator     = "operator"
)

// Refusals of Quarantine. The error it returns wraps one of them and says
// what it found; nothing was written or committed.
var (
	// ErrNoRecord: the topic, partition or offset does not hold a record
	// (unknown topic or partition, offset past the end, removed by
	// retention or compaction).
	ErrNoRecord = errors.New("no record there")
	// ErrNoCommit: the group has no committed offset on the partition, so
	// nothing says it is stuck there (QuarantineConfig.Force overrides).
	ErrNoCommit = errors.New("no committed offset")
	// ErrWouldSkip: the group's committed offset is before the record;
	// moving it past the record would skip the records in between.
	ErrWouldSkip = errors.New("would skip records")
	// ErrAlreadyPast: the group's committed offset is past the record.
	ErrAlreadyPast = errors.New("already past the record")
	// ErrGroupActive: the group has members (see GroupActiveError).
	ErrGroupActive = errors.New("group has active members")
)

// GroupActiveError is the refusal when the group still has members: Kafka
// takes an offset commit from outside a group only when the group is empty.
type GroupActiveError struct {
	Group   string
	Members int
	Clients []string // client id@host of each member
	Waited  time.Duration
}

func (e *GroupActiveError) Error() string {
	waited := ""
	if e.Waited > 0 {
		waited = " after waiting " + e.Waited.String()
	}
	return fmt.Sprintf("group %s has %d active members%s (%s): stop its services (topk ingest / topk aggregator / topk raw-writer / topk flusher / topk all, every copy) first, then run this again",
		e.Group, e.Members, waited, strings.Join(e.Clients, ", "))
}

// Is makes errors.Is(err, ErrGroupActive) true.
func (e *GroupActiveError) Is(target error) bool { return target == ErrGroupActive }

// QuarantineConfig says which record to move aside and for which group.
type QuarantineConfig struct {
	Brokers []string
	DLQ     string // the namespace's dead-letter topic
	// Group is the consumer group as Kafka knows it (namespaced).
	Group     string
	Topic     string
	Partition int32
	Offset    int64
	// Note is added to the detail header after "quarantined by an operator".
	Note string
	// Force quarantines even when the group has no committed offset on the
	// partition (the group would then resume at Offset+1, skipping what
	// came before).
	Force bool
	// Wait is how long to wait for the group to have no members; zero
	// refuses at once when it has some.
	Wait time.Duration
	// Poll is the pause between membership checks while waiting (1 s when
	// zero).
	Poll time.Duration
	// DryRun reads and checks everything, then writes and commits nothing.
	// It does not wait for the group: Members reports who is still in it.
	DryRun bool
	Log    *slog.Logger
}

// QuarantineResult is what Quarantine found and did.
type QuarantineResult struct {
	// Committed is the group's committed offset on the partition before
	// the quarantine; -1 when it had none.
	Committed int64
	// Members is the group's member count at the last check (a dry run
	// reports it instead of refusing).
	Members int
	Key     []byte
	Value   []byte
	// Timestamp is the record's own timestamp.
	Timestamp time.Time
	// Letter is the dead letter (written unless DryRun).
	Letter *sarama.ProducerMessage
	// DLQPartition and DLQOffset are where the letter landed (-1 on a dry run).
	DLQPartition int32
	DLQOffset    int64
	// NewOffset is the offset committed for the group: Offset+1.
	NewOffset int64
}

// Quarantine moves the record at (Topic, Partition, Offset) aside for Group:
// it writes the record to the DLQ as a dead letter (reason quarantined,
// stage operator, the original key and bytes, key
// DeadLetterKey(Topic, Partition, Offset)), then commits Offset+1 for Group
// on the partition, so the group resumes past it.
//
// It refuses unless the group is stuck exactly there (its committed offset
// is Offset; with Force, also when it has none) and has no members (Kafka
// takes an offset commit from outside a group only then; Wait waits for it).
// If the letter is written but the commit fails, running it again writes a
// second letter with the same key and commits: harmless.
func Quarantine(ctx context.Context, cfg QuarantineConfig) (QuarantineResult, error) {
	res := QuarantineResult{Committed: -1, DLQPartition: -1, DLQOffset: -1, NewOffset: cfg.Offset + 1}
	if err := cfg.validate(); err != nil {
		return res, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	log := cfg.Log.With("group", cfg.Group, "topic", cfg.Topic, "partition", cfg.Partition, "offset", cfg.Offset)
	sc := kafka.NewSaramaConfig("topk-dlq-quarantine")
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return res, err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return res, err
	}
	defer admin.Close() // closes the client too

	if err := checkRecordExists(client, cfg); err != nil {
		return res, err
	}
	// Already past: nothing to do, whoever is in the group.
	if res.Committed, err = committedOffset(admin, cfg.Group, cfg.Topic, cfg.Partition); err != nil {
		return res, err
	}
	if res.Committed > cfg.Offset {
		return res, cfg.offsetRefusal(res.Committed, "")
	}
	// Members commit on their own: the group must be empty before its
	// committed offset means anything (and before Kafka takes ours).
	state, n, clients, err := GroupMembers(admin, cfg.Group)
	if err != nil {
		return res, err
	}
	res.Members = n
	if n > 0 && !cfg.DryRun {
		if cfg.Wait <= 0 {
			return res, &GroupActiveError{Group: cfg.Group, Members: n, Clients: clients}
		}
		if state, err = waitEmpty(ctx, admin, cfg, log); err != nil {
			return res, err
		}
		res.Members = 0
	}
	// Read again: a member that left meanwhile may have committed.
	if res.Committed, err = committedOffset(admin, cfg.Group, cfg.Topic, cfg.Partition); err != nil {
		return res, err
	}
	if res.Committed != cfg.Offset && !(res.Committed < 0 && cfg.Force) {
		return res, cfg.offsetRefusal(res.Committed, state)
	}

	m, err := readRecord(ctx, client, cfg)
	if err != nil {
		return res, err
	}
	res.Key, res.Value, res.Timestamp = m.Key, m.Value, m.Timestamp
	res.Letter = quarantineLetter(cfg, m)
	if cfg.DryRun {
		return res, nil
	}

	// A producer of its own, whose client-side size limit fits the letter
	// (the record was up to its topic's max.message.bytes, the headers come
	// on top); the DLQ topic's own limit is the broker's to enforce.
	psc := *sc
	psc.Producer.MaxMessageBytes = max(psc.Producer.MaxMessageBytes, letterBytes(res.Letter)+kafka.DeadLetterHeadroom)
	producer, err := sarama.NewSyncProducer(cfg.Brokers, &psc)
	if err != nil {
		return res, err
	}
	res.DLQPartition, res.DLQOffset, err = producer.SendMessage(res.Letter)
	if cerr := producer.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("write the dead letter to %s: %w (nothing committed; run this again)", cfg.DLQ, err)
	}
	log.Info("record quarantined: dead letter written", "dlq", cfg.DLQ, "dlq_partition", res.DLQPartition,
		"dlq_offset", res.DLQOffset, "key", string(res.Letter.Key.(sarama.StringEncoder)), "bytes", len(m.Value), "note", cfg.Note)

	if err := commitOffset(client, sc, cfg.Group, cfg.Topic, cfg.Partition, res.NewOffset); err != nil {
		return res, fmt.Errorf("the dead letter is written (%s partition %d offset %d), but committing offset %d for group %s on %s/%d failed: %w; "+
			"running this again is safe (it writes a second letter with the same key, then commits)",
			cfg.DLQ, res.DLQPartition, res.DLQOffset, res.NewOffset, cfg.Group, cfg.Topic, cfg.Partition, err)
	}
	if got, err := committedOffset(admin, cfg.Group, cfg.Topic, cfg.Partition); err != nil {
		return res, fmt.Errorf("offset %d committed, but reading it back failed: %w", res.NewOffset, err)
	} else if got != res.NewOffset {
		return res, fmt.Errorf("offset %d committed for group %s on %s/%d, but the group's offset reads %d: did a member join meanwhile?",
			res.NewOffset, cfg.Group, cfg.Topic, cfg.Partition, got)
	}
	log.Info("record quarantined: group moved past it", "committed", res.NewOffset)
	return res, nil
}

func (cfg QuarantineConfig) validate() error {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if cfg.DLQ == "" {
		errs = append(errs, errors.New("no DLQ topic"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("no group"))
	}
	if cfg.Topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	if cfg.Partition < 0 {
		errs = append(errs, fmt.Errorf("partition %d: must be ≥ 0", cfg.Partition))
	}
	if cfg.Offset < 0 {
		errs = append(errs, fmt.Errorf("offset %d: must be ≥ 0", cfg.Offset))
	}
	if len(errs) > 0 {
		return fmt.Errorf("quarantine: %w", errors.Join(errs...))
	}
	return nil
}

// offsetRefusal explains why a committed offset other than cfg.Offset
// stops the quarantine.
func (cfg QuarantineConfig) offsetRefusal(committed int64, state string) error {
	where := fmt.Sprintf("%s/%d", cfg.Topic, cfg.Partition)
	switch {
	case committed < 0:
		known := ""
		if state == "Dead" || state == "" {
			known = " (Kafka does not know the group: is the name right?)"
		}
		return fmt.Errorf("%w: group %s has no committed offset on %s%s, so nothing says it is stuck at %d; --force quarantines anyway (the group then starts that partition at %d)",
			ErrNoCommit, cfg.Group, where, known, cfg.Offset, cfg.Offset+1)
	case committed < cfg.Offset:
		return fmt.Errorf("%w: group %s's committed offset on %s is %d, before %d: moving it to %d would skip the %d records from %d to %d; quarantine offset %d if that is the one it is stuck on",
			ErrWouldSkip, cfg.Group, where, committed, cfg.Offset, cfg.Offset+1, cfg.Offset-committed, committed, cfg.Offset-1, committed)
	default:
		return fmt.Errorf("%w: group %s's committed offset on %s is %d, past %d: the record was already passed, nothing to do",
			ErrAlreadyPast, cfg.Group, where, committed, cfg.Offset)
	}
}

// quarantineLetter is the dead letter of m: the original key and bytes,
// the headers of every dead letter, keyed by its source.
func quarantineLetter(cfg QuarantineConfig, m *sarama.ConsumerMessage) *sarama.ProducerMessage {
	detail := "quarantined by an operator"
	if cfg.Note != "" {
		detail += ": " + cfg.Note
	}
	if len(detail) > 512 {
		detail = detail[:512]
	}
	h := []sarama.RecordHeader{
		{Key: []byte(HeaderReason), Value: []byte(ReasonQuarantined)},
		{Key: []byte(HeaderDetail), Value: []byte(detail)},
		{Key: []byte(HeaderStage), Value: []byte(StageOperator)},
		{Key: []byte(HeaderTopic), Value: []byte(m.Topic)},
		{Key: []byte(HeaderPartition), Value: []byte(strconv.Itoa(int(m.Partition)))},
		{Key: []byte(HeaderOffset), Value: []byte(strconv.FormatInt(m.Offset, 10))},
		{Key: []byte(HeaderKey), Value: m.Key},
	}
	msg := &sarama.ProducerMessage{
		Topic:   cfg.DLQ,
		Key:     sarama.StringEncoder(DeadLetterKey(m.Topic, m.Partition, m.Offset)),
		Headers: h,
	}
	if m.Value != nil {
		msg.Value = sarama.ByteEncoder(m.Value)
	}
	return msg
}

// letterBytes is about the size of msg as a record.
func letterBytes(msg *sarama.ProducerMessage) int {
	n := 0
	for _, e := range []sarama.Encoder{msg.Key, msg.Value} {
		if e != nil {
			n += e.Length()
		}
	}
	for _, h := range msg.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}
