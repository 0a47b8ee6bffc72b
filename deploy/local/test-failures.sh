#!/usr/bin/env bash
# Prints the failures of a `go test` log again, so they end the output of
# `make unit` / `make integration` (a CI log may keep only its tail, and a
# failure of an early package is otherwise followed by every later
# package's output): each "--- FAIL" line with the indented lines of its
# test's log after it, and each panic (a test binary's timeout included)
# with its first lines. Usage: test-failures.sh LOG
set -euo pipefail
log="$1"
echo
echo "== the failures again (from $log):"
awk '
  /^[[:space:]]*--- FAIL/ { p = 1; print; next }
  p && /^(    |\t)/       { print; next }
                          { p = 0 }
  /^panic: /              { print; c = 12; next }
  c > 0                   { print; c--; next }
  /^(FAIL|ok)[[:space:]]/ && /FAIL/ { print }
' "$log" | tail -n 400
