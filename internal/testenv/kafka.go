package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/kafka"
)

// Kafka is a single-node Kafka broker of the test's own, started by
// deploy/local/kafka.sh on free ports with its data under a temporary
// directory: tests that kill, pause or restart a broker use one, so the
// stack of `make run` (port 9092) is never disturbed.
type Kafka struct {
	t              testing.TB
	dir            string // its TOPK_RUNTIME_DIR
	port, ctrlPort int
	heap           string
	paused         bool
	stopped        bool
}

// KafkaOptions tune StartKafkaWith; zero values take the defaults.
type KafkaOptions struct {
	// Heap of the broker's JVM; default 512m.
	Heap string
}

// StartKafka starts a broker of the test's own and waits until it answers;
// the test's end stops it and removes its data (on failure the end of its
// server log is printed first).
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	return StartKafkaWith(t, KafkaOptions{})
}

// StartKafkaWith is StartKafka with options.
func StartKafkaWith(t testing.TB, o KafkaOptions) *Kafka {
	t.Helper()
	if o.Heap == "" {
		o.Heap = "512m"
	}
	k := &Kafka{t: t, dir: t.TempDir(), heap: o.Heap}
	k.port = FreePort(t)
	for k.ctrlPort = FreePort(t); k.ctrlPort == k.port; k.ctrlPort = FreePort(t) {
	}
	k.prepare()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- end of the test broker's server.log (%s) ---\n%s", k.Brokers()[0], k.LogTail(20))
		}
		k.stop()
	})
	k.Start()
	return k
}

// prepare seeds the runtime directory: the jars' classpath of the shared
// stack's runtime directory when there is one (so Maven does not run
// again), and a cluster id (saving a JVM start in kafka.sh).
func (k *Kafka) prepare() {
	run := filepath.Join(k.dir, "kafka")
	if err := os.MkdirAll(run, 0o755); err != nil {
		k.t.Fatal(err)
	}
	shared := os.Getenv("TOPK_RUNTIME_DIR")
	if shared == "" {
		shared = ".runtime"
	}
	if !filepath.IsAbs(shared) {
		shared = filepath.Join(repoRoot(), shared)
	}
	for _, f := range []string{"classpath.txt", "classpath.txt.repo"} {
		if b, err := os.ReadFile(filepath.Join(shared, "kafka", f)); err == nil {
			_ = os.WriteFile(filepath.Join(run, f), b, 0o644)
		}
	}
	if err := os.WriteFile(filepath.Join(run, "cluster.id"), []byte(clusterID()), 0o644); err != nil {
		k.t.Fatal(err)
	}
}

// clusterID is a random Kafka cluster id: 16 bytes, base64 URL encoding
// without padding, not starting with '-' (as Kafka's Uuid.randomUuid).
func clusterID() string {
	for {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		if s := base64.RawURLEncoding.EncodeToString(b); s[0] != '-' {
			return s
		}
	}
}

// Brokers is the bootstrap list of this broker.
func (k *Kafka) Brokers() []string {
	return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))}
}

// Port and ControllerPort are the broker's client and KRaft ports.
func (k *Kafka) Port() int           { return k.port }
func (k *Kafka) ControllerPort() int { return k.ctrlPort }

// Dir is the broker's TOPK_RUNTIME_DIR (data and logs under kafka/).
func (k *Kafka) Dir() string { return k.dir }

// Configure points cfg at this broker.
func (k *Kafka) Configure(cfg *config.Config) {
	cfg.Kafka.Brokers = k.Brokers()
	cfg.Kafka.Port = k.port
	cfg.Kafka.ControllerPort = k.ctrlPort
}

func (k *Kafka) script(timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(repoRoot(), "deploy", "local", "kafka.sh")}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"TOPK_RUNTIME_DIR=" + k.dir,
		"TOPK_KAFKA_PORT=" + strconv.Itoa(k.port),
		"TOPK_KAFKA_CONTROLLER_PORT=" + strconv.Itoa(k.ctrlPort),
		"TOPK_KAFKA_HEAP=" + k.heap,
	}
	for _, name := range []string{"TOPK_MAVEN_REPO", "JAVA_HOME"} {
		if v := os.Getenv(name); v != "" {
			cmd.Env = append(cmd.Env, name+"="+v)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// Start starts the broker on its data (again, after Kill9 or a stop) and
// waits until it answers a client request.
func (k *Kafka) Start() {
	k.t.Helper()
	start := time.Now()
	if err := k.script(3*time.Minute, "start"); err != nil {
		k.t.Fatal(err)
	}
	if err := k.script(3*time.Minute, "wait", "150"); err != nil {
		k.t.Fatal(err)
	}
	// kafka.sh wait saw ApiVersions; a metadata request from a Go client
	// is what the services need.
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := kafka.Ping(ctx, k.Brokers())
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("test broker %s does not answer: %v", k.Brokers()[0], err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	k.paused, k.stopped = false, false
	k.t.Logf("test broker %s up in %s (pid %d)", k.Brokers()[0], time.Since(start).Round(100*time.Millisecond), k.Pid())
}

// Pid is the broker JVM's process id (0 when there is none).
func (k *Kafka) Pid() int {
	b, err := os.ReadFile(filepath.Join(k.dir, "kafka", "kafka.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// alive: pid runs and is not a zombie (the broker is not our child, so
// whoever adopted it reaps it, maybe late).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// Kill9 kills the broker with SIGKILL and waits until it is gone.
func (k *Kafka) Kill9() {
	k.t.Helper()
	pid := k.Pid()
	if !alive(pid) {
		k.t.Fatalf("test broker is not running (pid file: %d)", pid)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if !waitGone(pid, 30*time.Second) {
		k.t.Fatalf("test broker (pid %d) still there 30 s after SIGKILL", pid)
	}
	k.paused, k.stopped = false, true
	k.t.Logf("test broker %s killed with SIGKILL (pid %d)", k.Brokers()[0], pid)
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// Pause stops the broker's JVM with SIGSTOP: connections stay open, and
// nothing answers until Resume.
func (k *Kafka) Pause() {
	k.t.Helper()
	pid := k.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		k.t.Fatalf("SIGSTOP test broker (pid %d): %v", pid, err)
	}
	k.paused = true
	k.t.Logf("test broker %s paused (SIGSTOP, pid %d)", k.Brokers()[0], pid)
}

// Resume continues a paused broker (SIGCONT).
func (k *Kafka) Resume() {
	k.t.Helper()
	if !k.paused {
		return
	}
	pid := k.Pid()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		k.t.Fatalf("SIGCONT test broker (pid %d): %v", pid, err)
	}
	k.paused = false
	k.t.Logf("test broker %s resumed (SIGCONT, pid %d)", k.Brokers()[0], pid)
}

// LogTail is the end of the broker's server.log.
func (k *Kafka) LogTail(n int) string {
	b, err := os.ReadFile(filepath.Join(k.dir, "kafka", "logs", "server.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends the broker for good: SIGCONT if paused, SIGTERM, SIGKILL after
// 20 s (its data is thrown away with the test's temporary directory).
func (k *Kafka) stop() {
	pid := k.Pid()
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if !waitGone(pid, 20*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 20*time.Second)
	}
}
