//go:build integration

package rawwriter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/processors/sink/sinktest"
	"github.com/topk-charts/topk/store/cassandra"
)

// Listens with duplicates (the same record again, and the same identity
// spelled differently with other metadata) and records that are not
// listens: raw_listens ends with exactly the distinct identities of each
// (user, day), the bad records do not stop the writer, and every offset
// is committed.
func TestIntegrationRawWriterWritesDistinctListens(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Keyspace(t, cfg)
	topics := listen.NewTopics(cfg.Namespace)
	var validSpec kafka.TopicSpec
	for _, s := range kafka.ListenTopics(wiring.Kafka(cfg.Kafka), topics) {
		if s.Name == string(topics.Valid) {
			validSpec = s
		}
	}
	group := rawwriter.Group(cfg.Namespace)
	sinktest.Topic(t, cfg, validSpec, group)

	const users, days, perDay = 100, 20, 25
	base := time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC) // days cross a month and a year
	type pk struct{ user, day string }
	want := map[pk]map[listen.Identity]bool{}
	var msgs []*sarama.ProducerMessage
	add := func(l listen.Listen) {
		b, err := listen.Codec{}.Encode(l)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(topics.Valid), Key: sarama.StringEncoder(l.Key()), Value: sarama.ByteEncoder(b)})
		k := pk{l.UserID, l.Day()}
		if want[k] == nil {
			want[k] = map[listen.Identity]bool{}
		}
		want[k][l.Identity()] = true
	}
	for u := range users {
		for d := range days {
			for i := range perDay {
				l := listen.Listen{
					UserID:     fmt.Sprintf("user%03d", u),
					PlayedAt:   base.AddDate(0, 0, d).Add(time.Duration(i*613+u) * time.Second),
					ArtistName: fmt.Sprintf("Artist %d", i%7),
					TrackName:  fmt.Sprintf("Track %d", i),
					AlbumName:  fmt.Sprintf("Album %d", i%3),
					DurationMS: int64(180000 + i),
					Source:     "test",
				}
				add(l)
				if i%10 == 0 { // the same record again
					add(l)
				}
				if i%10 == 5 { // the same play, spelled otherwise, other metadata
					dup := l
					dup.ArtistName = strings.ToUpper(l.ArtistName)
					dup.EventID = "dup"
					dup.DurationMS = 0
					add(dup)
				}
			}
		}
	}
	distinct := 0
	for _, ids := range want {
		distinct += len(ids)
	}
	wrongKey, err := listen.Codec{}.Encode(listen.Listen{UserID: "user000", PlayedAt: base.Add(time.Hour), ArtistName: "A", TrackName: "Wrong key"})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{[]byte("not json"), nil, []byte(`{"user_id":"x"}`), wrongKey} {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(topics.Valid), Key: sarama.StringEncoder("x|2026-01-01"), Value: sarama.ByteEncoder(bad)})
	}
	sinktest.Send(t, sinktest.Producer(t, cfg, false), msgs)
	t.Logf("produced %d records: %d distinct listens in %d (user, day) partitions, duplicates and 4 bad records", len(msgs), distinct, len(want))
	skipped0 := sinktest.Metric(t, "topk_raw_writer_skipped_total")

	session, err := cassandra.Connect(t.Context(), wiring.Cassandra(cfg.Cassandra))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	w, err := rawwriter.New(rawwriter.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: testenv.Logger(t)}, session)
	if err != nil {
		t.Fatal(err)
	}
	written0 := sinktest.Metric(t, "topk_sink_messages_written_total", "sink", rawwriter.Name)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// Throughput: from the first CQL batch written to the last record marked.
	cql0 := sinktest.Metric(t, "topk_raw_writer_cql_batches_total")
	var first, last time.Time
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := sinktest.Metric(t, "topk_sink_messages_written_total", "sink", rawwriter.Name) - written0
		if first.IsZero() && sinktest.Metric(t, "topk_raw_writer_cql_batches_total") > cql0 {
			first = time.Now()
		}
		if n >= float64(len(msgs)) {
			last = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d records written after 60 s", n, len(msgs))
		}
		time.Sleep(10 * time.Millisecond)
	}

	a := sinktest.Admin(t, cfg)
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hwm := map[int32]int64{}
	for p := range validSpec.Partitions {
		off, err := client.GetOffset(string(topics.Valid), p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		hwm[p] = off
	}
	sinktest.Eventually(t, 15*time.Second, "every offset committed", func() bool {
		c := sinktest.Committed(t, a, group, string(topics.Valid), validSpec.Partitions)
		for p, h := range hwm {
			if h > 0 && c[p] != h {
				return false
			}
		}
		return true
	})

	got := map[pk]map[listen.Identity]bool{}
	rows := 0
	iter := session.Query(`SELECT user_id, day, identity FROM raw_listens`).WithContext(ctx).PageSize(5000).Iter()
	var user string
	var day time.Time
	var id []byte
	for iter.Scan(&user, &day, &id) {
		k := pk{user, day.Format(listen.DayLayout)}
		if got[k] == nil {
			got[k] = map[listen.Identity]bool{}
		}
		got[k][listen.Identity(id)] = true
		rows++
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if rows != distinct {
		t.Errorf("raw_listens holds %d rows, want %d distinct listens", rows, distinct)
	}
	for k, ids := range want {
		if len(got[k]) != len(ids) {
			t.Errorf("%v: %d rows, want %d", k, len(got[k]), len(ids))
			continue
		}
		for id := range ids {
			if !got[k][id] {
				t.Errorf("%v: identity %s missing", k, id)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d (user, day) partitions, want %d", len(got), len(want))
	}
	if n := sinktest.Metric(t, "topk_raw_writer_skipped_total") - skipped0; n != 4 {
		t.Errorf("%v records skipped, want 4 (3 undecodable, 1 under a wrong key)", n)
	}
	// A duplicate without duration_ms leaves the first copy's value (unset, not null).
	var dur int
	var album string
	if err := session.Query(`SELECT duration_ms, album_name FROM raw_listens WHERE user_id = ? AND day = ? AND played_at = ?`,
		"user000", base, base.Add(5*613*time.Second)).WithContext(ctx).Scan(&dur, &album); err != nil {
		t.Fatal(err)
	}
	if dur != 180005 || album != "Album 2" {
		t.Errorf("row read back: duration_ms %d album %q, want 180005 \"Album 2\"", dur, album)
	}
	elapsed := last.Sub(first)
	t.Logf("%d records → %d rows; written in %v from the first CQL batch to the last mark: %.0f records/s",
		len(msgs), rows, elapsed.Round(time.Millisecond), float64(len(msgs))/elapsed.Seconds())
}
