package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// Binary builds cmd/topk once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "topk-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "topk")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/topk")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
	done chan error
}

// Start runs `topk args...` with cfg's environment; the test's end stops it
// (SIGTERM) and, on failure, prints its output.
func Start(t testing.TB, cfg config.Config, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, name: args[0], args: args, env: Env(cfg), log: &bytes.Buffer{}}
	p.start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() || testing.Verbose() {
			t.Logf("--- output of topk %s ---\n%s", p.name, p.Output())
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
	p.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(p.cmd, p.done)
}

// Kill9 kills the process with SIGKILL: no shutdown code runs.
func (p *Process) Kill9() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
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
	case err = <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		err = fmt.Errorf("topk %s ignored SIGTERM for 30s", p.name)
		<-p.done
	}
	p.cmd = nil
	return err
}

// Output is what the process printed so far.
func (p *Process) Output() string {
	logMu.Lock()
	defer logMu.Unlock()
	return p.log.String()
}
