// Package ops is what every topk service exposes for operators on its own
// ops port: /metrics (Prometheus), /healthz (the process is up), /readyz
// (named checks, each ok or error; the Checker logs the errors, which name
// hosts and users, instead of showing them), /debug/pprof/ when asked for
// (TOPK_OPS_PPROF), plus the browser UIs a service mounts (the Goka
// monitor of the processors it runs), which no page may frame
// (DenyFraming; the api uses it too). It also builds the structured slog
// logger every service receives — on stderr, or the whole log in a file
// and only status lines, warnings and errors on the terminal
// (NewSplitLogger, TOPK_LOG_FILE) — and the status line a service logs
// every TOPK_STATUS_INTERVAL from its own metrics (StatusReporter).
//
// Flow: beside every stage; scraped by Prometheus, probed by orchestrators.
package ops
