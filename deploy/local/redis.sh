#!/usr/bin/env bash
# Redis from Debian's redis-server package, on loopback, data under
# $TOPK_RUNTIME_DIR/redis. Not a system service: this script starts and stops
# exactly its own process (pid file).
#   redis.sh start|stop|status|reset
COMPONENT=redis
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${TOPK_REDIS_PORT:=6379}"
DIR="$TOPK_RUNTIME_DIR/redis"
PID="$DIR/redis.pid"
LOG="$DIR/redis.log"

start() {
  if pid_alive "$PID"; then say "already running (pid $(cat "$PID"), port $TOPK_REDIS_PORT)"; return 0; fi
  command -v redis-server >/dev/null || die "redis-server not found: apt-get install redis-server"
  if ss -ltnH "sport = :$TOPK_REDIS_PORT" | grep -q .; then
    die "port $TOPK_REDIS_PORT is taken by another process (set TOPK_REDIS_PORT, or stop it: ss -ltnp 'sport = :$TOPK_REDIS_PORT')"
  fi
  mkdir -p "$DIR/data"
  say "starting redis-server on 127.0.0.1:$TOPK_REDIS_PORT"
  # Snapshot every minute with changes and an append-only file: Asynq's
  # queues survive a restart (and are reconciled from PostgreSQL anyway).
  # volatile-lru: past maxmemory Redis evicts only keys with a TTL — the
  # api's answer cache (database TOPK_CACHE_REDIS_DB, every entry with a
  # TTL), never Asynq's tasks and queues, which have none (docs/SECURITY.md;
  # TestIntegrationCacheEvictionSparesAsynq). noeviction would fail every
  # write, Asynq's included, once the cache filled the memory.
  setsid nohup redis-server --bind 127.0.0.1 --port "$TOPK_REDIS_PORT" --protected-mode yes \
    --dir "$DIR/data" --appendonly yes --save "60 1000" --maxmemory 512mb \
    --maxmemory-policy volatile-lru --daemonize no --logfile "$LOG" \
    </dev/null >>"$DIR/stdout.log" 2>&1 &
  echo $! >"$PID"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pid redis "$PID" 20 ;;
  status)
    if pid_alive "$PID"; then echo "redis      running  pid $(cat "$PID")  127.0.0.1:$TOPK_REDIS_PORT  log $LOG"; else echo "redis      stopped"; exit 3; fi ;;
  log) echo "$LOG" ;;
  reset) stop_pid redis "$PID" 20; rm -rf "$DIR/data"; say "data wiped" ;;
  *) echo "usage: $0 start|stop|status|log|reset" >&2; exit 2 ;;
esac
