#!/usr/bin/env bash
# Local single-node Apache Kafka 4.1.2 (KRaft: one combined broker+controller,
# no ZooKeeper), assembled from Maven Central jars (deploy/local/kafka/pom.xml).
# deploy/local/cluster.sh runs it once per broker of the local three-node
# cluster with the KAFKA_NODE_* variables below.
#
#   deploy/local/kafka.sh start            launch in the background (returns at once)
#   deploy/local/kafka.sh wait [SECONDS]   wait until the broker answers (default 90 s)
#   deploy/local/kafka.sh stop             SIGTERM, wait, then SIGKILL
#   deploy/local/kafka.sh status           running (exit 0) / stopped (exit 3)
#   deploy/local/kafka.sh reset            stop, then delete the data and cluster id
#   deploy/local/kafka.sh classpath        print the jars' classpath (for bin/kafka-*)
#
# Environment (all optional): TOPK_RUNTIME_DIR (<repo>/.runtime),
# TOPK_KAFKA_PORT (9092), TOPK_KAFKA_CONTROLLER_PORT (9093),
# TOPK_KAFKA_HEAP (768m), TOPK_MAVEN_REPO (Maven's default local repository),
# JAVA_HOME (else java on PATH; 17+).
#
# One broker of a cluster (set by cluster.sh; the defaults are the single node):
#   KAFKA_NODE_NAME             kafka                     name in messages
#   KAFKA_NODE_DIR              $TOPK_RUNTIME_DIR/kafka   this broker's folder
#   KAFKA_NODE_ID               1                         node.id
#   KAFKA_NODE_VOTERS           1@127.0.0.1:$TOPK_KAFKA_CONTROLLER_PORT (controller.quorum.voters)
#   KAFKA_NODE_REPLICATION      1   replication factor of topics the broker creates
#                                   (default, offsets, transactions, share state)
#   KAFKA_NODE_MIN_ISR          1   min.insync.replicas of those
#   KAFKA_NODE_CLUSTER_ID_FILE  $KAFKA_NODE_DIR/cluster.id (the brokers of one
#                               cluster are formatted with one id)
#   KAFKA_NODE_CLASSPATH_FILE   $KAFKA_NODE_DIR/classpath.txt (shareable)
#
# Everything lives in $KAFKA_NODE_DIR: classpath.txt, cluster.id,
# server.properties (rendered from kafka/server.properties.tmpl on each start),
# kafka.pid, data/ (log.dirs, KRaft metadata included), logs/ (server.log,
# controller.log, state-change.log, gc.log, stdout.log).

_self="$(readlink -f "${BASH_SOURCE[0]}")"
: "${TOPK_RUNTIME_DIR:=$(cd "$(dirname "$_self")/../.." && pwd)/.runtime}"
COMPONENT="${KAFKA_NODE_NAME:-kafka}"
# shellcheck source=lib.sh
. "$(dirname "$_self")/lib.sh"

: "${TOPK_KAFKA_PORT:=9092}"
: "${TOPK_KAFKA_CONTROLLER_PORT:=9093}"
: "${TOPK_KAFKA_HEAP:=768m}"
: "${KAFKA_NODE_ID:=1}"
: "${KAFKA_NODE_VOTERS:=1@127.0.0.1:$TOPK_KAFKA_CONTROLLER_PORT}"
: "${KAFKA_NODE_REPLICATION:=1}"
: "${KAFKA_NODE_MIN_ISR:=1}"
[[ "$TOPK_KAFKA_HEAP" =~ ^[0-9]+[kKmMgG]?$ ]] || die "invalid TOPK_KAFKA_HEAP '$TOPK_KAFKA_HEAP' (want e.g. 768m or 1g)"
for _v in KAFKA_NODE_ID KAFKA_NODE_REPLICATION KAFKA_NODE_MIN_ISR; do
  [[ "${!_v}" =~ ^[0-9]+$ ]] || die "$_v must be a whole number, got '${!_v}'"
done
[[ "$KAFKA_NODE_VOTERS" =~ ^[0-9]+@[0-9A-Za-z.-]+:[0-9]+(,[0-9]+@[0-9A-Za-z.-]+:[0-9]+)*$ ]] \
  || die "KAFKA_NODE_VOTERS must look like 1@127.0.0.1:9093[,2@…], got '$KAFKA_NODE_VOTERS'"

KAFKA_SRC="$LOCAL_DIR/kafka"
POM="$KAFKA_SRC/pom.xml"
RUN_DIR="${KAFKA_NODE_DIR:-$TOPK_RUNTIME_DIR/kafka}"
DATA_DIR="$RUN_DIR/data"
LOG_DIR="$RUN_DIR/logs"
CP_FILE="${KAFKA_NODE_CLASSPATH_FILE:-$RUN_DIR/classpath.txt}"
CLUSTER_ID_FILE="${KAFKA_NODE_CLUSTER_ID_FILE:-$RUN_DIR/cluster.id}"
CONF="$RUN_DIR/server.properties"
PID_FILE="$RUN_DIR/kafka.pid"
SERVER_LOG="$LOG_DIR/server.log"
STDOUT_LOG="$LOG_DIR/stdout.log"

