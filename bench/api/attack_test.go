package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// The bench's clients are told apart by source address: request i comes
// from the i-th address, as the server sees it.
func TestClientsSendFromTheirAddresses(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen = append(seen, host)
		mu.Unlock()
	}))
	defer srv.Close()
	c := newClients(net.IPv4(127, 0, 1, 254), 3) // crosses into 127.0.2.0
	defer c.close()
	cl := &http.Client{Transport: c}
	for range 6 {
		resp, err := cl.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{"127.0.1.255", "127.0.2.0", "127.0.1.254", "127.0.1.255", "127.0.2.0", "127.0.1.254"}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("sources %v, want %v", seen, want)
		}
	}
}
