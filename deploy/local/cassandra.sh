#!/usr/bin/env bash
# Local single-node Apache Cassandra 5.0 on 127.0.0.1, run straight from the
# Maven Central jars (org.apache.cassandra:cassandra-all, see cassandra/pom.xml)
# on Java 17 (or 11). No Docker, no tarball. deploy/local/cluster.sh runs it
# once per node of the local three-node cluster (CASSANDRA_NODE_* below).
#
#   cassandra.sh start          launch in the background (returns at once)
#   cassandra.sh wait [SECS]    wait until CQL answers (default 180 s)
#   cassandra.sh status         running (exit 0) or stopped (exit 3)
#   cassandra.sh stop           SIGTERM, wait, then SIGKILL
#   cassandra.sh reset          stop, then delete data/commitlog/caches/hints
#   cassandra.sh classpath      print the resolved classpath
#   cassandra.sh nodetool ARGS  Cassandra's nodetool against this node (JMX)
#
# Environment (all optional):
#   TOPK_RUNTIME_DIR             <repo>/.runtime; files go to $TOPK_RUNTIME_DIR/cassandra
#   TOPK_CASSANDRA_PORT          9042  CQL native transport
#   TOPK_CASSANDRA_STORAGE_PORT  7000  inter-node (gossip) port, bound on the node's address
#   TOPK_CASSANDRA_JMX_PORT      7199  local-only JMX (nodetool)
#   TOPK_CASSANDRA_HEAP          2G    -Xms and -Xmx
#   TOPK_CASSANDRA_JAVA_HOME     a JDK 11 or 17 (default: $JAVA_HOME, then java on PATH,
#                                then the first JDK 17/11 under /usr/lib/jvm)
#   TOPK_MAVEN_REPO              Maven local repository (default: Maven's, ~/.m2/repository)
#
# One node of a cluster (set by cluster.sh; the defaults are the single node):
#   CASSANDRA_NODE_NAME            cassandra  name in messages
#   CASSANDRA_NODE_DIR             $TOPK_RUNTIME_DIR/cassandra  this node's folder
#   CASSANDRA_NODE_ADDRESS         127.0.0.1  listen and rpc (CQL) address; the
#                                  nodes of a cluster differ by address, not port
#   CASSANDRA_NODE_SEEDS           127.0.0.1:<storage port>
#   CASSANDRA_NODE_CLUSTER_NAME    topk-local
#   CASSANDRA_NODE_AUTO_BOOTSTRAP  true  (false: join without streaming data,
#                                  only right for a node of a brand-new cluster)
#   CASSANDRA_NODE_CLASSPATH_FILE  $CASSANDRA_NODE_DIR/classpath.txt (shareable)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${TOPK_RUNTIME_DIR:=$(cd "$SCRIPT_DIR/../.." && pwd)/.runtime}"
COMPONENT="${CASSANDRA_NODE_NAME:-cassandra}"
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"

CQL_PORT="${TOPK_CASSANDRA_PORT:-9042}"
STORAGE_PORT="${TOPK_CASSANDRA_STORAGE_PORT:-7000}"
JMX_PORT="${TOPK_CASSANDRA_JMX_PORT:-7199}"
HEAP="${TOPK_CASSANDRA_HEAP:-2G}"
ADDRESS="${CASSANDRA_NODE_ADDRESS:-127.0.0.1}"
SEEDS="${CASSANDRA_NODE_SEEDS:-127.0.0.1:$STORAGE_PORT}"
CLUSTER_NAME="${CASSANDRA_NODE_CLUSTER_NAME:-topk-local}"
AUTO_BOOTSTRAP="${CASSANDRA_NODE_AUTO_BOOTSTRAP:-true}"

CONF_DIR="$SCRIPT_DIR/cassandra"
POM="$CONF_DIR/pom.xml"
DIR="${CASSANDRA_NODE_DIR:-$TOPK_RUNTIME_DIR/cassandra}"
LOG_DIR="$DIR/logs"
PID_FILE="$DIR/cassandra.pid"
CP_FILE="${CASSANDRA_NODE_CLASSPATH_FILE:-$DIR/classpath.txt}"
YAML="$DIR/cassandra.yaml"
SYSTEM_LOG="$LOG_DIR/system.log"
STDOUT_LOG="$LOG_DIR/stdout.log"
OFFSET_FILE="$DIR/system.log.offset"   # size of system.log when the last start began
MAIN_CLASS=org.apache.cassandra.service.CassandraDaemon
DATA_DIRS=(data commitlog saved_caches hints cdc_raw)