# kafka_alive: the pid file names a live Kafka broker. A pid file naming some
# other process (pid reused after a crash or reboot) is stale and removed.
kafka_alive() {
  pid_alive "$PID_FILE" || return 1
  local pid; pid="$(cat "$PID_FILE")"
  if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then return 0; fi
  say "stale pid file (pid $pid is not Kafka), removing it"
  rm -f "$PID_FILE"
  return 1
}

# port_listening PORT: something listens on TCP PORT (any address).
port_listening() {
  ss -ltnH 2>/dev/null | awk -v p=":$1" '
    { a = $4; if (substr(a, length(a) - length(p) + 1) == p) found = 1 }
    END { exit !found }'
}

# find_java: sets JAVA to a java 17+ ($JAVA_HOME/bin/java, else java on PATH).
find_java() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null; then JAVA="$(command -v java)"
  else die "java not found: install a JDK/JRE 17+ (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
  fi
  local major; major="$(java_major "$JAVA")"; major="${major#1.}"; major="${major%%.*}"
  case "$major" in ''|*[!0-9]*) die "could not tell the version of $JAVA" ;; esac
  [ "$major" -ge 17 ] || die "Kafka 4.1 needs Java 17+, $JAVA is Java $major (set JAVA_HOME to a newer one)"
}

# classpath: sets CP, resolving the jars with Maven when needed. The cache is
# redone when TOPK_MAVEN_REPO changes, so it never points at another repository.
classpath() {
  local repo_key="${TOPK_MAVEN_REPO:-default}"
  if [ -f "$CP_FILE" ] && [ "$(cat "$CP_FILE.repo" 2>/dev/null)" != "$repo_key" ]; then rm -f "$CP_FILE"; fi
  maven_classpath "$POM" "$CP_FILE"
  printf '%s\n' "$repo_key" > "$CP_FILE.repo"
  CP="$(cat "$CP_FILE")"
}

# run_tool MAIN [ARGS...]: a Kafka command-line class with the quiet tools logging.
run_tool() {
  "$JAVA" -Xmx256m -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_SRC/tools-log4j2.properties" \
    -cp "$CP" "$@"
}

render_config() {
  local esc_data; esc_data="$(printf '%s' "$DATA_DIR" | sed 's/[\\&|]/\\&/g')"
  sed -e "s|\${TOPK_KAFKA_PORT}|$TOPK_KAFKA_PORT|g" \
      -e "s|\${TOPK_KAFKA_CONTROLLER_PORT}|$TOPK_KAFKA_CONTROLLER_PORT|g" \
      -e "s|\${KAFKA_DATA_DIR}|$esc_data|g" \
      -e "s|\${KAFKA_NODE_ID}|$KAFKA_NODE_ID|g" \
      -e "s|\${KAFKA_NODE_VOTERS}|$KAFKA_NODE_VOTERS|g" \
      -e "s|\${KAFKA_NODE_REPLICATION}|$KAFKA_NODE_REPLICATION|g" \
      -e "s|\${KAFKA_NODE_MIN_ISR}|$KAFKA_NODE_MIN_ISR|g" \
      "$KAFKA_SRC/server.properties.tmpl" > "$CONF.tmp"
  if grep -q '\${' "$CONF.tmp"; then die "unfilled placeholder in $CONF.tmp: $(grep -m1 '\${' "$CONF.tmp")"; fi
  mv "$CONF.tmp" "$CONF"
}

# format_storage: formats data/ once; meta.properties marks a formatted dir.
format_storage() {
  [ -f "$DATA_DIR/meta.properties" ] && return 0
  if [ ! -s "$CLUSTER_ID_FILE" ]; then
    run_tool kafka.tools.StorageTool random-uuid | tail -n 1 | tr -d '[:space:]' > "$CLUSTER_ID_FILE.tmp"
    [ -s "$CLUSTER_ID_FILE.tmp" ] || die "kafka-storage random-uuid printed nothing"
    mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
  fi
  local id; id="$(cat "$CLUSTER_ID_FILE")"
  say "formatting $DATA_DIR (cluster id $id)"
  mkdir -p "$DATA_DIR"
  run_tool kafka.tools.StorageTool format -t "$id" -c "$CONF" >"$LOG_DIR/format.log" 2>&1 \
    || { last_lines "$LOG_DIR/format.log"; die "formatting the Kafka storage failed"; }
}

