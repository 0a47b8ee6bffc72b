// Command topk is the one binary of topk: a subcommand per service and per
// operation, all in the literal table `commands` (main.go):
//
//   - services: ingest, aggregator, raw-writer, flusher (the pipeline,
//     pipeline.go and sinks.go), api (api.go), crawler and scheduler
//     (crawler.go), and all (every one of them in one process, a laptop);
//   - operations: config, ping, topics, migrate, enqueue, seed, view
//     backfill (backfill.go) and dlq replay|quarantine (dlq.go).
//
// Wiring lives here and only here: configuration is read from the
// environment once (package config, env.go, which also opens the log file
// of TOPK_LOG_FILE) and handed to each component as its own Config;
// signals are handled once (Main); a service's components run together
// under an errgroup with its ops port (/metrics, health, pprof) and, with
// TOPK_STATUS_INTERVAL, its status line beside them (service.go), and a
// Goka processor runs under
// processors.Supervisor, rebuilt in-process when Kafka goes away and exiting
// only past the outage limit (outage.go).
package main
