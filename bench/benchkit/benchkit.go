// A benchmark's environment (Env: its namespace on the local stack, its
// work directory), listen generation and producing, Kafka's tools, and the
// figures' helpers (percentiles, tables).

package benchkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	"github.com/schollz/progressbar/v3"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/ops"
)

// Env is a benchmark's corner of the local stack: its own namespace, so its
// topics never meet those of `make run` or the tests.
type Env struct {
	Config config.Config
	Topics listen.Topics
	Client sarama.Client
	Admin  sarama.ClusterAdmin
	Log    *slog.Logger
	Root   string // repository root (bin/topk, bin/kafka-*)
}

// Setup loads the configuration, picks a namespace and creates its topics.
func Setup(ctx context.Context, name string) (*Env, error) {
	cfg, err := config.Load(nil)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	cfg.Namespace = "bench_" + name + "_" + hex.EncodeToString(b)
	e := &Env{Config: cfg, Topics: listen.NewTopics(cfg.Namespace), Log: ops.NewLogger(os.Stderr, "warn", "text")}
	if e.Root, err = os.Getwd(); err != nil {
		return nil, err
	}
	if e.Client, err = sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-bench")); err != nil {
		return nil, fmt.Errorf("kafka: %w (is the stack up? make infra-up)", err)
	}
	if e.Admin, err = sarama.NewClusterAdminFromClient(e.Client); err != nil {
		return nil, err
	}
	if err := kafka.EnsureTopics(ctx, e.Admin, int16(cfg.Kafka.ReplicationFactor), kafka.ListenTopics(wiring.Kafka(cfg.Kafka), e.Topics), e.Log); err != nil {
		return nil, err
	}
	return e, nil
}

// Close deletes every topic of the namespace.
func (e *Env) Close() {
	if err := kafka.DeleteNamespace(e.Admin, e.Config.Namespace); err != nil {
		e.Log.Warn("deleting the benchmark's topics", "err", err)
	}
	e.Admin.Close()
}

// Generator makes listens of a population: Zipf-distributed artists and
// tracks, most listens in the last month.
type Generator struct {
	r      *mrand.Rand
	users  int
	artist *mrand.Zipf
	track  *mrand.Zipf
	now    time.Time
	// the current session
	user string
	at   time.Time
	left int
}

// NewGenerator is deterministic for a seed.
func NewGenerator(seed uint64, users int) *Generator {
	r := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Generator{r: r, users: users, artist: mrand.NewZipf(r, 1.1, 1, 5000), track: mrand.NewZipf(r, 1.2, 1, 30), now: time.Now().UTC()}
}

// NewGeneratorAt is NewGenerator with its clock fixed at now: generators of
// one seed, population and now make the same listens (a backlog produced
// again for each round of a benchmark).
func NewGeneratorAt(seed uint64, users int, now time.Time) *Generator {
	g := NewGenerator(seed, users)
	g.now = now.UTC()
	return g
}

// Listen renders one listen as the JSON of user.listen.raw.
func (g *Generator) Listen(user string, at time.Time) []byte {
	v, _, _ := g.ListenTrack(user, at)
	return v
}

// ListenTrack is Listen that also says the listen's artist and track
// names (a benchmark that looks for the track in a sitewide chart).
func (g *Generator) ListenTrack(user string, at time.Time) (value []byte, artist, track string) {
	a := g.artist.Uint64()
	t := g.track.Uint64()
	artist = "Artist " + strconv.FormatUint(a, 10)
	track = "Track " + strconv.FormatUint(t, 10) + " by " + strconv.FormatUint(a, 10)
	return []byte(`{"user_id":"` + user + `","played_at":"` + at.Format(time.RFC3339) +
		`","artist_name":"` + artist + `","track_name":"` + track + `","album_name":"Album ` + strconv.FormatUint(t%5, 10) + `"}`), artist, track
}

// Next is the next listen of a listening session: a random user, a random
// moment in the last 30 days, then 1–40 tracks in a row about 3.5 minutes
// apart — the order a crawler delivers a user's history in.
func (g *Generator) Next() (user string, value []byte) {
	if g.left == 0 {
		g.user = "user-" + strconv.Itoa(g.r.IntN(g.users))
		g.at = g.now.Add(-time.Duration(g.r.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Second)
		g.left = 1 + g.r.IntN(40)
	}
	g.left--
	g.at = g.at.Add(time.Duration(150+g.r.IntN(120)) * time.Second)
	if g.at.After(g.now) {
		g.at = g.now.Add(-time.Duration(g.r.IntN(3600)) * time.Second)
	}
	return g.user, g.Listen(g.user, g.at)
}

// Produce sends n listens to topic as fast as the async producer goes,
// with a progress bar, and returns the bytes sent.
func (e *Env) Produce(topic string, n int, next func() (string, []byte)) (int64, error) {
	cfg := kafka.NewSaramaConfig("topk-bench-producer")
	cfg.Producer.Return.Successes = false
	cfg.Producer.Flush.Bytes = 512 << 10
	cfg.Producer.Flush.Frequency = 10 * time.Millisecond
	cfg.Producer.Compression = sarama.CompressionLZ4
	p, err := sarama.NewAsyncProducer(e.Config.Kafka.Brokers, cfg)
	if err != nil {
		return 0, err
	}
	bar := Bar(int64(n), "producing listens")
	errc := make(chan error, 1)
	go func() {
		for err := range p.Errors() {
			select {
			case errc <- err:
			default:
			}
		}
	}()
	var bytes int64
	for i := 0; i < n; i++ {
		k, v := next()
		bytes += int64(len(v))
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)}
		if i%1000 == 0 {
			_ = bar.Set(i)
		}
	}
	p.AsyncClose()
	for range p.Successes() {
	}
	_ = bar.Finish()
	select {
	case err := <-errc:
		return bytes, fmt.Errorf("produce: %w", err)
	default:
	}
	return bytes, nil
}

// Bar is a progress bar on stderr.
func Bar(n int64, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(n, progressbar.OptionSetDescription(what), progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }))
}

// Tool runs one of Kafka's tools through its wrapper in bin/ and returns
// its standard output.
func (e *Env) Tool(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(e.Root, "bin", name), args...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	return out.String(), err
}

// TopicBytes is the size on disk of every partition of topic.
func (e *Env) TopicBytes(topic string) (int64, error) {
	brokers := e.Client.Brokers()
	ids := make([]int32, len(brokers))
	for i, b := range brokers {
		ids[i] = b.ID()
	}
	dirs, err := e.Admin.DescribeLogDirs(ids)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, ds := range dirs {
		for _, d := range ds {
			for _, t := range d.Topics {
				if t.Topic == topic {
					for _, p := range t.Partitions {
						sum += p.Size
					}
				}
			}
		}
	}
	return sum, nil
}

// Percentile of sorted durations (p in 0..100).
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

// SortDurations sorts in place.
func SortDurations(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

// Table prints rows aligned in columns.
func Table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}

// MiB formats bytes.
func MiB(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// WorkDir makes the benchmark's temporary directory (logs, profiles) and
// points the pipeline's local state under it; remove deletes it.
func (e *Env) WorkDir(name string) (dir string, remove func(), err error) {
	dir, err = os.MkdirTemp("", "topk-bench-"+name+"-")
	if err != nil {
		return "", nil, err
	}
	e.Config.Pipeline.StateDir = filepath.Join(dir, "state")
	return dir, func() { os.RemoveAll(dir) }, nil
}