cmd_start() {
  if kafka_alive; then
    say "already running (pid $(cat "$PID_FILE"), port $TOPK_KAFKA_PORT)"
    return 0
  fi
  rm -f "$PID_FILE"
  local port
  for port in "$TOPK_KAFKA_PORT" "$TOPK_KAFKA_CONTROLLER_PORT"; do
    if port_listening "$port"; then
      ss -ltnpH "sport = :$port" 2>/dev/null | sed 's/^/    /' >&2 || true
      die "port $port is already in use by another process (set TOPK_KAFKA_PORT / TOPK_KAFKA_CONTROLLER_PORT, or stop it)"
    fi
  done
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  classpath
  find_java
  render_config
  format_storage

  say "starting Kafka node $KAFKA_NODE_ID on 127.0.0.1:$TOPK_KAFKA_PORT (controller $TOPK_KAFKA_CONTROLLER_PORT, heap $TOPK_KAFKA_HEAP)"
  printf '\n==== %s start ====\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" >> "$STDOUT_LOG"
  # setsid: own session, so the broker outlives the calling shell and its
  # terminal; the inner bash writes its own pid, then becomes java (exec).
  setsid bash -c 'echo $$ > "$0"; exec nohup "$@"' "$PID_FILE" \
    "$JAVA" -server "-Xms$TOPK_KAFKA_HEAP" "-Xmx$TOPK_KAFKA_HEAP" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
    "-Xlog:gc*:file=$LOG_DIR/gc.log:time,tags:filecount=5,filesize=20M" \
    "-Dlog4j2.configurationFile=$KAFKA_SRC/log4j2.properties" \
    "-Dkafka.logs.dir=$LOG_DIR" \
    -cp "$CP" kafka.Kafka "$CONF" \
    >> "$STDOUT_LOG" 2>&1 < /dev/null &
  local i=0
  until [ -s "$PID_FILE" ]; do
    i=$((i + 1)); [ "$i" -le 50 ] || die "Kafka did not start (no pid file)"; sleep 0.1
  done
  say "launched (pid $(cat "$PID_FILE")); logs in $LOG_DIR"
}

cmd_stop() {
  kafka_alive || true   # drops a stale pid file
  stop_pid kafka "$PID_FILE" 60
}

cmd_status() {
  if kafka_alive; then
    echo "kafka running (pid $(cat "$PID_FILE"), port $TOPK_KAFKA_PORT)"
    return 0
  fi
  echo "kafka stopped"
  return 3
}

# cmd_wait [SECONDS]: until the broker answers an ApiVersions request on
# its client port (BrokerApiVersionsCommand), or the time is up.
cmd_wait() {
  local secs="${1:-90}" start now
  case "$secs" in ''|*[!0-9]*) die "wait: SECONDS must be a whole number, got '$secs'" ;; esac
  start=$(date +%s)
  local deadline=$((start + secs))
  classpath
  find_java
  local probe_conf="$RUN_DIR/probe.properties" probe_err="$RUN_DIR/probe.err"
  printf '%s\n' request.timeout.ms=3000 default.api.timeout.ms=5000 \
    socket.connection.setup.timeout.ms=1000 socket.connection.setup.timeout.max.ms=2000 \
    > "$probe_conf"
  : > "$probe_err"
  while :; do
    if ! kafka_alive; then
      say "Kafka is not running (the process exited or was never started)"
      last_lines "$STDOUT_LOG" 15; last_lines "$SERVER_LOG" 40
      exit 1
    fi
    if port_listening "$TOPK_KAFKA_PORT" &&
       timeout 20 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
         -Dlog4j2.configurationFile="$KAFKA_SRC/tools-log4j2.properties" -cp "$CP" \
         org.apache.kafka.tools.BrokerApiVersionsCommand \
         --bootstrap-server "127.0.0.1:$TOPK_KAFKA_PORT" --command-config "$probe_conf" \
         > "$RUN_DIR/probe.out" 2> "$probe_err" &&
       grep -q "127.0.0.1:$TOPK_KAFKA_PORT" "$RUN_DIR/probe.out"; then
      now=$(date +%s)
      say "ready on 127.0.0.1:$TOPK_KAFKA_PORT after $((now - start))s of waiting"
      return 0
    fi
    now=$(date +%s)
    if [ "$now" -ge "$deadline" ]; then
      say "Kafka did not answer on 127.0.0.1:$TOPK_KAFKA_PORT within ${secs}s"
      last_lines "$probe_err" 10; last_lines "$SERVER_LOG" 40
      exit 1
    fi
    # Polling the port is cheap; a probe JVM (~1 s) starts only once
    # something listens there.
    sleep 0.3
  done
}

cmd_reset() {
  cmd_stop
  say "deleting $DATA_DIR and the cluster id"
  rm -rf "$DATA_DIR" "$CLUSTER_ID_FILE"
}

cmd_classpath() {
  mkdir -p "$RUN_DIR"
  classpath
  printf '%s\n' "$CP"
}

case "${1:-}" in
  start)     cmd_start ;;
  stop)      cmd_stop ;;
  status)    cmd_status ;;
  wait)      shift; cmd_wait "$@" ;;
  reset)     cmd_reset ;;
  classpath) cmd_classpath ;;
  *) echo "usage: $0 start|stop|status|wait [SECONDS]|reset|classpath" >&2; exit 2 ;;
esac
