package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Validation: every check of a Config, each naming its variable, all
// reported at once (Config.Validate; Load calls it with what it read).

func (c Redis) validate(add addFunc) {
	if c.DB < 0 || c.CacheDB < 0 {
		add("TOPK_REDIS_DB/TOPK_CACHE_REDIS_DB: a Redis database number is not negative")
	}
	if c.CacheAddr == c.Addr && c.CacheDB == c.DB {
		add("TOPK_CACHE_REDIS_DB: %d is Asynq's database (TOPK_REDIS_DB) on the same Redis: give the answer cache its own (default 1)", c.CacheDB)
	}
}

// validateLimits checks the api's limits and timeouts.
func (c API) validateLimits(add addFunc, r read) {
	if c.RateLimit < 0 {
		add("TOPK_API_RATE_LIMIT: must not be negative (0: no limit)")
	}
	if c.RateInFlight < 1 {
		add("TOPK_API_RATE_IN_FLIGHT: must be at least 1")
	}
	if c.RateReadBurst < 1 {
		add("TOPK_API_RATE_READ_BURST: must be at least 1")
	}
	if c.RateBurst < 1 {
		add("TOPK_API_RATE_BURST: must be at least 1")
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			add("TOPK_API_TRUSTED_PROXIES: %q is neither an IP address nor a CIDR network", p)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TOPK_API_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout}, {"TOPK_API_READ_TIMEOUT", c.ReadTimeout},
		{"TOPK_API_WRITE_TIMEOUT", c.WriteTimeout}, {"TOPK_API_IDLE_TIMEOUT", c.IdleTimeout},
	} {
		if s, bad := r.duration(d.name, d.v); bad || d.v <= 0 {
			add("%s: %q is not a positive duration (e.g. 10s)", d.name, s)
		}
	}
}

// DevAdminToken is `make run`'s admin password (the Makefile's RUN_ENV):
// a value anyone can read, accepted only on a loopback api address.
const DevAdminToken = "topk-dev"

// MinAdminTokenBytes is the shortest admin token accepted when the api
// listens on an address other than loopback.
const MinAdminTokenBytes = 16

// GenerateAdminToken is the one-liner the messages suggest for
// TOPK_ADMIN_TOKEN (64 hex digits: no character a header or a .env file
// would mangle).
const GenerateAdminToken = "openssl rand -hex 32"

// validate checks TOPK_API_ADDR and refuses a guessable admin token on an
// api others can reach: the development password, or one shorter than
// MinAdminTokenBytes, unless the api binds to 127.0.0.0/8, ::1 or
// localhost. An empty token stays allowed: it disables the admin routes.
func (a API) validate(add addFunc) {
	host, _, err := net.SplitHostPort(a.Addr)
	if err != nil {
		add("TOPK_API_ADDR: %q is not host:port (e.g. 127.0.0.1:8080)", a.Addr)
		return
	}
	if a.AdminToken == "" || IsLoopback(host) {
		return
	}
	why := ""
	switch {
	case a.AdminToken == DevAdminToken:
		why = fmt.Sprintf("is the development password %q, which anyone can read", DevAdminToken)
	case len(a.AdminToken) < MinAdminTokenBytes:
		why = fmt.Sprintf("has %d bytes, fewer than %d", len(a.AdminToken), MinAdminTokenBytes)
	default:
		return
	}
	add("TOPK_ADMIN_TOKEN: refused because the api listens on %s, not a loopback address (TOPK_API_ADDR), and the token %s; set a random one of at least %d bytes: export TOPK_ADMIN_TOKEN=$(%s)",
		a.Addr, why, MinAdminTokenBytes, GenerateAdminToken)
}

// IsLoopback reports whether host (of a listen address) is a loopback
// address: localhost, 127.0.0.0/8 or ::1. An empty host means every
// interface, so it is not.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (c Charts) validate(add addFunc, r read) {
	if c.ViewDays < 1 || c.ViewDays > 3660 {
		add("TOPK_VIEW_DAYS: %d is not within 1…3660", c.ViewDays)
	}
	if s, bad := r.duration("TOPK_CACHE_TTL", c.CacheTTL); bad || c.CacheTTL < 0 {
		add("TOPK_CACHE_TTL: %q is not a duration ≥ 0 (e.g. 30s)", s)
	}
	if s, bad := r.duration("TOPK_NAMES_TTL", c.NamesTTL); bad || c.NamesTTL < 0 {
		add("TOPK_NAMES_TTL: %q is not a duration ≥ 0 (e.g. 10m)", s)
	}
	if c.ViewMaxMB < 1 {
		add("TOPK_VIEW_MAX_MB: must be at least 1")
	}
	if c.CacheLocalMB < 0 {
		add("TOPK_CACHE_LOCAL_MB: must not be negative")
	}
	if c.CacheMaxEntryBytes < 1 {
		add("TOPK_CACHE_MAX_ENTRY_BYTES: must be at least 1")
	}
	if c.CassandraReads < 0 {
		add("TOPK_API_CASSANDRA_READS: must not be negative (0: no bound)")
	}
	if c.CassandraConcurrency < 0 {
		add("TOPK_API_CASSANDRA_CONCURRENCY: must not be negative (0: no bound)")
	}
	r.flag(add, "TOPK_API_ACCESS_LOG")
}

