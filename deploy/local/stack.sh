#!/usr/bin/env bash
# The local stack without Docker: Kafka and Cassandra assembled from Maven
# Central, Redis and PostgreSQL from Debian packages, all on 127.0.0.1 with
# their data, logs and pid files under $TOPK_RUNTIME_DIR (default .runtime).
#
#   stack.sh up      start what is not running, wait until each server
#                    answers a real request (Kafka metadata, a CQL query,
#                    INFO, SQL); on failure say which, why, and its log's end
#   stack.sh down    stop exactly the processes this stack started (pid files)
#   stack.sh status  what runs where, and whether it answers
#   stack.sh reset   stop, then wipe every server's data (jars stay cached)
#
# Configuration is read by the Go code only (`topk config --shell`); this
# script evaluates what it prints. TOPK_BIN names the topk binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TOPK_BIN="${TOPK_BIN:-bin/topk}"
[ -x "$TOPK_BIN" ] || { echo "stack: $TOPK_BIN missing: run 'make build'" >&2; exit 1; }
eval "$("$TOPK_BIN" config --shell)"
source deploy/local/lib.sh
COMPONENT=stack

SERVERS=(kafka cassandra redis postgres)
declare -A WAIT=([kafka]=120 [cassandra]=240 [redis]=30 [postgres]=60)
declare -A PIDFILE=(
  [kafka]="$TOPK_RUNTIME_DIR/kafka/kafka.pid" [cassandra]="$TOPK_RUNTIME_DIR/cassandra/cassandra.pid"
  [redis]="$TOPK_RUNTIME_DIR/redis/redis.pid" [postgres]="$TOPK_RUNTIME_DIR/postgres/postgres.pid")
declare -A LOGFILE=(
  [kafka]="$TOPK_RUNTIME_DIR/kafka/logs/server.log" [cassandra]="$TOPK_RUNTIME_DIR/cassandra/logs/system.log"
  [redis]="$TOPK_RUNTIME_DIR/redis/redis.log" [postgres]="$TOPK_RUNTIME_DIR/postgres/postgres.log")
declare -A STDOUT=(
  [kafka]="$TOPK_RUNTIME_DIR/kafka/logs/stdout.log" [cassandra]="$TOPK_RUNTIME_DIR/cassandra/logs/stdout.log"
  [redis]="$TOPK_RUNTIME_DIR/redis/stdout.log" [postgres]="$TOPK_RUNTIME_DIR/postgres/postgres.log")

# wait_ready NAME: poll a real request until it answers, the process dies,
# or the server's time runs out.
wait_ready() {
  local s="$1" deadline=$((SECONDS + WAIT[$1])) err
  while :; do
    if err="$("$TOPK_BIN" ping "$s" 2>/dev/null)"; then
      say "$s ready: ${err#*ok   }"; return 0
    fi
    if ! pid_alive "${PIDFILE[$s]}"; then
      say "ERROR: $s is not running: its process exited during start-up"
      last_lines "${LOGFILE[$s]}"; last_lines "${STDOUT[$s]}" 10; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "ERROR: $s did not answer within ${WAIT[$s]}s: ${err#*FAIL }"
      last_lines "${LOGFILE[$s]}"; return 1
    fi
    sleep 1
  done
}

up() {
  local t0=$SECONDS s failed=()
  mkdir -p "$TOPK_RUNTIME_DIR"
  # Launch everything first (Kafka and Cassandra take a while), then wait.
  for s in "${SERVERS[@]}"; do
    "deploy/local/$s.sh" start || failed+=("$s")
  done
  for s in "${SERVERS[@]}"; do
    [[ " ${failed[*]} " == *" $s "* ]] && continue
    wait_ready "$s" || failed+=("$s")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    die "not ready: ${failed[*]} (logs under $TOPK_RUNTIME_DIR; 'make infra-status')"
  fi
  say "stack ready in $((SECONDS - t0))s (data in $TOPK_RUNTIME_DIR)"
}

down() {
  local i
  for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do "deploy/local/${SERVERS[$i]}.sh" stop; done
}

status() {
  local s rc=0
  for s in "${SERVERS[@]}"; do
    "deploy/local/$s.sh" status || rc=1
  done
  echo
  "$TOPK_BIN" ping 2>/dev/null || rc=1
  return $rc
}

reset() {
  local s
  down
  for s in "${SERVERS[@]}"; do "deploy/local/$s.sh" reset; done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  reset) reset ;;
  *) echo "usage: $0 up|down|status|reset" >&2; exit 2 ;;
esac