for p in "$CQL_PORT" "$STORAGE_PORT" "$JMX_PORT"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -gt 0 ] && [ "$p" -lt 65536 ] || die "invalid port '$p'"
done
[[ "$HEAP" =~ ^[0-9]+[kKmMgG]?$ ]] || die "invalid TOPK_CASSANDRA_HEAP '$HEAP' (want e.g. 2G or 1536M)"
[[ "$ADDRESS" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "CASSANDRA_NODE_ADDRESS must be a loopback address 127.x.y.z, got '$ADDRESS'"
[[ "$SEEDS" =~ ^[0-9.]+:[0-9]+(,[0-9.]+:[0-9]+)*$ ]] || die "CASSANDRA_NODE_SEEDS must look like 127.0.0.1:7000[,…], got '$SEEDS'"
[[ "$CLUSTER_NAME" =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid CASSANDRA_NODE_CLUSTER_NAME '$CLUSTER_NAME'"
case "$AUTO_BOOTSTRAP" in true|false) ;; *) die "CASSANDRA_NODE_AUTO_BOOTSTRAP must be true or false, got '$AUTO_BOOTSTRAP'" ;; esac

# running: true when the pid file names a live Cassandra JVM. A live pid that
# is not Cassandra (pid reused after a crash/reboot) counts as stale: the pid
# file is removed and nothing is ever signalled.
running() {
  pid_alive "$PID_FILE" || return 1
  if tr '\0' ' ' < "/proc/$(cat "$PID_FILE")/cmdline" 2>/dev/null | grep -q "$MAIN_CLASS"; then return 0; fi
  say "stale pid file $PID_FILE (pid $(cat "$PID_FILE") is not Cassandra): removing it"
  rm -f "$PID_FILE"
  return 1
}

# port_in_use ADDR PORT: true when something listens on ADDR:PORT or on PORT
# of every address (the nodes of a cluster share ports on different 127.x
# addresses, so a listener on another address is no conflict).
port_in_use() {
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$2" 2>/dev/null | awk -v a="$1" '
      { l = $4; sub(/:[0-9]+$/, "", l)
        if (l == a || l == "0.0.0.0" || l == "*" || l == "[::]" || l == "[::ffff:" a "]") f = 1 }
      END { exit !f }'
  else
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  fi
}

# cql_answers: true when the CQL port accepts a TCP connection.
cql_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$ADDRESS/$CQL_PORT" 2>/dev/null; }

# pick_java: print the java binary to use (Cassandra 5.0 runs on Java 11 or 17 only:
# it installs a SecurityManager, which newer JDKs refuse, and 21 is unsupported).
pick_java() {
  local java major
  if [ -n "${TOPK_CASSANDRA_JAVA_HOME:-}" ]; then
    java="$TOPK_CASSANDRA_JAVA_HOME/bin/java"
    [ -x "$java" ] || die "TOPK_CASSANDRA_JAVA_HOME=$TOPK_CASSANDRA_JAVA_HOME has no bin/java"
    major="$(java_major "$java")"
    case "$major" in 11|17) echo "$java"; return ;; esac
    die "TOPK_CASSANDRA_JAVA_HOME points at Java ${major:-?}; Cassandra 5.0 needs Java 11 or 17"
  fi
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java="$JAVA_HOME/bin/java"
  else java="$(command -v java || true)"; fi
  if [ -n "$java" ]; then
    major="$(java_major "$java")"
    case "$major" in 11|17) echo "$java"; return ;; esac
  fi
  local cand m
  for cand in /usr/lib/jvm/*/bin/java; do
    [ -x "$cand" ] || continue
    m="$(java_major "$cand")"
    case "$m" in 17|11) say "default java is ${major:-missing}; using Java $m at $cand"; echo "$cand"; return ;; esac
  done
  die "Cassandra 5.0 needs Java 11 or 17, found ${major:-no java} (${java:-not on PATH}). Install one (apt-get install openjdk-17-jre-headless) or set TOPK_CASSANDRA_JAVA_HOME to a JDK 11/17"
}

# log_tail FILE [N]: like last_lines, but cuts Cassandra's very long lines
# (its "Node configuration", "Classpath" and "JVM Arguments" lines are many KB).
log_tail() {
  [ -f "$1" ] || return 0
  echo "--- last lines of $1 ---" >&2
  tail -n "${2:-25}" "$1" | cut -c1-300 >&2
  echo "---" >&2
}

resolve_classpath() { maven_classpath "$POM" "$CP_FILE"; }

render_yaml() {
  local text key val
  text="$(cat "$CONF_DIR/cassandra.yaml.tmpl")"
  for key in DIR CQL_PORT STORAGE_PORT ADDRESS SEEDS CLUSTER_NAME AUTO_BOOTSTRAP; do
    val="${!key}"
    text="${text//"{{$key}}"/$val}"
  done
  case "$text" in *'{{'*'}}'*) die "unfilled placeholder left in cassandra.yaml.tmpl" ;; esac
  printf '%s\n' "$text" > "$YAML.tmp" && mv "$YAML.tmp" "$YAML"
}

cmd_start() {
  mkdir -p "$DIR" "$LOG_DIR"
  if running; then
    say "already running (pid $(cat "$PID_FILE"), CQL $ADDRESS:$CQL_PORT)"
    return 0
  fi
  rm -f "$PID_FILE"
  local spec name addr port var
  # JMX listens on 127.0.0.1 whatever the node's address.
  for spec in "CQL:$ADDRESS:$CQL_PORT:TOPK_CASSANDRA_PORT" "storage:$ADDRESS:$STORAGE_PORT:TOPK_CASSANDRA_STORAGE_PORT" \
              "JMX:127.0.0.1:$JMX_PORT:TOPK_CASSANDRA_JMX_PORT"; do
    IFS=: read -r name addr port var <<< "$spec"
    port_in_use "$addr" "$port" && die "$name port $addr:$port is already taken by another process (see: ss -ltnp 'sport = :$port'); stop it or set $var"
  done

  resolve_classpath
  local java cp jamm
  java="$(pick_java)"
  cp="$(cat "$CP_FILE")"
  jamm="$(tr ':' '\n' < "$CP_FILE" | grep -m1 '/jamm-[^/]*\.jar$' || true)"
  [ -n "$jamm" ] || die "jamm jar not on the classpath ($CP_FILE): delete it and retry"

  local d; for d in "${DATA_DIRS[@]}" triggers; do mkdir -p "$DIR/$d"; done
  render_yaml

  local opts=() line
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"   # trim leading and trailing blanks
    line="${line%"${line##*[![:space:]]}"}"
    case "$line" in -*) opts+=("$line") ;; esac
  done < "$CONF_DIR/jvm17.options"
  opts+=(
    "-Xms$HEAP" "-Xmx$HEAP"
    "-javaagent:$jamm"
    "-Dcassandra.config=file://$YAML"
    "-Dcassandra.storagedir=$DIR"
    "-Dcassandra.logdir=$LOG_DIR"
    "-Dcassandra.triggers_dir=$DIR/triggers"
    "-Dlogback.configurationFile=file://$CONF_DIR/logback.xml"
    "-Dcassandra.jmx.local.port=$JMX_PORT"
    "-Dcassandra-foreground=yes"
    "-Dcassandra.skip_wait_for_gossip_to_settle=0"
    "-XX:ErrorFile=$LOG_DIR/hs_err_%p.log"
  )

  # wait only reads what this start logs.
  if [ -f "$SYSTEM_LOG" ]; then stat -c %s "$SYSTEM_LOG" > "$OFFSET_FILE"; else echo 0 > "$OFFSET_FILE"; fi
  say "starting Cassandra $(basename "$(tr ':' '\n' < "$CP_FILE" | grep -m1 '/cassandra-all-')" .jar | sed 's/cassandra-all-//') on $ADDRESS (CQL $CQL_PORT, storage $STORAGE_PORT, JMX $JMX_PORT, heap $HEAP, Java $(java_major "$java"))"
  {
    echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') start: $java"
  } >> "$STDOUT_LOG"
  # setsid: own session, so the daemon survives the calling shell and its
  # Ctrl-C; bash without job control does not make the child a group leader,
  # so setsid execs in place and $! is the JVM's pid.
  (cd "$DIR" && exec setsid nohup "$java" "${opts[@]}" -cp "$cp" "$MAIN_CLASS" \
      >> "$STDOUT_LOG" 2>&1 < /dev/null) &
  local pid=$!
  echo "$pid" > "$PID_FILE"
  sleep 0.5
  if ! kill -0 "$pid" 2>/dev/null; then
    last_lines "$STDOUT_LOG"; rm -f "$PID_FILE"
    die "Cassandra exited at once (see $STDOUT_LOG)"
  fi
  say "launched (pid $pid); logs in $LOG_DIR; run '$0 wait' for CQL readiness"
}

cmd_wait() {
  local secs="${1:-180}"
  [[ "$secs" =~ ^[0-9]+$ ]] || die "wait: seconds must be a number, got '$secs'"
  running || { log_tail "$SYSTEM_LOG" 15; die "Cassandra is not running (no live pid in $PID_FILE): run '$0 start' first"; }
  local pid offset start now
  pid="$(cat "$PID_FILE")"
  offset="$(cat "$OFFSET_FILE" 2>/dev/null || echo 0)"
  start=$SECONDS
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "Cassandra (pid $pid) died while starting"
      log_tail "$SYSTEM_LOG" 30; last_lines "$STDOUT_LOG" 10
      rm -f "$PID_FILE"
      exit 1
    fi
    # (tail's status ignored: grep -q stops reading at the first match, and
    # a long log since the start then kills tail with SIGPIPE, which
    # pipefail made a "no" forever: a second `cluster.sh up` on a running
    # cluster waited out its 480 s.)
    if [ -f "$SYSTEM_LOG" ] && { tail -c +"$((offset + 1))" "$SYSTEM_LOG" 2>/dev/null || true; } \
         | grep -qE 'Starting listening for CQL clients|Startup complete' \
       && cql_answers; then
      say "ready: CQL on $ADDRESS:$CQL_PORT (pid $pid, waited $((SECONDS - start))s)"
      return 0
    fi
    now=$((SECONDS - start))
    if [ "$now" -ge "$secs" ]; then
      say "Cassandra (pid $pid) not answering CQL on $ADDRESS:$CQL_PORT after ${secs}s"
      log_tail "$SYSTEM_LOG" 30; last_lines "$STDOUT_LOG" 10
      exit 1
    fi
    sleep 1
  done
}

cmd_status() {
  if running; then
    local state="CQL answering"; cql_answers || state="CQL not answering yet"
    echo "cassandra: running (pid $(cat "$PID_FILE"), CQL $ADDRESS:$CQL_PORT, $state)"
    return 0
  fi
  echo "cassandra: stopped (CQL port $CQL_PORT)"
  return 3
}

cmd_stop() {
  running || { say "cassandra not running"; rm -f "$PID_FILE"; return 0; }
  stop_pid cassandra "$PID_FILE" 120
}

cmd_reset() {
  cmd_stop
  local d; for d in "${DATA_DIRS[@]}"; do rm -rf "${DIR:?}/$d"; done
  rm -f "$OFFSET_FILE"
  say "reset: deleted data, commitlog, saved_caches, hints, cdc_raw under $DIR"
}

cmd_classpath() { resolve_classpath; cat "$CP_FILE"; echo; }

# cmd_nodetool ARGS...: Cassandra's nodetool (from the same jars) against this
# node's local JMX port, e.g. `cassandra.sh nodetool status`.
cmd_nodetool() {
  resolve_classpath
  local java opts=()
  java="$(pick_java)"
  mapfile -t opts < <(grep -E '^--add-(exports|opens)=' "$CONF_DIR/jvm17.options")
  mkdir -p "$DIR"
  # user.home: nodetool keeps its history in <home>/.cassandra.
  exec "$java" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true "${opts[@]}" \
    "-Dlogback.configurationFile=file://$CONF_DIR/logback-tools.xml" "-Duser.home=$DIR" \
    -cp "$(cat "$CP_FILE")" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$JMX_PORT" "$@"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wait) shift; cmd_wait "$@" ;;
  reset) cmd_reset ;;
  classpath) cmd_classpath ;;
  nodetool) shift; cmd_nodetool "$@" ;;
  *) echo "usage: $0 {start|stop|status|wait [seconds]|reset|classpath|nodetool ARGS...}" >&2; exit 2 ;;
esac
