package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Kafka.Brokers, ","); got != "127.0.0.1:9092" {
		t.Errorf("brokers %q", got)
	}
	if c.Kafka.ValidPartitions != 16 || c.Cassandra.Keyspace != "topk" || c.Redis.Addr != "127.0.0.1:6379" ||
		c.Postgres != (Postgres{Host: "127.0.0.1", Port: 5432, User: "topk", Password: "topk", Database: "topk", SSLMode: "disable"}) || c.API.Addr != "127.0.0.1:8080" ||
		c.Ops.Aggregator != 9103 || c.Cassandra.Port != 9042 {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

// A port override moves the address derived from it.
func TestDerivedDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"TOPK_KAFKA_PORT": "19092", "TOPK_REDIS_PORT": "16379"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Brokers[0] != "127.0.0.1:19092" || c.Redis.Addr != "127.0.0.1:16379" {
		t.Fatalf("derived addresses did not follow the ports: %v %s", c.Kafka.Brokers, c.Redis.Addr)
	}
	c, err = Load(env(map[string]string{"TOPK_KAFKA_PORT": "19092", "TOPK_KAFKA_BROKERS": "a:1, b:2"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Kafka.Brokers, []string{"a:1", "b:2"}) {
		t.Fatalf("explicit brokers lost: %v", c.Kafka.Brokers)
	}
}

// The api's limits: defaults, the answer cache's Redis following
// TOPK_REDIS_ADDR in a database of its own, and each bad value named.
func TestLimitSettings(t *testing.T) {
	c, err := Load(env(map[string]string{"TOPK_REDIS_PORT": "16379", "TOPK_API_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.RateLimit != 10 || c.API.RateBurst != 40 || c.Charts.CassandraConcurrency != 8 || c.Charts.CacheMaxEntryBytes != 1<<20 ||
		c.API.ReadHeaderTimeout != 5*time.Second || c.API.ReadTimeout != 10*time.Second || c.API.WriteTimeout != 30*time.Second ||
		c.API.IdleTimeout != 2*time.Minute || !slices.Equal(c.API.TrustedProxies, []string{"10.0.0.0/8", "192.0.2.1"}) {
		t.Errorf("api limits: %+v, charts %+v", c.API, c.Charts)
	}
	if c.Redis.CacheAddr != "127.0.0.1:16379" || c.Redis.CacheDB != 1 || c.Redis.DB != 0 {
		t.Errorf("answer cache's Redis: %+v", c.Redis)
	}
	for _, tc := range []struct{ env map[string]string }{
		{map[string]string{"TOPK_CACHE_REDIS_DB": "0"}},
		{map[string]string{"TOPK_REDIS_DB": "1"}},
		{map[string]string{"TOPK_CACHE_REDIS_DB": "-1"}},
		{map[string]string{"TOPK_API_TRUSTED_PROXIES": "proxy.example"}},
		{map[string]string{"TOPK_API_RATE_LIMIT": "-1"}},
		{map[string]string{"TOPK_API_RATE_BURST": "0"}},
		{map[string]string{"TOPK_API_CASSANDRA_CONCURRENCY": "-1"}},
		{map[string]string{"TOPK_CACHE_MAX_ENTRY_BYTES": "0"}},
		{map[string]string{"TOPK_API_READ_HEADER_TIMEOUT": "0s"}},
		{map[string]string{"TOPK_API_IDLE_TIMEOUT": "soon"}},
	} {
		var name string
		for name = range tc.env {
		}
		if _, err := Load(env(tc.env)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error naming %s", tc.env, err, name)
		}
	}
	// Another Redis for the cache may use any database.
	if _, err := Load(env(map[string]string{"TOPK_CACHE_REDIS_ADDR": "cache:6379", "TOPK_CACHE_REDIS_DB": "0"})); err != nil {
		t.Errorf("a separate cache instance, database 0: %v", err)
	}
}

func TestValidationNamesTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"TOPK_KAFKA_VALID_PARTITIONS": "12",
		"TOPK_CASSANDRA_KEYSPACE":     "Topk-1",
		"TOPK_POSTGRES_DB":            "x;drop",
		"TOPK_REDIS_PORT":             "70000",
		"TOPK_CASSANDRA_PORT":         "nine",
		"TOPK_LOG_FORMAT":             "xml",
		"TOPK_NAMESPACE":              "A.B",
	} {
		_, err := Load(env(map[string]string{name: val}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v does not name the variable", name, val, err)
		}
	}
}

// The shell form survives a round trip through a real shell, quotes included.
func TestShellRoundTrip(t *testing.T) {
	c, err := Load(env(map[string]string{"TOPK_POSTGRES_PASSWORD": `it's "odd" $HOME`}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "-c", c.Shell()+`printf %s "$TOPK_POSTGRES_PASSWORD"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `it's "odd" $HOME` {
		t.Fatalf("round trip gave %q", out)
	}
}

// Durations and booleans are typed fields, read once by Load.
func TestTypedSettings(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Charts.CacheTTL != 30*time.Second || !c.Charts.AccessLog || c.Crawler.DevMode ||
		c.Crawler.RetryBase != 30*time.Second || c.Crawler.ReconcileEvery != time.Minute ||
		c.Crawler.LastfmInterval != 24*time.Hour || c.Crawler.SpotifyInterval != 30*time.Minute ||
		c.Crawler.SimulatedInterval != time.Minute || c.Crawler.SimulatedHistory != 720*time.Hour ||
		c.Pipeline.FlushInterval != time.Second || c.Pipeline.OutageLimit != 5*time.Minute ||
		c.StatusInterval != 0 || c.LogFile != "" {
		t.Errorf("defaults: charts %+v, crawler %+v, pipeline %+v, status %v, log file %q", c.Charts, c.Crawler, c.Pipeline, c.StatusInterval, c.LogFile)
	}
	if c, err := Load(env(map[string]string{"TOPK_STATUS_INTERVAL": "5s", "TOPK_LOG_FILE": "/tmp/x/topk.log"})); err != nil ||
		c.StatusInterval != 5*time.Second || c.LogFile != "/tmp/x/topk.log" {
		t.Errorf("status interval %v, log file %q: %v", c.StatusInterval, c.LogFile, err)
	}
	c, err = Load(env(map[string]string{"TOPK_CACHE_TTL": "0s", "TOPK_API_ACCESS_LOG": "0", "TOPK_DEV_MODE": " 1 ",
		"TOPK_SIMULATED_HISTORY": "90m", "TOPK_FLUSH_INTERVAL_MS": "250", "TOPK_OUTAGE_LIMIT_MS": " 1500 "}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Charts.CacheTTL != 0 || c.Charts.AccessLog || !c.Crawler.DevMode || c.Crawler.SimulatedHistory != 90*time.Minute ||
		c.Pipeline.FlushInterval != 250*time.Millisecond || c.Pipeline.OutageLimit != 1500*time.Millisecond {
		t.Errorf("overrides: charts %+v, crawler %+v, pipeline %+v", c.Charts, c.Crawler, c.Pipeline)
	}
	for _, v := range []string{"true", "false"} {
		if c, err := Load(env(map[string]string{"TOPK_DEV_MODE": v})); err != nil || c.Crawler.DevMode != (v == "true") {
			t.Errorf("TOPK_DEV_MODE=%s: %v, %v", v, c.Crawler.DevMode, err)
		}
	}
	for _, tc := range []struct{ name, val, want string }{
		{"TOPK_CACHE_TTL", "soon", `TOPK_CACHE_TTL: "soon" is not a duration ≥ 0 (e.g. 30s)`},
		{"TOPK_CACHE_TTL", "-5s", `TOPK_CACHE_TTL: "-5s" is not a duration ≥ 0 (e.g. 30s)`},
		{"TOPK_CRAWLER_RETRY_BASE", "0s", `TOPK_CRAWLER_RETRY_BASE: "0s" is not a positive duration (e.g. 30s, 24h)`},
		{"TOPK_CRAWLER_RETRY_BASE", "0", `TOPK_CRAWLER_RETRY_BASE: "0" is not a positive duration (e.g. 30s, 24h)`},
		{"TOPK_SPOTIFY_INTERVAL", "-60s", `TOPK_SPOTIFY_INTERVAL: "-60s" is not a positive duration (e.g. 30s, 24h)`},
		{"TOPK_SCHEDULER_RECONCILE", "1 m", `TOPK_SCHEDULER_RECONCILE: "1 m" is not a positive duration (e.g. 30s, 24h)`},
		{"TOPK_SIMULATED_HISTORY", "-1h", `TOPK_SIMULATED_HISTORY: "-1h" is not a positive duration (e.g. 30s, 24h)`},
		{"TOPK_DEV_MODE", "2", "TOPK_DEV_MODE: 2 is neither 0 nor 1"},
		{"TOPK_API_ACCESS_LOG", "-1", "TOPK_API_ACCESS_LOG: -1 is neither 0 nor 1"},
		{"TOPK_API_ACCESS_LOG", "yes", `TOPK_API_ACCESS_LOG="yes": not an integer`},
		// Millisecond settings keep their integer syntax.
		{"TOPK_FLUSH_INTERVAL_MS", "1s", `TOPK_FLUSH_INTERVAL_MS="1s": not an integer`},
		{"TOPK_FLUSH_INTERVAL_MS", "0", "TOPK_FLUSH_INTERVAL_MS: must be at least 1"},
		{"TOPK_OUTAGE_LIMIT_MS", "-5", "TOPK_OUTAGE_LIMIT_MS: must be at least 1"},
		{"TOPK_OUTAGE_LIMIT_MS", "99999999999999999", `TOPK_OUTAGE_LIMIT_MS="99999999999999999": not an integer`},
		{"TOPK_STATUS_INTERVAL", "500ms", `TOPK_STATUS_INTERVAL: "500ms" is neither 0s nor a duration of at least 1s (e.g. 5s)`},
		{"TOPK_STATUS_INTERVAL", "-5s", `TOPK_STATUS_INTERVAL: "-5s" is neither 0s nor a duration of at least 1s (e.g. 5s)`},
		{"TOPK_STATUS_INTERVAL", "5", `TOPK_STATUS_INTERVAL: "5" is neither 0s nor a duration of at least 1s (e.g. 5s)`},
	} {
		_, err := Load(env(map[string]string{tc.name: tc.val}))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s=%s: error %v, want %s", tc.name, tc.val, err, tc.want)
		}
	}
	// Validate checks a configuration built in code too.
	c, _ = Load(env(nil))
	c.Crawler.RetryBase = -time.Minute
	if err := c.Validate(); err == nil || err.Error() != `TOPK_CRAWLER_RETRY_BASE: "-1m" is not a positive duration (e.g. 30s, 24h)` {
		t.Errorf("negative retry base: %v", err)
	}
}

// The shell form prints durations as the table writes them and booleans as
// 0 or 1, and Load reads them back to the same values.
func TestShellTypedValues(t *testing.T) {
	c, err := Load(env(map[string]string{"TOPK_CACHE_TTL": "90s", "TOPK_DEV_MODE": "true", "TOPK_LASTFM_INTERVAL": "1h30m"}))
	if err != nil {
		t.Fatal(err)
	}
	sh := c.Shell()
	for _, line := range []string{"export TOPK_CACHE_TTL='1m30s'", "export TOPK_DEV_MODE='1'", "export TOPK_API_ACCESS_LOG='1'",
		"export TOPK_LASTFM_INTERVAL='1h30m'", "export TOPK_SIMULATED_HISTORY='720h'", "export TOPK_SCHEDULER_RECONCILE='1m'", "export TOPK_FLUSH_INTERVAL_MS='1000'", "export TOPK_OUTAGE_LIMIT_MS='300000'"} {
		if !strings.Contains(sh, line+"\n") {
			t.Errorf("shell form lacks %s", line)
		}
	}
	back := map[string]string{}
	for _, kv := range c.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		back[k] = v
	}
	again, err := Load(env(back))
	if err != nil || !reflect.DeepEqual(again, c) {
		t.Fatalf("Environ round trip: %v\n%+v\n%+v", err, again, c)
	}
	for d, want := range map[time.Duration]string{0: "0s", time.Hour: "1h", 90 * time.Second: "1m30s", time.Hour + time.Second: "1h0m1s",
		1500 * time.Millisecond: "1.5s", -time.Minute: "-1m", 10 * time.Minute: "10m"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func repoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The README's configuration table is the generated one, so it cannot drift.
func TestReadmeTableIsCurrent(t *testing.T) {
	if !strings.Contains(repoFile(t, "README.md"), Markdown()) {
		t.Fatalf("README.md's configuration table is stale; replace it with the output of `bin/topk config --markdown`:\n%s", Markdown())
	}
}

// docker-compose.yml is valid (checked by Debian's docker-compose without an
// engine) and sets only variables this package reads.
func TestComposeFile(t *testing.T) {
	out, err := composeConfig(t, "docker-compose.yml", composeSecrets)
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	known := map[string]bool{}
	for _, n := range Names() {
		known[n] = true
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(TOPK_[A-Z0-9_]+):`).FindAllStringSubmatch(out, -1) {
		seen[m[1]] = true
		if !known[m[1]] {
			t.Errorf("docker-compose.yml sets %s, which package config does not read", m[1])
		}
	}
	for _, must := range []string{"TOPK_KAFKA_BROKERS", "TOPK_CASSANDRA_HOSTS", "TOPK_REDIS_ADDR", "TOPK_POSTGRES_HOST", "TOPK_API_ADDR"} {
		if !seen[must] {
			t.Errorf("docker-compose.yml does not set %s for the services", must)
		}
	}
}

func TestInputLimits(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Pipeline.MaxNameChars != 512 || c.Pipeline.MaxStateBytes != 512<<10 || c.Kafka.MaxMessageBytes != 1<<20 || c.Pipeline.OutageLimit != 5*time.Minute {
		t.Errorf("defaults: names %d, state %d, message %d, outage %v", c.Pipeline.MaxNameChars, c.Pipeline.MaxStateBytes, c.Kafka.MaxMessageBytes, c.Pipeline.OutageLimit)
	}
	for _, name := range []string{"TOPK_MAX_NAME_CHARS", "TOPK_MAX_STATE_BYTES", "TOPK_KAFKA_MAX_MESSAGE_BYTES", "TOPK_OUTAGE_LIMIT_MS"} {
		for _, val := range []string{"0", "-1"} {
			_, err := Load(env(map[string]string{name: val}))
			if err == nil || !strings.Contains(err.Error(), name+": must be at least 1") {
				t.Errorf("%s=%s: %v", name, val, err)
			}
		}
	}
	// The state must fit in a table record with 64 KiB to spare.
	for _, tc := range []struct {
		state, message string
		ok             bool
	}{
		{"983040", "1048576", true},  // exactly 1 MiB - 64 KiB
		{"983041", "1048576", false}, // one byte over
		{"1048576", "1048576", false},
		{"2031616", "2097152", true}, // raised together
		{"1", "65537", true},
		{"1", "65536", false},
	} {
		_, err := Load(env(map[string]string{"TOPK_MAX_STATE_BYTES": tc.state, "TOPK_KAFKA_MAX_MESSAGE_BYTES": tc.message}))
		if tc.ok && err != nil {
			t.Errorf("state %s, message %s: %v", tc.state, tc.message, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "TOPK_MAX_STATE_BYTES") || !strings.Contains(err.Error(), "TOPK_KAFKA_MAX_MESSAGE_BYTES")) {
			t.Errorf("state %s, message %s: %v, want an error naming both variables", tc.state, tc.message, err)
		}
	}
	if _, err := Load(env(map[string]string{"TOPK_KAFKA_MAX_MESSAGE_BYTES": "2147483647"})); err == nil || !strings.Contains(err.Error(), "32-bit") {
		t.Errorf("max message bytes beyond Kafka's int32 with the DLQ headroom: %v", err)
	}
}

// The admin-token rule: on an api others can reach, the development
// password and tokens shorter than 16 bytes are refused, with a message
// naming TOPK_ADMIN_TOKEN, the address, the reason and the one-liner, but
// never the token; on a loopback address (127.0.0.0/8, ::1, localhost)
// any token goes; an empty token (admin routes disabled) always goes.
func TestAdminTokenRule(t *testing.T) {
	long := strings.Repeat("k", MinAdminTokenBytes)
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", DevAdminToken, true},
		{"127.0.0.2:8080", "short", true},
		{"[::1]:8080", DevAdminToken, true},
		{"[::ffff:127.0.0.1]:8080", "short", true},
		{"localhost:8080", DevAdminToken, true},
		{"LocalHost:0", "short", true},
		{"0.0.0.0:8080", DevAdminToken, false},
		{"0.0.0.0:8080", "short", false},
		{":8080", DevAdminToken, false}, // every interface
		{"[::]:8080", "short", false},
		{"192.168.1.20:8080", long[1:], false}, // 15 bytes
		{"192.168.1.20:8080", long, true},      // 16 bytes
		{"[fe80::1%eth0]:8080", "short", false},
		{"api.example.com:8080", "short", false}, // a name may resolve anywhere
		{"localhost.example.com:8080", "short", false},
		{"0.0.0.0:8080", "ééééééééé", true}, // 9 characters, 18 bytes
		{"0.0.0.0:8080", "", true},          // admin disabled
		{"10.0.0.5:8080", "", true},
	} {
		_, err := Load(env(map[string]string{"TOPK_API_ADDR": tc.addr, "TOPK_ADMIN_TOKEN": tc.token}))
		if tc.ok {
			if err != nil {
				t.Errorf("%s, token of %d bytes: %v", tc.addr, len(tc.token), err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s, token %q: accepted", tc.addr, tc.token)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"TOPK_ADMIN_TOKEN: ", tc.addr, "not a loopback address", "at least 16 bytes", "export TOPK_ADMIN_TOKEN=$(openssl rand -hex 32)"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s, token %q: %q lacks %q", tc.addr, tc.token, msg, want)
			}
		}
		switch {
		case tc.token == DevAdminToken && !strings.Contains(msg, `development password "topk-dev"`):
			t.Errorf("%s: %q does not say it is the development password", tc.addr, msg)
		case tc.token != DevAdminToken && (strings.Contains(msg, tc.token) || !strings.Contains(msg, "fewer than 16")):
			t.Errorf("%s: %q should give the length, not the token", tc.addr, msg)
		}
	}
	for _, addr := range []string{"8080", "127.0.0.1", ""} {
		_, err := Load(env(map[string]string{"TOPK_API_ADDR": addr}))
		if addr == "" {
			if err != nil { // unset: the default
				t.Errorf("default address: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "TOPK_API_ADDR: ") {
			t.Errorf("TOPK_API_ADDR=%s: %v", addr, err)
		}
	}
	// Validate checks a configuration built in code too.
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.API.Addr, c.API.AdminToken = "0.0.0.0:8080", DevAdminToken
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "TOPK_ADMIN_TOKEN") {
		t.Errorf("Validate: %v", err)
	}
}

// make run's default admin password is DevAdminToken, which its default
// api address accepts and any other address refuses.
func TestMakeRunAdminPassword(t *testing.T) {
	m := regexp.MustCompile(`TOPK_ADMIN_TOKEN=\$\$\{TOPK_ADMIN_TOKEN:-([^}]*)\}`).FindStringSubmatch(repoFile(t, "Makefile"))
	if m == nil || m[1] != DevAdminToken {
		t.Fatalf("Makefile's RUN_ENV: %v, want TOPK_ADMIN_TOKEN defaulting to %q", m, DevAdminToken)
	}
	if _, err := Load(env(map[string]string{"TOPK_ADMIN_TOKEN": m[1], "TOPK_DEV_MODE": "1"})); err != nil {
		t.Errorf("make run's settings on the default address: %v", err)
	}
	if _, err := Load(env(map[string]string{"TOPK_ADMIN_TOKEN": m[1], "TOPK_API_ADDR": "0.0.0.0:8080"})); err == nil {
		t.Error("make run's password accepted on 0.0.0.0")
	}
}