func (c Crawler) validate(add addFunc, r read) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TOPK_CRAWLER_RETRY_BASE", c.RetryBase}, {"TOPK_SCHEDULER_RECONCILE", c.ReconcileEvery},
		{"TOPK_LASTFM_INTERVAL", c.LastfmInterval}, {"TOPK_SPOTIFY_INTERVAL", c.SpotifyInterval},
		{"TOPK_SIMULATED_INTERVAL", c.SimulatedInterval}, {"TOPK_SIMULATED_HISTORY", c.SimulatedHistory},
	} {
		if s, bad := r.duration(d.name, d.v); bad || d.v <= 0 {
			add("%s: %q is not a positive duration (e.g. 30s, 24h)", d.name, s)
		}
	}
	r.flag(add, "TOPK_DEV_MODE")
	if c.Concurrency < 1 {
		add("TOPK_CRAWLER_CONCURRENCY: must be at least 1")
	}
	if c.MaxRetry < 0 {
		add("TOPK_CRAWLER_MAX_RETRY: must not be negative")
	}
	if c.LastfmRate == 0 {
		add("TOPK_LASTFM_RATE: 0 would never send a request (negative: unlimited)")
	}
}

var identRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
var namespaceRe = regexp.MustCompile(`^([a-z][a-z0-9_]{0,30})?$`)

type addFunc func(format string, args ...any)

// read is what Load read, for validate's messages: the text of each
// variable (defaults included), and the values set could not store (a
// duration that does not parse, a boolean other than 0 and 1), as a
// message shows them. Validate, on a Config built in code, has neither.
type read struct {
	text, invalid map[string]string
}

// duration is how a message quotes the duration setting name: as written
// when Load read it, else d in Go's notation; bad when it did not parse.
func (r read) duration(name string, d time.Duration) (s string, bad bool) {
	_, bad = r.invalid[name]
	if s, ok := r.text[name]; ok {
		return s, bad
	}
	return formatDuration(d), bad
}

