# Shared helpers for the local stack scripts (sourced, not run).
# Every script in deploy/local reads the same environment, resolved by
# `topk config --shell` (the one place configuration is read) and exported
# by deploy/local/stack.sh before it calls a per-server script.

set -euo pipefail

: "${TOPK_RUNTIME_DIR:=$(pwd)/.runtime}"
case "$TOPK_RUNTIME_DIR" in /*) ;; *) TOPK_RUNTIME_DIR="$(pwd)/$TOPK_RUNTIME_DIR" ;; esac
export TOPK_RUNTIME_DIR

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LOCAL_DIR/../.." && pwd)"

say()  { printf '%s %-10s %s\n' "$(date -u +%H:%M:%S)" "[${COMPONENT:-stack}]" "$*" >&2; }
die()  { say "ERROR: $*"; exit 1; }

# pid_alive FILE: true when FILE names a live process.
pid_alive() {
  [ -f "$1" ] || return 1
  local pid; pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# stop_pid NAME FILE [SECONDS]: SIGTERM the process in FILE, wait, then SIGKILL.
stop_pid() {
  local name="$1" file="$2" secs="${3:-30}"
  if ! pid_alive "$file"; then rm -f "$file"; say "$name not running"; return 0; fi
  local pid; pid="$(cat "$file")"
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $((secs * 5)) ]; then say "$name did not stop in ${secs}s, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.2
  done
  rm -f "$file"
}

# maven_classpath POM OUT: resolve POM's dependencies into Maven's local
# repository (downloading with progress the first time) and write the
# classpath to OUT. Skips Maven when OUT exists and every jar on it exists.
maven_classpath() {
  local pom="$1" out="$2"
  if [ -s "$out" ] && [ "$out" -nt "$pom" ]; then
    local ok=1 jar
    IFS=: read -r -a jars < "$out" || true   # no trailing newline: read returns 1
    for jar in "${jars[@]}"; do [ -f "$jar" ] || { ok=0; break; }; done
    [ "$ok" = 1 ] && return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
  say "resolving $(basename "$(dirname "$pom")") jars with Maven (first time downloads from Maven Central)"
  local repo_args=()
  [ -n "${TOPK_MAVEN_REPO:-}" ] && repo_args=("-Dmaven.repo.local=$TOPK_MAVEN_REPO")
  mkdir -p "$(dirname "$out")"
  mvn -B -Dstyle.color=never -f "$pom" "${repo_args[@]}" dependency:build-classpath \
      -Dmdep.outputFile="$out.tmp" -Dmdep.includeScope=runtime \
      -Dorg.slf4j.simpleLogger.log.org.apache.maven.cli.transfer.Slf4jMavenTransferListener=info \
      | grep -E 'Downloaded from|BUILD|ERROR' | sed -u 's/^/    /' >&2 || true
  [ -s "$out.tmp" ] || die "Maven could not resolve $pom (run: mvn -f $pom dependency:build-classpath)"
  mv "$out.tmp" "$out"
}

# java_major JAVA: prints the major version of the given java binary.
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}'
}

# last_lines FILE: the end of a log, for error messages.
last_lines() { [ -f "$1" ] && { echo "--- last lines of $1 ---" >&2; tail -n "${2:-25}" "$1" >&2; echo "---" >&2; }; return 0; }
