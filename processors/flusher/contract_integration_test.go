//go:build integration

package flusher_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/processors/flusher"
	"github.com/topk-charts/topk/processors/sink/sinktest"
)

// The flusher on the real Cassandra passes the sink writers' contract; a
// closed session is the failing store.
func TestIntegrationFlusherWriterContract(t *testing.T) {
	cfg := testenv.Config(t)
	session, newWriter, failingWriter := sinktest.Cassandra(t, cfg, func(s *gocql.Session) (sinktest.Writer, error) {
		return flusher.New(flusher.Config{Namespace: cfg.Namespace, Brokers: cfg.Kafka.Brokers, Log: testenv.Logger(t)}, s)
	})
	sinktest.WriterContract(t, sinktest.WriterSubject{
		NewWriter:     newWriter,
		FailingWriter: failingWriter,
		Records:       flusher.ContractRecords,
		Stored: func(t *testing.T, prefix string) string {
			tb, err := (&world{session: session}).read(testenv.Context(t, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for table, parts := range map[string]map[string]map[itemKey]cell{"day_items": tb.days, "month_items": tb.months, "year_items": tb.years} {
				for k, cells := range parts {
					if strings.HasPrefix(k, prefix) {
						for ik, c := range cells {
							lines = append(lines, fmt.Sprintf("%s|%s %v %+v", table, k, ik, c))
						}
					}
				}
			}
			for k, plays := range tb.totals {
				if strings.HasPrefix(k, prefix) {
					lines = append(lines, fmt.Sprintf("user_days|%s %d", k, plays))
				}
			}
			return sinktest.Dump(lines)
		},
		Skipped: func(t *testing.T) float64 { return sinktest.Metric(t, "topk_flusher_records_skipped_total") },
	})
}
