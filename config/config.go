package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// Config holds every address, port, name and credential topk uses.
// Load fills it from the environment; the table in vars.go is the single
// list of variables, their defaults and their meaning.
// The clients (store/*, kafka) do not import this package:
// internal/wiring turns its sections into their own Configs.
type Config struct {
	RuntimeDir string
	MavenRepo  string
	LogLevel   string
	LogFormat  string
	// LogFile, when set, receives the whole log; stderr then shows only
	// status lines, warnings and errors.
	LogFile string
	// StatusInterval spaces a service's status lines; 0: none.
	StatusInterval time.Duration

	Kafka     Kafka
	Pipeline  Pipeline
	Cassandra Cassandra
	Redis     Redis
	Postgres  Postgres
	API       API
	Charts    Charts
	Ops       Ops
	Crawler   Crawler
	Cluster   Cluster

	// Namespace prefixes every topic and consumer group of a test run so it
	// never touches what `make run` left. Empty in production.
	Namespace string
}

// Kafka is the broker and the topic layout.
type Kafka struct {
	Brokers        []string
	Port           int // local broker's port (infra scripts); Brokers defaults to it
	ControllerPort int
	Heap           string
	// ValidPartitions is N of user.listen.valid and of the aggregator's
	// table: fixed forever, a power of two.
	ValidPartitions   int
	RawPartitions     int
	ReplicationFactor int
	// MinInsyncReplicas is set on every topic the project creates.
	MinInsyncReplicas int
	// MaxMessageBytes is max.message.bytes of the raw, valid and table
	// topics and the producers' limit; the DLQ topic and producers that may
	// write dead letters allow kafka.DeadLetterHeadroom more.
	MaxMessageBytes int
}

// Pipeline tunes the processors.
type Pipeline struct {
	StateDir       string
	MaxPlaysPerDay int
	// MaxNameChars limits artist_name, track_name and album_name: Unicode
	// code points of the name as kept (after trimming and collapsing
	// whitespace); see listen.Limits.
	MaxNameChars int
	// MaxStateBytes limits an encoded aggregator user-day state; at most
	// Kafka.MaxMessageBytes - StateHeadroomBytes.
	MaxStateBytes int
	// FlushInterval is how often the flusher writes changed user-days
	// (TOPK_FLUSH_INTERVAL_MS, whole milliseconds).
	FlushInterval time.Duration
	// SitewideFlushInterval is how often the sitewide flusher writes
	// changed sitewide item-days (TOPK_SITEWIDE_FLUSH_INTERVAL_MS).
	SitewideFlushInterval time.Duration
	// SinkBatchBytes bounds the record values of one sink batch (raw
	// writer, flusher) per claimed partition.
	SinkBatchBytes int
	// FlushCacheMB is the flusher's cache of day states and rollups.
	FlushCacheMB int
	// AggregatorCacheMB is the aggregator's cache of decoded user-day
	// states (0: none).
	AggregatorCacheMB int
	// StorePendingBytes bounds the values the aggregator's local store
	// keeps in memory between LevelDB writes, per partition.
	StorePendingBytes int
	// OutageLimit is how long a service rides out an unreachable Kafka,
	// Cassandra, PostgreSQL or Redis before it exits non-zero
	// (TOPK_OUTAGE_LIMIT_MS, whole milliseconds).
	OutageLimit time.Duration
}

// StateHeadroomBytes is the room a table record keeps beside the state
// (key, headers, record overhead): Pipeline.MaxStateBytes may be at most
// Kafka.MaxMessageBytes minus this.
const StateHeadroomBytes = 64 << 10

// maxKafkaMessageBytes keeps MaxMessageBytes plus the DLQ's 64 KiB headroom
// within Kafka's 32-bit integer settings.
const maxKafkaMessageBytes = math.MaxInt32 - 64<<10

// Cassandra is the CQL cluster and the keyspace.
type Cassandra struct {
	Hosts             []string
	Port              int
	StoragePort       int
	JMXPort           int
	Heap              string
	JavaHome          string
	Keyspace          string
	ReplicationFactor int
	Username          string
	Password          string
}

// Redis is the Asynq broker (Addr, DB) and the api's answer cache
// (CacheAddr, CacheDB: a database of its own, so the cache never shares
// Asynq's keyspace).
type Redis struct {
	Addr      string
	Port      int
	Password  string
	DB        int
	CacheAddr string
	CacheDB   int
}

// Postgres is the control-plane database.
type Postgres struct {
	Host     string
	Port     int
	User     string
	Password string
	Database string
	SSLMode  string
}

