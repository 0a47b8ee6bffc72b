package benchkit

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
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
	a := g.artist.Uint64()
	t := g.track.Uint64()
	return []byte(`{"user_id":"` + user + `","played_at":"` + at.Format(time.RFC3339) +
		`","artist_name":"Artist ` + strconv.FormatUint(a, 10) + `","track_name":"Track ` + strconv.FormatUint(t, 10) +
		` by ` + strconv.FormatUint(a, 10) + `","album_name":"Album ` + strconv.FormatUint(t%5, 10) + `"}`)
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

// Process is a topk subcommand the benchmark runs as its own process.
type Process struct {
	Name    string
	OpsPort int
	cmd     *exec.Cmd
	done    chan error
}

// Start runs bin/topk args with the benchmark's configuration and a free
// ops port; output goes to logPath.
func (e *Env) Start(logPath string, args ...string) (*Process, error) {
	return e.StartConfig(logPath, e.Config, args...)
}

// StartConfig is Start with a configuration of the caller's: several copies
// of one service, each with its own TOPK_STATE_DIR, say. The ops port and
// the log level are still set here.
func (e *Env) StartConfig(logPath string, cfg config.Config, args ...string) (*Process, error) {
	return e.StartProgram(logPath, cfg, filepath.Join(e.Root, "bin", "topk"), args...)
}

// StartProgram runs prog the way Start runs bin/topk (cfg's environment, a
// free port in every TOPK_OPS_PORT_*, log level warn unless
// TOPK_BENCH_LOG_LEVEL says otherwise, output to logPath): a benchmark's own
// reference process, which reads its configuration with config.Load and
// serves /metrics on its ops port. The Process is named after args[0], or
// prog without arguments.
func (e *Env) StartProgram(logPath string, cfg config.Config, prog string, args ...string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg.Ops.Ingest, cfg.Ops.Aggregator, cfg.Ops.RawWriter, cfg.Ops.Flusher = port, port, port, port
	cfg.LogLevel = "warn"
	if l := os.Getenv("TOPK_BENCH_LOG_LEVEL"); l != "" {
		cfg.LogLevel = l // a diagnosis: the processes' logs at info or debug
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = append(cfg.Environ(), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"), "GOGC="+os.Getenv("GOGC"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	name := filepath.Base(prog)
	if len(args) > 0 {
		name = args[0]
	}
	p := &Process{Name: name, OpsPort: port, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// Exited reports whether the process ended (its log says why).
func (p *Process) Exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// ExitError is how the process ended: nil while it runs or after exit code
// 0, else the *exec.ExitError (status or signal).
func (p *Process) ExitError() error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	default:
		return nil
	}
}

// PeakRSS is the process's peak resident set (VmHWM), in bytes.
func (p *Process) PeakRSS() int64 { return peakRSS(p.cmd.Process.Pid) }

// SelfPeakRSS is the benchmark process's own peak resident set.
func SelfPeakRSS() int64 { return peakRSS(os.Getpid()) }

func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Stop sends SIGTERM and waits.
// Stopping a process that ended already returns at once.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		err = <-p.done
	}
	p.done <- err // for Exited and later calls
}

// Metric sums the samples of a metric family on the process's /metrics.
func (p *Process) Metric(name string) (float64, error) {
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(p.OpsPort) + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}

// Profile saves a CPU profile of the process (its ops port's pprof) taken
// for d after waiting delay: TOPK_BENCH_PROFILE=dir makes benchmarks do it.
func (p *Process) Profile(path string, delay, d time.Duration) {
	time.Sleep(delay)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", p.OpsPort, int(d.Seconds())))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(path); err == nil {
		_, _ = io.Copy(f, resp.Body)
		f.Close()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// CPUTime is the CPU time (user + system) the process has used so far.
func (p *Process) CPUTime() time.Duration {
	d, _ := CPUTimeOf(p.cmd.Process.Pid)
	return d
}

// Metrics returns every sample of the process's /metrics, keyed by the
// series as written there: `name` or `name{label="value",…}`.
// The exposition is fetched uncompressed: gzip would cost the measured
// process CPU on every poll.
func (p *Process) Metrics() (map[string]float64, error) {
	resp, err := plainHTTP.Get("http://127.0.0.1:" + strconv.Itoa(p.OpsPort) + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if line == "" || line[0] == '#' || i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

var plainHTTP = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

// CPUTimeOf is the CPU time (user + system) process pid has used, from
// /proc/<pid>/stat; false if it cannot be read.
func CPUTimeOf(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state); utime and stime are fields 14 and 15
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTicks, true
}

// SystemCPU is the machine's CPU time since boot, summed over its cores
// (/proc/stat): busy (everything but idle and iowait) and total. Two
// readings tell how busy the machine was between them.
func SystemCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		sum += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return time.Duration(sum-idle) * time.Second / clockTicks, time.Duration(sum) * time.Second / clockTicks
}
