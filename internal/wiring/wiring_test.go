package wiring

import (
	"reflect"
	"testing"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/store/redis"
)

// Every field of a client's Config is filled from config's field of the
// same name, so a field added on one side and forgotten here fails.
func TestEveryFieldIsCopied(t *testing.T) {
	c, err := config.Load(func(name string) string {
		return map[string]string{
			"TOPK_CASSANDRA_USERNAME": "cu", "TOPK_CASSANDRA_PASSWORD": "cp", "TOPK_CASSANDRA_HOSTS": "h1,h2",
			"TOPK_REDIS_PASSWORD": "rp", "TOPK_REDIS_DB": "3", "TOPK_KAFKA_MAX_MESSAGE_BYTES": "2097152",
		}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to any }{
		{c.Cassandra, Cassandra(c.Cassandra)},
		{c.Postgres, Postgres(c.Postgres)},
		{c.Redis, Redis(c.Redis)},
		{c.Kafka, Kafka(c.Kafka)},
	} {
		from, to := reflect.ValueOf(tc.from), reflect.ValueOf(tc.to)
		for i := range to.NumField() {
			name := to.Type().Field(i).Name
			f := from.FieldByName(name)
			if !f.IsValid() {
				t.Errorf("%s.%s has no field of that name in %s", to.Type(), name, from.Type())
				continue
			}
			if to.Field(i).IsZero() {
				t.Errorf("%s.%s is zero: the test sets no value for it", to.Type(), name)
			}
			if !reflect.DeepEqual(f.Interface(), to.Field(i).Interface()) {
				t.Errorf("%s.%s = %v, want %v", to.Type(), name, to.Field(i), f)
			}
		}
	}
	if got, want := RedisCache(c.Redis), (redis.Config{Addr: "127.0.0.1:6379", Password: "rp", DB: 1}); got != want {
		t.Errorf("answer cache's Redis %+v, want %+v (TOPK_REDIS_ADDR and TOPK_REDIS_PASSWORD, database TOPK_CACHE_REDIS_DB)", got, want)
	}
	if got, want := Postgres(c.Postgres).URL(), "postgres://topk:topk@127.0.0.1:5432/topk?sslmode=disable"; got != want {
		t.Errorf("default PostgreSQL URL %s, want %s", got, want)
	}
}

func TestDefaultMaxMessageBytesIsConfigDefault(t *testing.T) {
	c, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := Kafka(c.Kafka).MaxMessageBytes; got != kafka.DefaultMaxMessageBytes {
		t.Fatalf("TOPK_KAFKA_MAX_MESSAGE_BYTES defaults to %d, kafka.DefaultMaxMessageBytes is %d", got, kafka.DefaultMaxMessageBytes)
	}
}
