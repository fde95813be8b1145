#!/usr/bin/env bash
# Idle cost of `ezpoll run` as its own process: an embedded broker (`ezpoll broker`)
# in another process, no input, no API calls. Prints the CPU the `run` process used
# over SECONDS (default 20) after it joined its group, as % of one core.
# Usage: scripts/idle-cost.sh [SECONDS] [path/to/ezpoll]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_MEASURE=${1:-20}
EZPOLL=${2:-.build/release/ezpoll}
work=$(mktemp -d)
cleanup() {
    [[ -n "${run_pid:-}" ]] && kill "$run_pid" 2>/dev/null || true
    [[ -n "${broker_pid:-}" ]] && kill "$broker_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$EZPOLL" broker --topic captcha.tasks:4 --topic captcha.solutions:4 --topic captcha.failures:4 \
    --topic captcha.tasks.dlq:4 --bootstrap-file "$work/bootstrap" --log-level warning >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$work/bootstrap" ]] && break; sleep 0.1; done
brokers=$(cat "$work/bootstrap")

EZPOLL_CLIENT_KEY=idle-measurement-key "$EZPOLL" run --brokers "$brokers" --api-url http://127.0.0.1:9 \
    --log-level info >"$work/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 300); do grep -q "partitions assigned" "$work/run.log" && break; sleep 0.1; done
grep -q "partitions assigned" "$work/run.log" || { echo "ezpoll run did not get its partitions"; cat "$work/run.log"; exit 1; }
sleep 3

ticks() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run0=$(ticks "$run_pid"); broker0=$(ticks "$broker_pid"); t0=$(date +%s.%N)
sleep "$SECONDS_TO_MEASURE"
run1=$(ticks "$run_pid"); broker1=$(ticks "$broker_pid"); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$run_pid/status")
awk -v r0="$run0" -v r1="$run1" -v b0="$broker0" -v b1="$broker1" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v rss="$rss" 'BEGIN {
    wall = t1 - t0
    printf "idle over %.1f s: ezpoll run %.2f%% of a core (%.2f CPU s), RSS %.1f MiB; ezpoll broker %.2f%% of a core\n",
        wall, (r1 - r0) / hz / wall * 100, (r1 - r0) / hz, rss / 1024, (b1 - b0) / hz / wall * 100
}'
