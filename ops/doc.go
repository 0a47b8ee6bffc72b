// Package ops is what every topk service exposes for operators on its own
// ops port: /metrics (Prometheus), /healthz (the process is up) and /readyz
// (named checks with details), plus any extra handlers a service mounts
// (the Goka monitor of the processors it runs). It also builds the
// structured slog logger every service receives.
//
// Flow: beside every stage; scraped by Prometheus, probed by orchestrators.
package ops
