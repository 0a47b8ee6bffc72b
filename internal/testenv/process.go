package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/topk-charts/topk/config"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// repoRoot is the repository's root directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binary builds cmd/topk once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "topk-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "topk")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/topk")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Env renders cfg as the environment of a topk process.
func Env(cfg config.Config) []string {
	return append(cfg.Environ(), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
}

// Process is a topk subcommand running as its own OS process.
type Process struct {
	t    testing.TB
	name string
	args []string
	env  []string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	// exited is closed when the current run of cmd has ended; exitErr and
	// exitAt are set before.
	exited  chan struct{}
	exitErr error
	exitAt  time.Time
}

// Start runs `topk args...` with cfg's environment; the test's end stops it
// (SIGTERM) and, on failure, prints its output.
func Start(t testing.TB, cfg config.Config, args ...string) *Process {
	t.Helper()
	return StartEnv(t, cfg, nil, args...)
}

// StartEnv is Start with extra environment entries ("NAME=value"), which
// win over cfg's (e.g. a variable config does not know yet).
func StartEnv(t testing.TB, cfg config.Config, extra []string, args ...string) *Process {
	t.Helper()
	env := append(Env(cfg), extra...)
	p := &Process{t: t, name: args[0], args: args, env: env, log: &bytes.Buffer{}}
	p.start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() || testing.Verbose() {
			t.Logf("--- output of topk %s ---\n%s", strings.Join(p.args, " "), p.Output())
		}
	})
	return p
}

var logMu sync.Mutex

type lockedWriter struct{ b *bytes.Buffer }

func (w lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return w.b.Write(p)
}

func (p *Process) start() {
	p.cmd = exec.Command(Binary(p.t), p.args...)
	p.cmd.Env = p.env
	p.cmd.Stdout = lockedWriter{p.log}
	p.cmd.Stderr = lockedWriter{p.log}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start topk %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func(c *exec.Cmd) {
		err := c.Wait()
		p.exitErr, p.exitAt = err, time.Now()
		close(exited)
	}(p.cmd)
}

// Name is the subcommand (the first argument).
func (p *Process) Name() string { return p.name }

// Pid is the process id of the current run (0 when stopped by the test).
func (p *Process) Pid() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill9 kills the process with SIGKILL: no shutdown code runs.
func (p *Process) Kill9() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	fmt.Fprintf(lockedWriter{p.log}, "=== killed with SIGKILL at %s ===\n", time.Now().Format(time.RFC3339Nano))
	p.cmd = nil
}

// Restart starts the process again with the same arguments.
func (p *Process) Restart() {
	if p.cmd != nil {
		p.Stop()
	}
	p.start()
}

// Stop sends SIGTERM and waits (SIGKILL after 30 s).
func (p *Process) Stop() error {
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-p.exited:
		err = p.exitErr
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		err = fmt.Errorf("topk %s ignored SIGTERM for 30s", p.name)
		<-p.exited
	}
	p.cmd = nil
	return err
}

// Exited reports whether the current run ended by itself — not through
// Kill9 or Stop — and how (the exit status; nil for exit code 0). A
// process the test stopped and did not restart has not exited by itself.
func (p *Process) Exited() (bool, error) {
	if p.cmd == nil {
		return false, nil
	}
	select {
	case <-p.exited:
		return true, p.exitErr
	default:
		return false, nil
	}
}

// RequireRunning fails the test at once when the process exited by
// itself, with its exit status and the end of its output.
func (p *Process) RequireRunning(t testing.TB) {
	t.Helper()
	if err := p.ExitError(); err != nil {
		t.Fatal(err)
	}
}

// ExitError describes an exit by itself (status, time, the end of the
// output); nil while the process runs or after the test stopped it.
func (p *Process) ExitError() error {
	exited, err := p.Exited()
	if !exited {
		return nil
	}
	status := "exit code 0"
	if err != nil {
		status = err.Error()
	}
	return fmt.Errorf("topk %s (pid %d) exited by itself at %s (%s); last output:\n%s",
		strings.Join(p.args, " "), p.cmd.Process.Pid, p.exitAt.Format("15:04:05.000"), status, p.Tail(25))
}

// Output is what the process printed so far.
func (p *Process) Output() string {
	logMu.Lock()
	defer logMu.Unlock()
	return p.log.String()
}

// Tail is the last n lines of Output.
func (p *Process) Tail(n int) string {
	out := strings.TrimRight(p.Output(), "\n")
	lines := strings.Split(out, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
