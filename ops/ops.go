package ops

import (
	"cmp"
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

// Status is the outcome of running the checks: what /readyz answers.
// Checks holds "ok" or "error" per check name, never the error itself:
// check errors name hosts, ports, database users and addresses, which a
// public readiness probe must not show. The errors go to the Checker's
// log.
type Status struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// The values of Status.Checks.
const (
	CheckOK     = "ok"
	CheckFailed = "error"
)

// Checker runs checks at most once per TTL, so frequent probes do not
// hammer the stores.
type Checker struct {
	Checks  []Check
	TTL     time.Duration // default 2s
	Timeout time.Duration // per check, default 2s
	// Log takes what Status withholds, at most one line per check per run
	// of the checks (however many probes): a warning with the error when a
	// check starts failing or fails for another reason (the error, numbers
	// left out, differs: "kafka down for 12s" and "… for 14s" are one
	// reason), again every LogEvery while the reason stays, and an info
	// line when it passes again. Nil: not logged.
	Log      *slog.Logger
	LogEvery time.Duration // default 1 min

	mu      sync.Mutex
	last    Status
	at      time.Time
	failing map[string]*failure
}

// failure is a check failing since since for reason, last logged at
// logged.
type failure struct {
	since, logged time.Time
	reason        string
}

// reasonOf is err without its numbers (durations, counts, ports).
func reasonOf(err error) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, err.Error())
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
	errs := make([]error, len(c.Checks))
	var wg sync.WaitGroup
	for i, ch := range c.Checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			errs[i] = ch.Fn(cctx)
		})
	}
	wg.Wait()
	st := Status{Ready: true, Checks: map[string]string{}}
	for i, ch := range c.Checks {
		st.Checks[ch.Name] = CheckOK
		if errs[i] != nil {
			st.Checks[ch.Name] = CheckFailed
			st.Ready = st.Ready && !ch.Required
		}
		c.logTransition(ch, errs[i])
	}
	c.last, c.at = st, time.Now()
	return st
}

// logTransition logs a check's error when it starts failing or fails
// for another reason and then at most every LogEvery, and its recovery
// (c.mu held).
func (c *Checker) logTransition(ch Check, err error) {
	if c.failing == nil {
		c.failing = map[string]*failure{}
	}
	now := time.Now()
	f := c.failing[ch.Name]
	var msg string
	switch {
	case err == nil && f != nil:
		delete(c.failing, ch.Name)
		if c.Log != nil {
			c.Log.Info("readiness check passes again", "check", ch.Name, "failed_for", now.Sub(f.since).Round(time.Millisecond))
		}
		return
	case err == nil:
		return
	case f == nil:
		f = &failure{since: now}
		c.failing[ch.Name] = f
		msg = "readiness check failing"
	case reasonOf(err) != f.reason:
		msg = "readiness check failing for another reason"
	case now.Sub(f.logged) >= cmp.Or(c.LogEvery, time.Minute):
		msg = "readiness check still failing"
	default:
		return
	}
	f.logged, f.reason = now, reasonOf(err)
	if c.Log != nil {
		c.Log.Warn(msg, "check", ch.Name, "required", ch.Required, "for", now.Sub(f.since).Round(time.Second), "err", err)
	}
}

// Server is a service's ops listener.
type Server struct {
	Addr    string
	Checker *Checker
	// Mounts are extra browser UIs by path prefix (e.g. "/goka/"), served
	// with DenyFraming's headers.
	Mounts map[string]http.Handler
	// Pprof serves /debug/pprof/ (TOPK_OPS_PPROF); off, those paths are
	// 404s: profiles and traces cost CPU and show the code's internals to
	// whoever reaches the port.
	Pprof bool
	Log   *slog.Logger

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
	// Profiles, for benchmarks and incidents, when asked for: the ops port
	// binds to loopback by default (TOPK_OPS_HOST), but need not.
	if s.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	for prefix, h := range s.Mounts {
		mux.Handle(prefix, NoFraming(h))
	}
	return mux
}

// DenyFraming sets the headers that keep a browser UI out of frames on
// any page (clickjacking: a hidden frame of a logged-in UI under a
// visitor's clicks): X-Frame-Options for older browsers, the CSP
// frame-ancestors directive for the others.
func DenyFraming(h http.Header) {
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
}

// NoFraming serves h with DenyFraming's headers.
func NoFraming(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		DenyFraming(w.Header())
		h.ServeHTTP(w, r)
	})
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
