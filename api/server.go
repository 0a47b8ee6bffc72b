package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/topk-charts/topk/internal/ratelimit"
	"github.com/topk-charts/topk/ops"
)

// Config configures the api server.
type Config struct {
	// Addr is the listen address; default 127.0.0.1:8080 (loopback).
	Addr string
	// Checker reports store health on /readyz.
	Checker *ops.Checker
	// Registerer takes the api's metrics; default prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// AccessLog logs every request at info level (TOPK_API_ACCESS_LOG);
	// off, at debug level.
	AccessLog bool
	// RateLimit limits each client's requests to the public read routes
	// (limits.go). Zero: no limit.
	RateLimit RateLimit
	// TrustedProxies are the addresses (CIDR or single IP) of reverse
	// proxies whose X-Forwarded-For names the client
	// (TOPK_API_TRUSTED_PROXIES). Empty: the connection's peer is the
	// client and the header is ignored.
	TrustedProxies []string
	// Timeouts of the HTTP server (TOPK_API_*_TIMEOUT); zero fields take
	// the defaults of Timeouts.
	Timeouts Timeouts
	// Sitewide answers everyone's charts: GET /v1/charts/top/{entity}
	// and ListenBrainz's /1/stats/sitewide/{entity} (sitewide.go). Nil:
	// those routes exist and answer 503 saying sitewide charts are not
	// served by this api.
	Sitewide SitewideCharts
}

// Server is the api.
type Server struct {
	cfg  Config
	log  *slog.Logger
	echo *echo.Echo
	ln   net.Listener

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	rejected *prometheus.CounterVec
	charged  prometheus.Counter
	limiter  *ratelimit.Limiter // requests
	reads    *ratelimit.Limiter // the tokens requests owe for their Cassandra reads
}

// New builds the server and its routes.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.Checker == nil {
		cfg.Checker = &ops.Checker{}
	}
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	cfg.RateLimit = cfg.RateLimit.withDefaults()
	ipOf, err := ipExtractor(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log,
		limiter: ratelimit.New(ratelimit.Config{PerSecond: cfg.RateLimit.PerSecond, Burst: cfg.RateLimit.Burst}),
		reads:   ratelimit.New(ratelimit.Config{PerSecond: cfg.RateLimit.PerSecond, Burst: cfg.RateLimit.ReadBurst})}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_http_requests_total", Help: "HTTP requests by route, method, status and source of the answer (view, cassandra, mixed; none for other routes).",
	}, []string{"route", "method", "code", "source"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "topk_http_request_duration_seconds", Help: "HTTP request latency by route and source of the answer.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method", "source"})
	s.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "topk_http_rejected_total", Help: "Requests refused to protect the api, by reason: rate_limit (429, a client over TOPK_API_RATE_LIMIT or short of tokens for its Cassandra reads), in_flight (429, a client with TOPK_API_RATE_IN_FLIGHT requests in progress), cassandra_busy (503, every Cassandra slot taken: TOPK_API_CASSANDRA_CONCURRENCY).",
	}, []string{"reason"})
	s.charged = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "topk_http_rate_tokens_charged_total", Help: "Read tokens charged to clients for the Cassandra reads their requests caused (one per 4 reads or part of 4; TOPK_API_RATE_READ_BURST), before the reads or after the answer.",
	})
	for _, c := range []prometheus.Collector{s.requests, s.latency, s.rejected, s.charged} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = ipOf
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.observe, s.recover, wholeSegments)
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", OpenAPI)
	})
	s.echo = e
	s.mountCharts()
	return s, nil
}

// Echo exposes the router so later stages can add routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

func (s *Server) readyz(c echo.Context) error {
	st := s.cfg.Checker.Status(c.Request().Context())
	code := http.StatusOK
	if !st.Ready {
		code = http.StatusServiceUnavailable
	}
	return c.JSON(code, st)
}

// observe records metrics and an access log line per request.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		status := c.Response().Status
		source, _ := c.Get(sourceKey).(string)
		if source == "" {
			source = "none"
		}
		s.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status), source).Inc()
		s.latency.WithLabelValues(route, c.Request().Method, source).Observe(d.Seconds())
		level := slog.LevelDebug
		if s.cfg.AccessLog {
			level = slog.LevelInfo
		}
		if s.log.Enabled(c.Request().Context(), level) {
			uri := c.Request().RequestURI
			if c.Request().URL.Query().Has("token") { // GET /1/validate-token?token=…: a user's secret
				uri = c.Request().URL.Path + "?token=REDACTED"
			}
			s.log.Log(c.Request().Context(), level, "http", "method", c.Request().Method, "uri", uri, "route", route,
				"status", status, "source", source, "duration", d, "bytes", c.Response().Size, "remote", c.RealIP())
		}
		return nil
	}
}

// recover turns a panic of a handler into a logged 500 instead of a
// dropped connection (the fuzz test makes sure no input gets there).
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("handler panicked", "path", c.Request().URL.Path, "panic", r, "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// Listen binds the address (":0" picks a free port).
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Run serves until ctx is cancelled, then drains in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	t := s.cfg.Timeouts
	srv := &http.Server{Handler: s.echo, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
	return ops.Serve(ctx, srv, s.ln, s.log)
}
