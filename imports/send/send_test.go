package send_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/send"
	"github.com/topk-charts/topk/internal/importfixture"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

// producer keeps what it was sent; failAt > 0 fails the send that would
// take it past that many records.
type producer struct {
	msgs   []*sarama.ProducerMessage
	sends  int
	failAt int
}

func (p *producer) Send(_ context.Context, msgs []*sarama.ProducerMessage) error {
	p.sends++
	if p.failAt > 0 && len(p.msgs)+len(msgs) > p.failAt {
		p.failAt = 0
		return errors.New("broker gone")
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

var topics = listen.NewTopics("t")

func config(p send.Producer) send.Config {
	return send.Config{
		Options:  imports.Options{User: importfixture.User, Now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		Topics:   topics,
		Producer: p,
		Name:     "test",
		Batch:    3,
	}
}

func header(m *sarama.ProducerMessage, k string) string {
	for _, h := range m.Headers {
		if string(h.Key) == k {
			return string(h.Value)
		}
	}
	return ""
}

func run(t *testing.T, data []byte, cfg send.Config) (*imports.Report, send.Status, error) {
	t.Helper()
	return send.Run(context.Background(), bytes.NewReader(data), int64(len(data)), "my_spotify_data.zip", cfg)
}

func TestRunSendsListensAndDeadLetters(t *testing.T) {
	data, exp := importfixture.Spotify(false)
	p := &producer{}
	var checkpoints []imports.Position
	cfg := config(p)
	cfg.Checkpoint = func(pos imports.Position) error { checkpoints = append(checkpoints, pos); return nil }
	rep, st, err := run(t, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Totals()
	refused := 0
	for _, n := range tot.Refused {
		refused += n
	}
	if st.Sent != len(exp.Listens()) || st.DeadLetters != refused || len(p.msgs) != st.Sent+st.DeadLetters {
		t.Fatalf("sent %d listens and %d dead letters (%d records), want %d and %d", st.Sent, st.DeadLetters, len(p.msgs), len(exp.Listens()), refused)
	}
	if want := (len(p.msgs) + 2) / 3; p.sends != want || len(checkpoints) != want {
		t.Errorf("%d sends and %d checkpoints, want %d", p.sends, len(checkpoints), want)
	}
	i := 0
	for _, m := range p.msgs {
		v, _ := m.Value.Encode()
		k, _ := m.Key.Encode()
		switch m.Topic {
		case string(topics.Raw):
			var l listen.Listen
			if err := json.Unmarshal(v, &l); err != nil {
				t.Fatal(err)
			}
			want := exp.Listens()[i].Listen
			if l.Identity() != want.Identity() || string(k) != importfixture.User || header(m, "source") != imports.SourceSpotify {
				t.Errorf("listen %d: %+v key %q, want %+v", i, l, k, want)
			}
			i++
		case string(topics.DLQ):
			if header(m, processors.HeaderReason) == "" || header(m, processors.HeaderStage) != send.Stage ||
				header(m, processors.HeaderKey) != importfixture.User || header(m, send.HeaderFile) == "" || header(m, send.HeaderImport) != "test" {
				t.Errorf("dead letter %q headers %v", k, m.Headers)
			}
		default:
			t.Errorf("record to %s", m.Topic)
		}
	}
}

// A send that fails stops the run; resumed from the last checkpoint, the
// union of both runs is every record, and nothing before the checkpoint
// is sent again.
func TestRunResumesAfterAFailedSend(t *testing.T) {
	data, _ := importfixture.Spotify(false)
	all := &producer{}
	if _, _, err := run(t, data, config(all)); err != nil {
		t.Fatal(err)
	}
	p := &producer{failAt: 10}
	var last *imports.Position
	cfg := config(p)
	cfg.Checkpoint = func(pos imports.Position) error { last = &pos; return nil }
	if _, _, err := run(t, data, cfg); err == nil {
		t.Fatal("want the send's error")
	}
	if last == nil || len(p.msgs) != 9 {
		t.Fatalf("checkpoint %v after %d records, want 9", last, len(p.msgs))
	}
	cfg.Options.After = last
	cfg.Checkpoint = nil
	p2 := &producer{}
	cfg.Producer = p2
	if _, _, err := run(t, data, cfg); err != nil {
		t.Fatal(err)
	}
	got := append(append([]*sarama.ProducerMessage{}, p.msgs...), p2.msgs...)
	if len(got) != len(all.msgs) {
		t.Fatalf("%d + %d records, want %d", len(p.msgs), len(p2.msgs), len(all.msgs))
	}
	for i := range got {
		a, _ := got[i].Value.Encode()
		b, _ := all.msgs[i].Value.Encode()
		if !bytes.Equal(a, b) || got[i].Topic != all.msgs[i].Topic {
			t.Errorf("record %d: %s, want %s", i, a, b)
		}
	}
}
