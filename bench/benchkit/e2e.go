// Kafka's EndToEndLatency tool: the reference of the freshness benchmarks.

package benchkit

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/kafka"
)

// EndToEnd is what Kafka's EndToEndLatency tool measured, in milliseconds
// as it prints them (whole milliseconds: it truncates each latency).
type EndToEnd struct {
	N              int
	P50, P99, P999 float64
}

// EndToEndLatency runs org.apache.kafka.tools.EndToEndLatency (bin/kafka-e2e-latency:
// n messages of 200 bytes, one at a time, produced with acks=all and
// consumed before the next is sent) on a topic of the namespace with one
// partition.
func (e *Env) EndToEndLatency(ctx context.Context, n int) (EndToEnd, error) {
	topic := e.Config.Namespace + ".e2e"
	if err := kafka.EnsureTopics(ctx, e.Admin, 1, []kafka.TopicSpec{{Name: topic, Partitions: 1}}, e.Log); err != nil {
		return EndToEnd{}, err
	}
	fmt.Fprintln(os.Stderr, "kafka EndToEndLatency …")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := e.Tool(ctx, "kafka-e2e-latency", strings.Join(e.Config.Kafka.Brokers, ","), topic, strconv.Itoa(n), "all", "200")
	if err != nil {
		return EndToEnd{}, fmt.Errorf("%w\n%s", err, out)
	}
	// "Percentiles: 50th = 1, 99th = 3, 99.9th = 5"
	m := regexp.MustCompile(`50th = ([0-9.]+), 99th = ([0-9.]+), 99.9th = ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		return EndToEnd{}, fmt.Errorf("unexpected output:\n%s", out)
	}
	r := EndToEnd{N: n}
	for i, p := range []*float64{&r.P50, &r.P99, &r.P999} {
		if *p, err = strconv.ParseFloat(m[i+1], 64); err != nil {
			return EndToEnd{}, fmt.Errorf("unexpected output %q: %w", m[0], err)
		}
	}
	return r, nil
}
