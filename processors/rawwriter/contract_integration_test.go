//go:build integration

package rawwriter_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors/rawwriter"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// The raw writer on the real Cassandra passes the sink writers' contract;
// a closed session is the failing store.
func TestIntegrationRawWriterWriterContract(t *testing.T) {
	cfg := testenv.Config(t)
	session, newWriter, failingWriter := sinktest.Cassandra(t, cfg, func(s *gocql.Session) (sinktest.Writer, error) {
		return rawwriter.New(rawwriter.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: testenv.Logger(t),
			MaxRowsPerCQLBatch: 2}, s)
	})
	sinktest.WriterContract(t, sinktest.WriterSubject{
		NewWriter:     newWriter,
		FailingWriter: failingWriter,
		Records:       rawwriter.ContractRecords,
		Stored: func(t *testing.T, prefix string) string {
			ctx := testenv.Context(t, time.Minute)
			var lines []string
			iter := session.Query(`SELECT user_id, day, played_at, identity, artist_name, track_name, album_name, track_id,
 artist_id, album_id, duration_ms, source, event_id FROM raw_listens`).WithContext(ctx).Iter()
			var user, artist, track, album, trackID, artistID, albumID, source, eventID string
			var day, at time.Time
			var id []byte
			var dur int
			for iter.Scan(&user, &day, &at, &id, &artist, &track, &album, &trackID, &artistID, &albumID, &dur, &source, &eventID) {
				if strings.HasPrefix(user, prefix) {
					lines = append(lines, fmt.Sprintf("%s|%s|%x %v %q %q %q %q %q %q %d %q %q", user, day.Format(listen.DayLayout), id,
						at.UTC(), artist, track, album, trackID, artistID, albumID, dur, source, eventID))
				}
			}
			if err := iter.Close(); err != nil {
				t.Fatal(err)
			}
			iter = session.Query(`SELECT bucket, folded, user_id FROM users_by_prefix`).WithContext(ctx).Iter()
			var bucket, folded string
			for iter.Scan(&bucket, &folded, &user) {
				if strings.HasPrefix(user, prefix) {
					lines = append(lines, fmt.Sprintf("user %s %s %s", bucket, folded, user))
				}
			}
			if err := iter.Close(); err != nil {
				t.Fatal(err)
			}
			return sinktest.Dump(lines)
		},
		Skipped: func(t *testing.T) float64 { return sinktest.Metric(t, "topk_raw_writer_skipped_total") },
	})
}
