// Package config reads topk's configuration from the environment, once.
//
// vars.go is the single list of TOPK_* variables: name, default, meaning
// and the Config field each fills. Load reads them (unset means the
// default), parses each value once (durations as time.Duration, 0/1 flags
// as bool) and validates the whole Config; its error names each variable
// at fault. Shell, Markdown and Names serve `topk config --shell|--markdown|
// --names`: the local stack's scripts evaluate the first, README's
// configuration table is the second.
//
// It imports only the standard library. The clients do not import it:
// internal/wiring turns its sections into the Configs that store/cassandra,
// store/postgres, store/redis and kafka own, and cmd/topk hands each
// component its settings.
//
// Flow: environment → config.Load → cmd/topk (internal/wiring) → components.
package config
