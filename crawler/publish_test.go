package crawler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/IBM/sarama/mocks"

	"github.com/topk-charts/topk/listen"
)

// A delete goes to the raw topic as its record, keyed by its user (so it
// follows the user's listens), with the source header; a send Kafka does
// not acknowledge is an error.
func TestPublishDelete(t *testing.T) {
	d := listen.Delete{UserID: "alice", PlayedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), MSID: "d23f4719-9212-49f0-ad08-ddbfbfc50d6f"}
	want := `{"delete":{"user_id":"alice","played_at":"2026-12-01T10:00:00Z","recording_msid":"d23f4719-9212-49f0-ad08-ddbfbfc50d6f"}}`
	mp := mocks.NewSyncProducer(t, nil)
	var got *sarama.ProducerMessage
	mp.ExpectSendMessageWithMessageCheckerFunctionAndSucceed(func(m *sarama.ProducerMessage) error {
		got = m
		return nil
	})
	mp.ExpectSendMessageAndFail(errors.New("broker down"))
	p := &KafkaPublisher{topic: "user.listen.raw", producer: mp}
	if err := p.PublishDelete(context.Background(), d, "listenbrainz"); err != nil {
		t.Fatal(err)
	}
	key, _ := got.Key.Encode()
	value, _ := got.Value.Encode()
	if got.Topic != "user.listen.raw" || string(key) != "alice" || string(value) != want {
		t.Errorf("produced %s %q %s, want user.listen.raw \"alice\" %s", got.Topic, key, value, want)
	}
	if len(got.Headers) != 1 || string(got.Headers[0].Key) != SourceHeader || string(got.Headers[0].Value) != "listenbrainz" {
		t.Errorf("headers %v, want source: listenbrainz", got.Headers)
	}
	if err := p.PublishDelete(context.Background(), d, "listenbrainz"); err == nil {
		t.Error("a send that failed returned nil")
	}
	if err := mp.Close(); err != nil {
		t.Error(err)
	}
}
