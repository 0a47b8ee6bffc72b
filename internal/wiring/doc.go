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