// flag reports a boolean setting Load read as an integer other than 0 and
// 1 (a bool field holds no other value).
func (r read) flag(add addFunc, name string) {
	if s, bad := r.invalid[name]; bad {
		add("%s: %s is neither 0 nor 1", name, s)
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error { return c.validate(read{}) }

// validate is Validate, also reporting the values Load read but could not
// store, each where its variable is checked, and quoting durations as
// written.
func (c Config) validate(r read) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Kafka.Brokers) == 0 {
		add("TOPK_KAFKA_BROKERS: no broker given")
	}
	if n := c.Kafka.ValidPartitions; n < 1 || n&(n-1) != 0 {
		add("TOPK_KAFKA_VALID_PARTITIONS: %d is not a power of two (Goka's and sarama's partitioners agree only then)", n)
	}
	if c.Kafka.RawPartitions < 1 {
		add("TOPK_KAFKA_RAW_PARTITIONS: must be at least 1")
	}
	if c.Kafka.ReplicationFactor < 1 || c.Kafka.MinInsyncReplicas < 1 || c.Kafka.MinInsyncReplicas > c.Kafka.ReplicationFactor {
		add("TOPK_KAFKA_REPLICATION_FACTOR/TOPK_KAFKA_MIN_INSYNC_REPLICAS: need 1 ≤ min.insync ≤ replication")
	}
	if len(c.Cassandra.Hosts) == 0 {
		add("TOPK_CASSANDRA_HOSTS: no host given")
	}
	if !identRe.MatchString(c.Cassandra.Keyspace) {
		add("TOPK_CASSANDRA_KEYSPACE: %q is not a lowercase CQL identifier", c.Cassandra.Keyspace)
	}
	if !identRe.MatchString(c.Postgres.Database) {
		add("TOPK_POSTGRES_DB: %q is not a lowercase identifier", c.Postgres.Database)
	}
	if !namespaceRe.MatchString(c.Namespace) {
		add("TOPK_NAMESPACE: %q must be empty or a lowercase identifier", c.Namespace)
	}
	for _, p := range []struct {
		name string
		v    int
	}{
		{"TOPK_KAFKA_PORT", c.Kafka.Port}, {"TOPK_KAFKA_CONTROLLER_PORT", c.Kafka.ControllerPort},
		{"TOPK_CASSANDRA_PORT", c.Cassandra.Port}, {"TOPK_CASSANDRA_STORAGE_PORT", c.Cassandra.StoragePort},
		{"TOPK_CASSANDRA_JMX_PORT", c.Cassandra.JMXPort}, {"TOPK_REDIS_PORT", c.Redis.Port},
		{"TOPK_POSTGRES_PORT", c.Postgres.Port},
		{"TOPK_CLUSTER_KAFKA_PORT", c.Cluster.KafkaPort}, {"TOPK_CLUSTER_KAFKA_CONTROLLER_PORT", c.Cluster.KafkaControllerPort},
		{"TOPK_CLUSTER_CASSANDRA_PORT", c.Cluster.CassandraPort}, {"TOPK_CLUSTER_CASSANDRA_STORAGE_PORT", c.Cluster.CassandraStoragePort},
		{"TOPK_CLUSTER_CASSANDRA_JMX_PORT", c.Cluster.CassandraJMXPort},
	} {
		if p.v < 1 || p.v > 65535 {
			add("%s: %d is not a port", p.name, p.v)
		}
	}
	if c.Pipeline.MaxPlaysPerDay < 1 {
		add("TOPK_MAX_PLAYS_PER_DAY: must be at least 1")
	}
	if c.Pipeline.FlushCacheMB < 0 {
		add("TOPK_FLUSH_CACHE_MB: must not be negative (0: no cache)")
	}
	if c.Pipeline.AggregatorCacheMB < 0 {
		add("TOPK_AGGREGATOR_CACHE_MB: must not be negative (0: no cache)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TOPK_FLUSH_INTERVAL_MS", c.Pipeline.FlushInterval}, {"TOPK_OUTAGE_LIMIT_MS", c.Pipeline.OutageLimit}} {
		if d.v < time.Millisecond {
			add("%s: must be at least 1", d.name)
		}
	}
	for _, v := range []struct {
		name string
		v    int
	}{
		{"TOPK_MAX_NAME_CHARS", c.Pipeline.MaxNameChars}, {"TOPK_MAX_STATE_BYTES", c.Pipeline.MaxStateBytes},
		{"TOPK_KAFKA_MAX_MESSAGE_BYTES", c.Kafka.MaxMessageBytes},
		{"TOPK_SINK_BATCH_BYTES", c.Pipeline.SinkBatchBytes}, {"TOPK_STORE_PENDING_BYTES", c.Pipeline.StorePendingBytes},
	} {
		if v.v < 1 {
			add("%s: must be at least 1", v.name)
		}
	}
	switch m, s := c.Kafka.MaxMessageBytes, c.Pipeline.MaxStateBytes; {
	case m > maxKafkaMessageBytes:
		add("TOPK_KAFKA_MAX_MESSAGE_BYTES: %d is over %d (Kafka's settings are 32-bit integers and the DLQ allows 65536 more)", m, maxKafkaMessageBytes)
	case m >= 1 && s >= 1 && s > m-StateHeadroomBytes:
		add("TOPK_MAX_STATE_BYTES: %d is over TOPK_KAFKA_MAX_MESSAGE_BYTES (%d) minus %d bytes of headroom for the record's key and headers: at most %d, or raise TOPK_KAFKA_MAX_MESSAGE_BYTES",
			s, m, StateHeadroomBytes, m-StateHeadroomBytes)
	}
	c.API.validate(add)
	c.Crawler.validate(add, r)
	c.Charts.validate(add, r)
	c.API.validateLimits(add, r)
	c.Redis.validate(add)
	switch c.LogFormat {
	case "text", "json":
	default:
		add("TOPK_LOG_FORMAT: %q is neither text nor json", c.LogFormat)
	}
	if s, bad := r.duration("TOPK_STATUS_INTERVAL", c.StatusInterval); bad || c.StatusInterval < 0 || (c.StatusInterval > 0 && c.StatusInterval < time.Second) {
		add("TOPK_STATUS_INTERVAL: %q is neither 0s nor a duration of at least 1s (e.g. 5s)", s)
	}
	return errors.Join(errs...)
}
