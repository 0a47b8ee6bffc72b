package wiring

import (
	"slices"

	"github.com/topk-charts/topk/config"
	"github.com/topk-charts/topk/kafka"
	"github.com/topk-charts/topk/store/cassandra"
	"github.com/topk-charts/topk/store/postgres"
	"github.com/topk-charts/topk/store/redis"
)

// Cassandra is the CQL client's configuration.
func Cassandra(c config.Cassandra) cassandra.Config {
	return cassandra.Config{
		Hosts:             slices.Clone(c.Hosts),
		Port:              c.Port,
		Keyspace:          c.Keyspace,
		ReplicationFactor: c.ReplicationFactor,
		Username:          c.Username,
		Password:          c.Password,
	}
}

// Postgres is the control-plane database client's configuration.
func Postgres(c config.Postgres) postgres.Config {
	return postgres.Config{
		Host:     c.Host,
		Port:     c.Port,
		User:     c.User,
		Password: c.Password,
		Database: c.Database,
		SSLMode:  c.SSLMode,
	}
}

// Redis is the go-redis (and Asynq) client's configuration.
func Redis(c config.Redis) redis.Config {
	return redis.Config{Addr: c.Addr, Password: c.Password, DB: c.DB}
}

// RedisCache is the client configuration of the api's answer cache: its
// own address and database (never Asynq's), the same password.
func RedisCache(c config.Redis) redis.Config {
	return redis.Config{Addr: c.CacheAddr, Password: c.Password, DB: c.CacheDB}
}

// Kafka is the listen topics' layout (kafka.ListenTopics).
func Kafka(c config.Kafka) kafka.Config {
	return kafka.Config{
		ValidPartitions:   c.ValidPartitions,
		RawPartitions:     c.RawPartitions,
		MinInsyncReplicas: c.MinInsyncReplicas,
		MaxMessageBytes:   c.MaxMessageBytes,
	}
}
