// Package wiring turns the configuration read by package config into the
// Configs of the clients that take one: store/cassandra, store/postgres,
// store/redis and kafka. It is the one place a config field meets a client
// setting; cmd/topk, internal/testenv and bench/* call it, nothing else
// does.
//
// Why a package of its own rather than methods on config's types: config
// stays a leaf that imports only the standard library, so reading and
// checking TOPK_* variables (topk config, the stack scripts, every test
// that loads a configuration) does not link gocql, pgx, go-redis, sarama
// and, through store/postgres, the crawler; and the clients import no
// configuration package at all. The dependency runs one way:
//
//	config ─┐
//	        ├─> internal/wiring ─> cmd/topk, internal/testenv, bench/*
//	store/*, kafka ─┘
//
// Settings only the local stack's scripts use (heaps, JMX and storage
// ports, Java home, the local broker's ports) have no client field and
// stay in config.
//
// Flow: environment → config.Load → wiring → store/*, kafka.
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

// Kafka is the listen topics' layout (kafka.ListenTopics).
func Kafka(c config.Kafka) kafka.Config {
	return kafka.Config{
		ValidPartitions:   c.ValidPartitions,
		RawPartitions:     c.RawPartitions,
		MinInsyncReplicas: c.MinInsyncReplicas,
		MaxMessageBytes:   c.MaxMessageBytes,
	}
}
