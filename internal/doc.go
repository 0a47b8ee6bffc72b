// Package internal holds helpers the rest of topk's tree shares but does not
// export: internal/outage is how services wait out an unreachable server
// (up to the outage limit), internal/metrics registers a component's
// collectors on the Registerer its Config names, internal/wiring turns
// package config's settings into the Configs of store/* and kafka,
// internal/testenv gives integration tests their own topics, keyspace and
// database on the real servers.
package internal
