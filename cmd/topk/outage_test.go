package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestKafkaUnreachable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("kafka [x]: %w", errUnreachable{errors.New("dial")}), true},
		{fmt.Errorf("describe: %w", sarama.ErrOutOfBrokers), true},
		{fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), true},
		{errors.New("user.listen.valid has 8 partitions, want 16: its keys would move"), false},
	} {
		if got := kafkaUnreachable(c.err); got != c.want {
			t.Errorf("kafkaUnreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// `topk all` with Kafka down waits for it (one warning, not one per
// attempt) and, past the outage limit, exits non-zero with the reason.
func TestAllWaitsForKafkaThenExits(t *testing.T) {
	t.Setenv("TOPK_KAFKA_BROKERS", "127.0.0.1:"+strconv.Itoa(closedPort(t)))
	t.Setenv("TOPK_OUTAGE_LIMIT_MS", "2000")
	t.Setenv("TOPK_LOG_LEVEL", "info")
	var out, errb lockedBuffer
	start := time.Now()
	code := Main(context.Background(), []string{"all"}, &out, &errb)
	took := time.Since(start)
	log := errb.String()
	if code != 1 || took < 2*time.Second {
		t.Fatalf("exit %d after %v, want 1 after the 2 s limit:\n%s", code, took, log)
	}
	for _, want := range []string{"kafka down for", "longer than the outage limit of 2s", "topk all failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "kafka down: retrying"); n != 1 {
		t.Errorf("%d warnings that Kafka is down, want 1:\n%s", n, log)
	}
}

// `topk scheduler` with PostgreSQL and Redis down starts anyway: /healthz
// 200, /readyz 503 while its reconciler retries, naming the failing checks
// but not their errors (the stores' address), which the log has once;
// past the outage limit it exits non-zero naming them. Its ops port serves
// /debug/pprof/ with TOPK_OPS_PPROF=1 only.
func TestSchedulerWaitsForStoresThenExits(t *testing.T) {
	for _, pprof := range []string{"0", "1"} {
		t.Run("TOPK_OPS_PPROF="+pprof, func(t *testing.T) { schedulerWithoutStores(t, pprof) })
	}
}

func schedulerWithoutStores(t *testing.T, pprof string) {
	ops := closedPort(t)
	pgPort, redisPort := strconv.Itoa(closedPort(t)), strconv.Itoa(closedPort(t))
	t.Setenv("TOPK_POSTGRES_PORT", pgPort)
	t.Setenv("TOPK_REDIS_ADDR", "127.0.0.1:"+redisPort)
	t.Setenv("TOPK_OPS_PORT_SCHEDULER", strconv.Itoa(ops))
	t.Setenv("TOPK_OPS_PPROF", pprof)
	t.Setenv("TOPK_DEV_MODE", "1")
	t.Setenv("TOPK_RUNTIME_DIR", t.TempDir())
	t.Setenv("TOPK_OUTAGE_LIMIT_MS", "4000")
	t.Setenv("TOPK_LOG_LEVEL", "info")
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() { done <- Main(context.Background(), []string{"scheduler"}, &out, &errb) }()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(ops) + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(3 * time.Second)
	for c, _ := get("/healthz"); c != 200; c, _ = get("/healthz") {
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz while the stores are down:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, body := get("/readyz"); c != 503 || body != `{"ready":false,"checks":{"postgres":"error","redis":"error"}}`+"\n" {
		t.Errorf("/readyz %d %s while the stores are down, want 503 naming both", c, body)
	}
	wantPprof := map[string]int{"0": 404, "1": 200}[pprof]
	if c, _ := get("/debug/pprof/"); c != wantPprof {
		t.Errorf("/debug/pprof/ with TOPK_OPS_PPROF=%s: %d, want %d", pprof, c, wantPprof)
	}
	select {
	case code := <-done:
		log := errb.String()
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, log)
		}
		for _, want := range []string{"postgres or redis down for", "outage limit of 4s", "topk scheduler failed",
			`msg="readiness check failing" component=scheduler listener=ops check=postgres required=true for=0s err="postgres 127.0.0.1:` + pgPort,
			`msg="readiness check failing" component=scheduler listener=ops check=redis required=true for=0s err="redis 127.0.0.1:` + redisPort} {
			if !strings.Contains(log, want) {
				t.Errorf("output lacks %q:\n%s", want, log)
			}
		}
		if n := strings.Count(log, "postgres or redis down: retrying"); n != 1 {
			t.Errorf("%d warnings, want 1:\n%s", n, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after a 4 s outage limit:\n%s", errb.String())
	}
}
