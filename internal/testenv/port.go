package testenv

import (
	"crypto/rand"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	portsMu sync.Mutex
	// portsGiven are the ports this process handed out already: two
	// services of one test must not get the same port between one's pick
	// and its listen.
	portsGiven = map[int]bool{}
)

// FreePort returns a loopback port nobody listens on right now, below the
// kernel's ephemeral range and never returned before in this process.
//
// A port from the ephemeral range (what listening on :0 gives) is free
// only until the next outgoing connection: a service the harness kills
// and restarts on the same port can find it taken by one of a Kafka
// client's connections in between (the chaos suite saw an aggregator
// fail to start 20 times in a row on "bind: address already in use").
// Outgoing connections never take a port below the ephemeral range.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 1000 {
		lo = hi - 1000
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 500 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)))
		if err != nil {
			t.Fatal(err)
		}
		port := lo + int(n.Int64())
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return port
	}
	t.Fatalf("no free loopback port in [%d, %d) after 500 tries", lo, hi)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux
// reads it from /proc; 32768 elsewhere, Linux's default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 2000 {
		return 32768
	}
	return n
}
