#!/usr/bin/env bash
# A local cluster without Docker: three Apache Kafka 4.1.2 brokers and three
# Apache Cassandra 5.0 nodes, from the same Maven Central jars and the same
# per-server scripts as the single-node stack (kafka.sh and cassandra.sh, run
# once per node), on ports of their own and under a folder of their own
# ($TOPK_CLUSTER_DIR, default .runtime/cluster): the cluster runs beside
# `make infra-up`'s stack, or alone.
#
#   cluster.sh up       start what is not running; return once the three brokers
#                       answer and each sees three brokers, and the three Cassandra
#                       nodes answer CQL and each sees all three Up and Normal;
#                       say how long it took; on failure say which node, why,
#                       and its log's end
#   cluster.sh down     stop the six servers (their pid files)
#   cluster.sh status   each server: pid, address, answering or not, RSS
#   cluster.sh reset    stop, then wipe the cluster's data (jars stay cached)
#   cluster.sh env      `export` lines pointing topk at the cluster:
#                       eval "$(deploy/local/cluster.sh env)"
# One server, for chaos tests (N = 1, 2 or 3):
#   cluster.sh pid   kafka|cassandra N   print its pid (exit 3, nothing printed, if not running)
#   cluster.sh kill9 kafka|cassandra N   SIGKILL, then wait until the process is gone
#   cluster.sh start kafka|cassandra N   start it (on its data) and wait until it answers
#                                        and sees every running peer
#   cluster.sh stop  kafka|cassandra N   SIGTERM, wait, then SIGKILL
#   cluster.sh hints-pause [SECS]        pause hint delivery on every Cassandra
#                                        node and wait until none delivers (default
#                                        60 s; exit 1 after)
#   cluster.sh hints-resume              resume it
#
# Layout (N = 1..3; the defaults of the TOPK_CLUSTER_* variables in brackets):
#   kafka-N      node.id N; client 127.0.0.1:TOPK_CLUSTER_KAFKA_PORT+N-1 [9192..9194],
#                controller 127.0.0.1:TOPK_CLUSTER_KAFKA_CONTROLLER_PORT+N-1 [9195..9197],
#                heap TOPK_CLUSTER_KAFKA_HEAP [512m]
#   cassandra-N  127.0.0.N, CQL TOPK_CLUSTER_CASSANDRA_PORT [9142], storage
#                TOPK_CLUSTER_CASSANDRA_STORAGE_PORT [7100]; JMX on 127.0.0.1 only,
#                TOPK_CLUSTER_CASSANDRA_JMX_PORT+N-1 [7201..7203]; heap
#                TOPK_CLUSTER_CASSANDRA_HEAP [1G]
#   $TOPK_CLUSTER_DIR/{kafka-N,cassandra-N}/  config, data, logs/, pid file
#   $TOPK_CLUSTER_DIR/topk/state/             TOPK_STATE_DIR of topk pointed at the
#                                             cluster (`env`): Goka's local state,
#                                             apart from `make run`'s
#
# `env` moves TOPK_STATE_DIR, the only data topk keeps that belongs to one
# Kafka, and leaves TOPK_RUNTIME_DIR alone: that also names the single-node
# stack's folder (make infra-*, the cached classpath of bin/kafka-*) and
# holds the development token key that encrypted the tokens in the
# PostgreSQL both share.
#
# Kafka: every node is broker and KRaft controller, and all three are voters
# of a static quorum (controller.quorum.voters, formatted with one cluster id).
# The metadata quorum needs a majority of its voters: three voters survive the
# loss of any one node, which is what the chaos helpers do (kill9 kafka N); a
# single voter would make its node a single point of failure of the whole
# cluster (no leader elections, no new topics while it is down), and dedicated
# controllers would add three JVMs on a 2-core machine. Topics the brokers
# create themselves (offsets, transactions, defaults) get replication 3 and
# min.insync.replicas 2, like the ones topk creates (TOPK_KAFKA_* from `env`).
#
# Cassandra: the nodes share every port and differ by loopback address, as ccm
# does (on Linux the whole 127.0.0.0/8 reaches lo, no aliases needed). Node 1
# is the seed and starts first; nodes 2 and 3 start together once it listens
# for gossip: a restarting non-seed node that finds no seed to gossip with
# gives up after the 30 s ring delay (on 2 busy cores a JVM start can take
# longer than that), and a restarting seed waits up to that ring delay for
# its peers, so they had better be on their way. In a brand-new cluster (no
# node has data) nodes 2 and 3 join with auto_bootstrap false: there is
# nothing to stream, while a bootstrap waits the ring delay again and refuses
# to run beside another one. A
# node that joined once restarts on its own data (auto_bootstrap plays no
# part); a node whose data was wiped by hand while the others kept theirs
# bootstraps (and Cassandra asks for replace_address: wipe the whole cluster
# with `reset` instead).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TOPK_BIN="${TOPK_BIN:-bin/topk}"
[ -x "$TOPK_BIN" ] || { echo "cluster: $TOPK_BIN missing: run 'make build'" >&2; exit 1; }
eval "$("$TOPK_BIN" config --shell)"
source deploy/local/lib.sh
COMPONENT=cluster

