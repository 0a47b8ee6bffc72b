// Package config reads topk's configuration from the environment, once.
//
// vars.go is the single list of TOPK_* variables: name, default, meaning
// and the Config field each fills. Load reads them (unset means the
// default), parses each value once (durations as time.Duration, 0/1 flags
// as bool) and validates the whole Config; its error names each variable
// at fault; among its rules, an api on an address other than loopback
// refuses a guessable admin token (make run's topk-dev, or fewer than 16
// bytes). Shell, Markdown and Names serve `topk config --shell|--markdown|
// --names`: the local stack's scripts evaluate the first, README's
// configuration table is the second.
//
// Its tests also hold docker-compose.yml, docker-compose.cluster.yml and
// the Dockerfile to the variables and to safe defaults (compose_test.go:
// required secrets, no dev mode, non-root users, restart policies, data
// in named volumes its images' users own).
//
// It imports only the standard library. The clients do not import it:
// internal/wiring turns its sections into the Configs that store/cassandra,
// store/postgres, store/redis and kafka own, and cmd/topk hands each
// component its settings.
//
// Flow: environment → config.Load → cmd/topk (internal/wiring) → components.
package config
