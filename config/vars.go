package config

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Var is one environment variable: its name, default and meaning.
type Var struct {
	Name string
	Doc  string
	// Default may use variables earlier in Vars (a broker address from a port).
	Default func(c *Config) string
	// Field points at the Config field the variable fills (*string, *int,
	// *bool, *time.Duration, millis or *[]string).
	Field func(c *Config) any
}

func fixed(s string) func(*Config) string { return func(*Config) string { return s } }

// millis is a time.Duration field whose variable is written in whole
// milliseconds (TOPK_FLUSH_INTERVAL_MS=1000): the variable keeps the
// syntax it always had, the field its type.
type millis struct{ d *time.Duration }

// Vars is the one list of variables topk reads, in dependency order.
// The README's configuration table is generated from it (`topk config --markdown`).
var Vars = []Var{
	{"TOPK_RUNTIME_DIR", "Data, logs and pid files of the local stack", fixed(".runtime"), func(c *Config) any { return &c.RuntimeDir }},
	{"TOPK_MAVEN_REPO", "Maven local repository for the Kafka and Cassandra jars (empty: Maven's default, ~/.m2/repository)", fixed(""), func(c *Config) any { return &c.MavenRepo }},
	{"TOPK_LOG_LEVEL", "debug, info, warn or error", fixed("info"), func(c *Config) any { return &c.LogLevel }},
	{"TOPK_LOG_FORMAT", "text or json", fixed("text"), func(c *Config) any { return &c.LogFormat }},
	{"TOPK_LOG_FILE", "File that receives the whole log at TOPK_LOG_LEVEL (appended; its folder is created); stderr then shows only status lines, warnings and errors. Empty: the whole log on stderr. `make run` sets $TOPK_RUNTIME_DIR/logs/topk.log", fixed(""), func(c *Config) any { return &c.LogFile }},
	{"TOPK_STATUS_INTERVAL", "How often a running service logs a status line from its own metrics (level STATUS: listens in/s, counted, dead-lettered, consumer lag, crawls, api req/s and p99); 0s: never. `make run` sets 5s", fixed("0s"), func(c *Config) any { return &c.StatusInterval }},
	{"TOPK_NAMESPACE", "Prefix of every topic and consumer group (tests set a random one; keyspace and database are set on their own)", fixed(""), func(c *Config) any { return &c.Namespace }},

	{"TOPK_KAFKA_PORT", "Local Kafka broker port", fixed("9092"), func(c *Config) any { return &c.Kafka.Port }},
	{"TOPK_KAFKA_CONTROLLER_PORT", "Local Kafka KRaft controller port", fixed("9093"), func(c *Config) any { return &c.Kafka.ControllerPort }},
	{"TOPK_KAFKA_HEAP", "Local Kafka JVM heap", fixed("768m"), func(c *Config) any { return &c.Kafka.Heap }},
	{"TOPK_KAFKA_BROKERS", "Kafka bootstrap brokers, comma separated", func(c *Config) string { return hostPort("127.0.0.1", c.Kafka.Port) }, func(c *Config) any { return &c.Kafka.Brokers }},
	{"TOPK_KAFKA_VALID_PARTITIONS", "Partitions of user.listen.valid and the aggregator table (power of two, fixed forever)", fixed("16"), func(c *Config) any { return &c.Kafka.ValidPartitions }},
	{"TOPK_KAFKA_RAW_PARTITIONS", "Partitions of user.listen.raw and user.listen.dlq (any count)", fixed("8"), func(c *Config) any { return &c.Kafka.RawPartitions }},
	{"TOPK_KAFKA_REPLICATION_FACTOR", "Replication factor of the topics topk creates (production: 3)", fixed("1"), func(c *Config) any { return &c.Kafka.ReplicationFactor }},
	{"TOPK_KAFKA_MIN_INSYNC_REPLICAS", "min.insync.replicas of the topics topk creates (production: 2)", fixed("1"), func(c *Config) any { return &c.Kafka.MinInsyncReplicas }},
	{"TOPK_KAFKA_MAX_MESSAGE_BYTES", "max.message.bytes of user.listen.raw, user.listen.valid and the table topics, and the producers' limit; user.listen.dlq and producers that write dead letters get 65536 more (a dead letter is a raw record plus headers)", fixed("1048576"), func(c *Config) any { return &c.Kafka.MaxMessageBytes }},

	{"TOPK_STATE_DIR", "Local Goka storage (one directory per group and instance)", func(c *Config) string { return filepath.Join(c.RuntimeDir, "state") }, func(c *Config) any { return &c.Pipeline.StateDir }},
	{"TOPK_MAX_PLAYS_PER_DAY", "Plays counted per user-day; the excess goes to the DLQ", fixed("2000"), func(c *Config) any { return &c.Pipeline.MaxPlaysPerDay }},
	{"TOPK_MAX_NAME_CHARS", "Most characters (Unicode code points, after trimming and collapsing whitespace) of artist_name, track_name and album_name; a longer name goes to the DLQ (name_too_long)", fixed("512"), func(c *Config) any { return &c.Pipeline.MaxNameChars }},
	{"TOPK_MAX_STATE_BYTES", "Most bytes of an encoded aggregator user-day state; a listen that would pass it goes to the DLQ (state_size). At most TOPK_KAFKA_MAX_MESSAGE_BYTES minus 65536", fixed("524288"), func(c *Config) any { return &c.Pipeline.MaxStateBytes }},
	{"TOPK_OUTAGE_LIMIT_MS", "How long a service rides out an unreachable Kafka, Cassandra, PostgreSQL or Redis before it exits non-zero with the reason", fixed("300000"), func(c *Config) any { return millis{&c.Pipeline.OutageLimit} }},
	{"TOPK_SINK_BATCH_BYTES", "Most bytes of keys and values in one batch of the raw writer (records read) or the flusher (user-day states kept to write), per claimed partition; a batch is written when it reaches this or its record count", fixed("4194304"), func(c *Config) any { return &c.Pipeline.SinkBatchBytes }},
	{"TOPK_FLUSH_CACHE_MB", "Memory of the flusher's cache of day states and month rollups (per process)", fixed("64"), func(c *Config) any { return &c.Pipeline.FlushCacheMB }},
	{"TOPK_AGGREGATOR_CACHE_MB", "Memory of the aggregator's cache of decoded user-day states it wrote last (per process; 0: none), so a listen of a hot user-day skips reading and decoding its state", fixed("64"), func(c *Config) any { return &c.Pipeline.AggregatorCacheMB }},
	{"TOPK_STORE_PENDING_BYTES", "Most bytes of keys and values the aggregator's local store holds in memory before writing them to LevelDB (per partition)", fixed("8388608"), func(c *Config) any { return &c.Pipeline.StorePendingBytes }},
	{"TOPK_FLUSH_INTERVAL_MS", "How often the flusher writes changed user-days to Cassandra", fixed("1000"), func(c *Config) any { return millis{&c.Pipeline.FlushInterval} }},
	{"TOPK_SITEWIDE_FLUSH_INTERVAL_MS", "How often the sitewide flusher writes changed sitewide item-days to Cassandra (the api's sitewide view serves the recent days meanwhile)", fixed("5000"), func(c *Config) any { return millis{&c.Pipeline.SitewideFlushInterval} }},

	{"TOPK_CASSANDRA_PORT", "Cassandra CQL port", fixed("9042"), func(c *Config) any { return &c.Cassandra.Port }},
	{"TOPK_CASSANDRA_STORAGE_PORT", "Local Cassandra inter-node port", fixed("7000"), func(c *Config) any { return &c.Cassandra.StoragePort }},
	{"TOPK_CASSANDRA_JMX_PORT", "Local Cassandra JMX port (loopback)", fixed("7199"), func(c *Config) any { return &c.Cassandra.JMXPort }},
	{"TOPK_CASSANDRA_HEAP", "Local Cassandra JVM heap", fixed("2G"), func(c *Config) any { return &c.Cassandra.Heap }},
	{"TOPK_CASSANDRA_JAVA_HOME", "JDK 11 or 17 for Cassandra (empty: java on PATH)", fixed(""), func(c *Config) any { return &c.Cassandra.JavaHome }},
	{"TOPK_CASSANDRA_HOSTS", "Cassandra contact points, comma separated", fixed("127.0.0.1"), func(c *Config) any { return &c.Cassandra.Hosts }},
	{"TOPK_CASSANDRA_KEYSPACE", "Cassandra keyspace", fixed("topk"), func(c *Config) any { return &c.Cassandra.Keyspace }},
	{"TOPK_CASSANDRA_REPLICATION_FACTOR", "Replication factor of the keyspace (SimpleStrategy; production: 3)", fixed("1"), func(c *Config) any { return &c.Cassandra.ReplicationFactor }},
	{"TOPK_CASSANDRA_USERNAME", "Cassandra user (empty: no authentication)", fixed(""), func(c *Config) any { return &c.Cassandra.Username }},
	{"TOPK_CASSANDRA_PASSWORD", "Cassandra password", fixed(""), func(c *Config) any { return &c.Cassandra.Password }},

	{"TOPK_REDIS_PORT", "Redis port", fixed("6379"), func(c *Config) any { return &c.Redis.Port }},
	{"TOPK_REDIS_ADDR", "Redis address", func(c *Config) string { return hostPort("127.0.0.1", c.Redis.Port) }, func(c *Config) any { return &c.Redis.Addr }},
	{"TOPK_REDIS_PASSWORD", "Redis password (empty: none)", fixed(""), func(c *Config) any { return &c.Redis.Password }},
	{"TOPK_REDIS_DB", "Redis database number (Asynq's queues)", fixed("0"), func(c *Config) any { return &c.Redis.DB }},
	{"TOPK_CACHE_REDIS_ADDR", "Redis address of the api's answer cache (a separate instance, or the same with TOPK_CACHE_REDIS_DB); its password is TOPK_REDIS_PASSWORD", func(c *Config) string { return c.Redis.Addr }, func(c *Config) any { return &c.Redis.CacheAddr }},
	{"TOPK_CACHE_REDIS_DB", "Redis database of the api's answer cache, never Asynq's; every entry has a TTL, so a Redis with `maxmemory` and a `volatile-*` policy evicts answers and never Asynq's tasks (docs/SECURITY.md)", fixed("1"), func(c *Config) any { return &c.Redis.CacheDB }},

	{"TOPK_POSTGRES_HOST", "PostgreSQL host", fixed("127.0.0.1"), func(c *Config) any { return &c.Postgres.Host }},
	{"TOPK_POSTGRES_PORT", "PostgreSQL port", fixed("5432"), func(c *Config) any { return &c.Postgres.Port }},
	{"TOPK_POSTGRES_USER", "PostgreSQL role (the local stack creates it)", fixed("topk"), func(c *Config) any { return &c.Postgres.User }},
	{"TOPK_POSTGRES_PASSWORD", "PostgreSQL password", fixed("topk"), func(c *Config) any { return &c.Postgres.Password }},
	{"TOPK_POSTGRES_DB", "PostgreSQL database", fixed("topk"), func(c *Config) any { return &c.Postgres.Database }},
	{"TOPK_POSTGRES_SSLMODE", "PostgreSQL sslmode", fixed("disable"), func(c *Config) any { return &c.Postgres.SSLMode }},

	{"TOPK_API_ADDR", "Listen address of `topk api`", fixed("127.0.0.1:8080"), func(c *Config) any { return &c.API.Addr }},
	{"TOPK_VIEW_DAYS", "Days the api's Goka view keeps (today and the days before); older days come from Cassandra", fixed("35"), func(c *Config) any { return &c.Charts.ViewDays }},
	{"TOPK_VIEW_MAX_MB", "Memory of the api's view (decoded user-days); past it the view keeps the newest days that fit and older ones come from Cassandra", fixed("1024"), func(c *Config) any { return &c.Charts.ViewMaxMB }},
	{"TOPK_CACHE_TTL", "How long the api reuses a Cassandra answer (in process and in Redis; 0s: no caching)", fixed("30s"), func(c *Config) any { return &c.Charts.CacheTTL }},
	{"TOPK_API_CASSANDRA_READS", "Cassandra reads (a partition, a day list, a page of listens) one api process runs and decodes at once, over all its fills (per-user and sitewide charts): decoding is CPU work view-served requests must not queue behind (0: no bound)", fixed("2"), func(c *Config) any { return &c.Charts.CassandraReads }},
	{"TOPK_NAMES_TTL", "How long the api reuses a user's all-time spellings of the days before the view (a chart's display names; only late listens older than the view change them)", fixed("10m"), func(c *Config) any { return &c.Charts.NamesTTL }},
	{"TOPK_CACHE_LOCAL_MB", "Memory for decoded Cassandra answers in one api process", fixed("64"), func(c *Config) any { return &c.Charts.CacheLocalMB }},
	{"TOPK_API_ACCESS_LOG", "1: log every api request at info level; 0: at debug level", fixed("1"), func(c *Config) any { return &c.Charts.AccessLog }},
	{"TOPK_CACHE_MAX_ENTRY_BYTES", "Largest Cassandra answer the api stores in Redis (encoded); larger ones are kept in the process only", fixed("1048576"), func(c *Config) any { return &c.Charts.CacheMaxEntryBytes }},
	{"TOPK_API_CASSANDRA_CONCURRENCY", "Cassandra reads (cache fills; per-user and sitewide charts) one api process runs at once; a request needing another waits up to 50 ms, then gets 503 with Retry-After (0: no bound)", fixed("8"), func(c *Config) any { return &c.Charts.CassandraConcurrency }},
	{"TOPK_API_RATE_LIMIT", "Requests per second each client (IP address; IPv6: /64) may make to /v1/users… and the ListenBrainz routes /1/…, beyond TOPK_API_RATE_BURST at once; past it 429 with Retry-After (0: no limit). With TOPK_DEV_MODE=1 loopback clients are not limited", fixed("10"), func(c *Config) any { return &c.API.RateLimit }},
	{"TOPK_API_RATE_IN_FLIGHT", "Requests of one client the api works on at once; more get 429 at once (a browser's chart page sends 4)", fixed("4"), func(c *Config) any { return &c.API.RateInFlight }},
	{"TOPK_API_RATE_BURST", "Requests a client may make at once before TOPK_API_RATE_LIMIT paces it", fixed("40"), func(c *Config) any { return &c.API.RateBurst }},
	{"TOPK_API_RATE_READ_BURST", "Read tokens a client may spend at once: each 4 Cassandra reads of a request (or part of 4) cost one, from a bucket of its own refilled at TOPK_API_RATE_LIMIT (a request owing more is admitted with a full bucket and leaves it in debt)", fixed("10"), func(c *Config) any { return &c.API.RateReadBurst }},
	{"TOPK_API_TRUSTED_PROXIES", "Reverse proxies (CIDR or IP, comma separated) whose X-Forwarded-For names the client; empty: the connection's peer is the client", fixed(""), func(c *Config) any { return &c.API.TrustedProxies }},
	{"TOPK_API_READ_HEADER_TIMEOUT", "How long the api waits for a request's headers", fixed("5s"), func(c *Config) any { return &c.API.ReadHeaderTimeout }},
	{"TOPK_API_READ_TIMEOUT", "How long the api waits for a whole request", fixed("10s"), func(c *Config) any { return &c.API.ReadTimeout }},
	{"TOPK_API_WRITE_TIMEOUT", "How long the api may take from a request's headers to the end of its answer", fixed("30s"), func(c *Config) any { return &c.API.WriteTimeout }},
	{"TOPK_API_IDLE_TIMEOUT", "How long the api keeps an idle keep-alive connection", fixed("2m"), func(c *Config) any { return &c.API.IdleTimeout }},
	{"TOPK_IMPORT_MAX_BYTES", "Largest history upload (POST /v1/users/{user}/imports) in bytes; a larger one is a 413 before it is stored", fixed("536870912"), func(c *Config) any { return &c.API.ImportMaxBytes }},
	{"TOPK_IMPORT_DIR", "Folder where the api keeps uploaded history files while it imports them (and resumes them after a restart)", func(c *Config) string { return filepath.Join(c.RuntimeDir, "imports") }, func(c *Config) any { return &c.API.ImportDir }},
	{"TOPK_IMPORT_UPLOAD_TIMEOUT", "How long the api waits for a history upload's body (instead of TOPK_API_READ_TIMEOUT)", fixed("10m"), func(c *Config) any { return &c.API.ImportUploadTimeout }},
	{"TOPK_ADMIN_TOKEN", "Bearer token of the admin endpoints and password of the browser UIs (empty: they refuse every request). Unless TOPK_API_ADDR is a loopback address, at least 16 bytes and not `make run`'s topk-dev (`openssl rand -hex 32`)", fixed(""), func(c *Config) any { return &c.API.AdminToken }},
	{"TOPK_TOKEN_KEY", "AES-256-GCM key of provider tokens at rest: 32 bytes, base64 or hex (`openssl rand -base64 32`); services refuse to start without it unless TOPK_DEV_MODE=1", fixed(""), func(c *Config) any { return &c.Crawler.TokenKey }},
	{"TOPK_TOKEN_KEY_PREVIOUS", "Earlier token keys, comma separated: tokens sealed with them still open, and `topk rekey` re-seals them with TOPK_TOKEN_KEY (key rotation, docs/SECURITY.md)", fixed(""), func(c *Config) any { return &c.Crawler.TokenKeyPrevious }},
	{"TOPK_DEV_MODE", "1: without TOPK_TOKEN_KEY, generate a development key in TOPK_RUNTIME_DIR/dev-token.key and log that (never in production)", fixed("0"), func(c *Config) any { return &c.Crawler.DevMode }},
	{"TOPK_CRAWLER_CONCURRENCY", "Crawls one `topk crawler` runs at once", fixed("10"), func(c *Config) any { return &c.Crawler.Concurrency }},
	{"TOPK_CRAWLER_MAX_RETRY", "Retries of a failing crawl before its task is archived (Asynq's dead-letter queue)", fixed("8"), func(c *Config) any { return &c.Crawler.MaxRetry }},
	{"TOPK_CRAWLER_RETRY_BASE", "Delay before the first retry of a failing crawl; doubles each retry, with jitter, up to 6h", fixed("30s"), func(c *Config) any { return &c.Crawler.RetryBase }},
	{"TOPK_SCHEDULER_RECONCILE", "How often `topk scheduler` restores missing crawl tasks from PostgreSQL (after a Redis flush)", fixed("1m"), func(c *Config) any { return &c.Crawler.ReconcileEvery }},
	{"TOPK_LASTFM_URL", "Last.fm API base URL", fixed("https://ws.audioscrobbler.com/2.0/"), func(c *Config) any { return &c.Crawler.LastfmURL }},
	{"TOPK_LASTFM_API_KEY", "Last.fm API key (needed to crawl Last.fm users)", fixed(""), func(c *Config) any { return &c.Crawler.LastfmAPIKey }},
	{"TOPK_LASTFM_RATE", "Last.fm requests per second of one crawler process (negative: unlimited, for local servers)", fixed("5"), func(c *Config) any { return &c.Crawler.LastfmRate }},
	{"TOPK_LASTFM_INTERVAL", "Crawl interval of Last.fm users", fixed("24h"), func(c *Config) any { return &c.Crawler.LastfmInterval }},
	{"TOPK_SPOTIFY_API_URL", "Spotify Web API base URL", fixed("https://api.spotify.com/v1"), func(c *Config) any { return &c.Crawler.SpotifyAPIURL }},
	{"TOPK_SPOTIFY_TOKEN_URL", "Spotify token endpoint (refresh grant)", fixed("https://accounts.spotify.com/api/token"), func(c *Config) any { return &c.Crawler.SpotifyTokenURL }},
	{"TOPK_SPOTIFY_CLIENT_ID", "Spotify application client id (token refresh)", fixed(""), func(c *Config) any { return &c.Crawler.SpotifyClientID }},
	{"TOPK_SPOTIFY_CLIENT_SECRET", "Spotify application client secret", fixed(""), func(c *Config) any { return &c.Crawler.SpotifyClientSecret }},
	{"TOPK_SPOTIFY_INTERVAL", "Crawl interval of Spotify users (the endpoint keeps only the last 50 plays)", fixed("30m"), func(c *Config) any { return &c.Crawler.SpotifyInterval }},
	{"TOPK_SIMULATED_INTERVAL", "Crawl interval of simulated users", fixed("1m"), func(c *Config) any { return &c.Crawler.SimulatedInterval }},
	{"TOPK_SIMULATED_HISTORY", "How far back a simulated listener's history goes (a first crawl imports it all)", fixed("720h"), func(c *Config) any { return &c.Crawler.SimulatedHistory }},
	{"TOPK_SIMULATED_SEED", "Seed of the simulated population (same seed, same listens)", fixed("1"), func(c *Config) any { return &c.Crawler.SimulatedSeed }},
	{"TOPK_CLUSTER_DIR", "Data, logs and pid files of the local three-node cluster (make cluster-up)", func(c *Config) string { return filepath.Join(c.RuntimeDir, "cluster") }, func(c *Config) any { return &c.Cluster.Dir }},
	{"TOPK_CLUSTER_KAFKA_PORT", "Client port of the cluster's first Kafka broker; the others take the next two", fixed("9192"), func(c *Config) any { return &c.Cluster.KafkaPort }},
	{"TOPK_CLUSTER_KAFKA_CONTROLLER_PORT", "KRaft controller port of the cluster's first broker; the others take the next two", fixed("9195"), func(c *Config) any { return &c.Cluster.KafkaControllerPort }},
	{"TOPK_CLUSTER_KAFKA_HEAP", "JVM heap of each cluster broker", fixed("512m"), func(c *Config) any { return &c.Cluster.KafkaHeap }},
	{"TOPK_CLUSTER_CASSANDRA_PORT", "CQL port of the cluster's Cassandra nodes (on 127.0.0.1, 127.0.0.2, 127.0.0.3)", fixed("9142"), func(c *Config) any { return &c.Cluster.CassandraPort }},
	{"TOPK_CLUSTER_CASSANDRA_STORAGE_PORT", "Inter-node port of the cluster's Cassandra nodes", fixed("7100"), func(c *Config) any { return &c.Cluster.CassandraStoragePort }},
	{"TOPK_CLUSTER_CASSANDRA_JMX_PORT", "JMX port of the cluster's first Cassandra node; the others take the next two", fixed("7201"), func(c *Config) any { return &c.Cluster.CassandraJMXPort }},
	{"TOPK_CLUSTER_CASSANDRA_HEAP", "JVM heap of each cluster Cassandra node", fixed("1G"), func(c *Config) any { return &c.Cluster.CassandraHeap }},
	{"TOPK_OPS_HOST", "Host the ops listeners bind to", fixed("127.0.0.1"), func(c *Config) any { return &c.Ops.Host }},
	{"TOPK_OPS_PORT_INGEST", "Ops port of `topk ingest`", fixed("9101"), func(c *Config) any { return &c.Ops.Ingest }},
	{"TOPK_OPS_PORT_RAW_WRITER", "Ops port of `topk raw-writer`", fixed("9102"), func(c *Config) any { return &c.Ops.RawWriter }},
	{"TOPK_OPS_PORT_AGGREGATOR", "Ops port of `topk aggregator`", fixed("9103"), func(c *Config) any { return &c.Ops.Aggregator }},
	{"TOPK_OPS_PORT_FLUSHER", "Ops port of `topk flusher`", fixed("9104"), func(c *Config) any { return &c.Ops.Flusher }},
	{"TOPK_OPS_PORT_CRAWLER", "Ops port of `topk crawler`", fixed("9105"), func(c *Config) any { return &c.Ops.Crawler }},
	{"TOPK_OPS_PORT_SCHEDULER", "Ops port of `topk scheduler`", fixed("9106"), func(c *Config) any { return &c.Ops.Scheduler }},
	{"TOPK_OPS_PORT_SITEWIDE", "Ops port of `topk sitewide`", fixed("9107"), func(c *Config) any { return &c.Ops.Sitewide }},
	{"TOPK_OPS_PPROF", "1: the ops listeners also serve /debug/pprof/ (CPU profiles, execution traces, heap and goroutine dumps: for whoever reaches the port, at a CPU cost); 0: a 404", fixed("0"), func(c *Config) any { return &c.Ops.Pprof }},
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// invalidValue is a value set read but cannot store: a duration that does
// not parse, an integer other than 0 and 1 for a boolean. Load hands it to
// validate, which reports it where it checks the variable, in the words it
// uses for a value out of range; shown is the value as the message quotes it.
type invalidValue struct{ shown string }

func (e invalidValue) Error() string { return "invalid value " + e.shown }

func (v Var) set(c *Config, raw string) error {
	switch p := v.Field(c).(type) {
	case *string:
		*p = raw
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*p = n
	case *bool:
		s := strings.TrimSpace(raw)
		if n, err := strconv.Atoi(s); err == nil {
			if n != 0 && n != 1 {
				return invalidValue{strconv.Itoa(n)}
			}
			*p = n == 1
			return nil
		}
		b, err := strconv.ParseBool(s) // true, false
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return invalidValue{raw}
		}
		*p = d
	case millis:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil || n > int64(math.MaxInt64/time.Millisecond) || n < int64(math.MinInt64/time.Millisecond) {
			return fmt.Errorf("not an integer")
		}
		*p.d = time.Duration(n) * time.Millisecond
	case *[]string:
		*p = nil
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, s)
			}
		}
	default:
		panic(fmt.Sprintf("config: %s points at an unsupported field type %T", v.Name, p))
	}
	return nil
}

func (v Var) get(c *Config) string {
	switch p := v.Field(c).(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		if *p {
			return "1"
		}
		return "0"
	case *time.Duration:
		return formatDuration(*p)
	case millis:
		return strconv.FormatInt(p.d.Milliseconds(), 10)
	case *[]string:
		return strings.Join(*p, ",")
	}
	panic(fmt.Sprintf("config: %s points at an unsupported field type", v.Name))
}

// formatDuration is d in Go's notation without the zero minutes and
// seconds time.Duration.String adds ("24h", "1m", "1h30m", "30s", "0s"), so
// the defaults print as the table writes them. time.ParseDuration reads it
// back to d.
func formatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// Markdown renders the variable table for the README.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range Vars {
		var c Config
		for _, w := range Vars { // defaults that derive from others see the others' defaults
			_ = w.set(&c, w.Default(&c))
			if w.Name == v.Name {
				break
			}
		}
		def := v.get(&c)
		if def == "" {
			def = "(empty)"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Doc)
	}
	return b.String()
}