case "$TOPK_CLUSTER_DIR" in /*) ;; *) TOPK_CLUSTER_DIR="$PWD/$TOPK_CLUSTER_DIR" ;; esac
CDIR="$TOPK_CLUSTER_DIR"
NODES=(1 2 3)
CLUSTER_NAME=topk-cluster
# Seconds each step may take on a busy 2-core machine.
KAFKA_WAIT=420 CASSANDRA_SEED_WAIT=240 CASSANDRA_WAIT=480 RING_WAIT=120

kafka_port() { echo $((TOPK_CLUSTER_KAFKA_PORT + $1 - 1)); }
kafka_ctrl_port() { echo $((TOPK_CLUSTER_KAFKA_CONTROLLER_PORT + $1 - 1)); }
cassandra_addr() { echo "127.0.0.$1"; }
cassandra_jmx_port() { echo $((TOPK_CLUSTER_CASSANDRA_JMX_PORT + $1 - 1)); }
VOTERS="1@127.0.0.1:$(kafka_ctrl_port 1),2@127.0.0.1:$(kafka_ctrl_port 2),3@127.0.0.1:$(kafka_ctrl_port 3)"

# node_kafka N ACTION...: kafka.sh for broker N of the cluster.
node_kafka() {
  local n="$1"; shift
  env TOPK_KAFKA_PORT="$(kafka_port "$n")" TOPK_KAFKA_CONTROLLER_PORT="$(kafka_ctrl_port "$n")" \
    TOPK_KAFKA_HEAP="$TOPK_CLUSTER_KAFKA_HEAP" \
    KAFKA_NODE_NAME="kafka-$n" KAFKA_NODE_DIR="$CDIR/kafka-$n" KAFKA_NODE_ID="$n" \
    KAFKA_NODE_VOTERS="$VOTERS" KAFKA_NODE_REPLICATION=3 KAFKA_NODE_MIN_ISR=2 \
    KAFKA_NODE_CLUSTER_ID_FILE="$CDIR/kafka-cluster.id" \
    KAFKA_NODE_CLASSPATH_FILE="$CDIR/kafka-classpath.txt" \
    deploy/local/kafka.sh "$@"
}

# node_cassandra N ACTION...: cassandra.sh for node N of the cluster.
# AUTO_BOOTSTRAP (true unless the caller says otherwise) applies to `start`.
node_cassandra() {
  local n="$1"; shift
  env TOPK_CASSANDRA_PORT="$TOPK_CLUSTER_CASSANDRA_PORT" \
    TOPK_CASSANDRA_STORAGE_PORT="$TOPK_CLUSTER_CASSANDRA_STORAGE_PORT" \
    TOPK_CASSANDRA_JMX_PORT="$(cassandra_jmx_port "$n")" TOPK_CASSANDRA_HEAP="$TOPK_CLUSTER_CASSANDRA_HEAP" \
    CASSANDRA_NODE_NAME="cassandra-$n" CASSANDRA_NODE_DIR="$CDIR/cassandra-$n" \
    CASSANDRA_NODE_ADDRESS="$(cassandra_addr "$n")" \
    CASSANDRA_NODE_SEEDS="$(cassandra_addr 1):$TOPK_CLUSTER_CASSANDRA_STORAGE_PORT" \
    CASSANDRA_NODE_CLUSTER_NAME="$CLUSTER_NAME" CASSANDRA_NODE_AUTO_BOOTSTRAP="${AUTO_BOOTSTRAP:-true}" \
    CASSANDRA_NODE_CLASSPATH_FILE="$CDIR/cassandra-classpath.txt" \
    deploy/local/cassandra.sh "$@"
}

pid_file() { case "$1" in kafka) echo "$CDIR/kafka-$2/kafka.pid" ;; cassandra) echo "$CDIR/cassandra-$2/cassandra.pid" ;; esac; }
log_file() { case "$1" in kafka) echo "$CDIR/kafka-$2/logs/server.log" ;; cassandra) echo "$CDIR/cassandra-$2/logs/system.log" ;; esac; }
stdout_file() { echo "$CDIR/$1-$2/logs/stdout.log"; }
address() {
  case "$1" in
    kafka) echo "127.0.0.1:$(kafka_port "$2")" ;;
    cassandra) echo "$(cassandra_addr "$2"):$TOPK_CLUSTER_CASSANDRA_PORT" ;;
  esac
}

# log_end FILE [N]: the end of a log, lines cut at 300 characters (Cassandra
# logs its configuration and classpath on lines of many KB).
log_end() {
  [ -f "$1" ] || return 0
  echo "--- last lines of $1 ---" >&2
  tail -n "${2:-25}" "$1" | cut -c1-300 >&2
  echo "---" >&2
}

# server_pid KIND N: print the pid of server KIND-N when it runs (a live, not
# zombie process whose command line is Kafka's or Cassandra's main class).
server_pid() {
  local f pid main state
  f="$(pid_file "$1" "$2")"
  case "$1" in kafka) main='kafka\.Kafka' ;; cassandra) main='CassandraDaemon' ;; esac
  [ -s "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$main" || return 1
  echo "$pid"
}

running_count() {
  local kind="$1" n c=0
  for n in "${NODES[@]}"; do server_pid "$kind" "$n" >/dev/null && c=$((c + 1)); done
  echo "$c"
}

# kafka_probe N [WANT]: a metadata request to broker N (topk ping). True when
# it answers and names WANT brokers (default 3); PROBE says what it saw.
kafka_probe() {
  local n="$1" want="${2:-3}" out
  out="$(TOPK_KAFKA_BROKERS="$(address kafka "$n")" "$TOPK_BIN" ping kafka 2>&1)" || true
  if [[ "$out" =~ ok\ +([0-9]+)\ broker ]]; then
    PROBE_BROKERS="${BASH_REMATCH[1]}"
    if [ "$PROBE_BROKERS" -ge "$want" ]; then PROBE="answers, sees $PROBE_BROKERS brokers"; return 0; fi
    PROBE="answers, but sees $PROBE_BROKERS of $want brokers"; return 1
  fi
  PROBE_BROKERS=0
  PROBE="no answer: ${out#*FAIL }"
  return 1
}

# cql_probe N: a CQL query to node N (topk ping). PROBE says what it saw.
cql_probe() {
  local n="$1" out
  out="$(TOPK_CASSANDRA_HOSTS="$(cassandra_addr "$n")" TOPK_CASSANDRA_PORT="$TOPK_CLUSTER_CASSANDRA_PORT" \
    "$TOPK_BIN" ping cassandra 2>&1)" || true
  if [[ "$out" =~ ok\ +Cassandra\ ([^ ]+) ]]; then PROBE="answers CQL (Cassandra ${BASH_REMATCH[1]})"; return 0; fi
  PROBE="no CQL answer: ${out#*FAIL }"
  return 1
}

# ring_check FILE ADDR...: FILE, the output of nodetool status, shows each
# ADDR Up and Normal (UN). PROBE says what it saw.
ring_check() {
  local file="$1" out a missing=(); shift
  out="$(cat "$file" 2>/dev/null)"
  if ! grep -q '^Datacenter:' <<< "$out"; then PROBE="nodetool failed: $(tail -n 1 <<< "$out")"; return 1; fi
  ring_summary "$out"
  for a in "$@"; do grep -qE "^UN +${a//./\\.} " <<< "$out" || missing+=("$a"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  PROBE="$PROBE; not Up/Normal yet: ${missing[*]}"
  return 1
}

# ring_summary NODETOOL_OUTPUT: PROBE = "ring UN 127.0.0.1 UN 127.0.0.2 DN 127.0.0.3"
# (U/D: up or down; N/J/L/M: normal, joining, leaving, moving).
ring_summary() {
  local seen
  seen="$(awk '/^[UD][NLJM] +127\./ { print $2, $1 }' <<< "$1" | sort | awk '{ printf "%s%s %s", sep, $2, $1; sep = " " }')"
  PROBE="ring ${seen:-empty}"
}

# kafka_wait N SECONDS: until broker N answers and names every running broker.
kafka_wait() {
  local n="$1" deadline=$((SECONDS + $2)) want
  while :; do
    if ! server_pid kafka "$n" >/dev/null; then
      say "ERROR: kafka-$n ($(address kafka "$n")) is not running: its process exited during start-up"
      last_lines "$(log_file kafka "$n")" 40; last_lines "$(stdout_file kafka "$n")" 10
      return 1
    fi
    want="$(running_count kafka)"
    if kafka_probe "$n" "$want"; then say "kafka-$n ready on $(address kafka "$n"): $PROBE"; return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "ERROR: kafka-$n ($(address kafka "$n")) not ready within $2 s: $PROBE"
      last_lines "$(log_file kafka "$n")" 40
      return 1
    fi
    sleep 1
  done
}

# cassandra_wait N SECONDS: until node N logs that it listens for CQL
# clients (cassandra.sh wait) and answers a real query.
cassandra_wait() {
  local n="$1" secs="$2" t0=$SECONDS
  node_cassandra "$n" wait "$secs" || { say "ERROR: cassandra-$n ($(address cassandra "$n")) did not come up (above: why, and its log's end)"; return 1; }
  while ! cql_probe "$n"; do
    if [ $((SECONDS - t0)) -ge "$secs" ]; then
      say "ERROR: cassandra-$n ($(address cassandra "$n")): $PROBE"
      log_end "$(log_file cassandra "$n")" 30
      return 1
    fi
    sleep 1
  done
  say "cassandra-$n $PROBE on $(address cassandra "$n")"
}

# nodetool_all DIR N...: nodetool status of each node N at once (a JVM
# each), into DIR/ring-N.
nodetool_all() {
  local dir="$1" n; shift
  for n in "$@"; do node_cassandra "$n" nodetool status > "$dir/ring-$n" 2>&1 & done
  wait
}

# gossip_wait N SECONDS: until node N listens on its storage (gossip) port.
gossip_wait() {
  local n="$1" deadline=$((SECONDS + $2)) addr
  addr="$(cassandra_addr "$n")"
  while :; do
    if ss -Hltn "sport = :$TOPK_CLUSTER_CASSANDRA_STORAGE_PORT" 2>/dev/null | awk -v a="$addr" '$4 ~ "^" a ":" { f = 1 } END { exit !f }'; then
      say "cassandra-$n listens for gossip on $addr:$TOPK_CLUSTER_CASSANDRA_STORAGE_PORT"
      return 0
    fi
    if ! server_pid cassandra "$n" > /dev/null; then
      say "ERROR: cassandra-$n ($addr) is not running: its process exited during start-up"
      log_end "$(log_file cassandra "$n")" 30; log_end "$(stdout_file cassandra "$n")" 10
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "ERROR: cassandra-$n ($addr) does not listen on its storage port $TOPK_CLUSTER_CASSANDRA_STORAGE_PORT within $2 s"
      log_end "$(log_file cassandra "$n")" 30
      return 1
    fi
    sleep 1
  done
}

# ring_wait SECONDS N...: until each node N sees every running node Up and Normal.
ring_wait() {
  local secs="$1" deadline n addrs=() pending=() left tmp; shift
  deadline=$((SECONDS + secs))
  for n in "${NODES[@]}"; do server_pid cassandra "$n" >/dev/null && addrs+=("$(cassandra_addr "$n")"); done
  pending=("$@")
  tmp="$(mktemp -d)"
  while :; do
    nodetool_all "$tmp" "${pending[@]}"
    left=()
    for n in "${pending[@]}"; do
      if ring_check "$tmp/ring-$n" "${addrs[@]}"; then say "cassandra-$n $PROBE"; else left+=("$n"); fi
    done
    if [ "${#left[@]}" -eq 0 ]; then rm -rf "$tmp"; return 0; fi
    pending=("${left[@]}")
    if [ "$SECONDS" -ge "$deadline" ]; then
      for n in "${pending[@]}"; do
        ring_check "$tmp/ring-$n" "${addrs[@]}" || true
        say "ERROR: cassandra-$n does not see the ring within $secs s: $PROBE"
        log_end "$(log_file cassandra "$n")" 30
      done
      rm -rf "$tmp"
      return 1
    fi
    sleep 2
  done
}

# hints_pause SECONDS: pause hint delivery on every running Cassandra node
# (the writes a coordinator keeps for a replica that was down or too slow
# and replays to it later, throttled), then wait until no node is
# delivering any. The chaos tests drop their keyspace only then, and resume
# delivery after (hints_resume). Cassandra 5.0.9, dropping a keyspace while
# hints for its tables were being applied on a node, left that node unable
# to apply any later schema change until it restarted: its MigrationStage
# threw IllegalArgumentException "Unknown CF" from forceRecycleAllSegments
# on every push, and the next test's migration failed with
# INCOMPATIBLE_SCHEMA from it (two fresh-clone runs of `make
# test-cluster`, after the Cassandra node kill). Waiting for
# `nodetool listpendinghints` to empty is not enough: the file being
# delivered is no longer listed (a run dropped the keyspace 15 s before its
# delivery ended, and failed the same way). A paused node stops delivering
# between two hints and starts no new delivery.
hints_pause() {
  local secs="$1" t0=$SECONDS n out busy running=()
  case "$secs" in ''|*[!0-9]*) die "want a number of seconds, got '$secs'" ;; esac
  for n in "${NODES[@]}"; do
    server_pid cassandra "$n" > /dev/null || continue
    running+=("$n")
    node_cassandra "$n" nodetool pausehandoff || die "cassandra-$n: nodetool pausehandoff failed"
  done
  while :; do
    busy=()
    for n in "${running[@]}"; do
      out="$(node_cassandra "$n" nodetool tpstats 2>&1)" || die "cassandra-$n: nodetool tpstats failed: $out"
      # Pool Name, Active, Pending, ...
      out="$(awk '$1 == "HintsDispatcher" { print $2 + $3 }' <<< "$out")"
      [ "${out:-0}" = 0 ] || busy+=("cassandra-$n")
    done
    if [ "${#busy[@]}" -eq 0 ]; then
      say "hint delivery paused on every running Cassandra node, none delivering (waited $((SECONDS - t0)) s)"
      return 0
    fi
    if [ $((SECONDS - t0)) -ge "$secs" ]; then
      say "ERROR: hint delivery paused, but still delivering after $secs s: ${busy[*]}"
      return 1
    fi
    sleep 1
  done
}

# hints_resume: resume hint delivery on every running Cassandra node.
hints_resume() {
  local n
  for n in "${NODES[@]}"; do
    server_pid cassandra "$n" > /dev/null || continue
    node_cassandra "$n" nodetool resumehandoff || die "cassandra-$n: nodetool resumehandoff failed"
  done
  say "hint delivery resumed on every running Cassandra node"
}

# fresh_cassandra: no node has ever started on its data (a brand-new cluster).
fresh_cassandra() {
  local n
  for n in "${NODES[@]}"; do [ -d "$CDIR/cassandra-$n/data/system" ] && return 1; done
  return 0
}

# seed_classpath FILE: start from the single-node stack's cached classpath
# of the same jars when the cluster has none yet (saves a Maven run).
seed_classpath() {
  local mine="$CDIR/$1-classpath.txt" theirs="$TOPK_RUNTIME_DIR/$1/classpath.txt"
  [ -s "$mine" ] || [ ! -s "$theirs" ] || {
    cp -p "$theirs" "$mine"
    if [ -f "$theirs.repo" ]; then cp -p "$theirs.repo" "$mine.repo"; fi
  }
}

up() {
  local t0=$SECONDS n fresh=false failed=() mode
  mkdir -p "$CDIR"
  fresh_cassandra && fresh=true
  mode=warm; $fresh && mode="cold: no data yet"
  say "starting the cluster ($mode) in $CDIR"
  # The jars' classpaths once (Maven runs only the first time).
  seed_classpath kafka; seed_classpath cassandra
  node_kafka 1 classpath > /dev/null
  node_cassandra 1 classpath > /dev/null

  # The seed first: Cassandra takes longest. The brokers start meanwhile, in
  # the background (formatting their storage takes a JVM each); their
  # quorum forms as soon as two of them run.
  node_cassandra 1 start || failed+=(cassandra-1)
  local kafka_failed kafka_starter
  kafka_failed="$(mktemp)"
  ( for n in "${NODES[@]}"; do node_kafka "$n" start || echo "kafka-$n" >> "$kafka_failed"; done ) &
  kafka_starter=$!

  # Nodes 2 and 3 start once the seed listens for gossip: their shadow round
  # (the first gossip exchange) then finds it, and a restarting seed meets
  # the peers it looks for sooner than its 30 s ring delay.
  local seed_ok=true
  if [[ " ${failed[*]} " == *" cassandra-1 "* ]] || ! gossip_wait 1 "$CASSANDRA_SEED_WAIT"; then
    seed_ok=false
    [[ " ${failed[*]} " == *" cassandra-1 "* ]] || failed+=(cassandra-1)
    say "ERROR: cassandra-2 and cassandra-3 not started: their seed cassandra-1 is not up"
    failed+=(cassandra-2 cassandra-3)
  fi
  if $seed_ok; then
    for n in 2 3; do
      if $fresh; then AUTO_BOOTSTRAP=false node_cassandra "$n" start || failed+=("cassandra-$n")
      else node_cassandra "$n" start || failed+=("cassandra-$n"); fi
    done
  fi

  wait "$kafka_starter" || true
  # shellcheck disable=SC2207 # names without blanks
  failed+=($(cat "$kafka_failed")); rm -f "$kafka_failed"
  for n in "${NODES[@]}"; do
    [[ " ${failed[*]} " == *" kafka-$n "* ]] && continue
    kafka_wait "$n" "$KAFKA_WAIT" || failed+=("kafka-$n")
  done
  for n in "${NODES[@]}"; do
    [[ " ${failed[*]} " == *" cassandra-$n "* ]] && continue
    cassandra_wait "$n" "$CASSANDRA_WAIT" || failed+=("cassandra-$n")
  done
  if [[ " ${failed[*]} " != *" cassandra-"* ]]; then
    ring_wait "$RING_WAIT" "${NODES[@]}" || failed+=(cassandra-ring)
  fi

  if [ "${#failed[@]}" -gt 0 ]; then
    die "cluster not ready after $((SECONDS - t0)) s: ${failed[*]} (logs under $CDIR; make cluster-status)"
  fi
  say "cluster ready in $((SECONDS - t0)) s: Kafka $(address kafka 1),$(address kafka 2),$(address kafka 3); Cassandra 127.0.0.1-3:$TOPK_CLUSTER_CASSANDRA_PORT (eval \"\$(make -s cluster-env)\" points topk at it)"
}

down() {
  local n pids=()
  # Cassandra nodes together, then the brokers together: a broker's
  # controlled shutdown asks the controller quorum, which has no majority
  # left once two of the three are gone.
  for n in 3 2 1; do node_cassandra "$n" stop & pids+=($!); done
  wait "${pids[@]}" || true
  pids=()
  for n in 3 2 1; do node_kafka "$n" stop & pids+=($!); done
  wait "${pids[@]}" || true
}

rss() { awk '/^VmRSS:/ { printf "%d MiB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

status() {
  local n pid rc=0 tmp
  tmp="$(mktemp -d)"
  # nodetool starts a JVM: ask the running nodes at once, meanwhile the brokers.
  local up=()
  for n in "${NODES[@]}"; do server_pid cassandra "$n" >/dev/null && up+=("$n"); done
  nodetool_all "$tmp" "${up[@]}" &
  printf '%-12s %-8s %-32s %-9s %-50s %s\n' server pid address answers detail RSS
  for n in "${NODES[@]}"; do
    local addr; addr="$(address kafka "$n") (controller $(kafka_ctrl_port "$n"))"
    if pid="$(server_pid kafka "$n")"; then
      if kafka_probe "$n" 1; then
        printf '%-12s %-8s %-32s %-9s %-50s %s\n' "kafka-$n" "$pid" "$addr" yes "sees $PROBE_BROKERS brokers" "$(rss "$pid")"
        [ "$PROBE_BROKERS" -eq 3 ] || rc=1
      else
        printf '%-12s %-8s %-32s %-9s %-50s %s\n' "kafka-$n" "$pid" "$addr" no "${PROBE:0:44}" "$(rss "$pid")"; rc=1
      fi
    else
      printf '%-12s %-8s %-32s %-9s %-50s %s\n' "kafka-$n" - "$addr" no stopped -; rc=1
    fi
  done
  wait
  for n in "${NODES[@]}"; do
    local addr; addr="$(address cassandra "$n") (JMX $(cassandra_jmx_port "$n"))"
    if pid="$(server_pid cassandra "$n")"; then
      if cql_probe "$n"; then
        ring_check "$tmp/ring-$n" "$(cassandra_addr 1)" "$(cassandra_addr 2)" "$(cassandra_addr 3)" || rc=1
        printf '%-12s %-8s %-32s %-9s %-50s %s\n' "cassandra-$n" "$pid" "$addr" yes "CQL; ${PROBE%%; not Up*}" "$(rss "$pid")"
      else
        printf '%-12s %-8s %-32s %-9s %-50s %s\n' "cassandra-$n" "$pid" "$addr" no "${PROBE:0:44}" "$(rss "$pid")"; rc=1
      fi
    else
      printf '%-12s %-8s %-32s %-9s %-50s %s\n' "cassandra-$n" - "$addr" no stopped -; rc=1
    fi
  done
  rm -rf "$tmp"
  echo "data and logs: $CDIR"
  return $rc
}

reset() {
  local n
  down
  for n in "${NODES[@]}"; do node_kafka "$n" reset; node_cassandra "$n" reset; done
  # Goka's local state belongs to the wiped brokers.
  rm -rf "$CDIR/topk/state"
  say "reset: the cluster's data is gone (logs and cached classpaths stay)"
}

env_lines() {
  local n brokers="" hosts=""
  for n in "${NODES[@]}"; do
    brokers+="${brokers:+,}$(address kafka "$n")"
    hosts+="${hosts:+,}$(cassandra_addr "$n")"
  done
  cat <<EOF
# topk pointed at the local cluster (make cluster-up); Redis and PostgreSQL
# stay those of the single-node stack. Use: eval "\$(make -s cluster-env)"
export TOPK_KAFKA_BROKERS='$brokers'
export TOPK_KAFKA_REPLICATION_FACTOR='3'
export TOPK_KAFKA_MIN_INSYNC_REPLICAS='2'
export TOPK_CASSANDRA_HOSTS='$hosts'
export TOPK_CASSANDRA_PORT='$TOPK_CLUSTER_CASSANDRA_PORT'
export TOPK_CASSANDRA_REPLICATION_FACTOR='3'
export TOPK_STATE_DIR='$CDIR/topk/state'
export TOPK_CLUSTER_DIR='$CDIR'
EOF
}

# node_args KIND N: validates the arguments of the one-server commands.
node_args() {
  case "${1:-}" in kafka|cassandra) ;; *) die "want kafka or cassandra, got '${1:-}'" ;; esac
  case "${2:-}" in 1|2|3) ;; *) die "want a node number 1, 2 or 3, got '${2:-}'" ;; esac
}

one_pid() {
  node_args "$@"
  server_pid "$1" "$2" || exit 3
}

one_kill9() {
  node_args "$@"
  local pid i=0
  pid="$(server_pid "$1" "$2")" || die "$1-$2 is not running"
  kill -KILL "$pid"
  while server_pid "$1" "$2" > /dev/null; do
    i=$((i + 1)); [ "$i" -le 300 ] || die "$1-$2 (pid $pid) still there 30 s after SIGKILL"
    sleep 0.1
  done
  say "$1-$2 (pid $pid) killed with SIGKILL"
}

one_start() {
  node_args "$@"
  local kind="$1" n="$2" t0=$SECONDS
  mkdir -p "$CDIR"
  case "$kind" in
    kafka)
      # Each broker is also a KRaft voter: alone, one of three has no
      # quorum and never answers.
      local running=0 m
      for m in "${NODES[@]}"; do [ "$m" != "$n" ] && server_pid kafka "$m" > /dev/null && running=$((running + 1)); done
      [ "$running" -gt 0 ] || die "kafka-$n: no other broker runs, and one KRaft voter of three has no quorum; start the brokers with 'cluster.sh up'"
      node_kafka "$n" start
      kafka_wait "$n" "$KAFKA_WAIT" || die "kafka-$n not ready"
      ;;
    cassandra)
      if fresh_cassandra && [ "$n" != 1 ]; then
        die "cassandra-$n: the cluster has never started; run 'cluster.sh up' (the seed cassandra-1 first)"
      fi
      node_cassandra "$n" start
      cassandra_wait "$n" "$CASSANDRA_WAIT" || die "cassandra-$n not ready"
      # The node sees every running node, and every running node sees it.
      local peers=() m
      for m in "${NODES[@]}"; do server_pid cassandra "$m" > /dev/null && peers+=("$m"); done
      ring_wait "$RING_WAIT" "${peers[@]}" || die "cassandra-$n does not see the ring, or the ring does not see it"
      ;;
  esac
  say "$kind-$n ready in $((SECONDS - t0)) s (pid $(server_pid "$kind" "$n"))"
}

one_stop() {
  node_args "$@"
  "node_$1" "$2" stop
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  reset) reset ;;
  env) env_lines ;;
  pid) shift; one_pid "$@" ;;
  kill9) shift; one_kill9 "$@" ;;
  start) shift; one_start "$@" ;;
  stop) shift; one_stop "$@" ;;
  hints-pause) hints_pause "${2:-60}" ;;
  hints-resume) hints_resume ;;
  *) echo "usage: $0 up|down|status|reset|env | pid|kill9|start|stop kafka|cassandra 1|2|3 | hints-pause [SECS] | hints-resume" >&2; exit 2 ;;
esac
