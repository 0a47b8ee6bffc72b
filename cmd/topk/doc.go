// Command topk is the one binary of topk: a subcommand per service (api,
// and, as they land, ingest, raw-writer, aggregator, flusher, crawler,
// scheduler, all) and per operation (config, ping, topics, migrate).
// Wiring lives here and only here: configuration is read from the
// environment once (package config), signals are handled once, and
// components are joined with an errgroup.
package main
