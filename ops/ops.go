package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check. A failing Required check makes the service
// unready; any other failure is reported as detail only (Cassandra down does
// not make the api unready).
type Check struct {
	Name     string
	Required bool
	Fn       func(ctx context.Context) error
}

// Status is the outcome of running the checks.
type Status struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// Checker runs checks at most once per TTL, so frequent probes do not
// hammer the stores.
type Checker struct {
	Checks  []Check
	TTL     time.Duration // default 2s
	Timeout time.Duration // per check, default 2s

	mu   sync.Mutex
	last Status
	at   time.Time
}

// Status runs the checks (or returns the cached result).
func (c *Checker) Status(ctx context.Context) Status {
	ttl, timeout := c.TTL, c.Timeout
	if ttl == 0 {
		ttl = 2 * time.Second
	}
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < ttl {
		return c.last
	}
	st := Status{Ready: true, Checks: map[string]string{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, ch := range c.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := ch.Fn(cctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				st.Checks[ch.Name] = "error: " + err.Error()
				if ch.Required {
					st.Ready = false
				}
				return
			}
			st.Checks[ch.Name] = "ok"
		}()
	}
	wg.Wait()
	c.last, c.at = st, time.Now()
	return st
}

// Server is a service's ops listener.
type Server struct {
	Addr    string
	Checker *Checker
	// Mounts are extra handlers by path prefix (e.g. "/goka/").
	Mounts map[string]http.Handler
	Log    *slog.Logger

	ln net.Listener
}

// Handler returns the ops routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := Status{Ready: true, Checks: map[string]string{}}
		if s.Checker != nil {
			st = s.Checker.Status(r.Context())
		}
		code := http.StatusOK
		if !st.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, st)
	})
	// Profiles, for benchmarks and incidents: the ops port binds to loopback
	// by default (TOPK_OPS_HOST).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	for prefix, h := range s.Mounts {
		mux.Handle(prefix, h)
	}
	return mux
}

// Listen binds the address (":0" picks a free port; see BoundAddr).
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("ops listener %s: %w", s.Addr, err)
	}
	s.ln = ln
	return nil
}

// BoundAddr is the address actually listened on.
func (s *Server) BoundAddr() string {
	if s.ln == nil {
		return s.Addr
	}
	return s.ln.Addr().String()
}

// Run serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	return Serve(ctx, srv, s.ln, s.Log)
}

// Serve runs srv on ln until ctx ends, then shuts it down within 10 s.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if log != nil {
		log.Info("listening", "addr", ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// NewLogger builds the structured logger of a service: records at level
// ("debug", "info", "warn", "error"; anything else: info) and above, as
// text or JSON (format "json"), to w. NewSplitLogger (log.go) is the
// same with the whole log in a file.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	return slog.New(handler(w, parseLevel(level), format))
}

func parseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
