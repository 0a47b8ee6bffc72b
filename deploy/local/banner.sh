#!/usr/bin/env bash
# Prints what the local stack runs and where (after `make run` brought it up).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(bin/topk config --shell)"
cat <<MSG

  topk — local stack is up
  ─────────────────────────────────────────────────────────────────────
  Kafka        ${TOPK_KAFKA_BROKERS}   (controller 127.0.0.1:${TOPK_KAFKA_CONTROLLER_PORT})
  Cassandra    ${TOPK_CASSANDRA_HOSTS}:${TOPK_CASSANDRA_PORT}   keyspace ${TOPK_CASSANDRA_KEYSPACE}
  Redis        ${TOPK_REDIS_ADDR}
  PostgreSQL   postgres://${TOPK_POSTGRES_USER}@${TOPK_POSTGRES_HOST}:${TOPK_POSTGRES_PORT}/${TOPK_POSTGRES_DB}
  data, logs   ${TOPK_RUNTIME_DIR}   (make infra-status, make infra-down, make infra-reset)

  api          http://${TOPK_API_ADDR}/healthz   /readyz   /metrics   /openapi.yaml
  charts page  http://${TOPK_API_ADDR}/#user=sim-0001&entity=artists&range=30d
  example      curl 'http://${TOPK_API_ADDR}/v1/users/sim-0001/top/artists?range=30d&k=5'
               curl 'http://${TOPK_API_ADDR}/v1/users?prefix=sim-'
  Goka monitor http://${TOPK_API_ADDR}/goka/    Asynq dashboard http://${TOPK_API_ADDR}/asynq/
               (user admin, password ${TOPK_ADMIN_TOKEN:-<unset: the UIs refuse everyone>})
  pipeline ops http://${TOPK_OPS_HOST}:${TOPK_OPS_PORT_INGEST}/metrics   /goka/

  Simulated listeners sim-0001… are registered; their history is crawled now
  and they keep listening every ${TOPK_SIMULATED_INTERVAL}.

  Send a listen (the time comes from date -u):
    echo "{\"user_id\":\"alice\",\"played_at\":\"\$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"artist_name\":\"Radiohead\",\"track_name\":\"Reckoner\",\"album_name\":\"In Rainbows\"}" \\
      | bin/kafka-console-producer --bootstrap-server ${TOPK_KAFKA_BROKERS} --topic user.listen.raw
    bin/kafka-console-consumer --bootstrap-server ${TOPK_KAFKA_BROKERS} --topic user.listen.raw --from-beginning

  Ctrl-C stops topk; the stack keeps running for the next run (make infra-down stops it).
MSG
# Where the log goes (make run: a file) and what the status line says.
if [[ -n "${TOPK_LOG_FILE}" || "${TOPK_STATUS_INTERVAL}" != "0s" ]]; then
  echo
  if [[ -n "${TOPK_LOG_FILE}" ]]; then
    echo "  Here: warnings and errors. The whole log, with a line per crawl and per request:"
    echo "    tail -f ${TOPK_LOG_FILE}    (TOPK_LOG_FILE= make run: all of it here)"
  fi
  if [[ "${TOPK_STATUS_INTERVAL}" != "0s" ]]; then
    echo "  A status line every ${TOPK_STATUS_INTERVAL} (TOPK_STATUS_INTERVAL=0s: none): in/s listens read,"
    echo "    counted (total, /s), dead_lettered, lag.* records each consumer has not processed yet,"
    echo "    crawled and crawl_errors, api req/s and p99_ms."
  fi
  echo
fi
