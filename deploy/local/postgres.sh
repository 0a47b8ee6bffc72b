#!/usr/bin/env bash
# PostgreSQL from Debian's postgresql package, on loopback, its cluster under
# $TOPK_RUNTIME_DIR/postgres. Not a system service. initdb refuses to run as
# root, so as root the server runs as the postgres user.
#   postgres.sh start|stop|status|reset
COMPONENT=postgres
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${TOPK_POSTGRES_PORT:=5432}" "${TOPK_POSTGRES_USER:=topk}" "${TOPK_POSTGRES_PASSWORD:=topk}" "${TOPK_POSTGRES_DB:=topk}"
DIR="$TOPK_RUNTIME_DIR/postgres"
DATA="$DIR/data"
SOCK="$DIR/run"
LOG="$DIR/postgres.log"
PID="$DIR/postgres.pid"

pgbin() {
  local b
  b="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$b" ] || die "PostgreSQL server not found: apt-get install postgresql"
  echo "$b"
}

# as_pg CMD...: run as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  if pid_alive "$PID"; then say "already running (pid $(cat "$PID"), port $TOPK_POSTGRES_PORT)"; ensure_role; return 0; fi
  local bin; bin="$(pgbin)"
  if ss -ltnH "sport = :$TOPK_POSTGRES_PORT" | grep -q .; then
    die "port $TOPK_POSTGRES_PORT is taken by another process (set TOPK_POSTGRES_PORT, or stop it: ss -ltnp 'sport = :$TOPK_POSTGRES_PORT')"
  fi
  mkdir -p "$DIR" "$SOCK"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user: apt-get install postgresql creates it"
    chown postgres: "$DIR" "$SOCK"
    # the postgres user must be able to reach the runtime directory
    local d="$DIR"; while [ "$d" != / ]; do d="$(dirname "$d")"; [ -x "$d" ] || chmod o+x "$d"; done
  fi
  if [ ! -s "$DATA/PG_VERSION" ]; then
    say "initdb $DATA"
    # The superuser is reachable only over the private socket (trust);
    # TCP on loopback asks for a password (scram-sha-256).
    as_pg "$bin/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || { last_lines "$DIR/initdb.log"; die "initdb failed"; }
    cat >>"$DATA/postgresql.conf" <<CONF
# topk local stack
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
shared_buffers = 256MB
max_connections = 200
fsync = on
log_min_messages = warning
CONF
    fresh=1
  fi
  say "starting postgres on 127.0.0.1:$TOPK_POSTGRES_PORT"
  as_pg "$bin/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $TOPK_POSTGRES_PORT" -w -t 60 start >/dev/null \
    || { last_lines "$LOG"; die "pg_ctl start failed"; }
  head -n 1 "$DATA/postmaster.pid" >"$PID"
  ensure_role
}

# ensure_role creates the role topk uses (allowed to create test databases)
# and its database, when missing. Names and password go in as psql
# variables, quoted by psql.
ensure_role() {
  local q=(psql -v ON_ERROR_STOP=1 -qAt -h "$SOCK" -p "$TOPK_POSTGRES_PORT" -U postgres -d postgres
           -v user="$TOPK_POSTGRES_USER" -v pw="$TOPK_POSTGRES_PASSWORD" -v db="$TOPK_POSTGRES_DB")
  if [ "$(echo "SELECT 1 FROM pg_roles WHERE rolname = :'user'" | as_pg "${q[@]}")" != 1 ]; then
    echo "CREATE ROLE :\"user\" LOGIN CREATEDB PASSWORD :'pw'" | as_pg "${q[@]}" >/dev/null
    say "role $TOPK_POSTGRES_USER created"
  fi
  if [ "$(echo "SELECT 1 FROM pg_database WHERE datname = :'db'" | as_pg "${q[@]}")" != 1 ]; then
    echo 'CREATE DATABASE :"db" OWNER :"user"' | as_pg "${q[@]}" >/dev/null
    say "database $TOPK_POSTGRES_DB created"
  fi
}

stop() {
  if ! pid_alive "$PID"; then rm -f "$PID"; say "postgres not running"; return 0; fi
  say "stopping postgres (pid $(cat "$PID"))"
  as_pg "$(pgbin)/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null || stop_pid postgres "$PID" 10
  rm -f "$PID"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if pid_alive "$PID"; then echo "postgres   running  pid $(cat "$PID")  127.0.0.1:$TOPK_POSTGRES_PORT  log $LOG"; else echo "postgres   stopped"; exit 3; fi ;;
  log) echo "$LOG" ;;
  reset) stop; rm -rf "$DATA"; say "data wiped" ;;
  *) echo "usage: $0 start|stop|status|log|reset" >&2; exit 2 ;;
esac
