// Package ops is what every topk service exposes for operators on its own
// ops port: /metrics (Prometheus), /healthz (the process is up) and /readyz
// (named checks with details), plus any extra handlers a service mounts
// (the Goka monitor of the processors it runs). It also builds the
// structured slog logger every service receives — on stderr, or the whole
// log in a file and only status lines, warnings and errors on the terminal
// (NewSplitLogger, TOPK_LOG_FILE) — and the status line a service logs
// every TOPK_STATUS_INTERVAL from its own metrics (StatusReporter).
//
// Flow: beside every stage; scraped by Prometheus, probed by orchestrators.
package ops
