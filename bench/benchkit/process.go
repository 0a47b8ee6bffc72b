// topk subprocesses: started on a free ops port, stopped, their metrics
// and CPU profiles over HTTP, their peak RSS and CPU time from /proc.

package benchkit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/topk-charts/topk/config"
)

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
// free port in every TOPK_OPS_PORT_*, TOPK_OPS_PPROF=1, log level warn unless
// TOPK_BENCH_LOG_LEVEL says otherwise, output to logPath): a benchmark's own
// reference process, which reads its configuration with config.Load and
// serves /metrics on its ops port. The Process is named after args[0], or
// prog without arguments.
func (e *Env) StartProgram(logPath string, cfg config.Config, prog string, args ...string) (*Process, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cfg.Ops.Ingest, cfg.Ops.Aggregator, cfg.Ops.RawWriter, cfg.Ops.Flusher, cfg.Ops.Sitewide = port, port, port, port, port
	cfg.Ops.Pprof = true // Profile reads the ops port's /debug/pprof/
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

// FreePort is a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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

// CassandraPID is the local stack's Cassandra process (0 when unknown:
// another stack, or not running).
func (e *Env) CassandraPID() int {
	b, err := os.ReadFile(filepath.Join(e.Config.RuntimeDir, "cassandra", "cassandra.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	if _, ok := CPUTimeOf(pid); !ok {
		return 0
	}
	return pid
}

// WaitQuiet waits until process pid (Cassandra, say) has used less than a
// quarter of a core for a second — the previous stage's reads, flushes and
// compactions are over — or max has passed; 5 s when pid is 0 (unknown).
// It returns how long it waited.
func WaitQuiet(pid int, max time.Duration) time.Duration {
	start := time.Now()
	if pid == 0 {
		time.Sleep(5 * time.Second)
		return time.Since(start)
	}
	for time.Since(start) < max {
		c0, ok := CPUTimeOf(pid)
		time.Sleep(time.Second)
		c1, _ := CPUTimeOf(pid)
		if !ok || c1-c0 < 250*time.Millisecond {
			break
		}
	}
	return time.Since(start)
}

// OnInterrupt prints msg on stderr, runs cleanup and exits 1 when the
// process gets SIGINT or SIGTERM: a benchmark stopped by hand still removes
// its topics, keyspace, database and processes.
func OnInterrupt(msg string, cleanup func()) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigc
		fmt.Fprintln(os.Stderr, msg)
		cleanup()
		os.Exit(1)
	}()
}
