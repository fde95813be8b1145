#!/usr/bin/env bash
# Runs the test suite N times and prints a table of failures per test: the tool for
# flaky tests. Each run's whole output is kept in the log folder it prints.
#
#   ./scripts/test-repeat.sh N [--busy K] [--filter REGEX]
#
# --busy K   K busy loops (one `yes > /dev/null` each) beside the suite, as on a
#            shared CI runner.
# --filter   passed to `swift test --filter` (default: the whole suite).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:?usage: $0 N [--busy K] [--filter REGEX]}
shift
busy=0
filter=()
while [ $# -gt 0 ]; do
  case "$1" in
    --busy) busy=$2; shift 2 ;;
    --filter) filter=(--filter "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

./scripts/setup.sh
swift build --build-tests

logs=$(mktemp -d "${TMPDIR:-/tmp}/ezpoll-test-repeat.XXXXXX")
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq 1 "$busy"); do
  yes > /dev/null &
  pids+=($!)
done

passed=0
for run in $(seq 1 "$runs"); do
  start=$(date +%s)
  if swift test --skip-build --no-parallel "${filter[@]}" > "$logs/run-$run.log" 2>&1; then
    status=passed
    passed=$((passed + 1))
  else
    status=FAILED
  fi
  echo "run $run: $status in $(( $(date +%s) - start )) s ($logs/run-$run.log)"
done

echo
echo "$passed of $runs runs passed (busy loops beside: $busy); logs in $logs"
# Swift Testing prints one line per failed test: ✘ Test "name" failed ...; XCTest: Test Case '...' failed.
failures=$(cat "$logs"/run-*.log | grep -hoE '✘ Test .* failed after|Test Case .* failed' \
  | grep -v '^✘ Test run with' | sed -E 's/ failed( after)?$//' | sort | uniq -c | sort -rn || true)
if [ -n "$failures" ]; then
  echo "failures per test (runs):"
  echo "$failures"
  echo "kept member logs (process tests):"
  grep -h "member logs kept in" "$logs"/run-*.log | sort -u || true
  exit 1
fi