// API is the public HTTP server.
type API struct {
	Addr string
	// AdminToken is the admin endpoints' Bearer token and the browser UIs'
	// password; empty disables them (every admin request is refused).
	AdminToken string
	// RateLimit is each client's requests per second to the public read
	// routes (0: none); RateBurst how many at once.
	RateLimit int
	RateBurst int
	// RateInFlight bounds a client's requests in progress at once.
	RateInFlight int
	// RateReadBurst is the size of a client's bucket of read tokens.
	RateReadBurst  int
	TrustedProxies []string
	// The HTTP server's timeouts.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ImportMaxBytes bounds a history upload; ImportDir keeps uploads
	// while they are imported; ImportUploadTimeout bounds an upload's body.
	ImportMaxBytes      int
	ImportDir           string
	ImportUploadTimeout time.Duration
}

// Charts tunes the api's reads: the view's window and the answer cache.
type Charts struct {
	ViewDays     int
	ViewMaxMB    int
	CacheTTL     time.Duration // 0 disables the cache
	NamesTTL     time.Duration // the all-time names' part; 0: CacheTTL
	CacheLocalMB int
	AccessLog    bool
	// CacheMaxEntryBytes is the largest answer stored in Redis.
	CacheMaxEntryBytes int
	// CassandraConcurrency bounds the Cassandra reads of one api process
	// at once (0: no bound).
	CassandraConcurrency int
	// CassandraReads bounds the store reads of one api process at once
	// (0: no bound).
	CassandraReads int
}

// Crawler is the control plane and the crawler: token key, Asynq retries,
// providers.
type Crawler struct {
	TokenKey            string
	TokenKeyPrevious    string
	DevMode             bool
	Concurrency         int
	MaxRetry            int
	RetryBase           time.Duration
	ReconcileEvery      time.Duration
	LastfmURL           string
	LastfmAPIKey        string
	LastfmRate          int
	LastfmInterval      time.Duration
	SpotifyAPIURL       string
	SpotifyTokenURL     string
	SpotifyClientID     string
	SpotifyClientSecret string
	SpotifyInterval     time.Duration
	SimulatedInterval   time.Duration
	SimulatedHistory    time.Duration
	SimulatedSeed       int
}

// Cluster is the local three-broker, three-node cluster of
// deploy/local/cluster.sh (make cluster-up): its own ports and folder, so
// it can run beside the single-node stack.
type Cluster struct {
	Dir                                 string
	KafkaPort, KafkaControllerPort      int
	KafkaHeap                           string
	CassandraPort, CassandraStoragePort int
	CassandraJMXPort                    int
	CassandraHeap                       string
}

// Ops are the per-service ops listeners (/metrics, /healthz, Goka monitor).
type Ops struct {
	Host                                                                 string
	Ingest, RawWriter, Aggregator, Flusher, Crawler, Scheduler, Sitewide int
	// Pprof serves /debug/pprof/ on the ops listeners (TOPK_OPS_PPROF).
	Pprof bool
}

// Load reads the environment (through getenv, os.Getenv when nil),
// applies defaults, parses each value into its field's type (durations:
// Go durations such as "30s"; booleans: 0 or 1) and validates.
func Load(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var c Config
	var errs []error
	r := read{text: map[string]string{}, invalid: map[string]string{}}
	for _, v := range Vars {
		raw := getenv(v.Name)
		if raw == "" {
			raw = v.Default(&c)
		}
		r.text[v.Name] = raw
		var iv invalidValue
		switch err := v.set(&c, raw); {
		case err == nil:
		case errors.As(err, &iv):
			r.invalid[v.Name] = iv.shown
		default:
			errs = append(errs, fmt.Errorf("%s=%q: %w", v.Name, raw, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.validate(r)
}

// Shell renders the resolved configuration as `export NAME='value'` lines,
// which the local-stack scripts evaluate: the shell reads no variable of
// its own.
func (c Config) Shell() string {
	var b strings.Builder
	for _, v := range Vars {
		fmt.Fprintf(&b, "export %s=%s\n", v.Name, shellQuote(v.get(&c)))
	}
	return b.String()
}

// Names lists every variable Load reads, sorted.
func Names() []string {
	out := make([]string, 0, len(Vars))
	for _, v := range Vars {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Environ renders c as TOPK_* environment entries, for starting a topk
// process with exactly this configuration.
func (c Config) Environ() []string {
	env := make([]string, 0, len(Vars))
	for _, v := range Vars {
		env = append(env, v.Name+"="+v.get(&c))
	}
	return env
}
